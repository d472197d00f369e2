//! The schema a case runs against, as data: random tables (typed columns, primary key, primary
//! name column, lookups — polymorphic too — with their one-to-many partners, alternate keys),
//! SERIALISED TO CSDL and read back with `Metadata::parse`, so the parser is tested rather than
//! trusted; or the simulator's own CSDL, read the same way.

use dataverse_gateway::policy::metadata::Metadata;

use crate::choices::Choices;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Text,
    Guid,
    Decimal,
    Int,
    Bool,
    Date,
}

impl Ty {
    pub fn edm(self) -> &'static str {
        match self {
            Ty::Text => "Edm.String",
            Ty::Guid => "Edm.Guid",
            Ty::Decimal => "Edm.Decimal",
            Ty::Int => "Edm.Int32",
            Ty::Bool => "Edm.Boolean",
            Ty::Date => "Edm.DateTimeOffset",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
    /// A `_x_value` lookup column (read-only; set through its navigation property).
    pub lookup: bool,
}

#[derive(Debug, Clone)]
pub struct Nav {
    pub name: String,
    pub target: usize,
    pub collection: bool,
    /// Single-valued: the lookup column of the source table behind it (`_x_value`).
    /// Collection-valued: the lookup column of the target table pointing back (its partner's).
    pub lookup: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub set: String,
    pub logical: String,
    pub key: String,
    /// The primary name column: what a lookup's `FormattedValue` annotation shows.
    pub primary_name: String,
    pub columns: Vec<Column>,
    pub navs: Vec<Nav>,
    /// Declared alternate keys (column names); empty: any text columns are used (sim CSDL).
    pub alternate_keys: Vec<Vec<String>>,
}

impl Table {
    pub fn text_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.ty == Ty::Text)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Columns an agent may set in a body: not the key, not the read-only `_x_value` lookups.
    pub fn writable(&self) -> Vec<&Column> {
        self.columns
            .iter()
            .filter(|c| c.name != self.key && !c.lookup)
            .collect()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn singles(&self) -> Vec<&Nav> {
        self.navs.iter().filter(|n| !n.collection).collect()
    }

    pub fn collections(&self) -> Vec<&Nav> {
        self.navs.iter().filter(|n| n.collection).collect()
    }
}

pub struct Schema {
    pub meta: Metadata,
    pub tables: Vec<Table>,
    /// The CSDL the metadata was parsed from (printed with a failure of a generated schema).
    pub csdl: Option<String>,
}

const LOGICAL: [&str; 6] = ["account", "contact", "lead", "invoice", "task", "product"];
const PRIMARY: [&str; 4] = ["name", "fullname", "title", "subject"];
const EXTRA: [(&str, Ty); 7] = [
    ("description", Ty::Text),
    ("emailaddress1", Ty::Text),
    ("revenue", Ty::Decimal),
    ("quantity", Ty::Int),
    ("isactive", Ty::Bool),
    ("duedate", Ty::Date),
    ("externalid", Ty::Guid),
];
const LOOKUPS: [&str; 4] = ["parentid", "customerid", "regardingid", "primaryid"];

/// A random schema of 2-5 tables; the simplest draw is two tables without lookups.
pub fn draw(c: &mut Choices<'_>) -> Schema {
    let n = 2 + c.below(4);
    let mut tables: Vec<Table> = (0..n).map(|i| draw_table(c, LOGICAL[i])).collect();
    for i in 0..n {
        let names = c.subset(&LOOKUPS, 0);
        for name in names.into_iter().take(2) {
            let polymorphic = c.chance(30);
            let first = c.below(n);
            let mut targets = vec![first];
            if polymorphic {
                targets.push((first + 1 + c.below(n - 1)) % n);
            }
            add_lookup(&mut tables, i, name, &targets, polymorphic);
        }
    }
    let csdl = crate::csdl::to_csdl(&tables);
    let meta = match Metadata::parse(csdl.as_bytes()) {
        Ok(m) => m,
        Err(e) => panic!("Metadata::parse refuses a valid generated CSDL: {e}\n{csdl}"),
    };
    agrees(&meta, &tables, &csdl);
    Schema {
        meta,
        tables,
        csdl: Some(csdl),
    }
}

fn draw_table(c: &mut Choices<'_>, logical: &str) -> Table {
    let key = format!("{logical}id");
    let primary = c.one(&PRIMARY).to_string();
    let mut columns = vec![
        Column {
            name: key.clone(),
            ty: Ty::Guid,
            lookup: false,
        },
        Column {
            name: primary.clone(),
            ty: Ty::Text,
            lookup: false,
        },
    ];
    for (name, ty) in c.subset(&EXTRA, 0) {
        columns.push(Column {
            name: name.to_string(),
            ty,
            lookup: false,
        });
    }
    let keyable: Vec<String> = columns
        .iter()
        .filter(|c| matches!(c.ty, Ty::Text | Ty::Int))
        .map(|c| c.name.clone())
        .collect();
    let alternate_keys = if c.chance(40) {
        let mut k = c.subset(&keyable, 1);
        k.truncate(2);
        vec![k]
    } else {
        vec![]
    };
    Table {
        set: format!("{logical}s"),
        logical: logical.to_string(),
        key,
        primary_name: primary,
        columns,
        navs: vec![],
        alternate_keys,
    }
}

/// A lookup column `_<name>_value` on `source`, its single-valued navigation property per target
/// (`<name>`, or `<name>_<target>` when polymorphic) and each target's one-to-many partner.
fn add_lookup(tables: &mut [Table], source: usize, name: &str, targets: &[usize], poly: bool) {
    let column = format!("_{name}_value");
    tables[source].columns.push(Column {
        name: column.clone(),
        ty: Ty::Guid,
        lookup: true,
    });
    for &t in targets {
        let nav = if poly {
            format!("{name}_{}", tables[t].logical)
        } else {
            name.to_string()
        };
        let partner = format!("{}_{nav}", tables[source].logical);
        tables[source].navs.push(Nav {
            name: nav,
            target: t,
            collection: false,
            lookup: Some(column.clone()),
        });
        tables[t].navs.push(Nav {
            name: partner,
            target: source,
            collection: true,
            lookup: Some(column.clone()),
        });
    }
}

/// What `Metadata::parse` read back agrees with the data the CSDL was written from.
fn agrees(meta: &Metadata, tables: &[Table], csdl: &str) {
    for t in tables {
        let parsed = meta.entity_set(&t.set);
        assert_eq!(
            parsed.map(|p| p.logical_name.as_str()),
            Some(t.logical.as_str()),
            "set {} lost\n{csdl}",
            t.set
        );
        assert_eq!(
            meta.key_of(&t.logical),
            Some(&[t.key.clone()][..]),
            "key of {}\n{csdl}",
            t.logical
        );
        for c in &t.columns {
            assert!(
                meta.has_property(&t.logical, &c.name),
                "{}.{} lost\n{csdl}",
                t.logical,
                c.name
            );
        }
        for n in &t.navs {
            let got = meta.navigation(&t.logical, &n.name);
            assert!(
                got.is_some_and(
                    |g| g.collection == n.collection && g.target == tables[n.target].logical
                ),
                "navigation {}.{} read back as {got:?}\n{csdl}",
                t.logical,
                n.name
            );
        }
    }
    assert_eq!(
        meta.entity_sets().count(),
        tables.len(),
        "extra sets\n{csdl}"
    );
}
