//! Query options: the columns and related tables a read names.

use std::sync::Arc;

use super::*;
use crate::policy::metadata::{Member, Operation, TypeRef};
use crate::policy::odata::expr::{self, Path, Refs};
use crate::policy::odata::{ExpandItem, KeySpec, Pair, QUERY_PARAMETERS, Segment, parse_expand};

/// A GET of `set` (collection, row or `$count`). `main` marks the request's own rows, where the
/// gateway may add `$select`.
pub(super) fn read(
    set: &Arc<str>,
    logical: &str,
    q: &Query,
    env: &Env<'_>,
    out: &mut Classified,
    main: bool,
) -> Result<(), ParseError> {
    let meta = env.metadata.ok_or_else(|| not("metadata needed"))?;
    // Only a parameter (a name without `$`) can be a fetchXml or a stored query: the usual read
    // has none, and then none is looked up.
    let parameters = q.options.iter().any(|(n, _)| !n.starts_with('$'));
    if parameters && let Some(xml) = q.get("fetchXml") {
        return super::fetch::classify(xml, q, set, logical, meta, out);
    }
    // Found once for every name of the read, when it names one (a read without options does
    // not look its type up).
    let found = std::cell::OnceCell::new();
    let ty = || *found.get_or_init(|| meta.type_ref(logical));
    let (mut columns, selected) = match q.get("$select") {
        Some(s) => (selected(s, logical, ty(), meta, out)?, true),
        None => (Columns::new(), false),
    };
    let mut refs = filter_and_order(q, &q.aliases)?;
    // `Some(true)`: the `$apply` only filters, so it returns whole rows.
    let apply_rows = match q.get("$apply") {
        Some(a) => {
            let mut named = Vec::new();
            let (r, rows) = apply_refs(a, &q.aliases, &mut named)?;
            merge(&mut refs, r);
            // The names the aggregates are given must be new (OData's aggregation extension
            // says so too): a column's or a navigation property's name would read as one.
            for n in &named {
                if !crate::policy::odata::is_identifier(n) || ty().member(n).is_some() {
                    return Err(not(format!(
                        "the `$apply` alias `{n}` must be a new name, not a column or navigation property of {logical}"
                    )));
                }
                not_a_table_name(n, "`$apply` alias", meta)?;
            }
            Some(rows)
        }
        None => None,
    };
    for v in &refs.variables {
        not_a_table_name(v, "lambda variable", meta)?;
    }
    if !refs.paths.is_empty() {
        resolve(&refs.paths, logical, ty(), meta, out, &mut columns)?;
    }
    if !refs.columns.is_empty() {
        resolve_columns(&refs.columns, logical, ty(), meta, out, &mut columns)?;
    }
    if let Some(token) = q.get("$skiptoken") {
        columns.extend(paged_on(token, logical, meta)?);
    }
    let mut used = refs.aliases;
    if let Some(x) = q.get("$expand") {
        columns.append(&expand(
            &parse_expand(x)?,
            logical,
            q,
            meta,
            out,
            &mut used,
        )?);
    }
    aliases(&used, q, meta, env, out)?;
    let stored = parameters && stored_queries(q, set, out)?;
    // `main` is false only for `$count`, which returns a number, not rows. An `$apply` that
    // only filters returns whole rows like a plain read: `$select` is added the same way.
    if main && !selected && apply_rows != Some(false) && !stored {
        out.touch_main(set, columns);
    } else {
        out.touch_set(set, Verb::Get, columns, false);
    }
    Ok(())
}

/// `$select`/`$expand` on the row a POST or PATCH returns with `Prefer: return=representation`.
pub(super) fn returned(
    req: &Request<'_>,
    set: &Arc<str>,
    logical: &str,
    q: &Query,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    // Any `return` preference but an explicit `minimal` may return the row.
    let represent = crate::policy::headers::preferences(req.headers)
        .map_err(ParseError::Malformed)?
        .iter()
        .any(|p| p.name == "return" && p.value.as_deref() != Some("minimal"));
    let allowed = |n: &str| n == "$select" || n == "$expand";
    if q.options.iter().any(|(n, _)| !allowed(n)) || !q.aliases.is_empty() {
        return Err(ParseError::Malformed(
            "only $select and $expand may accompany a write".into(),
        ));
    }
    // `$select`/`$expand` on a write are checked whatever the Prefer header says.
    if !represent && q.options.is_empty() {
        return Ok(());
    }
    read(set, logical, q, env, out, true)
}

/// The `$select` list `value` ([`Query::select_items`]), with room for the few columns the
/// classifier adds (filtered, ordered, lookups).
fn select_list(value: &str) -> Result<Columns, ParseError> {
    let mut columns = Columns::with_capacity(value.len() + 32);
    Query::select_items(value, |c| columns.push(c))?;
    Ok(columns)
}

/// The columns of `logical` the `$select` list `value` names. Each name must be a member of
/// the table, as Dataverse's own names are (case and all): a name that is neither a column nor a
/// navigation property is refused. A navigation property named there reads the table it leads
/// to, as the same name does in `$filter`: it is resolved as a one-segment path (the lookup it is
/// bound to joins the columns, the target is read).
fn selected(
    value: &str,
    logical: &str,
    ty: TypeRef<'_>,
    meta: &Metadata,
    out: &mut Classified,
) -> Result<Columns, ParseError> {
    let mut columns = select_list(value)?;
    let mut navs: Vec<String> = Vec::new();
    for c in &columns {
        match ty.member(c) {
            Some(Member::Property) => {}
            Some(Member::Navigation(_)) => navs.push(c.to_owned()),
            None => {
                return Err(not(format!(
                    "`{c}` in $select is not a column of {logical}"
                )));
            }
        }
    }
    if !navs.is_empty() {
        columns.retain(|c| !navs.iter().any(|n| n == c));
        let paths: Vec<Path> = navs
            .iter()
            .map(|n| Path::from_elem(n.as_str(), 1))
            .collect();
        resolve(&paths, logical, ty, meta, out, &mut columns)?;
    }
    Ok(columns)
}

/// Without metadata: a read that names no column. Any name could be a navigation property
/// (`createdby` is one on every table) that only the CSDL tells from a column, so every option
/// but `$top` and `$count` needs the metadata.
pub(super) fn read_plain(set: &str, q: &Query, out: &mut Classified, main: bool) {
    let plain = |n: &str| n == "$top" || n == "$count";
    if !q.options.iter().all(|(n, _)| plain(n)) || !q.aliases.is_empty() {
        out.needs_metadata = true;
    } else if main {
        out.touch_main(&Arc::from(set), Columns::new());
    } else {
        out.touch(set, Verb::Get, Columns::new(), false);
    }
}

/// A name the classifier does not resolve against a table (`what`: a lambda variable, a
/// parameter alias, an aggregate's name) must not be spelled like one, in any case
/// ([`Metadata::spelled_like_a_table`]): no name it passes unresolved could be read as a table.
fn not_a_table_name(name: &str, what: &str, meta: &Metadata) -> Result<(), ParseError> {
    if meta.spelled_like_a_table(name) {
        return Err(not(format!(
            "the {what} `{name}` is spelled like a table or navigation property of this org: give it another name"
        )));
    }
    Ok(())
}

/// The columns the `$skiptoken` `token`'s paging cookie pages on: compared with the values it
/// carries, so filtered columns of `logical` (each must be one of its columns).
fn paged_on(token: &str, logical: &str, meta: &Metadata) -> Result<Vec<String>, ParseError> {
    let columns = crate::policy::odata::skiptoken::columns(token)?;
    match columns.iter().find(|c| !meta.has_property(logical, c)) {
        Some(c) => Err(not(format!(
            "the `$skiptoken` paging cookie names `{c}`, which is not a column of {logical}"
        ))),
        None => Ok(columns),
    }
}

/// What `$filter` and `$orderby` read (parameter aliases bound where they are used).
fn filter_and_order<'a>(q: &'a Query<'_>, aliases: &'a [Pair<'a>]) -> Result<Refs<'a>, ParseError> {
    let mut refs = match q.get("$filter") {
        Some(f) => expr::filter_refs(f, aliases)?,
        None => Refs::default(),
    };
    if let Some(o) = q.get("$orderby") {
        merge(&mut refs, expr::orderby_refs(o, aliases)?);
    }
    Ok(refs)
}

fn merge<'a>(into: &mut Refs<'a>, from: Refs<'a>) {
    if *into == Refs::default() {
        *into = from;
        return;
    }
    into.lambdas |= from.lambdas;
    into.variables.extend(from.variables);
    into.paths.extend(from.paths);
    into.columns.extend(from.columns);
    for a in from.aliases {
        if !into.aliases.contains(&a) {
            into.aliases.push(a);
        }
    }
}

/// Columns named by query functions' `PropertyName`, from `logical`: a column by its name, a
/// lookup by its own name (`ownerid` compares the column `_ownerid_value`, not the related row);
/// a longer path resolves like a member path. The columns of the starting table are pushed on
/// `own`.
fn resolve_columns(
    names: &[Path<'_>],
    logical: &str,
    ty: TypeRef<'_>,
    meta: &Metadata,
    out: &mut Classified,
    own: &mut Columns,
) -> Result<(), ParseError> {
    for name in names {
        match name.as_slice() {
            [column] if ty.has_property(column) => own.push(column),
            [lookup]
                if ty.navigation(lookup).is_some_and(|n| !n.collection)
                    && ty.has_property(&format!("_{lookup}_value")) =>
            {
                own.push(&format!("_{lookup}_value"))
            }
            _ => resolve(std::slice::from_ref(name), logical, ty, meta, out, own)?,
        }
    }
    Ok(())
}

/// Resolves member paths from `logical`: navigation segments become reads of their tables and
/// observe the lookup they are bound to (see [`lookups::revealed`]); the last segment, a column.
/// The columns of the starting table are pushed on `own`.
fn resolve(
    paths: &[Path<'_>],
    logical: &str,
    root: TypeRef<'_>,
    meta: &Metadata,
    out: &mut Classified,
    own: &mut Columns,
) -> Result<(), ParseError> {
    for path in paths {
        let mut ty = root;
        let mut set: Option<&Arc<str>> = None;
        for (i, &seg) in path.iter().enumerate() {
            let member = ty.member(seg);
            if let Some(Member::Navigation(nav)) = member {
                let target = meta.shared_set_of(&nav.target).ok_or_else(|| {
                    not(format!("`{seg}` leads to a table without an entity set"))
                })?;
                let (here, there) = lookups::revealed(meta, seg, nav);
                match &set {
                    Some(s) => out.touch_set(s, Verb::Get, Columns::from_iter(here), false),
                    None => own.extend(here),
                }
                // Every table a lookup path passes through is read, not only the last one.
                out.touch_set(target, Verb::Get, Columns::from_iter(there), false);
                ty = meta.type_ref(&nav.target);
                set = Some(target);
            } else if member == Some(Member::Property) && i + 1 == path.len() {
                match set {
                    Some(s) => out.touch_set(s, Verb::Get, [seg], false),
                    None => own.push(seg),
                }
            } else {
                return Err(not(format!(
                    "`{}` does not resolve on {logical}",
                    path.join("/")
                )));
            }
        }
    }
    Ok(())
}

/// Reads of the expanded tables; returns the columns of `logical` the expansions observe (the
/// lookups single-valued navigations are bound to). Aliases used in nested options are added to
/// `used`.
fn expand<'a>(
    items: &[ExpandItem<'a>],
    logical: &str,
    q: &'a Query<'_>,
    meta: &Metadata,
    out: &mut Classified,
    used: &mut Vec<&'a str>,
) -> Result<Columns, ParseError> {
    let mut parent = Columns::new();
    for item in items {
        let nav = meta.navigation(logical, item.nav).ok_or_else(|| {
            not(format!(
                "`{}` is not a navigation property of {logical}",
                item.nav
            ))
        })?;
        let target = meta.shared_set_of(&nav.target).ok_or_else(|| {
            not(format!(
                "`{}` leads to a table without an entity set",
                item.nav
            ))
        })?;
        let target_ty = meta.type_ref(&nav.target);
        let mut columns = match item.option("$select") {
            Some(s) => selected(s, &nav.target, target_ty, meta, out)?,
            None => Columns::new(),
        };
        let (here, there) = lookups::revealed(meta, item.nav, nav);
        parent.extend(here);
        columns.extend(there);
        let mut refs = Refs::default();
        if let Some(f) = item.option("$filter") {
            merge(&mut refs, expr::filter_refs(f, &q.aliases)?);
        }
        if let Some(o) = item.option("$orderby") {
            merge(&mut refs, expr::orderby_refs(o, &q.aliases)?);
        }
        for v in &refs.variables {
            not_a_table_name(v, "lambda variable", meta)?;
        }
        resolve(&refs.paths, &nav.target, target_ty, meta, out, &mut columns)?;
        resolve_columns(
            &refs.columns,
            &nav.target,
            target_ty,
            meta,
            out,
            &mut columns,
        )?;
        for a in refs.aliases {
            if !used.contains(&a) {
                used.push(a);
            }
        }
        columns.append(&expand(&item.children, &nav.target, q, meta, out, used)?);
        let all = item.option("$select").is_none();
        out.touch_set(target, Verb::Get, columns, all);
    }
    Ok(parent)
}

/// `$apply`: `filter(...)`, `groupby((paths)[,aggregate(...)])`, `aggregate(...)`, joined by `/`.
/// The flag is true when every step is a `filter`: the result is whole rows, not groups. The
/// names given to aggregates (`as total`) are added to `named`.
fn apply_refs<'a>(
    value: &'a str,
    aliases: &'a [Pair<'a>],
    named: &mut Vec<&'a str>,
) -> Result<(Refs<'a>, bool), ParseError> {
    let mut refs = Refs::default();
    let mut rows = true;
    for step in split_top(value, '/') {
        let step = step.trim();
        let (name, args) = step
            .split_once('(')
            .ok_or_else(|| not(format!("`$apply={value}` is not inspected")))?;
        let args = args
            .strip_suffix(')')
            .ok_or_else(|| ParseError::Malformed(format!("unbalanced `$apply={value}`")))?;
        match name {
            "filter" => merge(&mut refs, expr::filter_refs(args, aliases)?),
            "groupby" => {
                rows = false;
                let (group, rest) = match args.strip_prefix('(').and_then(|a| a.split_once(')')) {
                    Some(x) => x,
                    None => {
                        return Err(ParseError::Malformed(format!(
                            "`groupby` needs a parenthesized list in `{value}`"
                        )));
                    }
                };
                for p in group.split(',') {
                    refs.paths.push(p.trim().split('/').collect());
                }
                if let Some(agg) = rest
                    .trim_start_matches(',')
                    .trim()
                    .strip_prefix("aggregate(")
                {
                    merge(
                        &mut refs,
                        aggregate_refs(agg.strip_suffix(')').unwrap_or(agg), named)?,
                    );
                } else if !rest.trim().is_empty() {
                    return Err(not(format!("`$apply={value}` is not inspected")));
                }
            }
            "aggregate" => {
                rows = false;
                merge(&mut refs, aggregate_refs(args, named)?)
            }
            _ => return Err(not(format!("`{name}` in $apply is not inspected"))),
        }
    }
    if refs
        .paths
        .iter()
        .flatten()
        .any(|s| !crate::policy::odata::is_identifier(s))
    {
        return Err(not(format!(
            "`$apply={value}`: only member paths are inspected"
        )));
    }
    Ok((refs, rows))
}

/// `col with sum as total, $count as n`: the columns aggregated, with the names given to the
/// results added to `named`. Only the standard aggregation methods are understood.
fn aggregate_refs<'a>(args: &'a str, named: &mut Vec<&'a str>) -> Result<Refs<'a>, ParseError> {
    const METHODS: [&str; 5] = ["sum", "min", "max", "average", "countdistinct"];
    let mut refs = Refs::default();
    for item in args.split(',') {
        let words: Vec<&str> = item.split_whitespace().collect();
        match words.as_slice() {
            ["$count", "as", name] => named.push(name),
            [path, "with", method, "as", name] if METHODS.contains(method) => {
                refs.paths.push(path.split('/').collect());
                named.push(name);
            }
            _ => return Err(not(format!("aggregate `{item}` is not inspected"))),
        }
    }
    Ok(refs)
}

fn split_top(s: &str, sep: char) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Every alias defined must have been used where the gateway bound it (`used`; using an
/// undefined one is refused where it is used): Dataverse could bind an alias the gateway did
/// not see. An alias whose value is a record reference reads that record's table.
fn aliases(
    used: &[&str],
    q: &Query,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    for (name, value) in &q.aliases {
        not_a_table_name(name, "parameter alias", meta)?;
        if !used.contains(&name.as_ref()) {
            return Err(not(format!(
                "parameter alias `@{name}` is not used where the gateway inspects aliases"
            )));
        }
        if expr::is_record_reference(value) {
            // Parsed like a body: a key given twice is refused.
            let json = body::alias_json(value.trim())?;
            body::references_in(&json, meta, env, out)?;
        }
    }
    Ok(())
}

/// The parameters in the path of a call of the function `op`: each one it declares, given as
/// a literal or an alias; table names for the few functions that take them.
pub(super) fn parameters(
    op: &Operation,
    params: Option<&KeySpec>,
    q: &Query,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let mut used = Vec::new();
    // A bound operation's first parameter is the row or collection it is bound to.
    let declared = &op.parameters[usize::from(op.bound_to.is_some()).min(op.parameters.len())..];
    if let Some(KeySpec::Pairs(pairs)) = params {
        for (name, value) in pairs {
            if !declared.iter().any(|(p, _)| p == name) {
                return Err(not(format!(
                    "`{name}` is not a parameter of the function {}",
                    op.name
                )));
            }
            // A parameter given through an alias is checked on the alias's value.
            let value = match value.strip_prefix('@') {
                Some(alias) => {
                    used.push(alias);
                    q.alias(alias).ok_or_else(|| {
                        ParseError::Malformed(format!(
                            "parameter alias `@{alias}` is used but not defined"
                        ))
                    })?
                }
                None => {
                    expr::literal_alias(name, value).map_err(|_| {
                        not(format!(
                            "the parameter `{name}={value}` of {} is not a literal",
                            op.name
                        ))
                    })?;
                    value.as_str()
                }
            };
            if name == "EntityNames" || name == "EntityName" || name == "TargetEntityName" {
                for logical in value.trim().trim_matches(['[', ']']).split(',') {
                    let logical = logical.trim().trim_matches(['\'', '"']);
                    let set = meta
                        .set_of(logical)
                        .ok_or_else(|| not(format!("`{logical}` is not a table of this org")))?;
                    out.touch(set, Verb::Get, Columns::new(), true);
                }
            }
        }
    }
    if q.options.iter().any(|(n, _)| n != "$select") {
        return Err(ParseError::Malformed(
            "functions take no query options besides $select".into(),
        ));
    }
    if let Some(select) = q.get("$select") {
        function_select(op, select, meta, out)?;
    }
    // A parameter's alias is a literal or a record reference, never an expression.
    for (name, value) in &q.aliases {
        if used.contains(&name.as_ref()) && !expr::is_record_reference(value) {
            expr::literal_alias(name, value)?;
        }
    }
    aliases(&used, q, meta, env, out)
}

/// `$select` on what the function `op` returns: understood when it returns rows of a table
/// (checked as that table's `$select`), refused otherwise, since the members of a complex
/// result are not in the metadata the gateway keeps and a name there could not be told from a
/// navigation property.
fn function_select(
    op: &Operation,
    select: &str,
    meta: &Metadata,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let returned = op.return_type.as_deref().unwrap_or_default();
    let row = returned
        .strip_prefix("Collection(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(returned);
    if meta.entity_type(row).is_none() {
        return Err(not(format!(
            "`$select` on the result of {} is not inspected (it returns no rows of a table)",
            op.name
        )));
    }
    selected(select, row, meta.type_ref(row), meta, out).map(drop)
}

/// `savedQuery`, `userQuery`, `sql`: recorded as uninspectable; the policy decides.
fn stored_queries(q: &Query, set: &str, out: &mut Classified) -> Result<bool, ParseError> {
    let mut any = false;
    for kind in ["savedQuery", "userQuery", "sql"] {
        if q.get(kind).is_some() {
            if q.options.len() > 1 {
                return Err(ParseError::Malformed(format!(
                    "{kind} cannot be combined with other query options"
                )));
            }
            out.uses.push(Use::Uninspectable {
                kind: kind.to_string(),
                set: set.to_string(),
            });
            any = true;
        }
    }
    Ok(any)
}

/// `EntityDefinitions` reads: one table's definition, or a listing.
pub(super) fn entity_definitions(
    req: &Request<'_>,
    key: Option<&KeySpec>,
    tail: &[Segment],
    q: &Query,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    super::only(
        req.method,
        &[http::Method::GET, http::Method::HEAD],
        "EntityDefinitions",
    )?;
    if let Some((name, _)) = q.aliases.first() {
        return Err(not(format!(
            "parameter alias `@{name}` is not used where the gateway inspects aliases"
        )));
    }
    if let Some(p) = QUERY_PARAMETERS.iter().find(|p| q.get(p).is_some()) {
        return Err(not(format!("`{p}` does not apply to EntityDefinitions")));
    }
    definition_tail(tail)?;
    let Some(meta) = env.metadata else {
        out.needs_metadata = true;
        return Ok(());
    };
    let mut logicals = Vec::new();
    match key {
        Some(KeySpec::Pairs(p)) if p.len() == 1 && p[0].0 == "LogicalName" => {
            logicals.push(p[0].1.trim_matches('\'').to_string())
        }
        Some(_) => return Err(not("EntityDefinitions are inspected only by LogicalName")),
        None if tail.is_empty() => match q.get("$filter") {
            Some(f) => logicals.extend(logical_names_in(f)?),
            None => out.uses.push(Use::AllDefinitions),
        },
        None => {
            return Err(not(
                "EntityDefinitions sub-resources need a LogicalName key",
            ));
        }
    }
    if key.is_some() && q.get("$filter").is_some() && tail.is_empty() {
        return Err(not("$filter on a single EntityDefinition is not inspected"));
    }
    for logical in logicals {
        let set = meta
            .set_of(&logical)
            .ok_or_else(|| not(format!("`{logical}` is not a table of this org")))?;
        out.uses.push(Use::Definition(set.to_string()));
    }
    Ok(())
}

/// The metadata a table's definition holds, and the casts to its metadata types
/// (`Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`): every segment after
/// `EntityDefinitions(LogicalName='x')` is one of these, or the request is refused naming it.
const DEFINITION_PARTS: &[&str] = &[
    "Attributes",
    "Keys",
    "OneToManyRelationships",
    "ManyToOneRelationships",
    "ManyToManyRelationships",
    "Privileges",
    "OptionSet",
    "GlobalOptionSet",
];

fn definition_tail(tail: &[Segment]) -> Result<(), ParseError> {
    for seg in tail {
        match seg {
            Segment::Name { name, .. } if DEFINITION_PARTS.contains(name) => {}
            Segment::Qualified { name, params: None } if name.ends_with("Metadata") => {}
            Segment::Name { name, .. } | Segment::Qualified { name, .. } => {
                return Err(not(format!(
                    "`{name}` is not a part of a table's definition the gateway knows"
                )));
            }
            Segment::Count | Segment::Value | Segment::Ref => {
                return Err(not("EntityDefinitions take no $count, $value or $ref"));
            }
        }
    }
    Ok(())
}

/// `LogicalName eq 'a' [or LogicalName eq 'b' ...]`, nothing else.
fn logical_names_in(filter: &str) -> Result<Vec<String>, ParseError> {
    filter
        .split(" or ")
        .map(|clause| {
            let c = clause.trim().trim_start_matches('(').trim_end_matches(')');
            let value = c.strip_prefix("LogicalName eq ").map(str::trim);
            match value
                .and_then(|v| v.strip_prefix('\''))
                .and_then(|v| v.strip_suffix('\''))
            {
                Some(name) if crate::policy::odata::is_identifier(name) => Ok(name.to_string()),
                _ => Err(not(format!(
                    "EntityDefinitions filter `{filter}` is not `LogicalName eq '<name>'`"
                ))),
            }
        })
        .collect()
}
