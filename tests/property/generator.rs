//! The generator's core: the state it carries, literals, GUIDs, keys and resource paths.

use std::fmt::Write as _;

use dataverse_gateway::config::Verb;
use serde_json::{Value, json};

use crate::choices::Choices;
use crate::oracle::Need;
use crate::schema::{Nav, Schema, Table, Ty};

pub const ORG: &str = "https://org.crm.dynamics.com";
pub const GATEWAYS: [&str; 2] = ["http://gw:8080/contoso", "http://gw:8080"];

pub struct Gen<'a> {
    pub c: Choices<'a>,
    pub s: &'a Schema,
    pub needs: Vec<Need>,
    /// `@name=value` query parameters of the call being built.
    pub aliases: Vec<String>,
    pub vars: usize,
}

/// Where the path ends and whether it addresses one row.
pub enum Shape {
    Collection,
    Row,
    Either,
}

/// A generated resource path.
pub struct PathEnd {
    pub path: String,
    pub table: usize,
    /// Addresses one row.
    pub single: bool,
    /// Alternate-key columns of the final table.
    pub keys: Vec<String>,
    /// Passes through a navigation property.
    pub hops: bool,
}

impl<'a> Gen<'a> {
    pub fn new(c: Choices<'a>, s: &'a Schema) -> Self {
        Gen {
            c,
            s,
            needs: Vec::new(),
            aliases: Vec::new(),
            vars: 0,
        }
    }

    pub fn table(&self, t: usize) -> &'a Table {
        &self.s.tables[t]
    }

    pub fn need(&mut self, table: usize, verb: Verb, columns: Vec<String>) -> usize {
        self.needs.push(Need::new(table, verb, columns));
        self.needs.len() - 1
    }

    /// Records that `need` names `col` (the primary key is the row's address, never a need).
    pub fn col(&mut self, need: usize, col: &str) {
        let t = self.needs[need].table;
        if col != self.table(t).key {
            self.needs[need].columns.push(col.to_string());
        }
    }

    /// Adding or removing a reference of the collection-valued `nav` changes the related row's
    /// lookup pointing back: PATCH of that column.
    pub fn related_lookup_changes(&mut self, nav: &Nav) {
        let related = self.need(nav.target, Verb::Patch, vec![]);
        if let Some(l) = &nav.lookup {
            self.col(related, &l.clone());
        }
    }

    /// Passing through `nav` from the row of `need` observes the lookup it is bound to: a
    /// single-valued navigation, the source row's lookup; a collection-valued one, the related
    /// rows' lookup pointing back (they all hold the source row's id), a GET of that column.
    pub fn through(&mut self, need: usize, nav: &Nav) {
        match (&nav.lookup, nav.collection) {
            (Some(l), false) => self.col(need, &l.clone()),
            (Some(l), true) => {
                let related = self.need(nav.target, Verb::Get, vec![]);
                self.col(related, &l.clone());
            }
            (None, _) => {}
        }
    }

    /// A GUID whose first hex digit is any of the sixteen, in either case.
    pub fn guid(&mut self) -> String {
        let mut hex = String::new();
        for _ in 0..16 {
            write!(hex, "{:02x}", self.c.byte()).unwrap();
        }
        let g = format!(
            "{}-{}-4{}-8{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        );
        if self.c.chance(20) {
            g.to_ascii_uppercase()
        } else {
            g
        }
    }

    pub fn literal(&mut self, ty: Ty) -> String {
        match ty {
            Ty::Text => self
                .c
                .one(&["'a'", "'O''Neil'", "'x y'", "'a%b'"])
                .to_string(),
            Ty::Guid => self.guid(),
            Ty::Decimal => self.c.one(&["1", "-2", "3.5"]).to_string(),
            Ty::Int => self.c.one(&["1", "-2", "30"]).to_string(),
            Ty::Bool => self.c.one(&["true", "false"]).to_string(),
            Ty::Date => self
                .c
                .one(&["2024-01-31T00:00:00Z", "2024-02-01"])
                .to_string(),
        }
    }

    pub fn json_value(&mut self, ty: Ty) -> Value {
        match ty {
            Ty::Text => json!(self.c.one(&["a", "b c", "é"])),
            Ty::Guid => json!(self.guid()),
            Ty::Decimal | Ty::Int => json!(self.c.one(&[1, 20, 300])),
            Ty::Bool => json!(self.c.chance(50)),
            Ty::Date => json!("2024-01-31T00:00:00Z"),
        }
    }

    /// A key in parentheses and the columns it names (alternate keys only).
    pub fn key(&mut self, t: usize) -> (String, Vec<String>) {
        let table = self.table(t);
        let alternates: Vec<Vec<String>> = if table.alternate_keys.is_empty() {
            let text = table.text_columns();
            let mut v: Vec<Vec<String>> = text.iter().map(|c| vec![c.to_string()]).collect();
            if text.len() >= 2 {
                v.push(text.iter().take(2).map(|c| c.to_string()).collect());
            }
            v
        } else {
            table.alternate_keys.clone()
        };
        let forms = if alternates.is_empty() { 2 } else { 3 };
        match self.c.below(forms) {
            0 => (format!("({})", self.guid()), vec![]),
            1 => (format!("({}={})", table.key, self.guid()), vec![]),
            _ => {
                let cols = self.c.one(&alternates).clone();
                let pairs: Vec<String> = cols
                    .iter()
                    .map(|c| {
                        let ty = table.column(c).map_or(Ty::Text, |c| c.ty);
                        let v = match ty {
                            Ty::Text => self.c.one(&["'a@b.com'", "'x'", "%27enc%27"]).to_string(),
                            other => self.literal(other),
                        };
                        format!("{c}={v}")
                    })
                    .collect();
                let key = if pairs.len() == 1 && self.c.chance(30) {
                    format!("({})", pairs[0])
                } else {
                    format!("({})", pairs.join(","))
                };
                (key, cols)
            }
        }
    }

    /// A resource path of 0-3 navigation hops; pushes a GET need for every table passed
    /// through (with the lookup column of each single-valued hop).
    pub fn path(&mut self, shape: Shape, hops: bool) -> PathEnd {
        let head = self.c.below(self.s.tables.len());
        let mut chain: Vec<&'a Nav> = Vec::new();
        let mut t = head;
        for _ in 0..if hops { self.c.below(4) } else { 0 } {
            let navs = &self.table(t).navs;
            if navs.is_empty() {
                break;
            }
            let nav = self.c.one(navs);
            chain.push(nav);
            t = nav.target;
        }
        if matches!(shape, Shape::Collection) {
            while chain.last().is_some_and(|n| !n.collection) {
                chain.pop();
            }
        }
        let last_keyed = |g: &mut Self| match shape {
            Shape::Row => true,
            Shape::Collection => false,
            Shape::Either => g.c.chance(50),
        };
        let head_keyed = !chain.is_empty() || last_keyed(self);
        let mut path = self.table(head).set.clone();
        let mut keys = vec![];
        if head_keyed {
            let (k, cols) = self.key(head);
            path.push_str(&k);
            keys = cols;
        }
        let mut at = head;
        let mut single = head_keyed;
        for (i, nav) in chain.iter().enumerate() {
            let need = self.need(at, Verb::Get, vec![]);
            for k in std::mem::take(&mut keys) {
                self.col(need, &k);
            }
            if !nav.collection {
                self.through(need, nav);
            }
            write!(path, "/{}", nav.name).unwrap();
            at = nav.target;
            single = !nav.collection;
            let keyed = nav.collection && (i + 1 < chain.len() || last_keyed(self));
            if keyed {
                let (k, cols) = self.key(at);
                path.push_str(&k);
                keys = cols;
                single = true;
            }
            // The related rows of a collection-valued navigation are those whose lookup points
            // back: whatever is done to them next names that lookup.
            if nav.collection
                && let Some(l) = &nav.lookup
            {
                keys.push(l.clone());
            }
        }
        PathEnd {
            path,
            table: at,
            single,
            keys,
            hops: !chain.is_empty(),
        }
    }

    /// A new need of `t` with the alternate-key columns `keys`.
    pub fn need_keyed(&mut self, t: usize, verb: Verb, keys: &[String]) -> usize {
        let need = self.need(t, verb, vec![]);
        for k in keys {
            self.col(need, k);
        }
        need
    }
}
