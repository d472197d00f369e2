//! FetchXML: the tables and columns a `fetchXml=` query reaches.
//!
//! Pure: no I/O. Input is the parameter value, already percent-decoded. Invariants:
//! - every table the query touches is in [`Fetch::tables`]: the root `<entity>` first, then one
//!   [`TableUse`] per `<link-entity>` at any depth (also inside `<filter>`), in document order;
//! - every column the query names is listed on the table it belongs to: `<attribute name>`,
//!   `<order attribute>`, `<condition attribute>` and `valueof`, `link-entity from` (a column of
//!   the link) and `to` (a column of its parent); `entityname=` and `alias.column` in `valueof`
//!   move the column to the link-entity they name, and a name that matches no link, or more than
//!   one, is an error;
//! - strict: only the elements `fetch entity link-entity attribute all-attributes order filter
//!   condition value` in their documented places, only their documented attributes, text only
//!   inside `<value>`, no DOCTYPE, entity declarations, custom entity references or processing
//!   instructions; every table, column and alias is a plain identifier `[A-Za-z_][A-Za-z0-9_]*`.
//!   Anything else is a [`FetchError`]: what is not understood is never guessed at.
//!
//! Accepted but not inspected: `paging-cookie` (server-issued paging state for the root table).

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
}

/// Documented attributes per element, space-separated.
const FETCH_ATTRS: &str = "version count page paging-cookie utc-offset aggregate aggregatelimit \
    distinct top mapping min-active-row-version output-format returntotalrecordcount no-lock \
    useraworderby latematerialize options datasource";
const ENTITY_ATTRS: &str = "name enableprefiltering prefilterparametername";
const LINK_ATTRS: &str =
    "name from to alias link-type visible intersect enableprefiltering prefilterparametername";
const ATTRIBUTE_ATTRS: &str =
    "name alias aggregate groupby distinct dategrouping usertimezone rowaggregate build addedby";
const ORDER_ATTRS: &str = "attribute alias descending entityname";
const FILTER_ATTRS: &str = "type hint isquickfindfields overridequickfindrecordlimitenabled \
    overridequickfindrecordlimitdisabled bypassquickfind";
const CONDITION_ATTRS: &str = "attribute entityname operator value valueof uiname uitype uihidden";
const VALUE_ATTRS: &str = "uiname uitype";

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
                attributes(e, "fetch", FETCH_ATTRS)?;
                self.root_done = true;
                Ok(Node::Fetch)
            }
            (None, _) => Err(FetchError::Structure(
                "the document root must be one <fetch>",
            )),
            (Some(Node::Fetch), "entity") => self.entity(&attributes(e, "entity", ENTITY_ATTRS)?),
            (Some(Node::Entity(t) | Node::Link(t)), "attribute" | "all-attributes" | "order") => {
                self.leaf(t, name, e)
            }
            (Some(Node::Entity(t) | Node::Link(t) | Node::Filter(t)), "link-entity") => {
                self.link(t, &attributes(e, "link-entity", LINK_ATTRS)?)
            }
            (Some(Node::Entity(t) | Node::Link(t) | Node::Filter(t)), "filter") => {
                attributes(e, "filter", FILTER_ATTRS)?;
                Ok(Node::Filter(t))
            }
            (Some(Node::Filter(t)), "condition") => {
                self.condition(t, &attributes(e, "condition", CONDITION_ATTRS)?)
            }
            (Some(Node::Condition), "value") => {
                attributes(e, "value", VALUE_ATTRS)?;
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
                let attrs = attributes(e, "attribute", ATTRIBUTE_ATTRS)?;
                attrs.name("alias")?;
                let column = attrs.required("name")?.to_string();
                add_column(&mut self.tables[t], &column);
            }
            "all-attributes" => {
                attributes(e, "all-attributes", "")?;
                self.tables[t].all_attributes = true;
            }
            _ => self.order(t, &attributes(e, "order", ORDER_ATTRS)?)?,
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

/// Reads and unescapes the attributes of `e`, refusing any not in `allowed`.
fn attributes(e: &BytesStart, element: &'static str, allowed: &str) -> Result<Attrs, FetchError> {
    let mut list = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|e| FetchError::Xml(e.to_string()))?;
        let key = attr.key.0;
        if !allowed.split_whitespace().any(|a| a == key) {
            return Err(FetchError::UnknownAttribute {
                element: element.to_string(),
                attribute: key.to_string(),
            });
        }
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| FetchError::Xml(e.to_string()))?;
        list.push((key.to_string(), value.into_owned()));
    }
    Ok(Attrs { element, list })
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
