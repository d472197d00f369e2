//! What a key of a JSON body is, and what an `@odata.type` value names.
//!
//! Pure. Every key is one [`Key`] or an error naming it: the match in [`Key::of`] lists what is
//! understood, and refusal is its default arm.

use serde_json::Value;

use super::super::*;

/// What a JSON key in a body is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Key<'k> {
    /// A column, or a navigation property holding nested rows.
    Property(&'k str),
    /// `nav@odata.bind`.
    Bind(&'k str),
    /// `@odata.type`.
    Type,
    /// `prop@odata.type`: the type of a property's value.
    PropertyType(&'k str),
    /// `@odata.id`: the row this object is.
    Id,
    /// `@odata.etag`, `@odata.context`: returned by reads, ignored by writes.
    Ignored,
}

impl<'k> Key<'k> {
    pub(super) fn of(key: &'k str) -> Result<Key<'k>, ParseError> {
        let Some((prop, annotation)) = key.split_once('@') else {
            return Ok(Key::Property(key));
        };
        let unknown = || {
            not(format!(
                "the annotation `{key}` in a request body is not one the gateway understands"
            ))
        };
        match (prop, annotation) {
            ("", "odata.type") => Ok(Key::Type),
            ("", "odata.id") => Ok(Key::Id),
            ("", "odata.etag" | "odata.context") => Ok(Key::Ignored),
            (p, "odata.bind") if !p.is_empty() => Ok(Key::Bind(p)),
            (p, "odata.type") if !p.is_empty() => Ok(Key::PropertyType(p)),
            _ => Err(unknown()),
        }
    }
}

/// A type named by `@odata.type`.
pub(super) enum TypeName<'t> {
    /// An entity type of the org (logical name).
    Entity(&'t str),
    /// A complex type, enum type or `Edm` primitive: no table.
    Other,
}

/// Resolves an `@odata.type` value: `[#](Namespace|Alias).Name`, `[#]Edm.X`,
/// `[#]Collection(...)`. Unqualified and unknown names are refused.
pub(super) fn type_name<'t>(value: &'t Value, meta: &Metadata) -> Result<TypeName<'t>, ParseError> {
    let raw = value
        .as_str()
        .ok_or_else(|| ParseError::Malformed(format!("@odata.type {value} is not a string")))?;
    let name = raw.strip_prefix('#').unwrap_or(raw);
    let name = name
        .strip_prefix("Collection(")
        .and_then(|n| n.strip_suffix(')'))
        .unwrap_or(name);
    if name
        .strip_prefix("Edm.")
        .is_some_and(crate::policy::odata::is_identifier)
    {
        return Ok(TypeName::Other);
    }
    let local = match name.rsplit_once('.') {
        Some(_) => meta.unqualify(name),
        None => None,
    };
    match local {
        Some(l) if meta.entity_type(l).is_some() => Ok(TypeName::Entity(l)),
        Some(l) if meta.has_complex_type(l) || meta.has_enum_type(l) => Ok(TypeName::Other),
        _ => Err(not(format!(
            "@odata.type `{raw}` is not a type of this org qualified by its namespace"
        ))),
    }
}
