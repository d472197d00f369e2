//! The tenant's data model, read from Dataverse's CSDL (`$metadata`) document.
//!
//! [`Metadata::parse`] turns the XML into what the policy engine needs and nothing more: entity
//! sets, entity types (keys, structural property names including lookup `_x_value` columns,
//! with their declared types,
//! navigation properties with their target type, partner and the lookup column their
//! `ReferentialConstraint` binds them to), and the functions and actions with their bindings. Documentation, annotations, vocabularies and the members of complex and enum types
//! are skipped.
//!
//! Pure: no I/O, no clock, no global state; the caller passes the bytes in. Parsing and
//! freeing call [`crate::pace`]'s yield points, which never change a result. Never panics on any
//! input; there is no DTD or entity expansion.
//!
//! Invariants of a parsed [`Metadata`] (the policy engine relies on them to fail closed):
//! - every name is unqualified: a `Namespace.` or `Alias.` prefix of a Schema declared in the
//!   document is removed (`mscrm.contact` and `Microsoft.Dynamics.CRM.contact` both become
//!   `contact`); a reference with any other qualifier (`Edm.String`) is kept as written;
//! - every [`Navigation::target`] names an entity type of this document; a navigation property
//!   whose target cannot be resolved is dropped, so a request through it is unknown, hence denied;
//! - every entity set maps to a known entity type; a set whose type is unknown is left out;
//! - the base-type graph has no cycles (a cycle is a parse error), so every walk up the
//!   hierarchy ends; a base type that is not in the document ends the walk (it is kept in
//!   [`EntityType::base_type`] as written, so inherited keys and members are simply not found);
//! - duplicate entity types, entity sets, navigation properties and operation imports are
//!   errors, never a silent "last one wins".

mod attrs;
mod column_type;
mod error;
mod hash;
mod parse;
mod resolve;
#[doc(hidden)]
mod sorted;
pub mod synthetic;

#[cfg(test)]
mod robust_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use hash::{NameMap, NameSet};

pub use column_type::ColumnType;

/// The lookup to a row's transaction currency, which comes back with its money columns.
pub const CURRENCY_LOOKUP: &str = "_transactioncurrencyid_value";
pub use error::{MetadataError, Position};
#[doc(hidden)]
pub use sorted::{Members, NameList};
pub use synthetic::synthetic_csdl;

/// One entity type (a Dataverse table), with its own members only; use the [`Metadata`]
/// lookups to include what it inherits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityType {
    /// Logical name, e.g. `contact`.
    pub logical_name: String,
    /// Logical name of the base type, e.g. `crmbaseentity`.
    pub base_type: Option<String>,
    /// Own key property names, in declaration order (empty when inherited).
    pub key: Vec<String>,
    /// Own structural property names (columns, including `_x_value` lookups).
    pub properties: NameList,
    /// Own navigation properties by name.
    pub navigation: Members<Navigation>,
    pub is_abstract: bool,
    /// The declared `Type` of each own structural property that has one, sorted by name (one
    /// entry per name; see [`Metadata::column_type`]).
    pub column_types: Vec<(String, ColumnType)>,
}

/// What a name is on an entity type ([`Metadata::member`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'m> {
    Navigation(&'m Navigation),
    Property,
}

/// An entity type of a [`Metadata`], found by name once ([`Metadata::type_ref`]).
#[derive(Clone, Copy)]
pub struct TypeRef<'m> {
    meta: &'m Metadata,
    /// Its index in the model's types (`None`: no such type).
    first: Option<usize>,
}

impl<'m> TypeRef<'m> {
    /// [`Metadata::member`] of this type.
    pub fn member(self, name: &str) -> Option<Member<'m>> {
        self.meta.member_from(self.first, name)
    }

    /// [`Metadata::has_property`] of this type.
    pub fn has_property(self, prop: &str) -> bool {
        self.meta
            .ancestry_from(self.first)
            .any(|t| t.properties.contains(prop))
    }

    /// [`Metadata::navigation`] of this type.
    pub fn navigation(self, nav: &str) -> Option<&'m Navigation> {
        self.meta
            .ancestry_from(self.first)
            .find_map(|t| t.navigation.get(nav))
    }
}

/// Where a navigation property leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Navigation {
    /// Logical name of the target entity type (always a type of the same [`Metadata`]).
    pub target: String,
    /// `Collection(...)`: the property yields many rows.
    pub collection: bool,
    /// The lookup column this property is bound to on its own type (its first
    /// `ReferentialConstraint`'s `Property`, e.g. `_parentcustomerid_value`); single-valued only.
    pub lookup: Option<String>,
    /// The navigation property on the target type that is the other side of the relationship.
    pub partner: Option<String>,
}

/// The lookup column whose value following a navigation property reveals: navigating through
/// it observes that column as surely as selecting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed<'m> {
    /// Single-valued: this lookup column of the row the navigation starts from.
    Own(&'m str),
    /// Collection-valued: this lookup column of the related rows (the partner's lookup).
    Related(&'m str),
    /// Many-to-many: the relationship lives in an intersect table, in no column of either side.
    Association,
    /// The metadata does not say (no referential constraint, or no resolvable partner).
    Unknown,
}

/// A function or an action; overloads are separate values with the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Unqualified name, e.g. `CreateMultiple`.
    pub name: String,
    pub is_action: bool,
    /// What a bound operation is bound to (its first parameter); `None` when unbound.
    pub bound_to: Option<Binding>,
    /// `(name, type)` as declared, the binding parameter first when bound; types are
    /// alias-normalised (`Collection(contact)`, `Edm.String`).
    pub parameters: Vec<(String, String)>,
    /// Alias-normalised return type.
    pub return_type: Option<String>,
}

/// The type of a bound operation's binding parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// A single row of this entity type (logical name).
    Entity(String),
    /// A collection of this entity type (logical name).
    Collection(String),
    /// Anything else (complex, primitive or unknown type), alias-normalised as written.
    Other(String),
}

/// Which entity set a type belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SetSlot {
    None,
    /// Shared with the key of `Metadata::sets`.
    One(Arc<str>),
    /// More than one set holds this type: no single answer, so none.
    Ambiguous,
}

/// The parsed CSDL of one Dataverse org. Cheap to share behind an `Arc`; immutable.
#[derive(Debug, Clone)]
pub struct Metadata {
    types: Vec<EntityType>,
    /// Index of each type's base type in `types`, when it is known.
    bases: Vec<Option<usize>>,
    /// Parallel to `types`: no name of the type or its base types is both a structural and a
    /// navigation property (as CSDL requires), so [`Metadata::member`] may look for a column
    /// first without a navigation property of that name taking precedence.
    disjoint: Vec<bool>,
    /// Parallel to `types`: the type or a base type has the currency lookup
    /// ([`CURRENCY_LOOKUP`]).
    currency: Vec<bool>,
    /// Some type has it (else no read can return it, and no set needs looking up for it).
    any_currency: bool,
    type_index: NameMap<String, usize>,
    /// Entity set name -> index in `types`. The names are shared with the uses that name them
    /// ([`crate::policy::classify::Touch::set`]), so a use costs no allocation.
    sets: NameMap<Arc<str>, usize>,
    /// Parallel to `types`.
    set_of_type: Vec<SetSlot>,
    operations: Vec<Operation>,
    operation_index: NameMap<String, Vec<usize>>,
    /// Import name -> unqualified function / action name.
    function_imports: NameMap<String, String>,
    action_imports: NameMap<String, String>,
    /// Schema namespaces and aliases declared in the document.
    qualifiers: NameSet<String>,
    complex_types: NameSet<String>,
    enum_types: NameSet<String>,
    /// Built on first use ([`Metadata::spelled_like_a_table`]): every entity set name, logical
    /// name and navigation property name, in lower case.
    table_names: std::sync::OnceLock<NameSet<Box<str>>>,
}

impl Drop for Metadata {
    /// Frees the entity types one at a time, with a [`crate::pace::step`] between: a large
    /// org's model is a million allocations, freed on a reload thread that must not hold the
    /// CPU for long.
    fn drop(&mut self) {
        for ty in std::mem::take(&mut self.types) {
            drop(ty);
            crate::pace::step();
        }
    }
}

impl Metadata {
    /// Whether `name`, compared without case, is spelled like an entity set, a table's logical
    /// name or a navigation property of any table. The classifier refuses such a name where it
    /// does not resolve it against a table (a lambda variable, a parameter alias, the name an
    /// aggregate is given), so that no name it passes unresolved could be read as one. The
    /// index is built on the first call (one pass over the model).
    pub fn spelled_like_a_table(&self, name: &str) -> bool {
        let names = self.table_names.get_or_init(|| {
            let mut names = NameSet::default();
            for (set, &i) in &self.sets {
                names.insert(set.to_ascii_lowercase().into_boxed_str());
                names.insert(self.types[i].logical_name.to_ascii_lowercase().into());
            }
            for ty in &self.types {
                names.insert(ty.logical_name.to_ascii_lowercase().into());
                for (nav, _) in &ty.navigation {
                    names.insert(nav.to_ascii_lowercase().into());
                }
            }
            names
        });
        names.contains(name.to_ascii_lowercase().as_str())
    }

    /// Parses a CSDL document. Unknown elements and attributes are skipped; malformed XML,
    /// missing required attributes, duplicates and inheritance cycles are errors.
    pub fn parse(xml: &[u8]) -> Result<Metadata, MetadataError> {
        resolve::finish(parse::parse(xml)?)
    }

    /// The entity type of an entity set (`contacts` -> `contact`).
    pub fn entity_set(&self, set: &str) -> Option<&EntityType> {
        self.sets.get(set).map(|&i| &self.types[i])
    }

    /// The entity set of a type (`contact` -> `contacts`); `None` when no set or several sets
    /// hold it.
    pub fn set_of(&self, logical: &str) -> Option<&str> {
        self.shared_set_of(logical).map(|set| &**set)
    }

    /// [`Metadata::set_of`], as the shared name.
    pub fn shared_set_of(&self, logical: &str) -> Option<&Arc<str>> {
        match &self.set_of_type[*self.type_index.get(logical)?] {
            SetSlot::One(set) => Some(set),
            SetSlot::None | SetSlot::Ambiguous => None,
        }
    }

    /// [`Metadata::entity_set`], with the set's name as the metadata holds it (shared).
    pub fn entity_set_named(&self, set: &str) -> Option<(&Arc<str>, &EntityType)> {
        self.sets
            .get_key_value(set)
            .map(|(name, &i)| (name, &self.types[i]))
    }

    pub fn entity_type(&self, logical: &str) -> Option<&EntityType> {
        self.type_index.get(logical).map(|&i| &self.types[i])
    }

    /// What `name` is on the type: a navigation property (of the type or a base type, as
    /// [`Metadata::navigation`] finds it), else a structural property ([`Metadata::has_property`]),
    /// else `None`; the type is looked up once.
    pub fn member(&self, logical: &str, name: &str) -> Option<Member<'_>> {
        self.type_ref(logical).member(name)
    }

    /// The type named `logical`, found once to be asked about several names
    /// ([`TypeRef::member`], [`TypeRef::has_property`], [`TypeRef::navigation`]): the answers
    /// of [`Metadata::member`], [`Metadata::has_property`] and [`Metadata::navigation`] for
    /// that name, without hashing it again for each. A name that is no type has no members.
    pub fn type_ref(&self, logical: &str) -> TypeRef<'_> {
        TypeRef {
            meta: self,
            first: self.type_index.get(logical).copied(),
        }
    }

    fn member_from(&self, first: Option<usize>, name: &str) -> Option<Member<'_>> {
        if first.is_some_and(|i| self.disjoint[i]) {
            // A name is at most one of the two here: columns, the usual case, are found
            // without searching the navigation lists first.
            if self
                .ancestry_from(first)
                .any(|t| t.properties.contains(name))
            {
                return Some(Member::Property);
            }
            return self
                .ancestry_from(first)
                .find_map(|t| t.navigation.get(name))
                .map(Member::Navigation);
        }
        if let Some(n) = self
            .ancestry_from(first)
            .find_map(|t| t.navigation.get(name))
        {
            return Some(Member::Navigation(n));
        }
        self.ancestry_from(first)
            .any(|t| t.properties.contains(name))
            .then_some(Member::Property)
    }

    /// A navigation property of the type or of any of its base types.
    pub fn navigation(&self, logical: &str, nav: &str) -> Option<&Navigation> {
        self.type_ref(logical).navigation(nav)
    }

    /// The lookup column that following `nav` from `logical` observes (see [`Observed`]).
    pub fn observed_lookup(&self, logical: &str, nav: &str) -> Observed<'_> {
        match self.navigation(logical, nav) {
            Some(n) => self.observed(n),
            None => Observed::Unknown,
        }
    }

    /// [`Metadata::observed_lookup`] of a navigation property already looked up.
    pub fn observed<'m>(&'m self, n: &'m Navigation) -> Observed<'m> {
        if !n.collection {
            return n.lookup.as_deref().map_or(Observed::Unknown, Observed::Own);
        }
        let partner = n
            .partner
            .as_deref()
            .and_then(|p| self.navigation(&n.target, p));
        match partner {
            Some(p) if p.collection => Observed::Association,
            Some(Navigation {
                lookup: Some(column),
                ..
            }) => Observed::Related(column),
            _ => Observed::Unknown,
        }
    }

    /// Whether the type or any of its base types declares the structural property.
    pub fn has_property(&self, logical: &str, prop: &str) -> bool {
        self.type_ref(logical).has_property(prop)
    }

    /// The declared type of a structural property of the type or of its nearest base type
    /// declaring it.
    pub fn column_type(&self, logical: &str, prop: &str) -> Option<&ColumnType> {
        self.ancestry(logical).find_map(|t| {
            let i = t
                .column_types
                .binary_search_by(|(name, _)| name.as_str().cmp(prop))
                .ok()?;
            Some(&t.column_types[i].1)
        })
    }

    /// Whether some type has the currency lookup ([`CURRENCY_LOOKUP`]).
    pub fn any_currency(&self) -> bool {
        self.any_currency
    }

    /// The entity type of `set` when it has the currency lookup ([`CURRENCY_LOOKUP`], its own
    /// or a base type's).
    pub fn with_currency(&self, set: &str) -> Option<&EntityType> {
        if !self.any_currency {
            return None;
        }
        let &i = self.sets.get(set)?;
        self.currency[i].then(|| &self.types[i])
    }

    /// Whether `column` of `logical` is a money (currency) column: an `Edm.Decimal` of a table
    /// with a transaction currency ([`CURRENCY_LOOKUP`]) that has its base-currency twin
    /// (`revenue` and `revenue_base`; both count). Dataverse returns the row's currency lookup
    /// with every money column read, named or not.
    pub fn is_money(&self, logical: &str, column: &str) -> bool {
        self.column_type(logical, column) == Some(&ColumnType::Decimal)
            && self.has_property(logical, CURRENCY_LOOKUP)
            && (column
                .strip_suffix("_base")
                .is_some_and(|value| self.has_property(logical, value))
                || self.has_property(logical, &format!("{column}_base")))
    }

    /// The first money column of `set` among `columns` when `columns` lacks the currency lookup
    /// that comes back with it ([`CURRENCY_LOOKUP`]): a column list that would leak the lookup,
    /// or a `$select` that returns it unnamed.
    pub fn money_without_currency<'c, I>(&self, set: &str, columns: I) -> Option<&'c str>
    where
        I: IntoIterator<Item = &'c str>,
        I::IntoIter: Clone,
    {
        let ty = self.with_currency(set)?;
        let mut columns = columns.into_iter();
        if columns.clone().any(|c| c == CURRENCY_LOOKUP) {
            return None;
        }
        columns.find(|c| self.is_money(&ty.logical_name, c))
    }

    /// The key of the type an entity set holds ([`Metadata::key_of`] of its type).
    pub fn key_of_set(&self, set: &str) -> Option<&[String]> {
        self.key_from(self.sets.get(set).copied())
    }

    /// The key of the type: its own, else the nearest base type's.
    pub fn key_of(&self, logical: &str) -> Option<&[String]> {
        self.key_from(self.type_index.get(logical).copied())
    }

    /// The key of the type at index `first` of `types`, or of its nearest base type with one.
    fn key_from(&self, first: Option<usize>) -> Option<&[String]> {
        self.ancestry_from(first)
            .find(|t| !t.key.is_empty())
            .map(|t| t.key.as_slice())
    }

    /// All bound overloads (functions and actions) with this name; a declared qualifier
    /// (`Microsoft.Dynamics.CRM.X`) is accepted and removed.
    pub fn bound_operations(&self, name: &str) -> Vec<&Operation> {
        self.operations_named(name)
            .filter(|op| op.bound_to.is_some())
            .collect()
    }

    /// The bound overload of `name` that applies to `logical` (one row, or a collection): the
    /// one bound to the nearest type in `logical`'s ancestry, as OData overload resolution does.
    pub fn bound_operation(
        &self,
        name: &str,
        logical: &str,
        collection: bool,
    ) -> Option<&Operation> {
        let depth_of = |bound: &str| self.ancestry(logical).position(|t| t.logical_name == bound);
        self.operations_named(name)
            .filter_map(|op| match (&op.bound_to, collection) {
                (Some(Binding::Collection(t)), true) | (Some(Binding::Entity(t)), false) => {
                    depth_of(t).map(|depth| (depth, op))
                }
                _ => None,
            })
            .min_by_key(|(depth, _)| *depth)
            .map(|(_, op)| op)
    }

    /// An unbound function by FunctionImport name, else the first unbound function with that
    /// name (`IsBound="false"`).
    pub fn unbound_function(&self, name: &str) -> Option<&Operation> {
        self.unbound(name, false, &self.function_imports)
    }

    /// An unbound action by ActionImport name, else the first unbound action with that name.
    pub fn unbound_action(&self, name: &str) -> Option<&Operation> {
        self.unbound(name, true, &self.action_imports)
    }

    /// `(entity set, logical name)` pairs, ordered by set name.
    pub fn entity_sets(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut sets: Vec<(&str, &str)> = self
            .sets
            .iter()
            .map(|(set, &i)| (&**set, self.types[i].logical_name.as_str()))
            .collect();
        sets.sort_unstable();
        sets.into_iter()
    }

    /// Whether `logical` is `ancestor` or inherits from it (reflexive, like OData `isof`).
    /// False when either type is unknown.
    pub fn is_derived_from(&self, logical: &str, ancestor: &str) -> bool {
        self.ancestry(logical).any(|t| t.logical_name == ancestor)
    }

    /// All entity types, in document order.
    pub fn entity_types(&self) -> impl Iterator<Item = &EntityType> {
        self.types.iter()
    }

    /// All functions and actions, in document order.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.iter()
    }

    /// Whether the document declares a complex type with this (unqualified) name.
    pub fn has_complex_type(&self, name: &str) -> bool {
        self.complex_types.contains(name)
    }

    /// Whether the document declares an enum type with this (unqualified) name.
    pub fn has_enum_type(&self, name: &str) -> bool {
        self.enum_types.contains(name)
    }

    /// Removes a qualifier declared by the document (`Microsoft.Dynamics.CRM.contact` ->
    /// `contact`, as found in `@odata.type` or bound-operation segments). An unqualified name is
    /// returned as is; `None` when the qualifier is not one of the document's schemas.
    pub fn unqualify<'n>(&self, name: &'n str) -> Option<&'n str> {
        match name.rsplit_once('.') {
            Some((qualifier, local)) => self.qualifiers.contains(qualifier).then_some(local),
            None => Some(name),
        }
    }

    /// The type and its base types, nearest first; empty when the type is unknown.
    pub fn ancestry(&self, logical: &str) -> impl Iterator<Item = &EntityType> {
        self.ancestry_from(self.type_index.get(logical).copied())
    }

    /// [`Metadata::ancestry`] from the type at index `first` of `types`.
    fn ancestry_from(&self, first: Option<usize>) -> impl Iterator<Item = &EntityType> {
        let mut next = first;
        // The graph is acyclic (checked at parse); the bound only guards that invariant.
        (0..self.types.len()).map_while(move |_| {
            let i = next?;
            next = self.bases[i];
            Some(&self.types[i])
        })
    }

    fn operations_named(&self, name: &str) -> impl Iterator<Item = &Operation> {
        let indices = self
            .unqualify(name)
            .and_then(|n| self.operation_index.get(n))
            .map_or(&[][..], Vec::as_slice);
        indices.iter().map(|&i| &self.operations[i])
    }

    fn unbound(
        &self,
        name: &str,
        is_action: bool,
        imports: &NameMap<String, String>,
    ) -> Option<&Operation> {
        let first_unbound = |n: &str| {
            self.operations_named(n)
                .find(|op| op.is_action == is_action && op.bound_to.is_none())
        };
        imports
            .get(name)
            .and_then(|target| first_unbound(target))
            .or_else(|| first_unbound(name))
    }
}
