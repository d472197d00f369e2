//! The declared type of a structural property (a column), as CSDL writes it in `Type`.
//!
//! Compact: the common `Edm` primitives are unit variants; anything else (another primitive,
//! a complex or enum type, a collection) is kept as written in one shared `Arc<str>` per
//! distinct name ([`Interner`]), so a 30 MB document holds each such name once.

use std::collections::HashMap;
use std::sync::Arc;

/// The type of one column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    String,
    Boolean,
    Byte,
    Int16,
    Int32,
    Int64,
    Decimal,
    Double,
    Single,
    DateTimeOffset,
    Date,
    TimeOfDay,
    Duration,
    Guid,
    Binary,
    /// Any other type, as written (`Collection(Edm.String)`, `mscrm.some_complex`).
    Other(Arc<str>),
}

const PRIMITIVES: [(&str, ColumnType); 15] = [
    ("Edm.String", ColumnType::String),
    ("Edm.Boolean", ColumnType::Boolean),
    ("Edm.Byte", ColumnType::Byte),
    ("Edm.Int16", ColumnType::Int16),
    ("Edm.Int32", ColumnType::Int32),
    ("Edm.Int64", ColumnType::Int64),
    ("Edm.Decimal", ColumnType::Decimal),
    ("Edm.Double", ColumnType::Double),
    ("Edm.Single", ColumnType::Single),
    ("Edm.DateTimeOffset", ColumnType::DateTimeOffset),
    ("Edm.Date", ColumnType::Date),
    ("Edm.TimeOfDay", ColumnType::TimeOfDay),
    ("Edm.Duration", ColumnType::Duration),
    ("Edm.Guid", ColumnType::Guid),
    ("Edm.Binary", ColumnType::Binary),
];

impl ColumnType {
    /// The CSDL name (`Edm.String`, or the other type as written).
    pub fn as_str(&self) -> &str {
        match self {
            ColumnType::Other(name) => name,
            known => PRIMITIVES
                .iter()
                .find(|(_, t)| t == known)
                .map_or("", |(name, _)| name),
        }
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Turns `Type` attributes into [`ColumnType`]s, sharing one `Arc` per other name.
#[derive(Debug, Default)]
pub(super) struct Interner {
    others: HashMap<Box<str>, Arc<str>>,
}

impl Interner {
    pub(super) fn of(&mut self, written: &str) -> ColumnType {
        if let Some((_, t)) = PRIMITIVES.iter().find(|(name, _)| *name == written) {
            return t.clone();
        }
        if let Some(shared) = self.others.get(written) {
            return ColumnType::Other(Arc::clone(shared));
        }
        let shared: Arc<str> = Arc::from(written);
        self.others.insert(written.into(), Arc::clone(&shared));
        ColumnType::Other(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_are_variants_and_other_names_are_kept_and_shared() {
        let mut i = Interner::default();
        assert_eq!(i.of("Edm.Decimal"), ColumnType::Decimal);
        assert_eq!(i.of("Edm.Guid").as_str(), "Edm.Guid");
        let (a, b) = (i.of("mscrm.x"), i.of("mscrm.x"));
        match (&a, &b) {
            (ColumnType::Other(a), ColumnType::Other(b)) => assert!(Arc::ptr_eq(a, b)),
            _ => panic!("{a:?}"),
        }
        assert_eq!(a.to_string(), "mscrm.x");
        for (name, t) in PRIMITIVES {
            assert_eq!(t.as_str(), name);
        }
    }

    #[test]
    fn columns_keep_their_declared_type_and_inherit_it() {
        let xml = crate::policy::metadata::tests::csdl(
            r#"<EntityType Name="base"><Key><PropertyRef Name="baseid"/></Key>
<Property Name="baseid" Type="Edm.Guid"/><Property Name="createdon" Type="Edm.DateTimeOffset"/></EntityType>
<EntityType Name="leaf" BaseType="mscrm.base"><Property Name="n" Type="Edm.Int32"/>
<Property Name="shape" Type="mscrm.Shape"/><Property Name="untyped"/><Property Name="n" Type="Edm.String"/></EntityType>"#,
        );
        let m = crate::policy::metadata::Metadata::parse(xml.as_bytes()).expect("parses");
        let ty = |c: &str| m.column_type("leaf", c).map(ColumnType::to_string);
        assert_eq!(ty("baseid").as_deref(), Some("Edm.Guid"));
        assert_eq!(ty("createdon").as_deref(), Some("Edm.DateTimeOffset"));
        assert_eq!(
            ty("n").as_deref(),
            Some("Edm.Int32"),
            "the first declaration wins"
        );
        assert_eq!(
            ty("shape").as_deref(),
            Some("mscrm.Shape"),
            "kept as written"
        );
        assert_eq!(ty("untyped"), None);
        assert!(m.has_property("leaf", "untyped"));
        assert_eq!(m.column_type("base", "n"), None);
        assert_eq!(m.column_type("nope", "n"), None);
    }
}
