//! Single requests: reads, writes, property reads/writes, `$count`, fetchXml, bulk actions,
//! `$ref`, `EntityDefinitions`, an unbound function; and the header variants (impersonation,
//! verb tunnelling, `Prefer` annotations, `If-Match`/`If-None-Match`).

use std::fmt::Write as _;

use dataverse_gateway::config::Verb;
use http::Method;
use serde_json::{Value, json};

use crate::generator::{Gen, Shape};
use crate::oracle::{Call, Returned};
use crate::writes::enc;

/// `Prefer` values and whether they ask for `FormattedValue` annotations.
const PREFERS: [(&str, bool); 5] = [
    (
        "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"",
        true,
    ),
    ("odata.include-annotations=\"*\"", true),
    (
        "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname,OData.Community.Display.V1.FormattedValue\"",
        true,
    ),
    (
        "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\"",
        false,
    ),
    ("odata.maxpagesize=10", false),
];

impl<'a> Gen<'a> {
    pub fn call(&mut self) -> Call {
        // GET (0) is the simplest; reads and creates are drawn more often.
        let kind = [0, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 8, 9, 10, 11, 12][self.c.below(16)];
        self.call_of(kind, true)
    }

    /// A request of `kind`: 0 read, 1 create, 2 update, 3 delete, 4 read a column, 5 `$count`,
    /// 6 delete a column, 7 put a column, 8 fetchXml, 9 bulk action, 10 `$ref`,
    /// 11 `EntityDefinitions`, 12 an unbound function.
    pub fn call_of(&mut self, kind: usize, hops: bool) -> Call {
        self.needs.clear();
        self.aliases.clear();
        let mut call = match kind {
            8 => self.fetch_xml(),
            9 => self.bulk(),
            10 => self.reference(),
            11 => self.definitions(),
            12 => {
                let mut call = Call::new(Method::GET, "WhoAmI()".into());
                call.functions.push("WhoAmI".into());
                call
            }
            _ => self.resource_call(kind, hops),
        };
        self.headers(&mut call, kind);
        call.needs.extend(std::mem::take(&mut self.needs));
        call
    }

    fn resource_call(&mut self, kind: usize, hops: bool) -> Call {
        let shape = match kind {
            0 => Shape::Either,
            1 | 5 => Shape::Collection,
            _ => Shape::Row,
        };
        let end = self.path(shape, hops);
        let t = end.table;
        let mut path = end.path;
        let mut opts: Vec<(String, String)> = Vec::new();
        let mut body = None;
        let mut headers: Vec<(&'static str, String)> = Vec::new();
        let mut upsert = None;
        let method = match kind {
            0 => {
                let need = self.need_keyed(t, Verb::Get, &end.keys);
                self.needs[need].main_read = true;
                opts = self.read_options(t, need, !end.single);
                Method::GET
            }
            1 | 2 => {
                let verb = if kind == 1 { Verb::Post } else { Verb::Patch };
                let need = self.need_keyed(t, verb, &end.keys);
                let obj = self.entity(t, need, 0);
                body = Some(Value::Object(obj).to_string());
                headers.push(("content-type", "application/json".into()));
                if kind == 2 && !end.hops {
                    upsert = Some(t);
                }
                if self.c.chance(25) {
                    headers.push(("prefer", "return=representation".into()));
                    let read = self.need(t, Verb::Get, vec![]);
                    self.needs[read].main_read = true;
                    if self.c.chance(50) {
                        let s = self.select(t, read);
                        opts.push(("$select".into(), s));
                    } else {
                        self.all_columns(read);
                    }
                    if self.c.chance(30) {
                        let x = self.expand(t, read, 0);
                        opts.push(("$expand".into(), x));
                    }
                }
                if kind == 1 {
                    Method::POST
                } else {
                    Method::PATCH
                }
            }
            3 => {
                self.need_keyed(t, Verb::Delete, &end.keys);
                Method::DELETE
            }
            4 | 6 | 7 => {
                let writable = self.table(t).writable();
                let col = self.c.one(&writable);
                let (m, verb) = match kind {
                    4 => (Method::GET, Verb::Get),
                    6 => (Method::DELETE, Verb::Patch),
                    _ => (Method::PUT, Verb::Patch),
                };
                let need = self.need_keyed(t, verb, &end.keys);
                self.col(need, &col.name);
                write!(path, "/{}", col.name).unwrap();
                if kind == 4 {
                    self.needs[need].returned = Some(Returned::Columns(vec![col.name.clone()]));
                    if self.c.chance(30) {
                        path.push_str("/$value");
                    }
                }
                if kind == 7 {
                    let v = self.json_value(col.ty);
                    body = Some(json!({ "value": v }).to_string());
                    headers.push(("content-type", "application/json".into()));
                }
                m
            }
            _ => {
                let need = self.need_keyed(t, Verb::Get, &end.keys);
                path.push_str("/$count");
                if self.c.chance(50) {
                    let mut scope = vec![(String::new(), t, need)];
                    let f = self.filter(&mut scope, 0, true);
                    opts.push(("$filter".into(), f));
                }
                Method::GET
            }
        };
        let aliases = std::mem::take(&mut self.aliases);
        let mut call = Call::new(method, path);
        call.query = self.encode_query(&opts, &aliases);
        call.body = body;
        call.headers = headers;
        call.creates = (kind == 1).then_some(t);
        call.upsert = upsert;
        call
    }

    /// Header variants; `kind` as in [`Gen::call_of`].
    fn headers(&mut self, call: &mut Call, kind: usize) {
        if self.c.chance(8) {
            let name = *self.c.one(&["mscrmcallerid", "callerobjectid"]);
            let id = self.guid();
            call.headers.push((name, id));
        }
        if self.c.chance(4) {
            let name = *self.c.one(&["x-http-method", "x-http-method-override"]);
            call.headers.push((name, "DELETE".into()));
            call.refused = Some("a verb-tunnelling header");
        }
        let reads = call
            .needs
            .iter()
            .chain(&self.needs)
            .any(|n| n.returned.is_some());
        if reads && self.c.chance(20) {
            let (value, formatted) = *self.c.one(&PREFERS);
            match call.headers.iter_mut().find(|(k, _)| *k == "prefer") {
                Some((_, v)) => write!(v, ",{value}").unwrap(),
                None => call.headers.push(("prefer", value.to_string())),
            }
            call.annotations = formatted;
        }
        if kind == 2 && self.c.chance(30) {
            match self.c.below(3) {
                0 => call.headers.push(("if-match", "*".into())),
                1 => call.headers.push(("if-match", "W/\"123\"".into())),
                _ => {
                    // Create-only: the PATCH may create the row.
                    call.headers.push(("if-none-match", "*".into()));
                    let post: Vec<_> = self
                        .needs
                        .iter()
                        .filter(|n| n.verb == Verb::Patch)
                        .map(|n| {
                            let mut p = n.clone();
                            p.verb = Verb::Post;
                            p
                        })
                        .take(1)
                        .collect();
                    self.needs.extend(post);
                }
            }
            call.upsert = None;
        }
    }

    /// `EntityDefinitions` reads of one table, a filtered listing, or an attribute listing.
    fn definitions(&mut self) -> Call {
        let n = self.s.tables.len();
        let t = self.c.below(n);
        let logical = self.table(t).logical.clone();
        let d = self.need(t, Verb::Get, vec![]);
        self.needs[d].definition = true;
        let mut call = match self.c.below(4) {
            0 | 1 => Call::new(
                Method::GET,
                format!("EntityDefinitions(LogicalName='{logical}')"),
            ),
            2 => {
                let u = self.c.below(n);
                let other = self.table(u).logical.clone();
                let d = self.need(u, Verb::Get, vec![]);
                self.needs[d].definition = true;
                let mut call = Call::new(Method::GET, "EntityDefinitions".into());
                let f = format!("LogicalName eq '{logical}' or LogicalName eq '{other}'");
                call.query = Some(format!("$filter={}", enc(&f)));
                call
            }
            _ => {
                let mut call = Call::new(
                    Method::GET,
                    format!("EntityDefinitions(LogicalName='{logical}')/Attributes"),
                );
                call.may_refuse = true;
                call
            }
        };
        if call.query.is_none() && self.c.chance(50) {
            call.query = Some("$select=LogicalName,PrimaryNameAttribute".into());
        }
        call
    }

    /// `GET <set>?fetchXml=...`: root with or without `<attribute>`, `<all-attributes/>`,
    /// filters and orders naming columns, nested link-entities joined through lookups.
    fn fetch_xml(&mut self) -> Call {
        let t = self.c.below(self.s.tables.len());
        let need = self.need(t, Verb::Get, vec![]);
        let mut links = 0;
        let inner = self.fetch_entity(t, need, 0, &mut links);
        let top = if self.c.chance(30) { " top=\"5\"" } else { "" };
        let logical = &self.table(t).logical;
        let xml = format!("<fetch{top}><entity name=\"{logical}\">{inner}</entity></fetch>");
        let mut call = Call::new(Method::GET, self.table(t).set.clone());
        call.query = Some(format!("fetchXml={}", enc_all(&xml)));
        call
    }

    fn fetch_entity(&mut self, t: usize, need: usize, depth: u8, links: &mut usize) -> String {
        let table = self.table(t);
        let plain: Vec<String> = table
            .columns
            .iter()
            .filter(|c| !c.lookup)
            .map(|c| c.name.clone())
            .collect();
        let mut x = String::new();
        match self.c.below(3) {
            0 if depth == 0 => self.all_columns(need),
            0 => {}
            1 => {
                let cols = self.c.subset(&plain, 1);
                for c in &cols {
                    write!(x, "<attribute name=\"{c}\" />").unwrap();
                    self.col(need, c);
                }
                self.needs[need].returned = Some(Returned::Columns(cols));
            }
            _ => {
                x.push_str("<all-attributes />");
                self.all_columns(need);
            }
        }
        if self.c.chance(40) {
            x.push_str("<filter type=\"and\">");
            for c in self.c.subset(&plain, 1).into_iter().take(2) {
                self.col(need, &c);
                write!(x, "<condition attribute=\"{c}\" operator=\"not-null\" />").unwrap();
            }
            x.push_str("</filter>");
        }
        if self.c.chance(30) {
            let c = self.c.one(&plain).clone();
            self.col(need, &c);
            write!(x, "<order attribute=\"{c}\" descending=\"true\" />").unwrap();
        }
        let navs: Vec<_> = table.navs.iter().filter(|n| n.lookup.is_some()).collect();
        if depth < 2 && !navs.is_empty() && self.c.chance(40) {
            let nav = *self.c.one(&navs);
            let lookup = nav.lookup.clone().unwrap_or_default();
            let attr = lookup
                .trim_start_matches('_')
                .trim_end_matches("_value")
                .to_string();
            let target = self.table(nav.target);
            let linked = self.need(nav.target, Verb::Get, vec![]);
            let (from, to) = if nav.collection {
                self.col(linked, &lookup);
                (attr, table.key.clone())
            } else {
                self.col(need, &lookup);
                (target.key.clone(), attr)
            };
            *links += 1;
            let alias = *links;
            let kind = *self.c.one(&["inner", "outer"]);
            let inner = self.fetch_entity(nav.target, linked, depth + 1, links);
            write!(
                x,
                "<link-entity name=\"{}\" from=\"{from}\" to=\"{to}\" alias=\"l{alias}\" link-type=\"{kind}\">{inner}</link-entity>",
                target.logical
            )
            .unwrap();
        }
        x
    }

    /// Encodes the query as an agent might: `%24` or `$`, `%20` or `+`, `%27` or `'`, and an
    /// occasional `%XX` for any other character.
    pub fn encode_query(
        &mut self,
        opts: &[(String, String)],
        aliases: &[String],
    ) -> Option<String> {
        if opts.is_empty() && aliases.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        for (name, value) in opts {
            let name = if self.c.chance(20) {
                name.replacen('$', "%24", 1)
            } else {
                name.clone()
            };
            parts.push(format!("{name}={}", self.encode_value(value)));
        }
        for a in aliases {
            let (name, value) = a.split_once('=').expect("alias has a value");
            parts.push(format!("{name}={}", self.encode_value(value)));
        }
        Some(parts.join("&"))
    }

    fn encode_value(&mut self, value: &str) -> String {
        let plus = self.c.chance(50);
        let mut out = String::new();
        for ch in value.chars() {
            match ch {
                ' ' if plus => out.push('+'),
                ' ' => out.push_str("%20"),
                // Literals like 'a%b' and 'é' must be encoded; `&`/`#`/`+` too.
                '%' | '&' | '#' | '+' => write!(out, "%{:02X}", ch as u32).unwrap(),
                c if !c.is_ascii() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        write!(out, "%{b:02X}").unwrap();
                    }
                }
                '\'' if self.c.chance(10) => out.push_str("%27"),
                c if self.c.chance(3) => write!(out, "%{:02X}", c as u32).unwrap(),
                c => out.push(c),
            }
        }
        out
    }
}

/// Percent-encodes every byte but ASCII letters and digits.
fn enc_all(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
    out
}
