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
//!   the link) and `to` (a column of its parent), both required, and the columns a `paging-cookie` pages on
//!   (root table); `entityname=` and `alias.column` in `valueof` move the column to the
//!   link-entity they name, and a name that matches no link, or more than one, is an error;
//! - [`TableUse::all_attributes`] is set for `<all-attributes/>` and for a root `<entity>`
//!   without any `<attribute>` (Dataverse then returns every column, whatever its filters and
//!   orders name); a `<link-entity>` without `<attribute>` returns none of its columns, but the
//!   columns it joins and filters on are listed;
//! - strict: only the elements `fetch entity link-entity attribute all-attributes order filter
//!   condition value` in their documented places, only the attributes `role` lists, the
//!   documented `link-type` values, no operator whose result depends on data the query does not
//!   name (hierarchy `under`/`above`..., the caller's teams or reports `eq-userteams`...), text only inside `<value>`, no DOCTYPE, entity
//!   declarations, custom entity references or processing instructions; every table, column and
//!   alias is a plain identifier `[A-Za-z_][A-Za-z0-9_]*`. What is not understood is never
//!   guessed at.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::is_identifier;

mod attributes;

use attributes::{attributes, paging_cookie};

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
        "fetchXml: the operator `{operator}` {why}, which the query does not name as columns or tables"
    )]
    Operator { operator: String, why: &'static str },
    #[error("fetchXml: the paging-cookie is not understood: {0}")]
    PagingCookie(&'static str),
}

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
/// The columns a paging cookie (`<cookie page="N"><col last=".." />...</cookie>`) names, as
/// fetchXml's `paging-cookie` and the Web API's `$skiptoken` carry it.
pub fn paging_cookie_columns(cookie: &str) -> Result<Vec<String>, FetchError> {
    paging_cookie(cookie)
}

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
        // Both join columns must be named: what Dataverse would join on otherwise is not
        // documented, and a join observes its columns.
        add_column(&mut link, attrs.required("from")?);
        let to = attrs.required("to")?.to_string();
        add_column(&mut self.tables[parent], &to);
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
mod tests;
