//! The attributes of FetchXML elements: the one exhaustive table of what each understood
//! attribute means, and the `paging-cookie` it may carry.
//!
//! Pure. An attribute [`role`] does not list is refused with its element and name; enumerated
//! values outside the documented set (`link-type`) and the hierarchy operators are refused too.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Attrs, FetchError};
use crate::policy::odata::is_identifier;

/// What one attribute of one element says about the data the query observes. [`role`] is the
/// only place an attribute becomes understood: every `(element, attribute)` pair it does not
/// list is refused, so a new attribute cannot slip through without a decision here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A table's logical name (`entity name`, `link-entity name`).
    Table,
    /// A column of the element's own table, or of the link-entity `entityname` names.
    Column,
    /// `link-entity to`: a column of the parent table, joined on.
    ParentColumn,
    /// `condition valueof`: a column, or `alias.column` of a link-entity.
    ColumnReference,
    /// `entityname`: moves the element's columns to that link-entity.
    LinkReference,
    /// A name given to a link-entity or to a returned value: names no data.
    Alias,
    /// `paging-cookie`: server-issued paging state that names the root table's order columns.
    PagingCookie,
    /// `link-entity link-type`: one of [`LINK_TYPES`].
    LinkType,
    /// `condition operator`: one of [`OPERATORS`], not one of the [`REFUSED_OPERATORS`].
    Operator,
    /// Shapes paging, aggregation, sorting direction, literal values or the query plan, and
    /// names no table or column.
    Inert,
}

/// The attributes this parser understands, and what each means; `None` refuses the attribute.
fn role(element: &str, attribute: &str) -> Option<Role> {
    use Role::*;
    Some(match (element, attribute) {
        ("fetch", "paging-cookie") => PagingCookie,
        (
            "fetch",
            "version"
            | "count"
            | "page"
            | "utc-offset"
            | "aggregate"
            | "aggregatelimit"
            | "distinct"
            | "top"
            | "mapping"
            | "min-active-row-version"
            | "output-format"
            | "returntotalrecordcount"
            | "no-lock"
            | "useraworderby"
            | "latematerialize"
            | "options"
            | "datasource",
        ) => Inert,
        ("entity" | "link-entity", "name") => Table,
        ("entity" | "link-entity", "enableprefiltering" | "prefilterparametername") => Inert,
        ("link-entity", "from") => Column,
        ("link-entity", "to") => ParentColumn,
        ("link-entity", "alias") => Alias,
        ("link-entity", "link-type") => LinkType,
        ("link-entity", "visible" | "intersect") => Inert,
        ("attribute", "name") => Column,
        ("attribute", "alias") => Alias,
        (
            "attribute",
            "aggregate" | "groupby" | "distinct" | "dategrouping" | "usertimezone" | "build"
            | "addedby",
        ) => Inert,
        ("order", "attribute") => Column,
        ("order", "alias") => Alias,
        ("order", "entityname") => LinkReference,
        ("order", "descending") => Inert,
        (
            "filter",
            "type"
            | "hint"
            | "isquickfindfields"
            | "overridequickfindrecordlimitenabled"
            | "overridequickfindrecordlimitdisabled"
            | "bypassquickfind",
        ) => Inert,
        ("condition", "attribute") => Column,
        ("condition", "entityname") => LinkReference,
        ("condition", "valueof") => ColumnReference,
        ("condition", "operator") => Operator,
        ("condition", "value" | "uiname" | "uitype" | "uihidden") => Inert,
        ("value", "uiname" | "uitype") => Inert,
        _ => return None,
    })
}

/// Join types a `link-entity` may declare: each joins on `from`/`to` and returns at most the
/// link's `<attribute>` columns.
const LINK_TYPES: &[&str] = &[
    "inner",
    "outer",
    "any",
    "not any",
    "all",
    "not all",
    "exists",
    "in",
    "matchfirstrowusingcrossapply",
];

/// Condition operators whose result depends on data the query does not name, with why.
/// FetchXML's condition operators (Dataverse's `ConditionOperator`): each compares the
/// condition's own column with literal values, dates relative to now, or the caller's own id,
/// business unit or language. Any other value is refused (the hierarchy and team operators are
/// known, and refused by [`REFUSED_OPERATORS`] first).
const OPERATORS: &[&str] = &[
    "eq",
    "neq",
    "ne",
    "gt",
    "ge",
    "le",
    "lt",
    "like",
    "not-like",
    "in",
    "not-in",
    "between",
    "not-between",
    "null",
    "not-null",
    "yesterday",
    "today",
    "tomorrow",
    "last-seven-days",
    "next-seven-days",
    "last-week",
    "this-week",
    "next-week",
    "last-month",
    "this-month",
    "next-month",
    "on",
    "on-or-before",
    "on-or-after",
    "last-year",
    "this-year",
    "next-year",
    "last-x-hours",
    "next-x-hours",
    "last-x-days",
    "next-x-days",
    "last-x-weeks",
    "next-x-weeks",
    "last-x-months",
    "next-x-months",
    "last-x-years",
    "next-x-years",
    "olderthan-x-minutes",
    "olderthan-x-hours",
    "olderthan-x-days",
    "olderthan-x-weeks",
    "olderthan-x-months",
    "olderthan-x-years",
    "eq-userid",
    "ne-userid",
    "eq-businessid",
    "ne-businessid",
    "eq-userlanguage",
    "this-fiscal-year",
    "this-fiscal-period",
    "next-fiscal-year",
    "next-fiscal-period",
    "last-fiscal-year",
    "last-fiscal-period",
    "last-x-fiscal-years",
    "last-x-fiscal-periods",
    "next-x-fiscal-years",
    "next-x-fiscal-periods",
    "in-fiscal-year",
    "in-fiscal-period",
    "in-fiscal-period-and-year",
    "in-or-before-fiscal-period-and-year",
    "in-or-after-fiscal-period-and-year",
    "begins-with",
    "not-begin-with",
    "ends-with",
    "not-end-with",
    "contain-values",
    "not-contain-values",
];

const REFUSED_OPERATORS: &[(&str, &str)] = &[
    ("above", HIERARCHY),
    ("eq-or-above", HIERARCHY),
    ("under", HIERARCHY),
    ("eq-or-under", HIERARCHY),
    ("not-under", HIERARCHY),
    ("eq-userteams", TEAMS),
    ("eq-useroruserteams", TEAMS),
    ("eq-useroruserhierarchy", MANAGERS),
    ("eq-useroruserhierarchyandteams", MANAGERS),
];
const HIERARCHY: &str = "walks the table's hierarchy, revealing its hierarchy lookup";
const TEAMS: &str = "compares with the caller's teams, reading team membership";
const MANAGERS: &str = "compares with the users who report to the caller, reading systemusers";

/// Reads and unescapes the attributes of `e`, refusing any [`role`] does not understand and
/// any value an enumerated attribute does not allow.
pub(super) fn attributes(e: &BytesStart, element: &'static str) -> Result<Attrs, FetchError> {
    let mut list = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|e| FetchError::Xml(e.to_string()))?;
        let key = attr.key.0;
        let Some(role) = role(element, key) else {
            return Err(FetchError::UnknownAttribute {
                element: element.to_string(),
                attribute: key.to_string(),
            });
        };
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| FetchError::Xml(e.to_string()))?;
        match role {
            Role::LinkType if !LINK_TYPES.contains(&value.as_ref()) => {
                return Err(FetchError::UnknownValue {
                    attribute: "link-type",
                    value: value.into_owned(),
                });
            }
            Role::Operator => {
                if let Some((_, why)) = REFUSED_OPERATORS.iter().find(|(op, _)| *op == value) {
                    return Err(FetchError::Operator {
                        operator: value.into_owned(),
                        why,
                    });
                }
                if !OPERATORS.contains(&value.as_ref()) {
                    return Err(FetchError::UnknownValue {
                        attribute: "operator",
                        value: value.into_owned(),
                    });
                }
            }
            _ => {}
        }
        list.push((key.to_string(), value.into_owned()));
    }
    Ok(Attrs { element, list })
}

/// The columns a `paging-cookie` names: `<cookie page="N"><col last=".." first=".."/>...</cookie>`.
/// Dataverse pages by comparing them, so they count as filtered columns of the root table.
pub(super) fn paging_cookie(cookie: &str) -> Result<Vec<String>, FetchError> {
    let bad = |why: &'static str| FetchError::PagingCookie(why);
    let mut reader = Reader::from_str(cookie);
    let (mut depth, mut seen_root, mut columns) = (0usize, false, Vec::new());
    loop {
        let event = reader
            .read_event()
            .map_err(|e| FetchError::Xml(e.to_string()))?;
        let (e, opens) = match event {
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Event::Text(t) if t.bytes().all(|b| b" \t\r\n".contains(&b)) => continue,
            Event::Eof if depth == 0 && seen_root => return Ok(columns),
            Event::Eof => return Err(bad("it ends inside an element")),
            _ => return Err(bad("only elements and attributes are understood")),
        };
        let name = e.name().0.to_string();
        let allowed: &[&str] = match depth {
            0 if !seen_root && name == "cookie" => &["page"],
            1 if is_identifier(&name) => &["last", "first", "lastnull", "firstnull"],
            0 => return Err(bad("its root must be one <cookie>")),
            _ => return Err(bad("only column elements may appear inside <cookie>")),
        };
        for attr in e.attributes() {
            let attr = attr.map_err(|e| FetchError::Xml(e.to_string()))?;
            if !allowed.contains(&attr.key.0) {
                return Err(FetchError::UnknownAttribute {
                    element: format!("paging-cookie {name}"),
                    attribute: attr.key.0.to_string(),
                });
            }
        }
        if depth == 1 && !columns.contains(&name) {
            columns.push(name);
        }
        seen_root = true;
        if opens {
            depth += 1;
        }
    }
}
