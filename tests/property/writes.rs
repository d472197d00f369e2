//! Write bodies (columns, `@odata.bind`, deep inserts), the bulk actions with `Targets`, `$ref`
//! reads and writes, and change-set follow-ups through a Content-ID.

use dataverse_gateway::config::Verb;
use http::Method;
use serde_json::{Map, Value, json};

use crate::generator::{GATEWAYS, Gen, ORG};
use crate::oracle::Call;
use crate::schema::Nav;

impl<'a> Gen<'a> {
    pub fn reference_url(&mut self, t: usize) -> String {
        let set = self.table(t).set.clone();
        let (key, cols) = if self.c.chance(15) {
            self.key(t)
        } else {
            (format!("({})", self.guid()), vec![])
        };
        self.need_keyed(t, Verb::Get, &cols);
        let base = match self.c.below(6) {
            0 => "/".to_string(),
            1 => String::new(),
            2 => "/api/data/v9.2/".to_string(),
            3 => format!("{ORG}/api/data/v9.2/"),
            4 => format!("{}/api/data/v9.2/", GATEWAYS[0]),
            _ => format!("{}/api/data/v9.2/", GATEWAYS[1]),
        };
        format!("{base}{set}{key}")
    }

    /// A JSON object creating or changing one row of `t`; columns go to `need`.
    pub fn entity(&mut self, t: usize, need: usize, depth: u8) -> Map<String, Value> {
        let table = self.table(t);
        let mut obj = Map::new();
        if self.c.chance(20) {
            obj.insert(
                "@odata.type".into(),
                json!(format!("Microsoft.Dynamics.CRM.{}", table.logical)),
            );
        }
        for col in self.c.subset(&table.writable(), 0) {
            let v = self.json_value(col.ty);
            obj.insert(col.name.clone(), v);
            self.col(need, &col.name);
        }
        let mut used: Vec<&str> = Vec::new();
        for _ in 0..self.c.below(3) {
            if table.navs.is_empty() {
                break;
            }
            let nav = self.c.one(&table.navs);
            if used.contains(&nav.name.as_str()) {
                continue;
            }
            used.push(&nav.name);
            if depth < 2 && self.c.chance(35) {
                let v = self.deep_insert(nav, need, depth);
                obj.insert(nav.name.clone(), v);
            } else {
                let v = self.bind(nav, need);
                obj.insert(format!("{}@odata.bind", nav.name), v);
            }
        }
        obj
    }

    fn deep_insert(&mut self, nav: &'a Nav, need: usize, depth: u8) -> Value {
        let mut rows = Vec::new();
        for _ in 0..if nav.collection {
            1 + self.c.below(2)
        } else {
            1
        } {
            let child = self.need(nav.target, Verb::Post, vec![]);
            rows.push(Value::Object(self.entity(nav.target, child, depth + 1)));
        }
        if nav.collection {
            Value::Array(rows)
        } else {
            self.col(need, &nav.name);
            rows.pop().expect("one row")
        }
    }

    fn bind(&mut self, nav: &'a Nav, need: usize) -> Value {
        self.col(need, &nav.name);
        if nav.collection {
            // Binding rows to a collection sets THEIR lookup: a change to them too.
            self.need(nav.target, Verb::Patch, vec![]);
            let urls = (0..1 + self.c.below(2))
                .map(|_| json!(self.reference_url(nav.target)))
                .collect();
            Value::Array(urls)
        } else {
            json!(self.reference_url(nav.target))
        }
    }

    /// `POST <set>/Microsoft.Dynamics.CRM.{Create,Update,Upsert}Multiple` with `Targets`: a write
    /// on the set (POST / PATCH / both), every row's columns checked; no `actions` entry needed.
    pub fn bulk(&mut self) -> Call {
        let t = self.c.below(self.s.tables.len());
        let table = self.table(t);
        let (action, verbs): (&str, &[Verb]) = match self.c.below(3) {
            0 => ("CreateMultiple", &[Verb::Post]),
            1 => ("UpdateMultiple", &[Verb::Patch]),
            _ => ("UpsertMultiple", &[Verb::Post, Verb::Patch]),
        };
        let needs: Vec<usize> = verbs.iter().map(|v| self.need(t, *v, vec![])).collect();
        let mut rows = Vec::new();
        for _ in 0..1 + self.c.below(3) {
            let mut row = Map::new();
            row.insert(
                "@odata.type".into(),
                json!(format!("Microsoft.Dynamics.CRM.{}", table.logical)),
            );
            if action != "CreateMultiple" || self.c.chance(20) {
                row.insert(table.key.clone(), json!(self.guid()));
            }
            for col in self.c.subset(&table.writable(), 0) {
                row.insert(col.name.clone(), self.json_value(col.ty));
                for &n in &needs {
                    self.col(n, &col.name);
                }
            }
            let singles = table.singles();
            if !singles.is_empty() && self.c.chance(30) {
                let nav = *self.c.one(&singles);
                for &n in &needs {
                    self.col(n, &nav.name);
                }
                let url = self.reference_url(nav.target);
                row.insert(format!("{}@odata.bind", nav.name), json!(url));
            }
            rows.push(Value::Object(row));
        }
        let mut call = Call::new(
            Method::POST,
            format!("{}/Microsoft.Dynamics.CRM.{action}", table.set),
        );
        call.body = Some(json!({ "Targets": rows }).to_string());
        call.headers
            .push(("content-type", "application/json".into()));
        call
    }

    /// `<row>/<nav>/$ref`: reads (with and without query options) and writes of an association.
    pub fn reference(&mut self) -> Call {
        let owner = self.c.below(self.s.tables.len());
        let table = self.table(owner);
        let (key, keys) = self.key(owner);
        let Some(nav) = (!table.navs.is_empty()).then(|| self.c.one(&table.navs)) else {
            let call = Call::new(Method::GET, format!("{}{key}", table.set));
            let need = self.need_keyed(owner, Verb::Get, &keys);
            self.needs[need].main_read = true;
            self.all_columns(need);
            return call_with(call, self);
        };
        let base = format!("{}{key}/{}", table.set, nav.name);
        match self.c.below(4) {
            0 | 1 => {
                let need = self.need_keyed(owner, Verb::Get, &keys);
                self.through(need, nav);
                let target = self.need(nav.target, Verb::Get, vec![]);
                let mut call = Call::new(Method::GET, format!("{base}/$ref"));
                if nav.collection && self.c.chance(50) {
                    let mut scope = vec![(String::new(), nav.target, target)];
                    let f = self.filter(&mut scope, 0, false);
                    let o = self.orderby(nav.target, target, false);
                    call.query = Some(format!("$filter={}&$orderby={}", enc(&f), enc(&o)));
                    call.may_refuse = true;
                }
                call_with(call, self)
            }
            2 => {
                // The owner row is reached (GET, as every row a path passes through) and its
                // association changed (PATCH).
                self.need(owner, Verb::Get, vec![]);
                let need = self.need_keyed(owner, Verb::Patch, &keys);
                if nav.collection {
                    self.related_lookup_changes(nav);
                    let path = format!("{base}({})/$ref", self.guid());
                    self.need(nav.target, Verb::Get, vec![]);
                    call_with(Call::new(Method::DELETE, path), self)
                } else {
                    self.col(need, &nav.name);
                    call_with(Call::new(Method::DELETE, format!("{base}/$ref")), self)
                }
            }
            _ => {
                self.need(owner, Verb::Get, vec![]);
                let need = self.need_keyed(owner, Verb::Patch, &keys);
                let method = if nav.collection {
                    self.related_lookup_changes(nav);
                    Method::POST
                } else {
                    self.col(need, &nav.name);
                    Method::PUT
                };
                let url = self.reference_url(nav.target);
                let mut call = Call::new(method, format!("{base}/$ref"));
                call.body = Some(json!({ "@odata.id": url }).to_string());
                call.headers
                    .push(("content-type", "application/json".into()));
                call_with(call, self)
            }
        }
    }

    /// A change-set request on the row `created` made by the previous request (`POST <set>`),
    /// through its Content-ID: `PATCH $n`, `DELETE $n`, `POST $n/<collection>`, or a `POST`
    /// elsewhere binding `"<nav>@odata.bind": "$n"`.
    pub fn follow_up(&mut self, created: usize) -> Call {
        let first_need = self.needs.len();
        let json = vec![("content-type", "application/json".to_string())];
        let colls = self.table(created).collections();
        let binders: Vec<(usize, &'a Nav)> = (0..self.s.tables.len())
            .flat_map(|t| self.table(t).navs.iter().map(move |n| (t, n)))
            .filter(|(_, n)| n.target == created)
            .collect();
        let (method, path, body, headers) = match self.c.below(4) {
            1 => {
                self.need(created, Verb::Delete, vec![]);
                (Method::DELETE, "$REF".to_string(), None, vec![])
            }
            2 if !colls.is_empty() => {
                let nav = *self.c.one(&colls);
                self.need(created, Verb::Get, vec![]);
                // the new row's lookup points back at the created one
                let need = self.need(nav.target, Verb::Post, nav.lookup.iter().cloned().collect());
                let obj = self.entity(nav.target, need, 0);
                let body = Value::Object(obj).to_string();
                (Method::POST, format!("$REF/{}", nav.name), Some(body), json)
            }
            3 if !binders.is_empty() => {
                let (t, nav) = *self.c.one(&binders);
                let need = self.need(t, Verb::Post, vec![nav.name.clone()]);
                self.need(created, Verb::Get, vec![]);
                let mut obj = Map::new();
                for col in self.c.subset(&self.table(t).writable(), 0) {
                    obj.insert(col.name.clone(), self.json_value(col.ty));
                    self.col(need, &col.name);
                }
                let link = if nav.collection {
                    self.need(created, Verb::Patch, vec![]);
                    json!(["$REF"])
                } else {
                    json!("$REF")
                };
                obj.insert(format!("{}@odata.bind", nav.name), link);
                let body = Value::Object(obj).to_string();
                (Method::POST, self.table(t).set.clone(), Some(body), json)
            }
            _ => {
                let need = self.need(created, Verb::Patch, vec![]);
                let obj = self.entity(created, need, 0);
                let body = Value::Object(obj).to_string();
                (Method::PATCH, "$REF".to_string(), Some(body), json)
            }
        };
        let mut call = Call::new(method, path);
        call.body = body;
        call.headers = headers;
        call.needs = self.needs[first_need..].to_vec();
        call.refers_back = true;
        call
    }
}

/// Percent-encodes what may not appear raw in a query value.
pub fn enc(v: &str) -> String {
    v.replace('%', "%25")
        .replace('&', "%26")
        .replace('#', "%23")
        .replace('+', "%2B")
        .replace(' ', "%20")
}

/// Hands the needs recorded since the call began to `call` (the caller reset them).
fn call_with(mut call: Call, g: &mut Gen<'_>) -> Call {
    call.needs = std::mem::take(&mut g.needs);
    call
}
