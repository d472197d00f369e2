//! FetchXML: the tables and columns a `fetchXml=` query reaches.
//!
//! Pure: no I/O. Input is the parameter value, already percent-decoded.
//!
//! Fail closed by construction: every element and attribute is either understood and accounted
//! for in [`Fetch`], or the query is refused with a [`FetchError`] that names it. Elements are
//! matched in `Parser::child` over `(parent, element)` with refusal as the default arm;
//! attributes in `role`, one arm per understood `(element, attribute)` pair stating what it
//! means for the data (a table, a column, a join, an alias, or nothing), refusal as the default
//! arm. A column list restricts every way a column's value can be observed, so every column the
//! query selects, filters, orders, groups or joins on is listed. Invariants:
//! - every table the query touches is in [`Fetch::tables`]: the root `<entity>` first, then one
//!   [`TableUse`] per `<link-entity>` at any depth (also inside `<filter>`), in document order;
//! - every column the query names is listed on the table it belongs to: `<attribute name>`,
//!   `<order attribute>`, `<condition attribute>` and `valueof`, `link-entity from` (a column of
//!   the link) and `to` (a column of its parent), and the columns a `paging-cookie` pages on
//!   (root table); `entityname=` and `alias.column` in `valueof` move the column to the
//!   link-entity they name, and a name that matches no link, or more than one, is an error;
//! - [`TableUse::all_attributes`] is set for `<all-attributes/>` and for a root `<entity>`
//!   without any `<attribute>` (Dataverse then returns every column, whatever its filters and
//!   orders name); a `<link-entity>` without `<attribute>` returns none of its columns, but the
//!   columns it joins and filters on are listed;
//! - strict: only the elements `fetch entity link-entity attribute all-attributes order filter
//!   condition value` in their documented places, only the attributes `role` lists, the
//!   documented `link-type` values, no hierarchy operators (`under`, `above`, ...: they reveal a
//!   hierarchy lookup the query does not name), text only inside `<value>`, no DOCTYPE, entity
//!   declarations, custom entity references or processing instructions; every table, column and
//!   alias is a plain identifier `[A-Za-z_][A-Za-z0-9_]*`. What is not understood is never
//!   guessed at.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::is_identifier;

/// A parsed FetchXML query reduced to what the policy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// Logical name of the root `<entity>`.
    pub entity: String,
    /// `tables[0]` is the root entity; then one entry per `<link-entity>`.
    pub tables: Vec<TableUse>,
}

/// One table the query reaches and the columns it names there (deduplicated, first-seen order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUse {
    pub logical_name: String,
    pub alias: Option<String>,
    pub columns: Vec<String>,
    /// Every column of this table comes back: `<all-attributes/>`, or the root `<entity>`
    /// without `<attribute>`.
    pub all_attributes: bool,
}

/// Why a FetchXML query is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("fetchXml is not well-formed XML: {0}")]
    Xml(String),
    #[error("fetchXml must not contain {0}")]
    Forbidden(&'static str),
    #[error("fetchXml: {0}")]
    Structure(&'static str),
    #[error("fetchXml: <{element}> is not allowed inside {parent}")]
    UnexpectedElement { element: String, parent: String },
    #[error("fetchXml: <{element}> does not take the attribute `{attribute}`")]
    UnknownAttribute { element: String, attribute: String },
    #[error("fetchXml: <{element}> needs the attribute `{attribute}`")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    #[error("fetchXml: {attribute}=\"{value}\" is not a plain identifier")]
    InvalidName { attribute: String, value: String },
    #[error("fetchXml: the alias `{0}` is used by more than one link-entity")]
    DuplicateAlias(String),
    #[error("fetchXml: `{0}` names no link-entity alias")]
    UnknownAlias(String),
    #[error("fetchXml: `{0}` matches more than one link-entity")]
    AmbiguousAlias(String),
    #[error("fetchXml: {attribute}=\"{value}\" is not a value the gateway understands")]
    UnknownValue {
        attribute: &'static str,
        value: String,
    },
    #[error(
        "fetchXml: the hierarchy operator `{0}` reveals the table's hierarchy lookup, which the query does not name"
    )]
    Hierarchy(String),
    #[error("fetchXml: the paging-cookie is not understood: {0}")]
    PagingCookie(&'static str),
}

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
    /// `condition operator`: any but the hierarchy operators ([`HIERARCHY_OPERATORS`]).
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

/// Condition operators that walk a table's hierarchy: they reveal its hierarchy lookup, a
/// column the query does not name, so they are refused.
const HIERARCHY_OPERATORS: &[&str] = &["above", "eq-or-above", "under", "eq-or-under", "not-under"];

/// An open element; table-bearing nodes carry the index of the table they apply to.
#[derive(Debug, Clone, Copy)]
enum Node {
    Fetch,
    Entity(usize),
    Link(usize),
    Filter(usize),
    Condition,
    Value,
    Leaf,
}

/// The attributes of one element, unescaped.
struct Attrs {
    element: &'static str,
    list: Vec<(String, String)>,
}

impl Attrs {
    fn get(&self, key: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An identifier-valued attribute, when present.
    fn name(&self, key: &str) -> Result<Option<&str>, FetchError> {
        match self.get(key) {
            Some(v) if !is_identifier(v) => Err(invalid_name(key, v)),
            other => Ok(other),
        }
    }

    fn required(&self, key: &'static str) -> Result<&str, FetchError> {
        self.name(key)?.ok_or(FetchError::MissingAttribute {
            element: self.element,
            attribute: key,
        })
    }
}

#[derive(Default)]
struct Parser {
    stack: Vec<Node>,
    tables: Vec<TableUse>,
    /// Columns attributed to a link-entity by name or alias, resolved at the end.
    deferred: Vec<(String, String)>,
    root_done: bool,
    /// Whether the root `<entity>` lists any `<attribute>`: without one, it returns every column.
    root_listed: bool,
    /// Columns of the root table named by the `paging-cookie`.
    cookie_columns: Vec<String>,
}

/// Parses a FetchXML query; see the module invariants.
pub fn parse(xml: &str) -> Result<Fetch, FetchError> {
    let mut reader = Reader::from_str(xml);
    let mut parser = Parser::default();
    let mut first = true;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| FetchError::Xml(e.to_string()))?;
        match event {
            Event::Start(e) => parser.open(&e, true)?,
            Event::Empty(e) => parser.open(&e, false)?,
            Event::End(_) => {
                parser.stack.pop();
            }
            Event::Text(t) => parser.text(t.bytes().all(|b| b" \t\r\n".contains(&b)))?,
            Event::CData(_) => parser.text(false)?,
            Event::GeneralRef(r) => {
                if !r.is_char_ref() && !matches!(&*r, "lt" | "gt" | "amp" | "apos" | "quot") {
                    return Err(FetchError::Forbidden("entity references"));
                }
                parser.text(false)?;
            }
            Event::Comment(_) => {}
            Event::Decl(_) if first => {}
            Event::Decl(_) | Event::PI(_) => {
                return Err(FetchError::Forbidden("processing instructions"));
            }
            Event::DocType(_) => return Err(FetchError::Forbidden("a DOCTYPE")),
            Event::Eof => break,
        }
        first = false;
    }
    parser.finish()
}

impl Parser {
    fn open(&mut self, e: &BytesStart, has_children: bool) -> Result<(), FetchError> {
        let node = self.child(self.stack.last().copied(), e.name().0, e)?;
        if has_children {
            self.stack.push(node);
        }
        Ok(())
    }

    /// Checks that `name` may appear inside `parent` and records what it says.
    fn child(
        &mut self,
        parent: Option<Node>,
        name: &str,
        e: &BytesStart,
    ) -> Result<Node, FetchError> {
        match (parent, name) {
            (None, "fetch") if !self.root_done => {
                let attrs = attributes(e, "fetch")?;
                if let Some(cookie) = attrs.get("paging-cookie") {
                    self.cookie_columns = paging_cookie(cookie)?;
                }
                self.root_done = true;
                Ok(Node::Fetch)
            }
            (None, _) => Err(FetchError::Structure(
                "the document root must be one <fetch>",
            )),
            (Some(Node::Fetch), "entity") => self.entity(&attributes(e, "entity")?),
            (Some(Node::Entity(t) | Node::Link(t)), "attribute" | "all-attributes" | "order") => {
                self.leaf(t, name, e)
            }
            (Some(Node::Entity(t) | Node::Link(t) | Node::Filter(t)), "link-entity") => {
                self.link(t, &attributes(e, "link-entity")?)
            }
            (Some(Node::Entity(t) | Node::Link(t) | Node::Filter(t)), "filter") => {
                attributes(e, "filter")?;
                Ok(Node::Filter(t))
            }
            (Some(Node::Filter(t)), "condition") => self.condition(t, &attributes(e, "condition")?),
            (Some(Node::Condition), "value") => {
                attributes(e, "value")?;
                Ok(Node::Value)
            }
            (Some(parent), element) => Err(FetchError::UnexpectedElement {
                element: element.to_string(),
                parent: describe(parent),
            }),
        }
    }

    /// `<attribute>`, `<all-attributes>` or `<order>` of table `t`.
    fn leaf(&mut self, t: usize, name: &str, e: &BytesStart) -> Result<Node, FetchError> {
        match name {
            "attribute" => {
                let attrs = attributes(e, "attribute")?;
                attrs.name("alias")?;
                let column = attrs.required("name")?.to_string();
                add_column(&mut self.tables[t], &column);
                self.root_listed |= t == 0;
            }
            "all-attributes" => {
                attributes(e, "all-attributes")?;
                self.tables[t].all_attributes = true;
            }
            _ => self.order(t, &attributes(e, "order")?)?,
        }
        Ok(Node::Leaf)
    }

    /// Character data: only inside `<value>`, whitespace elsewhere.
    fn text(&self, blank: bool) -> Result<(), FetchError> {
        match self.stack.last() {
            Some(Node::Value) => Ok(()),
            _ if blank => Ok(()),
            _ => Err(FetchError::Structure("text is only allowed inside <value>")),
        }
    }

    fn entity(&mut self, attrs: &Attrs) -> Result<Node, FetchError> {
        if !self.tables.is_empty() {
            return Err(FetchError::Structure(
                "<fetch> must hold exactly one <entity>",
            ));
        }
        self.tables.push(table(attrs.required("name")?, None));
        Ok(Node::Entity(0))
    }

    fn link(&mut self, parent: usize, attrs: &Attrs) -> Result<Node, FetchError> {
        let name = attrs.required("name")?;
        let alias = attrs.name("alias")?;
        if let Some(alias) = alias
            && self
                .tables
                .iter()
                .any(|t| t.alias.as_deref() == Some(alias))
        {
            return Err(FetchError::DuplicateAlias(alias.to_string()));
        }
        let mut link = table(name, alias);
        if let Some(from) = attrs.name("from")? {
            add_column(&mut link, from);
        }
        if let Some(to) = attrs.name("to")? {
            add_column(&mut self.tables[parent], to);
        }
        self.tables.push(link);
        Ok(Node::Link(self.tables.len() - 1))
    }

    fn order(&mut self, t: usize, attrs: &Attrs) -> Result<(), FetchError> {
        attrs.name("alias")?;
        let column = attrs.name("attribute")?;
        let target = attrs.name("entityname")?;
        match column {
            Some(column) => self.attribute_column(t, target, column),
            // An order on an aggregate alias names no column.
            None if attrs.get("alias").is_some() => {}
            None => {
                attrs.required("attribute")?;
            }
        }
        Ok(())
    }

    fn condition(&mut self, t: usize, attrs: &Attrs) -> Result<Node, FetchError> {
        let column = attrs.required("attribute")?;
        let target = attrs.name("entityname")?;
        self.attribute_column(t, target, column);
        if let Some(other) = attrs.get("valueof") {
            match other.split_once('.') {
                Some((alias, col)) if is_identifier(alias) && is_identifier(col) => {
                    self.deferred.push((alias.to_string(), col.to_string()));
                }
                None if is_identifier(other) => self.attribute_column(t, target, other),
                _ => return Err(invalid_name("valueof", other)),
            }
        }
        Ok(Node::Condition)
    }

    /// Adds `column` to table `t`, or to the link-entity `target` names once all are known.
    fn attribute_column(&mut self, t: usize, target: Option<&str>, column: &str) {
        match target {
            Some(target) => self.deferred.push((target.to_string(), column.to_string())),
            None => add_column(&mut self.tables[t], column),
        }
    }

    fn finish(mut self) -> Result<Fetch, FetchError> {
        if !self.stack.is_empty() {
            return Err(FetchError::Structure("the document ends inside an element"));
        }
        if self.tables.is_empty() {
            return Err(FetchError::Structure(
                "<fetch> must hold exactly one <entity>",
            ));
        }
        for (target, column) in std::mem::take(&mut self.deferred) {
            let t = self.resolve(&target)?;
            add_column(&mut self.tables[t], &column);
        }
        for column in std::mem::take(&mut self.cookie_columns) {
            add_column(&mut self.tables[0], &column);
        }
        // A root entity without `<attribute>` returns every column, whatever its filters and
        // orders name (a link-entity without one returns none of its columns).
        self.tables[0].all_attributes |= !self.root_listed;
        Ok(Fetch {
            entity: self.tables[0].logical_name.clone(),
            tables: self.tables,
        })
    }

    /// The link-entity with this alias, or the one un-aliased link-entity of this name.
    fn resolve(&self, target: &str) -> Result<usize, FetchError> {
        let mut found = self.tables.iter().enumerate().skip(1).filter(|(_, t)| {
            t.alias.as_deref() == Some(target) || (t.alias.is_none() && t.logical_name == target)
        });
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Ok(i),
            (None, _) => Err(FetchError::UnknownAlias(target.to_string())),
            (Some(_), Some(_)) => Err(FetchError::AmbiguousAlias(target.to_string())),
        }
    }
}

/// Reads and unescapes the attributes of `e`, refusing any [`role`] does not understand and
/// any value an enumerated attribute does not allow.
fn attributes(e: &BytesStart, element: &'static str) -> Result<Attrs, FetchError> {
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
            Role::Operator if HIERARCHY_OPERATORS.contains(&value.as_ref()) => {
                return Err(FetchError::Hierarchy(value.into_owned()));
            }
            _ => {}
        }
        list.push((key.to_string(), value.into_owned()));
    }
    Ok(Attrs { element, list })
}

/// The columns a `paging-cookie` names: `<cookie page="N"><col last=".." first=".."/>...</cookie>`.
/// Dataverse pages by comparing them, so they count as filtered columns of the root table.
fn paging_cookie(cookie: &str) -> Result<Vec<String>, FetchError> {
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

fn table(name: &str, alias: Option<&str>) -> TableUse {
    TableUse {
        logical_name: name.to_string(),
        alias: alias.map(str::to_string),
        columns: Vec::new(),
        all_attributes: false,
    }
}

fn add_column(table: &mut TableUse, column: &str) {
    if !table.columns.iter().any(|c| c == column) {
        table.columns.push(column.to_string());
    }
}

fn invalid_name(attribute: &str, value: &str) -> FetchError {
    FetchError::InvalidName {
        attribute: attribute.to_string(),
        value: value.to_string(),
    }
}

fn describe(node: Node) -> String {
    let name = match node {
        Node::Fetch => "fetch",
        Node::Entity(_) => "entity",
        Node::Link(_) => "link-entity",
        Node::Filter(_) => "filter",
        Node::Condition => "condition",
        Node::Value => "value",
        Node::Leaf => "an element that holds nothing",
    };
    match node {
        Node::Leaf => name.to_string(),
        _ => format!("<{name}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(fetch: &Fetch, table: usize) -> Vec<&str> {
        fetch.tables[table]
            .columns
            .iter()
            .map(String::as_str)
            .collect()
    }

    const NESTED: &str = r#"<?xml version="1.0"?>
<fetch top="5" version="1.0" mapping="logical">
  <!-- accounts with their contacts and the contacts' owners -->
  <entity name="account">
    <attribute name="name"/>
    <order attribute="name" descending="false"/>
    <filter type="and">
      <condition attribute="statecode" operator="eq" value="0"/>
      <condition entityname="c" attribute="fullname" operator="like" value="%a&amp;b%"/>
      <filter type="or">
        <condition attribute="revenue" operator="gt" valueof="c.annualincome"/>
        <condition attribute="industrycode" operator="in"><value>1</value><value>2</value></condition>
      </filter>
    </filter>
    <link-entity name="contact" from="parentcustomerid" to="accountid" alias="c" link-type="outer">
      <attribute name="fullname"/>
      <link-entity name="systemuser" from="systemuserid" to="owninguser" alias="u">
        <all-attributes/>
        <order attribute="fullname" entityname="u"/>
      </link-entity>
    </link-entity>
  </entity>
</fetch>"#;

    #[test]
    fn nested_links_aliases_and_references() {
        let fetch = parse(NESTED).unwrap();
        assert_eq!(fetch.entity, "account");
        assert_eq!(fetch.tables.len(), 3);
        assert_eq!(
            columns(&fetch, 0),
            ["name", "statecode", "revenue", "industrycode", "accountid"]
        );
        assert_eq!(fetch.tables[1].logical_name, "contact");
        assert_eq!(fetch.tables[1].alias.as_deref(), Some("c"));
        assert_eq!(
            columns(&fetch, 1),
            ["parentcustomerid", "fullname", "owninguser", "annualincome"]
        );
        assert_eq!(fetch.tables[2].logical_name, "systemuser");
        assert!(fetch.tables[2].all_attributes && !fetch.tables[0].all_attributes);
        assert_eq!(columns(&fetch, 2), ["systemuserid", "fullname"]);
    }

    #[test]
    fn valueof_same_table_and_unaliased_entityname() {
        let xml = "<fetch><entity name='contact'><filter><condition attribute='a' operator='gt' \
            valueof='b'/><condition entityname='account' attribute='x' operator='eq' valueof='y'/>\
            </filter><link-entity name='account' from='accountid' to='parentcustomerid'/>\
            </entity></fetch>";
        let fetch = parse(xml).unwrap();
        assert_eq!(columns(&fetch, 0), ["a", "b", "parentcustomerid"]);
        assert_eq!(fetch.tables[1].alias, None);
        assert_eq!(columns(&fetch, 1), ["accountid", "x", "y"]);
    }

    #[test]
    fn aggregate_groupby_and_order_by_alias() {
        let xml = r#"<fetch aggregate="true"><entity name="account">
            <attribute name="accountid" alias="n" aggregate="count"/>
            <attribute name="industrycode" alias="industry" groupby="true"/>
            <order alias="n" descending="true"/></entity></fetch>"#;
        let fetch = parse(xml).unwrap();
        assert_eq!(columns(&fetch, 0), ["accountid", "industrycode"]);
    }

    #[test]
    fn link_entity_inside_filter() {
        let xml = "<fetch><entity name='account'><filter><link-entity name='contact' \
            from='parentcustomerid' to='accountid' link-type='any'><filter><condition \
            attribute='statecode' operator='eq' value='0'/></filter></link-entity></filter>\
            </entity></fetch>";
        let fetch = parse(xml).unwrap();
        assert_eq!(columns(&fetch, 0), ["accountid"]);
        assert_eq!(columns(&fetch, 1), ["parentcustomerid", "statecode"]);
    }

    #[test]
    fn root_without_attribute_returns_every_column_a_link_without_returns_none() {
        let xml = "<fetch><entity name='a'><order attribute='x'/><filter><condition \
            attribute='y' operator='null'/></filter><link-entity name='b' from='bid' to='b'>\
            <filter><condition attribute='z' operator='null'/></filter></link-entity></entity></fetch>";
        let fetch = parse(xml).unwrap();
        assert!(fetch.tables[0].all_attributes, "root without <attribute>");
        assert_eq!(columns(&fetch, 0), ["x", "y", "b"]);
        assert!(!fetch.tables[1].all_attributes, "link without <attribute>");
        assert_eq!(columns(&fetch, 1), ["bid", "z"]);
        let listed =
            parse("<fetch><entity name='a'><attribute name='x'/></entity></fetch>").unwrap();
        assert!(!listed.tables[0].all_attributes);
        // an <attribute> of a link is not one of the root
        let xml = "<fetch><entity name='a'><link-entity name='b' from='bid' to='b'>\
            <attribute name='n'/></link-entity></entity></fetch>";
        assert!(parse(xml).unwrap().tables[0].all_attributes);
    }

    #[test]
    fn paging_cookie_names_root_columns() {
        let xml = "<fetch page='2' paging-cookie='&lt;cookie page=&quot;1&quot;&gt;&lt;name \
            last=&quot;b&quot; first=&quot;a&quot;/&gt;&lt;aid last=&quot;{1}&quot; \
            first=&quot;{2}&quot;/&gt;&lt;/cookie&gt;'><entity name='a'><attribute name='name'/>\
            </entity></fetch>";
        let fetch = parse(xml).unwrap();
        assert_eq!(columns(&fetch, 0), ["name", "aid"]);
        for bad in [
            "&lt;x/&gt;",
            "&lt;cookie/&gt;&lt;cookie/&gt;",
            "&lt;cookie page=&quot;1&quot;&gt;&lt;a-b/&gt;&lt;/cookie&gt;",
            "&lt;cookie&gt;&lt;a&gt;&lt;b/&gt;&lt;/a&gt;&lt;/cookie&gt;",
            "&lt;cookie&gt;text&lt;/cookie&gt;",
            "&lt;cookie&gt;",
        ] {
            let xml = format!("<fetch paging-cookie='{bad}'><entity name='a'/></fetch>");
            assert!(parse(&xml).is_err(), "{bad}");
        }
    }

    /// `wrapper|xml|expected message`; wrapper `E` puts the xml in an entity, `F` in a filter.
    const REJECTED: &[&str] = &[
        "|<entity name='account'/>|root must be one <fetch>",
        "||exactly one <entity>",
        "|<fetch/>|exactly one <entity>",
        "|<fetch><entity name='a'/><entity name='b'/></fetch>|exactly one <entity>",
        "|<fetch><entity name='a'/></fetch><fetch/>|root must be one <fetch>",
        "E|<savedquery name='x'/>|<savedquery> is not allowed inside <entity>",
        "F|<attribute name='x'/>|<attribute> is not allowed inside <filter>",
        "E|<attribute name='x'><value/></attribute>|inside an element that holds nothing",
        "E|<Attribute name='x'/>|<Attribute> is not allowed",
        "E|<x:attribute name='x'/>|<x:attribute> is not allowed",
        "E|text|text is only allowed inside <value>",
        "E|<![CDATA[x]]>|text is only allowed inside <value>",
        "E|&amp;|text is only allowed inside <value>",
        "|<fetch><entity name='account'>|ends inside an element",
        "|<fetch><entity name='a'></fetch>|not well-formed",
        "|<fetch><entity name='a' name='b'/></fetch>|not well-formed",
        "E|<attribute name='x' extra='1'/>|<attribute> does not take the attribute `extra`",
        "|<fetch xmlns:a='urn:x'><entity name='a'/></fetch>|attribute `xmlns:a`",
        "E|<attribute/>|<attribute> needs the attribute `name`",
        "E|<order descending='true'/>|<order> needs the attribute `attribute`",
        "F|<condition operator='null'/>|<condition> needs the attribute `attribute`",
        "E|<attribute name='a b'/>|name=\"a b\" is not a plain identifier",
        "E|<attribute name='contact.x'/>|is not a plain identifier",
        "|<fetch><entity name='9x'/></fetch>|name=\"9x\" is not a plain identifier",
        "E|<link-entity name='c' to='a-b'/>|to=\"a-b\" is not a plain identifier",
        "F|<condition attribute='a' operator='eq' valueof='a.b.c'/>|valueof=\"a.b.c\"",
        "F|<condition entityname='zz' attribute='a' operator='null'/>|`zz` names no link-entity",
        "F|<condition attribute='a' operator='eq' valueof='zz.b'/>|`zz` names no link-entity",
        "E|<order attribute='a' entityname='account'/>|`account` names no link-entity",
        "E|<link-entity name='a' alias='c'/><link-entity name='b' alias='c'/>|alias `c` is used",
        "E|<link-entity name='c'/><link-entity name='c'/><filter><condition entityname='c' \
            attribute='a' operator='null'/></filter>|`c` matches more than one link-entity",
        "|<!DOCTYPE fetch [<!ENTITY x 'y'>]><fetch/>|must not contain a DOCTYPE",
        "F|<condition attribute='a' operator='eq'><value>&x;</value></condition>|entity references",
        "E|<?pi x?>|must not contain processing instructions",
        "|<fetch><entity name='a'/></fetch><?xml version='1.0'?>|processing instructions",
        "E|<attribute name='x' rowaggregate='CountChildren'/>|attribute `rowaggregate`",
        "E|<link-entity name='b' link-type='cross'/>|link-type=\"cross\"",
        "F|<condition attribute='aid' operator='eq-or-under' value='1'/>|operator `eq-or-under`",
        "F|<condition attribute='a' operator='eq'><value value='1'/></condition>|attribute `value`",
        "|<fetch paging-cookie='&lt;cookie x=&quot;1&quot;/&gt;'><entity name='a'/></fetch>|`x`",
    ];

    #[test]
    fn every_error_case() {
        for case in REJECTED {
            let mut fields = case.splitn(3, '|');
            let (wrapper, xml, expected) = (fields.next(), fields.next(), fields.next());
            let xml = match (wrapper, xml.unwrap_or_default()) {
                (Some("E"), inner) => format!("<fetch><entity name='a'>{inner}</entity></fetch>"),
                (Some("F"), inner) => {
                    format!("<fetch><entity name='a'><filter>{inner}</filter></entity></fetch>")
                }
                (_, xml) => xml.to_string(),
            };
            let err = parse(&xml).expect_err(&xml).to_string();
            assert!(err.contains(expected.unwrap_or_default()), "{xml}: {err}");
        }
    }

    #[test]
    fn truncations_and_corruptions_never_panic() {
        for end in 0..NESTED.len() {
            if let Some(prefix) = NESTED.get(..end) {
                assert!(parse(prefix).is_err(), "prefix of {end} bytes was accepted");
            }
        }
        for (i, _) in NESTED.char_indices() {
            for junk in ["<", ">", "\"", "&", "/", "'"] {
                let mut xml = NESTED.to_string();
                xml.insert_str(i, junk);
                let _ = parse(&xml);
            }
        }
    }
}
