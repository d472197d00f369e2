//! Property tests for the security boundary: requests generated over the simulator's CSDL
//! (`src/sim/metadata.xml`), each carrying an oracle the generator builds as it goes — every
//! (table, verb) and (table, column) it makes the request touch — judged by
//! [`inspect::inspect`] under random allowlists.
//!
//! - (a) allowed ⇒ every oracle table is allowlisted for its verb and every oracle column of a
//!   column-restricted table is listed (the main read without `$select` excepted: the gateway
//!   adds `$select` there, which is checked too). A failure here is a security bug.
//! - (b) `inspect` never panics, also on mutated requests.
//! - (c) oracle allowlisted ⇒ allowed: well-formed requests are not over-denied, with or
//!   without column lists.
//!
//! Verbs in the oracle: reading rows is GET, creating (POST, deep insert) POST, changing a row
//! PATCH (also setting or deleting one column), deleting a row DELETE; an `@odata.bind`
//! target and every table a navigation passes through (path, lookup path, lambda, `$expand`)
//! GET, and a collection-valued bind's targets also PATCH (their lookup changes). Columns: `$select`, `$filter`/`$orderby` members, alternate-key columns (a key naming
//! the primary key, `contacts(contactid=<id>)`, is the row's address like `contacts(<id>)`, not
//! a column), written columns and the navigation properties a write sets (`x@odata.bind`,
//! single-valued deep insert).
//!
//! Generation draws from a byte string (a choice sequence): proptest shrinks the bytes, and the
//! byte 0 (also what an exhausted string yields) is always the simplest choice, so a failure
//! shrinks to a small request and allowlist, printed in full by the assertion.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use dataverse_gateway::batch;
use dataverse_gateway::classify::{Request, Urls};
use dataverse_gateway::config::{Policy, TableRule, Verb};
use dataverse_gateway::inspect::{self, Inspected, Tenant};
use dataverse_gateway::metadata::Metadata;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};

const CSDL: &[u8] = include_bytes!("../src/sim/metadata.xml");
const ORG: &str = "https://org.crm.dynamics.com";
const GATEWAYS: [&str; 2] = ["http://gw:8080/contoso", "http://gw:8080"];
const BOUNDARY: &str = "batch_prop";
const CHANGESET: &str = "changeset_prop";

// ---------------------------------------------------------------------------------------------
// The schema, read from the CSDL.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Guid,
    Number,
}

#[derive(Debug)]
struct Column {
    name: String,
    ty: Ty,
}

#[derive(Debug)]
struct Nav {
    name: String,
    target: usize,
    collection: bool,
}

#[derive(Debug)]
struct Table {
    set: String,
    logical: String,
    key: String,
    columns: Vec<Column>,
    navs: Vec<Nav>,
}

impl Table {
    fn text_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.ty == Ty::Text)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Columns an agent may set in a body: not the key, not the read-only `_x_value` lookups.
    fn writable(&self) -> Vec<&Column> {
        self.columns
            .iter()
            .filter(|c| c.name != self.key && !c.name.starts_with('_'))
            .collect()
    }
}

struct Schema {
    meta: Metadata,
    tables: Vec<Table>,
}

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        let meta = Metadata::parse(CSDL).expect("sim CSDL parses");
        let types = property_types(std::str::from_utf8(CSDL).expect("UTF-8 CSDL"));
        let sets: Vec<(String, String)> = meta
            .entity_sets()
            .map(|(s, l)| (s.to_string(), l.to_string()))
            .collect();
        let index = |set: &str| sets.iter().position(|(s, _)| s == set);
        let tables = sets
            .iter()
            .map(|(set, logical)| {
                let mut columns = Vec::new();
                let mut navs = Vec::new();
                for ty in meta.ancestry(logical) {
                    for p in &ty.properties {
                        let t = types.get(p).copied().unwrap_or(Ty::Text);
                        columns.push(Column {
                            name: p.clone(),
                            ty: t,
                        });
                    }
                    for (name, n) in &ty.navigation {
                        if let Some(target) = meta.set_of(&n.target).and_then(index) {
                            navs.push(Nav {
                                name: name.clone(),
                                target,
                                collection: n.collection,
                            });
                        }
                    }
                }
                Table {
                    set: set.clone(),
                    logical: logical.clone(),
                    key: meta.key_of(logical).expect("every table has a key")[0].clone(),
                    columns,
                    navs,
                }
            })
            .collect();
        Schema { meta, tables }
    })
}

/// `Property Name -> type`, by a plain scan of the CSDL (the metadata module keeps no types).
fn property_types(xml: &str) -> BTreeMap<String, Ty> {
    let mut out = BTreeMap::new();
    for line in xml.lines() {
        let Some(rest) = line.trim().strip_prefix("<Property Name=\"") else {
            continue;
        };
        let Some((name, rest)) = rest.split_once('"') else {
            continue;
        };
        let ty = match rest
            .split("Type=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            Some("Edm.Guid") => Ty::Guid,
            Some("Edm.Decimal" | "Edm.Int32" | "Edm.Int64" | "Edm.Double") => Ty::Number,
            _ => Ty::Text,
        };
        out.insert(name.to_string(), ty);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Choice sequence.

struct Choices<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// `0..n`; 0 is the simplest.
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 { 0 } else { self.byte() as usize % n }
    }

    /// True with about `percent` % probability; false is the simplest.
    fn chance(&mut self, percent: u32) -> bool {
        u32::from(self.byte()) * 100 / 256 >= 100 - percent
    }

    fn one<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    /// A subset keeping order, at least `min` long (when there are enough items).
    fn subset<T: Clone>(&mut self, items: &[T], min: usize) -> Vec<T> {
        let mut keep: Vec<bool> = items.iter().map(|_| self.chance(40)).collect();
        let missing = min.saturating_sub(keep.iter().filter(|k| **k).count());
        for k in keep.iter_mut().filter(|k| !**k).take(missing) {
            *k = true;
        }
        items
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(i, _)| i.clone())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle.

#[derive(Debug, Clone)]
struct Need {
    table: usize,
    verb: Verb,
    columns: Vec<String>,
    /// Returns whole rows of the table.
    all_columns: bool,
    /// The request's own rows: where the gateway adds `$select` for a column-restricted table.
    main_read: bool,
}

/// One HTTP request with what it touches.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    query: Option<String>,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
    needs: Vec<Need>,
    /// In a change set, refers to the row the previous call created: `$REF` in the path or
    /// body stands for that call's Content-ID.
    refers_back: bool,
    /// The table a POST creates a row in.
    creates: Option<usize>,
}

impl Call {
    fn main_read(&self) -> Option<&Need> {
        self.needs.iter().find(|n| n.main_read)
    }

    fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// A single request, or several sent as one `$batch`.
#[derive(Debug, Clone)]
struct Case {
    calls: Vec<Call>,
    /// The `$batch` body, when the calls are sent as one.
    batch: Option<String>,
}

impl Case {
    fn needs(&self) -> impl Iterator<Item = &Need> {
        self.calls.iter().flat_map(|c| c.needs.iter())
    }
}

/// Whether the allowlist grants what the oracle says the request touches; `Err` names the
/// first thing it does not grant.
fn oracle(policy: &Policy, needs: &[&Need]) -> Result<(), String> {
    let s = schema();
    for n in needs {
        let set = &s.tables[n.table].set;
        let rule = policy
            .tables
            .get(set)
            .ok_or_else(|| format!("{} on `{set}`: not allowlisted", n.verb.as_str()))?;
        if !rule.allows(n.verb) {
            return Err(format!("{} on `{set}`: verb not allowed", n.verb.as_str()));
        }
        if let Some(cols) = &rule.columns {
            if let Some(c) = n.columns.iter().find(|c| !cols.contains(c)) {
                return Err(format!("column `{c}` of `{set}` is not listed"));
            }
            if n.all_columns && !n.main_read {
                return Err(format!("every column of `{set}` is read (no $select)"));
            }
        }
    }
    Ok(())
}

fn column_list_applies(policy: &Policy, needs: &[&Need]) -> bool {
    needs.iter().any(|n| {
        policy
            .tables
            .get(&schema().tables[n.table].set)
            .is_some_and(|r| r.columns.is_some())
    })
}

// ---------------------------------------------------------------------------------------------
// The generator.

struct Gen<'a> {
    c: Choices<'a>,
    s: &'static Schema,
    needs: Vec<Need>,
    aliases: Vec<String>,
    vars: usize,
    ids: usize,
}

/// Where the path ends and whether it addresses one row.
enum Shape {
    Collection,
    Row,
    Either,
}

/// The lambda variables in scope: (name, table, need index); `""` is the implicit `$it`.
type Scope = Vec<(String, usize, usize)>;

impl<'a> Gen<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Gen {
            c: Choices { bytes, pos: 0 },
            s: schema(),
            needs: Vec::new(),
            aliases: Vec::new(),
            vars: 0,
            ids: 0,
        }
    }

    fn table(&self, t: usize) -> &'static Table {
        &self.s.tables[t]
    }

    fn need(&mut self, table: usize, verb: Verb, columns: Vec<String>) -> usize {
        self.needs.push(Need {
            table,
            verb,
            columns,
            all_columns: false,
            main_read: false,
        });
        self.needs.len() - 1
    }

    fn guid(&mut self, t: usize) -> String {
        self.ids += 1;
        format!("{:08x}-0000-4000-8000-{:012x}", t + 1, self.ids)
    }

    fn literal(&mut self, ty: Ty) -> String {
        match ty {
            Ty::Text => self
                .c
                .one(&["'a'", "'O''Neil'", "'x y'", "'a%b'"])
                .to_string(),
            Ty::Guid => self.guid(0),
            Ty::Number => self.c.one(&["1", "-2", "3.5"]).to_string(),
        }
    }

    fn json_value(&mut self, ty: Ty) -> Value {
        match ty {
            Ty::Text => json!(self.c.one(&["a", "b c", "é"])),
            Ty::Guid => json!(self.guid(0)),
            Ty::Number => json!(self.c.one(&[1, 20, 300])),
        }
    }

    /// A key in parentheses and the columns it reads (alternate keys only).
    fn key(&mut self, t: usize) -> (String, Vec<String>) {
        let table = self.table(t);
        let text = table.text_columns();
        let forms = if text.is_empty() { 2 } else { 4 };
        let (key, cols) = match self.c.below(forms) {
            0 => (format!("({})", self.guid(t)), vec![]),
            1 => (format!("({}={})", table.key, self.guid(t)), vec![]),
            2 => {
                let col = self.c.one(&text).to_string();
                let v = self.c.one(&["'a@b.com'", "'x'", "%27enc%27"]).to_string();
                (format!("({col}={v})"), vec![col])
            }
            _ => {
                let cols: Vec<String> = self
                    .c
                    .subset(&text, 2)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                let pairs: Vec<String> = cols.iter().map(|c| format!("{c}='v'")).collect();
                (format!("({})", pairs.join(",")), cols)
            }
        };
        (key, cols)
    }

    /// A resource path of 0-3 navigation hops; pushes a GET need for every table passed
    /// through. Returns the path, the final table, whether it is one row, and the alternate-key
    /// columns of the final table.
    fn path(&mut self, shape: Shape, hops: bool) -> (String, usize, bool, Vec<String>) {
        let head = self.c.below(self.s.tables.len());
        let mut chain: Vec<&'static Nav> = Vec::new();
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
            self.need(at, Verb::Get, std::mem::take(&mut keys));
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
        }
        (path, at, single, keys)
    }

    // --- expressions ---------------------------------------------------------------------

    /// A boolean `$filter` expression over the scope's innermost table.
    fn filter(&mut self, scope: &mut Scope, depth: u8, top: bool) -> String {
        if depth < 2 {
            match self.c.below(8) {
                5 => {
                    let a = self.filter(scope, depth + 1, top);
                    let b = self.filter(scope, depth + 1, top);
                    return format!("({a}) and ({b})");
                }
                6 => {
                    let a = self.filter(scope, depth + 1, top);
                    let b = self.filter(scope, depth + 1, top);
                    return format!("{a} or {b}");
                }
                7 => return format!("not ({})", self.filter(scope, depth + 1, top)),
                _ => {}
            }
        }
        self.term(scope, depth, top)
    }

    fn term(&mut self, scope: &mut Scope, depth: u8, top: bool) -> String {
        // Mostly the innermost variable, sometimes an outer one.
        let pick = if scope.len() > 1 && self.c.chance(25) {
            self.c.below(scope.len())
        } else {
            scope.len() - 1
        };
        let (var, t, need) = scope[pick].clone();
        let prefix = if var.is_empty() {
            String::new()
        } else {
            format!("{var}/")
        };
        let table = self.table(t);
        let col = self.c.one(&table.columns);
        let colname = col.name.clone();
        match self.c.below(12) {
            0 => {
                self.needs[need].columns.push(colname.clone());
                let lit = self.literal(col.ty);
                let op = *self.c.one(&["eq", "ne", "gt", "le"]);
                format!("{prefix}{colname} {op} {lit}")
            }
            1 => {
                self.needs[need].columns.push(colname.clone());
                format!("{prefix}{colname} ne null")
            }
            2 => {
                let text = table.text_columns();
                let c = self.c.one(&text).to_string();
                self.needs[need].columns.push(c.clone());
                let f = self.c.one(&["contains", "startswith", "endswith"]);
                format!("{f}({prefix}{c},'ab')")
            }
            3 | 9 | 11 => self.lookup(&prefix, t, need, " eq null"),
            4 | 8 | 10 if depth < 3 => self.lambda(scope, &prefix, (t, need), depth, top),
            5 if top && var.is_empty() => {
                self.needs[need].columns.push(colname.clone());
                let name = format!("p{}", self.aliases.len() + 1);
                let lit = self.literal(col.ty);
                self.aliases.push(format!("@{name}={lit}"));
                format!("{colname} eq @{name}")
            }
            6 if var.is_empty() => self.query_function(t, need),
            _ => {
                self.needs[need].columns.push(colname.clone());
                format!("{prefix}{colname} in ('a','b')")
            }
        }
    }

    /// `Microsoft.Dynamics.CRM.LastXDays(PropertyName='column',...)` on a column of `t`.
    fn query_function(&mut self, t: usize, need: usize) -> String {
        let col = self.c.one(&self.table(t).columns).name.clone();
        self.needs[need].columns.push(col.clone());
        let f = self.c.one(&["LastXDays", "OlderThanXMonths", "NextXYears"]);
        format!("Microsoft.Dynamics.CRM.{f}(PropertyName='{col}',PropertyValue=7)")
    }

    /// `nav[/nav]/column` through single-valued navigation properties from table `t` (whose
    /// need is `need`); a plain column when `t` has none.
    fn lookup(&mut self, prefix: &str, t: usize, need: usize, suffix: &str) -> String {
        let hops = 1 + self.c.below(2);
        let mut path = prefix.to_string();
        let (mut at, mut at_need) = (t, need);
        for _ in 0..hops {
            let singles: Vec<&Nav> = self
                .table(at)
                .navs
                .iter()
                .filter(|n| !n.collection)
                .collect();
            if singles.is_empty() {
                break;
            }
            let nav = *self.c.one(&singles);
            write!(path, "{}/", nav.name).unwrap();
            at = nav.target;
            at_need = self.need(at, Verb::Get, vec![]);
        }
        let col = self.c.one(&self.table(at).columns).name.clone();
        self.needs[at_need].columns.push(col.clone());
        format!("{path}{col}{suffix}")
    }

    /// `[single/]collection/any(v: ...)`, `/all(v: ...)` or `/any()` from table `t` (whose need
    /// is `need`); a plain comparison when there is no collection to range over.
    fn lambda(
        &mut self,
        scope: &mut Scope,
        prefix: &str,
        (t, need): (usize, usize),
        depth: u8,
        top: bool,
    ) -> String {
        let mut path = prefix.to_string();
        let (mut at, mut at_need) = (t, need);
        if self.c.chance(20) {
            let singles: Vec<&Nav> = self
                .table(at)
                .navs
                .iter()
                .filter(|n| !n.collection)
                .collect();
            if !singles.is_empty() {
                let nav = *self.c.one(&singles);
                write!(path, "{}/", nav.name).unwrap();
                at = nav.target;
                at_need = self.need(at, Verb::Get, vec![]);
            }
        }
        let colls: Vec<&Nav> = self
            .table(at)
            .navs
            .iter()
            .filter(|n| n.collection)
            .collect();
        if colls.is_empty() {
            let col = self.c.one(&self.table(at).columns).name.clone();
            self.needs[at_need].columns.push(col.clone());
            return format!("{path}{col} eq null");
        }
        let nav = *self.c.one(&colls);
        write!(path, "{}", nav.name).unwrap();
        let range = self.need(nav.target, Verb::Get, vec![]);
        match self.c.below(3) {
            0 => format!("{path}/any()"),
            k => {
                self.vars += 1;
                let var = format!("v{}", self.vars);
                scope.push((var.clone(), nav.target, range));
                let inner = self.filter(scope, depth + 1, top);
                scope.pop();
                let f = if k == 1 { "any" } else { "all" };
                format!("{path}/{f}({var}:{inner})")
            }
        }
    }

    fn orderby(&mut self, t: usize, need: usize) -> String {
        let mut items = Vec::new();
        for _ in 0..1 + self.c.below(2) {
            let item = if self.c.chance(30) {
                self.lookup("", t, need, "")
            } else {
                let col = self.c.one(&self.table(t).columns).name.clone();
                self.needs[need].columns.push(col.clone());
                col
            };
            let dir = *self.c.one(&["", " asc", " desc"]);
            items.push(format!("{item}{dir}"));
        }
        items.join(",")
    }

    fn select(&mut self, t: usize, need: usize) -> String {
        let names: Vec<String> = self
            .table(t)
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let cols = self.c.subset(&names, 1);
        self.needs[need].columns.extend(cols.iter().cloned());
        cols.join(",")
    }

    /// `$expand` items of table `t`, with nested options.
    fn expand(&mut self, t: usize, depth: u8) -> String {
        let navs: Vec<&'static Nav> = self.table(t).navs.iter().collect();
        let chosen = self.c.subset(&navs, 1);
        let mut items = Vec::new();
        for nav in chosen.into_iter().take(2) {
            let need = self.need(nav.target, Verb::Get, vec![]);
            let mut opts = Vec::new();
            if self.c.chance(60) {
                opts.push(format!("$select={}", self.select(nav.target, need)));
            } else {
                self.needs[need].all_columns = true;
            }
            if self.c.chance(15) {
                opts.push(format!("$filter={}", self.query_function(nav.target, need)));
            } else if self.c.chance(30) {
                let mut scope = vec![(String::new(), nav.target, need)];
                opts.push(format!("$filter={}", self.filter(&mut scope, 0, false)));
            }
            if nav.collection && self.c.chance(20) {
                opts.push(format!("$orderby={}", self.orderby(nav.target, need)));
            }
            if nav.collection && self.c.chance(20) {
                opts.push("$top=3".into());
            }
            if depth < 2 && self.c.chance(25) {
                opts.push(format!("$expand={}", self.expand(nav.target, depth + 1)));
            }
            if opts.is_empty() {
                items.push(nav.name.clone());
            } else {
                items.push(format!("{}({})", nav.name, opts.join(";")));
            }
        }
        items.join(",")
    }

    /// Query options of a read of table `t` whose need is `need`.
    fn read_options(&mut self, t: usize, need: usize, collection: bool) -> Vec<(String, String)> {
        let mut opts = Vec::new();
        if self.c.chance(50) {
            let s = self.select(t, need);
            opts.push(("$select".to_string(), s));
        } else {
            self.needs[need].all_columns = true;
        }
        if collection && self.c.chance(70) {
            let mut scope = vec![(String::new(), t, need)];
            let f = self.filter(&mut scope, 0, true);
            opts.push(("$filter".into(), f));
        }
        if collection && self.c.chance(30) {
            let o = self.orderby(t, need);
            opts.push(("$orderby".into(), o));
        }
        if collection && self.c.chance(20) {
            opts.push(("$top".into(), "5".into()));
        }
        if collection && self.c.chance(10) {
            opts.push(("$count".into(), "true".into()));
        }
        if self.c.chance(40) {
            let x = self.expand(t, 0);
            opts.push(("$expand".into(), x));
        }
        opts
    }

    // --- bodies --------------------------------------------------------------------------

    fn reference_url(&mut self, t: usize) -> String {
        let set = self.table(t).set.clone();
        let (key, cols) = if self.c.chance(15) {
            self.key(t)
        } else {
            (format!("({})", self.guid(t)), vec![])
        };
        self.need(t, Verb::Get, cols);
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
    fn entity(&mut self, t: usize, need: usize, depth: u8) -> Map<String, Value> {
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
            self.needs[need].columns.push(col.name.clone());
        }
        let mut used: Vec<&str> = Vec::new();
        for _ in 0..self.c.below(3) {
            let nav = self.c.one(&table.navs);
            if used.contains(&nav.name.as_str()) {
                continue;
            }
            used.push(&nav.name);
            let deep = depth < 2 && self.c.chance(35);
            if deep {
                let mut rows = Vec::new();
                for _ in 0..if nav.collection {
                    1 + self.c.below(2)
                } else {
                    1
                } {
                    let child = self.need(nav.target, Verb::Post, vec![]);
                    rows.push(Value::Object(self.entity(nav.target, child, depth + 1)));
                }
                if !nav.collection {
                    self.needs[need].columns.push(nav.name.clone());
                }
                let v = if nav.collection {
                    Value::Array(rows)
                } else {
                    rows.pop().expect("one row")
                };
                obj.insert(nav.name.clone(), v);
            } else {
                self.needs[need].columns.push(nav.name.clone());
                let v = if nav.collection {
                    // Binding rows to a collection sets THEIR lookup: a change to them too.
                    self.need(nav.target, Verb::Patch, vec![]);
                    let urls = (0..1 + self.c.below(2))
                        .map(|_| json!(self.reference_url(nav.target)))
                        .collect();
                    Value::Array(urls)
                } else {
                    json!(self.reference_url(nav.target))
                };
                obj.insert(format!("{}@odata.bind", nav.name), v);
            }
        }
        obj
    }

    // --- requests ------------------------------------------------------------------------

    fn call(&mut self) -> Call {
        // GET (0) is the simplest; reads and creates are drawn more often.
        let kind = [0, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 0][self.c.below(12)];
        self.call_of(kind, true)
    }

    /// A request of `kind`: 0 read, 1 create, 2 update, 3 delete, 4 read a column,
    /// 5 `$count`, 6 delete a column, 7 put a column.
    fn call_of(&mut self, kind: usize, hops: bool) -> Call {
        let first_need = self.needs.len();
        self.aliases.clear();
        let (method, shape) = match kind {
            0 => (Method::GET, Shape::Either),
            1 => (Method::POST, Shape::Collection),
            2 => (Method::PATCH, Shape::Row),
            3 => (Method::DELETE, Shape::Row),
            4 | 6 | 7 => (Method::GET, Shape::Row),
            _ => (Method::GET, Shape::Collection),
        };
        let (mut path, t, single, keys) = self.path(shape, hops);
        let mut opts: Vec<(String, String)> = Vec::new();
        let mut body = None;
        let mut headers: Vec<(&'static str, String)> = Vec::new();
        let method = match kind {
            0 => {
                let need = self.need(t, Verb::Get, keys);
                self.needs[need].main_read = true;
                opts = self.read_options(t, need, !single);
                Method::GET
            }
            1 | 2 => {
                let verb = if kind == 1 { Verb::Post } else { Verb::Patch };
                let need = self.need(t, verb, keys);
                let obj = self.entity(t, need, 0);
                body = Some(Value::Object(obj).to_string());
                headers.push(("content-type", "application/json".into()));
                if self.c.chance(25) {
                    headers.push(("prefer", "return=representation".into()));
                    let read = self.need(t, Verb::Get, vec![]);
                    self.needs[read].main_read = true;
                    if self.c.chance(50) {
                        let s = self.select(t, read);
                        opts.push(("$select".into(), s));
                    } else {
                        self.needs[read].all_columns = true;
                    }
                    if self.c.chance(30) {
                        let x = self.expand(t, 0);
                        opts.push(("$expand".into(), x));
                    }
                }
                method
            }
            3 => {
                self.need(t, Verb::Delete, keys);
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
                let mut cols = keys;
                cols.push(col.name.clone());
                self.need(t, verb, cols);
                write!(path, "/{}", col.name).unwrap();
                if kind == 4 && self.c.chance(30) {
                    path.push_str("/$value");
                }
                if kind == 7 {
                    let v = self.json_value(col.ty);
                    body = Some(json!({ "value": v }).to_string());
                    headers.push(("content-type", "application/json".into()));
                }
                m
            }
            _ => {
                let need = self.need(t, Verb::Get, keys);
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
        let query = self.encode_query(&opts, &aliases);
        Call {
            method,
            path,
            query,
            body,
            headers,
            needs: self.needs[first_need..].to_vec(),
            refers_back: false,
            creates: (kind == 1).then_some(t),
        }
    }

    /// A change-set request on the row `created` made by the previous request (`POST <set>`),
    /// through its Content-ID: `PATCH $n`, `DELETE $n`, `POST $n/<collection>`, or a `POST`
    /// elsewhere binding `"<nav>@odata.bind": "$n"`.
    fn follow_up(&mut self, created: usize) -> Call {
        let first_need = self.needs.len();
        let json = vec![("content-type", "application/json".to_string())];
        let colls: Vec<&'static Nav> = self
            .table(created)
            .navs
            .iter()
            .filter(|n| n.collection)
            .collect();
        let binders: Vec<(usize, &'static Nav)> = (0..self.s.tables.len())
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
                let need = self.need(nav.target, Verb::Post, vec![]);
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
                    self.needs[need].columns.push(col.name.clone());
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
        Call {
            method,
            path,
            query: None,
            body,
            headers,
            needs: self.needs[first_need..].to_vec(),
            refers_back: true,
            creates: None,
        }
    }

    /// Encodes the query as an agent might: `%24` or `$`, `%20` or `+`, `%27` or `'`, and an
    /// occasional `%XX` for any other character.
    fn encode_query(&mut self, opts: &[(String, String)], aliases: &[String]) -> Option<String> {
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

    fn case(&mut self) -> Case {
        if !self.c.chance(25) {
            return Case {
                calls: vec![self.call()],
                batch: None,
            };
        }
        let mut calls: Vec<Call> = Vec::new();
        for _ in 0..1 + self.c.below(3) {
            let created = calls.last().and_then(|c| c.creates);
            let call = match created {
                Some(t) if self.c.chance(70) => self.follow_up(t),
                _ if calls.is_empty() && self.c.chance(30) => self.call_of(1, false),
                _ => self.call(),
            };
            calls.push(call);
        }
        let body = self.batch_body(&calls);
        Case {
            calls,
            batch: Some(body),
        }
    }

    /// The calls as one `$batch`: reads as top-level parts, writes in change sets.
    fn batch_body(&mut self, calls: &[Call]) -> String {
        let mut out = String::new();
        let mut open_changeset = false;
        let mut content_id: usize = 0;
        for call in calls {
            let target = match self.c.below(4) {
                _ if call.refers_back => call.target(),
                0 => call.target(),
                1 => format!("/api/data/v9.2/{}", call.target()),
                2 => format!("{}/api/data/v9.2/{}", GATEWAYS[0], call.target()),
                _ => format!("{ORG}/api/data/v9.2/{}", call.target()),
            };
            let write = call.method != Method::GET;
            if open_changeset && !call.refers_back && (!write || self.c.chance(30)) {
                write!(out, "--{CHANGESET}--\r\n\r\n").unwrap();
                open_changeset = false;
            }
            if write && !open_changeset {
                write!(
                    out,
                    "--{BOUNDARY}\r\nContent-Type: multipart/mixed; boundary={CHANGESET}\r\n\r\n"
                )
                .unwrap();
                open_changeset = true;
            }
            let delimiter = if write { CHANGESET } else { BOUNDARY };
            write!(
                out,
                "--{delimiter}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            )
            .unwrap();
            if write {
                content_id += 1;
                write!(out, "Content-ID: {content_id}\r\n").unwrap();
            }
            let reference = format!("${}", content_id.saturating_sub(1));
            let target = target.replace("$REF", &reference);
            write!(out, "\r\n{} {target} HTTP/1.1\r\n", call.method).unwrap();
            for (k, v) in &call.headers {
                write!(out, "{k}: {v}\r\n").unwrap();
            }
            let body = call
                .body
                .as_deref()
                .unwrap_or("")
                .replace("$REF", &reference);
            write!(out, "\r\n{body}\r\n").unwrap();
        }
        if open_changeset {
            write!(out, "--{CHANGESET}--\r\n").unwrap();
        }
        write!(out, "--{BOUNDARY}--\r\n").unwrap();
        out
    }

    /// A random allowlist around the request's oracle: every table it touches is granted its
    /// verbs (plus random extras), sometimes with a column list covering its columns (plus
    /// random extras); other tables are absent or random. Then, half of the time, exactly one
    /// oracle item is withdrawn: its table, its verb, one of its columns, or (for a read of
    /// every column) the freedom of having no column list. The simplest draw grants everything.
    fn policy(&mut self, case: &Case) -> Policy {
        let verbs = [Verb::Get, Verb::Post, Verb::Patch, Verb::Put, Verb::Delete];
        let needs: Vec<&Need> = case.needs().collect();
        let mut policy = Policy::default();
        for (t, table) in self.s.tables.iter().enumerate() {
            let mine: Vec<&&Need> = needs.iter().filter(|n| n.table == t).collect();
            let all: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
            let navs: Vec<String> = table.navs.iter().map(|n| n.name.clone()).collect();
            let rule = if mine.is_empty() {
                if !self.c.chance(50) {
                    continue;
                }
                let columns = self.c.chance(30).then(|| self.c.subset(&all, 0));
                TableRule {
                    verbs: self.c.subset(&verbs, 0),
                    columns,
                }
            } else {
                let mut granted: Vec<Verb> = mine.iter().map(|n| n.verb).collect();
                granted.extend(self.c.subset(&verbs, 0));
                let columns = self.c.chance(35).then(|| {
                    let mut list: Vec<String> =
                        mine.iter().flat_map(|n| n.columns.clone()).collect();
                    list.extend(self.c.subset(&all, 0));
                    list.extend(self.c.subset(&navs, 0));
                    list
                });
                TableRule {
                    verbs: granted,
                    columns,
                }
            };
            policy.tables.insert(table.set.clone(), rule);
        }
        if !needs.is_empty() && self.c.chance(50) {
            let mode = self.c.below(4);
            let fits = |n: &&&Need| match mode {
                2 => !n.columns.is_empty(),
                3 => n.all_columns && !n.main_read,
                _ => true,
            };
            let candidates: Vec<&&Need> = needs.iter().filter(fits).collect();
            if !candidates.is_empty() {
                let n = **self.c.one(&candidates);
                let set = &self.s.tables[n.table].set;
                match mode {
                    0 => {
                        policy.tables.remove(set);
                    }
                    1 => {
                        let rule = policy.tables.get_mut(set).expect("granted above");
                        rule.verbs.retain(|v| *v != n.verb);
                    }
                    2 => {
                        let gone = self.c.one(&n.columns).clone();
                        let rule = policy.tables.get_mut(set).expect("granted above");
                        let list = rule.columns.get_or_insert_with(|| n.columns.clone());
                        list.retain(|c| *c != gone);
                    }
                    _ => {
                        let rule = policy.tables.get_mut(set).expect("granted above");
                        rule.columns.get_or_insert_with(|| n.columns.clone());
                    }
                }
            }
        }
        for rule in policy.tables.values_mut() {
            rule.verbs.sort();
            rule.verbs.dedup();
            if let Some(list) = &mut rule.columns {
                list.sort();
                list.dedup();
            }
        }
        policy
    }
}

// ---------------------------------------------------------------------------------------------
// Running a case.

fn urls() -> Urls {
    Urls {
        org: ORG.into(),
        gateway: GATEWAYS.iter().map(|g| g.to_string()).collect(),
        api_version: "v9.2".into(),
    }
}

fn header_map(headers: &[(&str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    map
}

fn run(policy: &Policy, case: &Case) -> Inspected {
    let s = schema();
    let urls = urls();
    let tenant = Tenant {
        policy,
        metadata: Some(&s.meta),
        urls: &urls,
    };
    match &case.batch {
        Some(body) => {
            let headers = header_map(&[(
                "content-type",
                format!("multipart/mixed; boundary={BOUNDARY}"),
            )]);
            inspect::inspect(
                &tenant,
                &Request {
                    method: &Method::POST,
                    path: "$batch",
                    query: None,
                    headers: &headers,
                    body: Some(body.as_bytes()),
                },
            )
        }
        None => {
            let call = &case.calls[0];
            let headers = header_map(&call.headers);
            inspect::inspect(
                &tenant,
                &Request {
                    method: &call.method,
                    path: &call.path,
                    query: call.query.as_deref(),
                    headers: &headers,
                    body: call.body.as_deref().map(str::as_bytes),
                },
            )
        }
    }
}

fn describe(policy: &Policy, case: &Case, got: &Inspected) -> String {
    let s = schema();
    let mut out = String::new();
    for call in &case.calls {
        writeln!(out, "  {} {}", call.method, call.target()).unwrap();
        for (k, v) in &call.headers {
            writeln!(out, "    {k}: {v}").unwrap();
        }
        if let Some(b) = &call.body {
            writeln!(out, "    body: {b}").unwrap();
        }
        for n in &call.needs {
            writeln!(
                out,
                "    oracle: {} {} {:?}{}{}",
                n.verb.as_str(),
                s.tables[n.table].set,
                n.columns,
                if n.all_columns { " (all columns)" } else { "" },
                if n.main_read { " (main read)" } else { "" },
            )
            .unwrap();
        }
    }
    if case.batch.is_some() {
        writeln!(out, "  (sent as one $batch)").unwrap();
    }
    writeln!(out, "  policy:").unwrap();
    for (set, rule) in &policy.tables {
        let verbs: Vec<&str> = rule.verbs.iter().map(|v| v.as_str()).collect();
        writeln!(out, "    {set}: {verbs:?} columns {:?}", rule.columns).unwrap();
    }
    writeln!(
        out,
        "  gateway: {} ({}) add_select {:?}",
        inspect::verdict(&got.decision),
        got.decision.reason,
        got.decision.add_select
    )
    .unwrap();
    out
}

/// Properties (a) and (c) for one generated case.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut g = Gen::new(bytes);
    let case = g.case();
    let policy = g.policy(&case);
    let got = run(&policy, &case);
    let needs: Vec<&Need> = case.needs().collect();
    let expected = oracle(&policy, &needs);
    if got.decision.allowed() {
        prop_assert!(
            expected.is_ok(),
            "SECURITY: allowed although {}\n{}",
            expected.unwrap_err(),
            describe(&policy, &case, &got)
        );
        check_added_select(&policy, &case, &got)?;
    } else {
        // (c), and beyond the brief's (c): also when column lists apply.
        prop_assert!(
            expected.is_err(),
            "OVER-DENIAL: every oracle item is allowlisted (column lists apply: {})\n{}",
            column_list_applies(&policy, &needs),
            describe(&policy, &case, &got)
        );
    }
    Ok(())
}

/// The main read of a column-restricted table without `$select` is allowed only because the
/// gateway adds `$select`: it must be there, naming listed columns only.
fn check_added_select(policy: &Policy, case: &Case, got: &Inspected) -> Result<(), TestCaseError> {
    let s = schema();
    let restricted = |call: &Call| {
        call.main_read().and_then(|n| {
            let rule = policy.tables.get(&s.tables[n.table].set)?;
            (n.all_columns).then_some(rule.columns.clone()?)
        })
    };
    match &case.batch {
        None => {
            if let Some(cols) = restricted(&case.calls[0]) {
                prop_assert_eq!(
                    got.decision.add_select.clone(),
                    Some(cols.join(",")),
                    "no $select added to a column-restricted main read\n{}",
                    describe(policy, case, got)
                );
            }
        }
        Some(_) => {
            let body = got
                .body
                .as_ref()
                .expect("an allowed batch is re-serialised");
            let content_type = format!("multipart/mixed; boundary={BOUNDARY}");
            let parsed = batch::parse(&content_type, body, inspect::MAX_BATCH_PARTS)
                .expect("the re-serialised batch parses");
            for (call, part) in case.calls.iter().zip(parsed.parts()) {
                if let Some(cols) = restricted(call) {
                    prop_assert!(
                        part.target
                            .ends_with(&format!("$select={}", cols.join(","))),
                        "batch part `{}` lacks the added $select\n{}",
                        part.target,
                        describe(policy, case, got)
                    );
                }
            }
        }
    }
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    /// (a) and (c).
    #[test]
    fn allowed_iff_the_oracle_is_allowlisted(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(5_000))]

    /// (b): requests with random byte edits (in the URL, the query and the body) never panic.
    #[test]
    fn mutated_requests_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        in_body in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), edit_byte(), 0..3u8), 1..8),
    ) {
        let mut g = Gen::new(&bytes);
        let mut case = g.case();
        let policy = g.policy(&case);
        let call = &mut case.calls[0];
        let mut raw = match (&case.batch, in_body) {
            (Some(b), _) => b.clone(),
            (None, true) => call.body.clone().unwrap_or_default(),
            (None, false) => call.target(),
        }
        .into_bytes();
        for (at, byte, op) in &edits {
            let i = if raw.is_empty() { 0 } else { at.index(raw.len()) };
            match op {
                0 if !raw.is_empty() => {
                    raw.remove(i);
                }
                1 => raw.insert(i, *byte),
                _ if !raw.is_empty() => raw[i] = *byte,
                _ => raw.push(*byte),
            }
        }
        let edited = String::from_utf8_lossy(&raw).into_owned();
        match (&mut case.batch, in_body) {
            (Some(b), _) => *b = edited,
            (None, true) => call.body = Some(edited),
            (None, false) => match edited.split_once('?') {
                Some((p, q)) => (call.path, call.query) = (p.to_string(), Some(q.to_string())),
                None => (call.path, call.query) = (edited, None),
            },
        }
        let _ = run(&policy, &case);
    }
}

/// A byte to insert or overwrite: any byte, or one that means something to the parsers.
fn edit_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b"'()/$%&=@,;:?\"{}[]\r\n-".to_vec()),
    ]
}

// ---------------------------------------------------------------------------------------------
// Regressions: minimal cases of the bugs the properties found (the security ones fixed in
// 0f8c47b), each asserting the behaviour the oracle expects.

type Rule<'a> = (&'a str, &'a [Verb], Option<&'a [&'a str]>);

fn inspect_one(rules: &[Rule<'_>], method: &str, url: &str, body: Option<&str>) -> Inspected {
    let mut policy = Policy::default();
    for (set, verbs, columns) in rules {
        policy.tables.insert(
            set.to_string(),
            TableRule {
                verbs: verbs.to_vec(),
                columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
            },
        );
    }
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q.to_string())));
    let call = Call {
        method: method.parse().expect("method"),
        path: path.to_string(),
        query,
        body: body.map(str::to_string),
        headers: vec![("content-type", "application/json".into())],
        needs: vec![],
        refers_back: false,
        creates: None,
    };
    let case = Case {
        calls: vec![call],
        batch: None,
    };
    run(&policy, &case)
}

fn assert_denied(rules: &[Rule<'_>], method: &str, url: &str, body: Option<&str>) {
    let got = inspect_one(rules, method, url, body);
    assert!(
        !got.decision.allowed(),
        "{method} {url} {body:?} is allowed: {}",
        got.decision.reason
    );
}

fn assert_allowed(rules: &[Rule<'_>], method: &str, url: &str, body: Option<&str>) {
    let got = inspect_one(rules, method, url, body);
    assert!(
        got.decision.allowed(),
        "{method} {url} {body:?} is denied: {}",
        got.decision.reason
    );
}

use Verb::{Get as GET, Patch as PATCH, Post as POST};

/// Only `contacts` is allowlisted, yet these read `accounts` (the middle of the lookup path)
/// by filtering, ordering or grouping on it: `resolve` touches only the table a path ends in.
#[test]
fn regression_multi_hop_lookup_checks_every_table() {
    let rules: &[Rule] = &[("contacts", &[GET], None)];
    for url in [
        "contacts?$filter=parentcustomerid_account/primarycontactid/fullname eq 'x'",
        "contacts?$filter=parentcustomerid_account/primarycontactid eq null",
        "contacts?$orderby=parentcustomerid_account/primarycontactid/fullname",
        "contacts?$apply=groupby((parentcustomerid_account/primarycontactid/fullname))",
    ] {
        assert_denied(rules, "GET", url, None);
    }
    let rules: &[Rule] = &[("opportunities", &[GET], None), ("contacts", &[GET], None)];
    let url =
        "opportunities?$filter=parentaccountid/contact_customer_accounts/any(c:c/fullname eq 'x')";
    assert_denied(rules, "GET", url, None);
}

/// `contacts` may be read and changed through `fullname` only, yet an alternate key names
/// `emailaddress1`: the read probes it (as the denied `$filter=emailaddress1 eq ...` would)
/// and the PATCH, an upsert, creates a row with it.
#[test]
fn regression_alternate_key_columns_are_checked() {
    let rules: &[Rule] = &[
        ("contacts", &[GET, POST, PATCH], Some(&["fullname"])),
        ("accounts", &[GET], Some(&["name"])),
    ];
    assert_denied(
        rules,
        "GET",
        "contacts?$select=fullname&$filter=emailaddress1 eq 'a@b.com'",
        None,
    );
    assert_denied(
        rules,
        "GET",
        "contacts(emailaddress1='a@b.com')?$select=fullname",
        None,
    );
    assert_denied(
        rules,
        "PATCH",
        "contacts(emailaddress1='a@b.com')",
        Some(r#"{"fullname":"x"}"#),
    );
    assert_denied(
        rules,
        "POST",
        "contacts",
        Some(r#"{"fullname":"x","parentcustomerid_account@odata.bind":"/accounts(revenue=5)"}"#),
    );
}

/// `contacts` is restricted to `fullname`; the main read gets `$select=fullname` added, but the
/// nested `$expand` back into `contacts` has no `$select` and returns every column: the
/// all-columns exemption of the main read is granted to any read of the same table.
#[test]
fn regression_nested_expand_of_the_main_table_needs_select() {
    let rules: &[Rule] = &[
        ("contacts", &[GET], Some(&["fullname"])),
        ("accounts", &[GET], None),
    ];
    assert_denied(
        rules,
        "GET",
        "contacts?$expand=parentcustomerid_account($select=name;$expand=primarycontactid)",
        None,
    );
}

/// `PropertyName` of a query function is inspected in the top-level `$filter` only; inside
/// `$expand(...;$filter=...)` it filters on any column (here `statuscode`, not in the list),
/// and on any table through a lookup path (here `systemusers`, not allowlisted).
#[test]
fn regression_query_function_in_expand_filter_is_inspected() {
    let rules: &[Rule] = &[
        ("accounts", &[GET], None),
        ("opportunities", &[GET], Some(&["name"])),
    ];
    assert_denied(
        rules,
        "GET",
        "accounts?$expand=opportunity_parent_account($select=name;$filter=Microsoft.Dynamics.CRM.Between(PropertyName='statuscode',PropertyValues=['1','2']))",
        None,
    );
    let rules: &[Rule] = &[("accounts", &[GET], None), ("opportunities", &[GET], None)];
    assert_denied(
        rules,
        "GET",
        "accounts?$expand=opportunity_parent_account($select=name;$filter=Microsoft.Dynamics.CRM.EqualUserId(PropertyName='createdby/fullname'))",
        None,
    );
}

/// Binding `parentcustomerid_account` needs it in the column list of `contacts`; creating the
/// account inline (deep insert) sets the same lookup without it.
#[test]
fn regression_deep_insert_sets_the_parent_lookup() {
    let rules: &[Rule] = &[
        ("contacts", &[POST], Some(&["firstname"])),
        ("accounts", &[GET, POST], None),
    ];
    assert_denied(
        rules,
        "POST",
        "contacts",
        Some(
            r#"{"firstname":"a","parentcustomerid_account@odata.bind":"/accounts(a0000000-0000-4000-8000-000000000001)"}"#,
        ),
    );
    assert_denied(
        rules,
        "POST",
        "contacts",
        Some(r#"{"firstname":"a","parentcustomerid_account":{"name":"x"}}"#),
    );
}

/// The secure counterparts of the regressions above stay allowed.
#[test]
fn regression_counterparts_are_allowed() {
    let rules: &[Rule] = &[
        (
            "contacts",
            &[GET, POST],
            Some(&["fullname", "emailaddress1"]),
        ),
        ("accounts", &[GET], None),
    ];
    assert_allowed(
        rules,
        "GET",
        "contacts?$filter=parentcustomerid_account/primarycontactid/fullname eq 'x'",
        None,
    );
    assert_allowed(
        rules,
        "GET",
        "contacts(emailaddress1='a@b.com')?$select=fullname",
        None,
    );
    assert_allowed(
        rules,
        "GET",
        "contacts?$expand=parentcustomerid_account($select=name;$expand=primarycontactid($select=fullname))",
        None,
    );
}

/// A Content-ID names the row its request created, however the request reached the table; the
/// gateway records it only for `POST <set>`, so a change set that creates through a navigation
/// property and then refers to `$1` is refused (400) although every part is allowlisted.
#[test]
fn regression_content_id_of_a_row_created_through_navigation() {
    let policy = Policy {
        tables: [("accounts", vec![GET]), ("contacts", vec![POST, PATCH])]
            .into_iter()
            .map(|(s, verbs)| {
                let rule = TableRule {
                    verbs,
                    columns: None,
                };
                (s.to_string(), rule)
            })
            .collect(),
        ..Policy::default()
    };
    let part = |id: u8, line: &str, body: &str| {
        format!(
            "--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\
             Content-ID: {id}\r\n\r\n{line} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n\
             {body}\r\n"
        )
    };
    let body = format!(
        "--{BOUNDARY}\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n{}{}--cs--\r\n--{BOUNDARY}--\r\n",
        part(
            1,
            "POST accounts(a0000000-0000-4000-8000-000000000001)/contact_customer_accounts",
            r#"{"firstname":"a"}"#
        ),
        part(2, "PATCH $1", r#"{"lastname":"b"}"#),
    );
    let case = Case {
        calls: vec![],
        batch: Some(body),
    };
    let got = run(&policy, &case);
    assert!(got.decision.allowed(), "{}", got.decision.reason);
}

/// `contacts(contactid=<id>)` is the same row address as `contacts(<id>)`: naming the primary
/// key reads no column, so a column list without `contactid` must not refuse one form and
/// accept the other.
#[test]
fn regression_named_primary_key_is_not_a_column() {
    let rules: &[Rule] = &[("contacts", &[GET, PATCH], Some(&["fullname"]))];
    let id = "c0000000-0000-4000-8000-000000000001";
    assert_allowed(
        rules,
        "GET",
        &format!("contacts({id})?$select=fullname"),
        None,
    );
    assert_allowed(
        rules,
        "GET",
        &format!("contacts(contactid={id})?$select=fullname"),
        None,
    );
    assert_allowed(
        rules,
        "PATCH",
        &format!("contacts(contactid={id})"),
        Some(r#"{"fullname":"x"}"#),
    );
}
