//! Read options: `$filter` expressions (lookup paths, lambdas, query functions, parameter
//! aliases bound to literals and to columns), `$orderby`, `$select` and nested `$expand`.

use std::fmt::Write as _;

use dataverse_gateway::config::Verb;

use crate::generator::Gen;
use crate::oracle::Returned;
use crate::schema::Nav;

/// The lambda variables in scope: (name, table, need index); `""` is the implicit `$it`.
pub type Scope = Vec<(String, usize, usize)>;

impl<'a> Gen<'a> {
    /// A boolean `$filter` expression over the scope's innermost table. `top`: the request's
    /// own `$filter`, where parameter aliases may be used.
    pub fn filter(&mut self, scope: &mut Scope, depth: u8, top: bool) -> String {
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
        match self.c.below(14) {
            0 => {
                self.col(need, &colname);
                let lit = self.literal(col.ty);
                let op = *self.c.one(&["eq", "ne", "gt", "le"]);
                format!("{prefix}{colname} {op} {lit}")
            }
            1 => {
                self.col(need, &colname);
                format!("{prefix}{colname} ne null")
            }
            2 => {
                let text = table.text_columns();
                let c = self.c.one(&text).to_string();
                self.col(need, &c);
                let f = self.c.one(&["contains", "startswith", "endswith"]);
                format!("{f}({prefix}{c},'ab')")
            }
            3 | 9 | 11 => self.lookup(&prefix, t, need, " eq null"),
            4 | 8 | 10 if depth < 3 => self.lambda(scope, &prefix, (t, need), depth, top),
            5 if top && var.is_empty() => {
                self.col(need, &colname);
                let lit = self.literal(col.ty);
                let name = self.alias(lit);
                format!("{colname} eq @{name}")
            }
            12 if top && var.is_empty() => self.column_alias(t, need),
            6 | 13 if var.is_empty() => self.query_function(t, need, top),
            _ => {
                self.col(need, &colname);
                format!("{prefix}{colname} in ('a','b')")
            }
        }
    }

    /// Adds `@pN=value` and returns `pN`.
    fn alias(&mut self, value: String) -> String {
        let name = format!("p{}", self.aliases.len() + 1);
        self.aliases.push(format!("@{name}={value}"));
        name
    }

    /// An alias whose value is a property path: Dataverse binds it as that column.
    fn column_alias(&mut self, t: usize, need: usize) -> String {
        let table = self.table(t);
        if self.c.chance(50) && !table.text_columns().is_empty() {
            let c = self.c.one(&table.text_columns()).to_string();
            self.col(need, &c);
            let name = self.alias(c);
            let f = self.c.one(&["contains", "startswith"]);
            format!("{f}(@{name},'x')")
        } else {
            let col = self.c.one(&table.columns);
            self.col(need, &col.name.clone());
            let name = self.alias(col.name.clone());
            let lit = self.literal(col.ty);
            format!("@{name} ne {lit}")
        }
    }

    /// A `Microsoft.Dynamics.CRM` query function on a column of `t`, in the documented forms.
    pub fn query_function(&mut self, t: usize, need: usize, top: bool) -> String {
        let col = self.c.one(&self.table(t).columns).name.clone();
        self.col(need, &col);
        match self.c.below(4) {
            1 => format!(
                "Microsoft.Dynamics.CRM.Between(PropertyName='{col}',PropertyValues=[\"5\",\"2000\"])"
            ),
            2 if top => {
                let p1 = self.alias(format!("'{col}'"));
                let p2 = self.alias("[\"a\",\"b\"]".to_string());
                format!("Microsoft.Dynamics.CRM.In(PropertyName=@{p1},PropertyValues=@{p2})")
            }
            3 => format!(
                "Microsoft.Dynamics.CRM.NotIn(PropertyName='{col}',PropertyValues=['1','2'])"
            ),
            _ => {
                let f = self.c.one(&["LastXDays", "OlderThanXMonths", "NextXYears"]);
                format!("Microsoft.Dynamics.CRM.{f}(PropertyName='{col}',PropertyValue=7)")
            }
        }
    }

    /// `nav[/nav]/column` through single-valued navigation properties from table `t`.
    pub fn lookup(&mut self, prefix: &str, t: usize, need: usize, suffix: &str) -> String {
        let hops = 1 + self.c.below(2);
        let mut path = prefix.to_string();
        let (mut at, mut at_need) = (t, need);
        for _ in 0..hops {
            let singles = self.table(at).singles();
            if singles.is_empty() {
                break;
            }
            let nav = *self.c.one(&singles);
            self.through(at_need, nav);
            write!(path, "{}/", nav.name).unwrap();
            at = nav.target;
            at_need = self.need(at, Verb::Get, vec![]);
        }
        let col = self.c.one(&self.table(at).columns).name.clone();
        self.col(at_need, &col);
        format!("{path}{col}{suffix}")
    }

    /// `[single/]collection/any(v: ...)`, `/all(v: ...)` or `/any()` from table `t`.
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
            let singles = self.table(at).singles();
            if !singles.is_empty() {
                let nav = *self.c.one(&singles);
                self.through(at_need, nav);
                write!(path, "{}/", nav.name).unwrap();
                at = nav.target;
                at_need = self.need(at, Verb::Get, vec![]);
            }
        }
        let colls = self.table(at).collections();
        if colls.is_empty() {
            let col = self.c.one(&self.table(at).columns).name.clone();
            self.col(at_need, &col);
            return format!("{path}{col} eq null");
        }
        let nav = *self.c.one(&colls);
        self.through(at_need, nav);
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

    pub fn orderby(&mut self, t: usize, need: usize, top: bool) -> String {
        let mut items = Vec::new();
        for _ in 0..1 + self.c.below(2) {
            let item = if self.c.chance(30) {
                self.lookup("", t, need, "")
            } else {
                let col = self.c.one(&self.table(t).columns).name.clone();
                self.col(need, &col);
                if top && self.c.chance(15) {
                    format!("@{}", self.alias(col))
                } else {
                    col
                }
            };
            let dir = *self.c.one(&["", " asc", " desc"]);
            items.push(format!("{item}{dir}"));
        }
        items.join(",")
    }

    /// `$select` of returned rows: the columns are needed and come back.
    pub fn select(&mut self, t: usize, need: usize) -> String {
        let names: Vec<String> = self
            .table(t)
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let cols = self.c.subset(&names, 1);
        for c in &cols {
            self.col(need, c);
        }
        self.needs[need].returned = Some(Returned::Columns(cols.clone()));
        cols.join(",")
    }

    /// Every column of the rows of `need` comes back.
    pub fn all_columns(&mut self, need: usize) {
        self.needs[need].all_columns = true;
        self.needs[need].returned = Some(Returned::All);
    }

    /// `$expand` items of table `t` (whose need is `parent`), with nested options.
    pub fn expand(&mut self, t: usize, parent: usize, depth: u8) -> String {
        let navs: Vec<&'a Nav> = self.table(t).navs.iter().collect();
        let chosen = self.c.subset(&navs, 1);
        let mut items = Vec::new();
        for nav in chosen.into_iter().take(2) {
            self.through(parent, nav);
            let need = self.need(nav.target, Verb::Get, vec![]);
            let mut opts = Vec::new();
            if self.c.chance(60) {
                opts.push(format!("$select={}", self.select(nav.target, need)));
            } else {
                self.all_columns(need);
            }
            if self.c.chance(15) {
                let f = self.query_function(nav.target, need, false);
                opts.push(format!("$filter={f}"));
            } else if self.c.chance(30) {
                let mut scope = vec![(String::new(), nav.target, need)];
                opts.push(format!("$filter={}", self.filter(&mut scope, 0, false)));
            }
            if nav.collection && self.c.chance(20) {
                opts.push(format!(
                    "$orderby={}",
                    self.orderby(nav.target, need, false)
                ));
            }
            if nav.collection && self.c.chance(20) {
                opts.push("$top=3".into());
            }
            if depth < 2 && self.c.chance(25) {
                opts.push(format!(
                    "$expand={}",
                    self.expand(nav.target, need, depth + 1)
                ));
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
    pub fn read_options(
        &mut self,
        t: usize,
        need: usize,
        collection: bool,
    ) -> Vec<(String, String)> {
        let mut opts = Vec::new();
        if self.c.chance(50) {
            let s = self.select(t, need);
            opts.push(("$select".to_string(), s));
        } else {
            self.all_columns(need);
        }
        if collection && self.c.chance(70) {
            let mut scope = vec![(String::new(), t, need)];
            let f = self.filter(&mut scope, 0, true);
            opts.push(("$filter".into(), f));
        }
        if collection && self.c.chance(30) {
            let o = self.orderby(t, need, true);
            opts.push(("$orderby".into(), o));
        }
        if collection && self.c.chance(20) {
            opts.push(("$top".into(), "5".into()));
        }
        if collection && self.c.chance(10) {
            opts.push(("$count".into(), "true".into()));
        }
        if self.c.chance(40) {
            let x = self.expand(t, need, 0);
            opts.push(("$expand".into(), x));
        }
        opts
    }
}
