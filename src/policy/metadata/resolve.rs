//! From the parser's [`Raw`] model to a [`Metadata`]: qualifiers removed, references resolved,
//! indexes built.
//!
//! Establishes the invariants listed in the `metadata` module doc: navigation targets and
//! entity sets resolve to known entity types (unresolvable ones are dropped), the inheritance
//! graph is acyclic (else an error), bound operations have a binding parameter (else dropped).
//! Linear in the size of the model.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::hash::NameMap;
use super::parse::Raw;
use super::{Binding, EntityType, Metadata, MetadataError, Operation, SetSlot};

/// Type references against the document's Schema namespaces and aliases.
struct Names<'q> {
    qualifiers: &'q HashSet<String>,
    types: &'q HashMap<String, usize>,
}

impl Names<'_> {
    /// `mscrm.x` / `Microsoft.Dynamics.CRM.x` -> `x`; `None` for another qualifier.
    fn local<'n>(&self, name: &'n str) -> Option<&'n str> {
        match name.rsplit_once('.') {
            Some((qualifier, local)) => self.qualifiers.contains(qualifier).then_some(local),
            None => Some(name),
        }
    }

    /// The type as written, with a declared qualifier removed (inside `Collection()` too).
    fn normalise(&self, ty: &str) -> String {
        match split_collection(ty) {
            (true, inner) => format!("Collection({})", self.local(inner).unwrap_or(inner)),
            (false, _) => self.local(ty).unwrap_or(ty).to_owned(),
        }
    }

    /// `(collection, logical name)` when `ty` is a known entity type or a collection of one.
    fn entity<'n>(&self, ty: &'n str) -> Option<(bool, &'n str)> {
        let (collection, inner) = split_collection(ty);
        let local = self.local(inner)?;
        self.types
            .contains_key(local)
            .then_some((collection, local))
    }
}

/// `Collection(x)` -> `(true, x)`; anything else -> `(false, itself)`.
fn split_collection(ty: &str) -> (bool, &str) {
    match ty
        .strip_prefix("Collection(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        Some(inner) => (true, inner),
        None => (false, ty),
    }
}

pub(super) fn finish(raw: Raw) -> Result<Metadata, MetadataError> {
    let Raw {
        qualifiers,
        mut types,
        type_index,
        sets: raw_sets,
        operations: raw_operations,
        ..
    } = raw;
    let names = Names {
        qualifiers: &qualifiers,
        types: &type_index,
    };
    for ty in &mut types {
        resolve_type(ty, &names);
        crate::pace::step();
    }
    let bases: Vec<Option<usize>> = types
        .iter()
        .map(|t| {
            t.base_type
                .as_ref()
                .and_then(|b| type_index.get(b).copied())
        })
        .collect();
    check_acyclic(&types, &bases)?;
    let disjoint = (0..types.len())
        .map(|i| {
            crate::pace::step();
            members_disjoint(&types, &bases, i)
        })
        .collect();
    let currency: Vec<bool> = (0..types.len())
        .map(|i| {
            let mut next = Some(i);
            // Acyclic (checked above): the walk ends; the bound only guards that.
            for _ in 0..=types.len() {
                let Some(t) = next else { break };
                if types[t].properties.contains(super::CURRENCY_LOOKUP) {
                    return true;
                }
                next = bases[t];
            }
            false
        })
        .collect();
    let any_currency = currency.contains(&true);
    let (sets, set_of_type) = index_sets(raw_sets, &names, types.len());
    let operations: Vec<Operation> = raw_operations
        .into_iter()
        .filter_map(|(op, bound)| {
            crate::pace::point();
            resolve_operation(op, bound, &names)
        })
        .collect();
    let mut operation_index: NameMap<String, Vec<usize>> = NameMap::default();
    for (i, op) in operations.iter().enumerate() {
        operation_index.entry(op.name.clone()).or_default().push(i);
    }
    let imports = |raw: HashMap<String, String>| -> NameMap<String, String> {
        raw.into_iter()
            .map(|(name, target)| (name, names.normalise(&target)))
            .collect()
    };
    let function_imports = imports(raw.function_imports);
    let action_imports = imports(raw.action_imports);
    Ok(Metadata {
        types,
        bases,
        disjoint,
        currency,
        any_currency,
        type_index: type_index.into_iter().collect(),
        sets,
        set_of_type,
        operations,
        operation_index,
        function_imports,
        action_imports,
        qualifiers: qualifiers.into_iter().collect(),
        complex_types: raw.complex_types.into_iter().collect(),
        enum_types: raw.enum_types.into_iter().collect(),
        table_names: std::sync::OnceLock::new(),
    })
}

/// Whether no name of type `i` or its base types (`bases`, acyclic) is both a structural and a
/// navigation property.
fn members_disjoint(types: &[EntityType], bases: &[Option<usize>], i: usize) -> bool {
    let mut chain = Vec::new();
    let mut next = Some(i);
    while let Some(t) = next {
        // Acyclic (checked before), so the walk ends; the bound only guards that.
        if chain.len() > types.len() {
            return false;
        }
        chain.push(t);
        next = bases[t];
    }
    chain.iter().all(|&a| {
        types[a]
            .navigation
            .iter()
            .all(|(name, _)| chain.iter().all(|&b| !types[b].properties.contains(name)))
    })
}

/// Normalises the base type; resolves navigation targets, dropping those that do not resolve.
fn resolve_type(ty: &mut EntityType, names: &Names<'_>) {
    if let Some(base) = &ty.base_type {
        ty.base_type = Some(names.normalise(base));
    }
    ty.navigation
        .retain(|_, nav| match names.entity(&nav.target) {
            Some((collection, local)) => {
                let local = local.to_owned();
                nav.target = local;
                nav.collection = collection;
                true
            }
            None => false,
        });
}

/// Fails on the first type found on an inheritance cycle. O(types): each type is walked once.
fn check_acyclic(types: &[EntityType], bases: &[Option<usize>]) -> Result<(), MetadataError> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Unseen,
        OnPath,
        Done,
    }
    let mut state = vec![State::Unseen; types.len()];
    let mut path = Vec::new();
    for start in 0..types.len() {
        let mut next = Some(start);
        while let Some(i) = next {
            match state[i] {
                State::Done => break,
                State::OnPath => {
                    let name = types[i].logical_name.clone();
                    return Err(MetadataError::InheritanceCycle { name });
                }
                State::Unseen => {
                    state[i] = State::OnPath;
                    path.push(i);
                    next = bases[i];
                }
            }
        }
        for i in path.drain(..) {
            state[i] = State::Done;
        }
    }
    Ok(())
}

/// Entity sets by name, and each type's set. A set whose type is unknown is left out.
fn index_sets(
    raw: BTreeMap<String, String>,
    names: &Names<'_>,
    type_count: usize,
) -> (NameMap<Arc<str>, usize>, Vec<SetSlot>) {
    let mut sets = NameMap::default();
    let mut slots = vec![SetSlot::None; type_count];
    for (set, ty) in raw {
        let Some(&i) = names.local(&ty).and_then(|local| names.types.get(local)) else {
            continue;
        };
        let set: Arc<str> = Arc::from(set);
        slots[i] = match slots[i] {
            SetSlot::None => SetSlot::One(Arc::clone(&set)),
            SetSlot::One(_) | SetSlot::Ambiguous => SetSlot::Ambiguous,
        };
        sets.insert(set, i);
    }
    (sets, slots)
}

/// Normalises the types and derives the binding; `None` for a bound operation without
/// parameters (it cannot be called, so it is dropped).
fn resolve_operation(mut op: Operation, bound: bool, names: &Names<'_>) -> Option<Operation> {
    for (_, ty) in &mut op.parameters {
        *ty = names.normalise(ty);
    }
    op.return_type = op.return_type.map(|ty| names.normalise(&ty));
    if bound {
        let (_, first) = op.parameters.first()?;
        op.bound_to = Some(match names.entity(first) {
            Some((true, local)) => Binding::Collection(local.to_owned()),
            Some((false, local)) => Binding::Entity(local.to_owned()),
            None => Binding::Other(first.clone()),
        });
    }
    Some(op)
}
