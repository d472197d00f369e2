//! Walking a resource path over the tenant's metadata: which tables each segment reaches, and
//! which of their columns it observes.
//!
//! Pure. Fail closed by construction: every path segment is matched exhaustively — a navigation
//! property, a column, a bound operation, `$count`, `$ref` or `$value` in the place each may
//! stand — and whatever else is refused with a reason naming it; the query options of every
//! shape that returns rows (collections, rows, `$count`, `$ref` reads) are classified by
//! `options`, and the shapes that take none refuse any. A column list restricts every way a
//! column's value can be observed, so the walk counts, on the table they belong to:
//! - the alternate-key columns that locate a row (with or without metadata);
//! - the lookup a navigation is bound to, whenever the request navigates through it — a path
//!   segment, `$expand`, a lookup path in `$filter`/`$orderby`/`$apply`, a `$ref`: the starting
//!   row's lookup for a single-valued navigation, the related rows' lookup for a
//!   collection-valued one (the metadata's referential constraints and partners, see
//!   [`revealed`]; when the metadata does not name it, a placeholder that no column list
//!   contains);
//! - never a table's own primary key (`lookups::free_own_keys`): it is returned with every row.

use std::sync::Arc;

use http::Method;

use super::lookups::revealed;
use super::*;
use crate::policy::metadata::{Binding, Member, Metadata};
use crate::policy::odata::{KeySpec, ResourcePath, Segment};

/// Where the walk stands: a table, and whether it addresses one row or a collection.
struct At<'a> {
    /// The set's name as the metadata holds it (shared by the uses).
    set: &'a Arc<str>,
    logical: &'a str,
    single: bool,
    /// Columns of this table the path observes: alternate-key columns that locate the row (they
    /// are probed), and the lookup a collection-valued navigation into it is bound to.
    keys: Columns,
}

pub(super) fn walk(
    req: &Request<'_>,
    path: &ResourcePath,
    query: &Query,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let mut at = match &path.head {
        Head::ContentId(id) => {
            let set = env.content_ids.get(*id).ok_or_else(|| {
                ParseError::Malformed(format!(
                    "`{id}` refers to no earlier part of this change set"
                ))
            })?;
            at_set(meta, set, true, None)?
        }
        Head::Name { name, key } => match meta.entity_set_named(name) {
            Some((name, ty)) => {
                if matches!(key, Some(KeySpec::Empty)) {
                    return Err(ParseError::Malformed(format!(
                        "`{name}()` has an empty key"
                    )));
                }
                at_type(meta, name, ty, key.is_some(), key.as_ref())?
            }
            None if path.tail.is_empty() => {
                return unbound(req, name, key.as_ref(), query, meta, env, out);
            }
            None => return Err(not(format!("`{name}` is not an entity set of this org"))),
        },
        _ => return Err(not("unexpected path")),
    };
    let last = path.tail.len();
    for (i, seg) in path.tail.iter().enumerate() {
        let is_last = i + 1 == last;
        match seg {
            Segment::Name { name, key } => {
                let member = meta.member(at.logical, name);
                if let Some(Member::Navigation(nav)) = member {
                    if !at.single {
                        return Err(ParseError::Malformed(format!(
                            "`{name}` needs a single {} row before it",
                            at.set
                        )));
                    }
                    if key.is_some() && !nav.collection {
                        return Err(ParseError::Malformed(format!(
                            "`{name}` is single-valued and takes no key"
                        )));
                    }
                    let (here, there) = revealed(meta, name, nav);
                    let mut columns = at.keys.clone();
                    // Changing a reference (`.../nav/$ref` written) reads no row through it:
                    // the owner's lookup is counted as written by `reference`.
                    let ref_write = matches!(path.tail.get(i + 1), Some(Segment::Ref))
                        && !matches!(*req.method, Method::GET | Method::HEAD);
                    if !ref_write {
                        columns.extend(here);
                    }
                    out.touch_set(at.set, Verb::Get, columns, false);
                    let target = meta.set_of(&nav.target).ok_or_else(|| {
                        not(format!(
                            "`{name}` leads to `{}`, which has no entity set",
                            nav.target
                        ))
                    })?;
                    at = at_set(meta, target, !nav.collection || key.is_some(), key.as_ref())?;
                    at.keys.extend(there);
                } else if member == Some(Member::Property) {
                    no_options(query)?;
                    return property(req, &at, name, key.as_ref(), &path.tail[i + 1..], out);
                } else {
                    return Err(not(format!(
                        "`{name}` is not a navigation property or column of {}",
                        at.logical
                    )));
                }
            }
            Segment::Qualified { name, params } => {
                if !is_last {
                    return Err(not(format!(
                        "segments after the operation `{name}` are not inspected"
                    )));
                }
                return bound(req, &at, name, params.as_ref(), query, meta, env, out);
            }
            Segment::Count => {
                if !is_last || at.single {
                    return Err(ParseError::Malformed(
                        "$count must end a collection path".into(),
                    ));
                }
                super::only(req.method, &[Method::GET, Method::HEAD], "$count")?;
                if !at.keys.is_empty() {
                    out.touch_set(at.set, Verb::Get, at.keys.clone(), false);
                }
                return options::read(at.set, at.logical, query, env, out, false);
            }
            Segment::Ref => {
                return reference(req, &at, &path.tail[..i], is_last, query, meta, env, out);
            }
            Segment::Value => {
                return Err(ParseError::Malformed("$value must follow a column".into()));
            }
        }
    }
    final_access(req, &at, query, meta, env, out)
}

fn at_set<'a>(
    meta: &'a Metadata,
    set: &str,
    single: bool,
    key: Option<&KeySpec>,
) -> Result<At<'a>, ParseError> {
    let (set, ty) = meta
        .entity_set_named(set)
        .ok_or_else(|| not(format!("`{set}` is not an entity set of this org")))?;
    at_type(meta, set, ty, single, key)
}

/// [`at_set`] with the set's type already looked up.
fn at_type<'a>(
    meta: &'a Metadata,
    set: &'a Arc<str>,
    ty: &'a crate::policy::metadata::EntityType,
    single: bool,
    key: Option<&KeySpec>,
) -> Result<At<'a>, ParseError> {
    Ok(At {
        set,
        logical: &ty.logical_name,
        single,
        keys: alternate_key(meta, &ty.logical_name, key)?,
    })
}

/// The columns of `logical` a key names besides its primary key: naming the primary key
/// (`contacts(contactid=<id>)`) is the same as `contacts(<id>)`; any other key property is an
/// alternate key and counts as a column the request names. Every key property must be a
/// column of the table: a navigation property's name (`createdby`) is not one (a lookup in an
/// alternate key is named by its `_createdby_value` column), and every value a literal.
pub(super) fn alternate_key(
    meta: &Metadata,
    logical: &str,
    key: Option<&KeySpec>,
) -> Result<Columns, ParseError> {
    let Some(KeySpec::Pairs(pairs)) = key else {
        return Ok(Columns::new());
    };
    if let Some((name, _)) = pairs.iter().find(|(p, _)| !meta.has_property(logical, p)) {
        return Err(not(format!(
            "the key property `{name}` is not a column of {logical}"
        )));
    }
    // A key's value is data: a literal, never a name (`emailaddress1=createdby`).
    for (name, value) in pairs {
        crate::policy::odata::expr::literal_alias(name, value).map_err(|_| {
            ParseError::Malformed(format!(
                "the key value `{name}={value}` of {logical} is not a literal"
            ))
        })?;
    }
    let primary = meta.key_of(logical).unwrap_or_default();
    Ok(pairs
        .iter()
        .map(|(p, _)| p)
        .filter(|k| !primary.iter().any(|p| p == *k))
        .collect())
}

/// The method applied to the row or collection the path ends at.
fn final_access(
    req: &Request<'_>,
    at: &At,
    query: &Query,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let verb = method_verb(req.method)?;
    if verb == Verb::Get && !at.keys.is_empty() {
        out.touch_set(at.set, Verb::Get, at.keys.clone(), false);
    }
    match (verb, at.single) {
        (Verb::Get, _) => options::read(at.set, at.logical, query, env, out, true),
        (Verb::Post, false) => {
            out.touch_set(at.set, Verb::Post, at.keys.clone(), false);
            body::write(req.body, at.set, at.logical, Verb::Post, meta, env, out)?;
            options::returned(req, at.set, at.logical, query, env, out)
        }
        (Verb::Patch, true) => {
            out.touch_set(at.set, Verb::Patch, at.keys.clone(), false);
            out.upsert = Some(at.set.to_string());
            body::write(req.body, at.set, at.logical, Verb::Patch, meta, env, out)?;
            options::returned(req, at.set, at.logical, query, env, out)
        }
        (Verb::Delete, true) => {
            no_options(query)?;
            out.touch_set(at.set, Verb::Delete, at.keys.clone(), false);
            Ok(())
        }
        _ => Err(not(format!(
            "{} on a {} of `{}` is not a valid operation",
            req.method,
            if at.single { "row" } else { "collection" },
            at.set
        ))),
    }
}

/// Refuses any query option or parameter alias, naming them: the shape has no use for them,
/// and Dataverse might still apply them.
fn no_options(query: &Query) -> Result<(), ParseError> {
    let named: Vec<String> = query
        .options
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(query.aliases.iter().map(|(n, _)| format!("@{n}")))
        .collect();
    if named.is_empty() {
        Ok(())
    } else {
        Err(ParseError::Malformed(format!(
            "this request takes no query options (`{}`)",
            named.join("`, `")
        )))
    }
}

/// `.../column` and `.../column/$value`.
fn property(
    req: &Request<'_>,
    at: &At,
    name: &str,
    key: Option<&KeySpec>,
    rest: &[Segment],
    out: &mut Classified,
) -> Result<(), ParseError> {
    if key.is_some() || !at.single {
        return Err(ParseError::Malformed(format!(
            "`{name}` is a column of a single row and takes no key"
        )));
    }
    if !(rest.is_empty() || rest == [Segment::Value]) {
        return Err(ParseError::Malformed(format!(
            "only $value may follow the column `{name}`"
        )));
    }
    // Setting or clearing one column is an update of the row: the PATCH right covers it.
    let verb = match method_verb(req.method)? {
        Verb::Get => Verb::Get,
        Verb::Put | Verb::Delete => Verb::Patch,
        _ => {
            return Err(not(format!(
                "{} on the column `{name}` is not valid",
                req.method
            )));
        }
    };
    if *req.method == Method::PUT && rest.is_empty() {
        body::property_value(req.body, name)?;
    }
    let mut columns = at.keys.clone();
    columns.push(name);
    out.touch_set(at.set, verb, columns, false);
    Ok(())
}

/// `.../nav/$ref`: reading or changing an association. A read takes the query options of the
/// collection it lists, classified the same way; a change takes none.
#[allow(clippy::too_many_arguments)]
fn reference(
    req: &Request<'_>,
    at: &At,
    before: &[Segment],
    is_last: bool,
    query: &Query,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let Some(Segment::Name { name, .. }) = before.last() else {
        return Err(ParseError::Malformed(
            "$ref must follow a navigation property".into(),
        ));
    };
    if !is_last {
        return Err(ParseError::Malformed("$ref must end the path".into()));
    }
    let Some(owner) = out.uses.iter().rev().find_map(|u| match u {
        Use::Table(t) if t.verb == Verb::Get => Some(t.set.to_string()),
        _ => None,
    }) else {
        return Err(ParseError::Malformed(
            "$ref must follow a navigation property of a row".into(),
        ));
    };
    // A collection-valued navigation's references live on the related rows (their lookup):
    // changing them is a change to those rows. A single-valued one lives on the owner.
    let owner_logical = meta
        .entity_set(&owner)
        .map(|t| t.logical_name.clone())
        .unwrap_or_default();
    let collection = meta
        .navigation(&owner_logical, name)
        .is_some_and(|n| n.collection);
    match *req.method {
        Method::GET | Method::HEAD => {
            // `at.keys` already holds the related rows' lookup for a collection.
            if !at.keys.is_empty() {
                out.touch_set(at.set, Verb::Get, at.keys.clone(), false);
            }
            options::read(at.set, at.logical, query, env, out, false)?;
        }
        // Clearing a single-valued reference empties the owner's own lookup: an update of that
        // column, reading nothing.
        Method::DELETE if !collection => {
            no_options(query)?;
            out.touch(&owner, Verb::Patch, [name], false);
            if req
                .body
                .is_some_and(|b| !b.iter().all(u8::is_ascii_whitespace))
            {
                return Err(ParseError::Malformed(
                    "DELETE of a $ref takes no body".into(),
                ));
            }
        }
        Method::POST | Method::PUT | Method::DELETE => {
            no_options(query)?;
            let related = if collection { Verb::Patch } else { Verb::Get };
            let own = if collection {
                Columns::new()
            } else {
                Columns::from([name])
            };
            out.touch(&owner, Verb::Patch, own, false);
            out.touch_set(at.set, Verb::Get, Columns::new(), false);
            if related == Verb::Patch {
                out.touch_set(at.set, Verb::Patch, at.keys.clone(), false);
            }
            if let Some(body) = req.body.filter(|b| !b.is_empty()) {
                body::reference_body(body, related, meta, env, out)?;
            }
        }
        ref m => return Err(not(format!("{m} on $ref is not valid"))),
    }
    Ok(())
}

/// `Microsoft.Dynamics.CRM.X` bound to the current row or collection.
#[allow(clippy::too_many_arguments)]
fn bound(
    req: &Request<'_>,
    at: &At,
    name: &str,
    params: Option<&KeySpec>,
    query: &Query,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let op = meta
        .bound_operations(name)
        .into_iter()
        .find(|op| match &op.bound_to {
            Some(Binding::Collection(t)) => !at.single && meta.is_derived_from(at.logical, t),
            Some(Binding::Entity(t)) => at.single && meta.is_derived_from(at.logical, t),
            _ => false,
        })
        .ok_or_else(|| {
            not(format!(
                "`{name}` is not an operation bound to {} of {}",
                if at.single { "a row" } else { "the collection" },
                at.logical
            ))
        })?;
    if op.is_action {
        super::only(req.method, &[Method::POST], &format!("the action {name}"))?;
        no_options(query)?;
        body::action(
            req.body,
            name,
            Some((&**at.set, at.logical)),
            meta,
            env,
            out,
        )?;
        if !at.single && body::bulk_verbs(name).is_some() {
            // A bulk write returns ids, not rows: its table's write verbs are all it needs.
            return Ok(());
        }
    } else {
        super::only(
            req.method,
            &[Method::GET, Method::HEAD],
            &format!("the function {name}"),
        )?;
        out.uses.push(Use::Function(name.to_string()));
        options::parameters(op, params, query, meta, env, out)?;
    }
    out.touch_set(at.set, Verb::Get, at.keys.clone(), false);
    Ok(())
}

/// An unbound function or action called by name at the root.
fn unbound(
    req: &Request<'_>,
    name: &str,
    key: Option<&KeySpec>,
    query: &Query,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    if let Some(op) = meta.unbound_function(name) {
        super::only(
            req.method,
            &[Method::GET, Method::HEAD],
            &format!("the function {name}"),
        )?;
        if matches!(key, Some(KeySpec::Guid(_))) {
            return Err(ParseError::Malformed(format!(
                "`{name}` is a function: call it as {name}()"
            )));
        }
        out.uses.push(Use::Function(name.to_string()));
        return options::parameters(op, key, query, meta, env, out);
    }
    if meta.unbound_action(name).is_some() {
        super::only(req.method, &[Method::POST], &format!("the action {name}"))?;
        no_options(query)?;
        if key.is_some() {
            return Err(ParseError::Malformed(format!(
                "`{name}` is an action: parameters go in the body"
            )));
        }
        no_options(query)?;
        return body::action(req.body, name, None, meta, env, out);
    }
    Err(not(format!(
        "`{name}` is not an entity set or operation of this org"
    )))
}

/// Without metadata only the plainest shapes are understood: a table's collection, row by GUID
/// or `$count` that names no column (any name could be a navigation property, which only the
/// CSDL tells), and a call of a listed function without parameters or options.
pub(super) fn without_metadata(
    req: &Request<'_>,
    path: &ResourcePath,
    query: &Query,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let unavailable = |out: &mut Classified| {
        out.needs_metadata = true;
        Ok(())
    };
    let Head::Name { name, key } = &path.head else {
        return unavailable(out);
    };
    if env.known_functions.iter().any(|f| f == name) && path.tail.is_empty() {
        super::only(
            req.method,
            &[Method::GET, Method::HEAD],
            &format!("the function {name}"),
        )?;
        // Its parameters and the members of its result are in the metadata.
        if !query.aliases.is_empty()
            || !query.options.is_empty()
            || matches!(key, Some(KeySpec::Pairs(_)))
        {
            return unavailable(out);
        }
        out.uses.push(Use::Function(name.to_string()));
        return Ok(());
    }
    let count = match path.tail.as_slice() {
        [] => false,
        [Segment::Count] if key.is_none() => true,
        _ => return unavailable(out),
    };
    if query_needs_metadata(query) || matches!(key, Some(KeySpec::Empty | KeySpec::Pairs(_))) {
        return unavailable(out);
    }
    let verb = method_verb(req.method)?;
    match (verb, key.is_some(), count) {
        (Verb::Get, _, _) => {
            options::read_plain(name, query, out, !count);
            Ok(())
        }
        (Verb::Delete, true, false) => {
            no_options(query)?;
            out.touch(name, Verb::Delete, Columns::new(), false);
            Ok(())
        }
        _ => unavailable(out),
    }
}
