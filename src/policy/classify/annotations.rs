//! Annotations that carry other tables' data.
//!
//! Pure. With `Prefer: odata.include-annotations=...` asking for
//! `OData.Community.Display.V1.FormattedValue` (`"*"`, `"OData.Community.*"`, the term itself;
//! `-` exclusions honoured), Dataverse returns, beside every lookup column of every row it
//! sends, the primary name of the row the lookup points to: an account's name, a user's full
//! name. Invariant: every table whose primary name can come back that way is read — a GET of the
//! target table(s) of every lookup column that can come back (all the lookups of a read without
//! `$select`, the named ones otherwise; main reads, expansions, `return=representation` and
//! fetchXml alike; every target of a polymorphic lookup such as `ownerid`). The primary name
//! column is not in `$metadata`, so the read counts as one of every column: a target with a
//! column list refuses it. A lookup whose target cannot be told refuses the request.
//!
//! The lookups of the request's main read without `$select` are recorded as conditional
//! [`AnnotationRead`]s, not in `uses`: for a table with a column list the gateway adds `$select`
//! and only the listed lookups come back, which only the policy knows.
//! [`crate::policy::inspect`] turns them into reads against the column list before deciding.
//! Over-approximation, on the side of refusing: a lookup named only in `$filter`/`$orderby`
//! counts too.
//!
//! `Microsoft.Dynamics.CRM.lookuplogicalname` and `associatednavigationproperty` name the
//! target's table and navigation property: part of the lookup value itself, no other row's data.
//! Option-set labels and formatted numbers and dates are the row's own columns, formatted.

use super::*;
use crate::policy::headers;

/// The annotation that carries related rows' primary names.
pub const FORMATTED_VALUE: &str = "OData.Community.Display.V1.FormattedValue";

/// A table read only because an annotation returns its rows' primary names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationRead {
    /// The table read.
    pub set: String,
    /// The table whose lookup column returns the annotation.
    pub owner: String,
    /// The lookup column (`_x_value`).
    pub column: String,
    /// Returned only if the main read without `$select` keeps `column`: not yet in `uses`.
    pub conditional: bool,
}

impl AnnotationRead {
    /// The GET this read implies.
    pub fn touch(&self) -> Touch {
        Touch {
            set: self.set.as_str().into(),
            verb: Verb::Get,
            columns: Columns::new(),
            all_columns: true,
            main: false,
        }
    }
}

/// Adds the reads the requested annotations imply to `out`.
pub(super) fn reads(
    req: &Request<'_>,
    meta: Option<&Metadata>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let prefs = headers::preferences(req.headers).map_err(ParseError::Malformed)?;
    if !headers::asks_annotation(&prefs, FORMATTED_VALUE) {
        return Ok(());
    }
    let returned: Vec<Touch> = out
        .uses
        .iter()
        .filter_map(|u| match u {
            Use::Table(t) if t.verb == Verb::Get => Some(t.clone()),
            _ => None,
        })
        .collect();
    let Some(meta) = meta else {
        // Without metadata the lookups of a row cannot be told: fail closed.
        out.needs_metadata |= !returned.is_empty();
        return Ok(());
    };
    for t in returned {
        let logical = meta
            .entity_set(&t.set)
            .map(|ty| ty.logical_name.clone())
            .ok_or_else(|| not(format!("`{}` is not an entity set of this org", t.set)))?;
        for lookup in lookups(meta, &logical, &t) {
            let sets = targets(meta, &logical, &lookup);
            if sets.is_empty() {
                return Err(not(format!(
                    "Prefer odata.include-annotations asks for {FORMATTED_VALUE}, which returns \
                     the primary name of the row `{}`.`{lookup}` points to, and the gateway \
                     cannot tell which table that is",
                    t.set
                )));
            }
            let conditional = t.main && t.all_columns;
            for target in sets {
                let read = AnnotationRead {
                    set: target,
                    owner: t.set.to_string(),
                    column: lookup.clone(),
                    conditional,
                };
                let counted = |r: &AnnotationRead| !r.conditional && r.set == read.set;
                if !conditional && !out.annotation_reads.iter().any(counted) {
                    out.uses.push(Use::Table(read.touch()));
                }
                out.annotation_reads.push(read);
            }
        }
    }
    Ok(())
}

/// The lookup properties (`_x_value`) of `logical` that a read of `t` can return.
fn lookups(meta: &Metadata, logical: &str, t: &Touch) -> Vec<String> {
    let is_lookup = |p: &str| p.starts_with('_') && p.ends_with("_value") && p.len() > 7;
    if t.all_columns {
        let mut all: Vec<String> = meta
            .ancestry(logical)
            .flat_map(|ty| ty.properties.iter())
            .filter(|p| is_lookup(p))
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        return all;
    }
    t.columns
        .iter()
        .filter_map(|c| {
            if is_lookup(c) && meta.has_property(logical, c) {
                Some(c.to_string())
            } else {
                // fetchXml names a lookup by its attribute name.
                let p = format!("_{c}_value");
                meta.has_property(logical, &p).then_some(p)
            }
        })
        .collect()
}

/// The entity sets a lookup property `_x_value` can point to: the targets of the single-valued
/// navigation properties bound to it by their referential constraint (every variant of a
/// polymorphic lookup has one), or, for a navigation the CSDL gives no constraint, named `x` or
/// `x_<target>`; and of their derived types (`ownerid` points to `principal`, that is users and
/// teams).
fn targets(meta: &Metadata, logical: &str, lookup: &str) -> Vec<String> {
    let attribute = &lookup[1..lookup.len() - "_value".len()];
    let mut sets: Vec<String> = Vec::new();
    for ty in meta.ancestry(logical) {
        for (name, nav) in &ty.navigation {
            let named = match &nav.lookup {
                Some(bound) => bound == lookup,
                None => {
                    name == attribute
                        || name
                            .strip_prefix(attribute)
                            .is_some_and(|rest| rest.starts_with('_'))
                }
            };
            if nav.collection || !named {
                continue;
            }
            for t in meta.entity_types() {
                if meta.is_derived_from(&t.logical_name, &nav.target)
                    && let Some(set) = meta.set_of(&t.logical_name)
                    && !sets.iter().any(|s| s == set)
                {
                    sets.push(set.to_string());
                }
            }
        }
    }
    sets
}
