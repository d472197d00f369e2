//! One streaming pass over the CSDL with quick-xml, into a [`Raw`] model.
//!
//! Invariants: pure; no recursion driven by the document (handlers follow CSDL's fixed grammar
//! Edmx > DataServices > Schema > EntityType/...; everything else is skipped with
//! `read_to_end`, which is iterative); elements are matched on their local name, so namespace
//! prefixes do not matter; type references are stored exactly as written, because a Schema's
//! alias may be declared after its first use — `resolve` strips qualifiers once all are known;
//! every error carries the position of the element at fault.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Members, NameList};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::attrs::Attrs;
use super::{EntityType, MetadataError, Operation, Position};

type Result<T> = std::result::Result<T, MetadataError>;

/// What the document says, with type references not yet resolved.
#[derive(Debug, Default)]
pub(super) struct Raw {
    /// Every Schema `Namespace` and `Alias`.
    pub qualifiers: HashSet<String>,
    pub schemas: usize,
    /// `base_type` and navigation targets as written (`mscrm.account`, `Collection(...)`).
    pub types: Vec<EntityType>,
    pub type_index: HashMap<String, usize>,
    pub complex_types: HashSet<String>,
    pub enum_types: HashSet<String>,
    /// Entity set name -> entity type as written.
    pub sets: BTreeMap<String, String>,
    /// Operations with types as written, and their `IsBound` flag.
    pub operations: Vec<(Operation, bool)>,
    /// Import name -> function / action as written.
    pub function_imports: HashMap<String, String>,
    pub action_imports: HashMap<String, String>,
    /// Column types, other names shared.
    pub column_types: super::column_type::Interner,
}

pub(super) fn parse(xml: &[u8]) -> Result<Raw> {
    let mut parser = Parser {
        xml,
        reader: Reader::from_reader(xml),
        raw: Raw::default(),
    };
    parser.document()?;
    if parser.raw.schemas == 0 {
        return Err(MetadataError::NoSchema);
    }
    Ok(parser.raw)
}

struct Parser<'a> {
    xml: &'a [u8],
    reader: Reader<&'a [u8]>,
    raw: Raw,
}

/// An element's start tag; `open` when it has content (not self-closing).
struct Element<'a> {
    tag: BytesStart<'a>,
    open: bool,
    at: u64,
}

impl Element<'_> {
    fn local(&self) -> &str {
        self.tag.local_name().into_inner()
    }
}

impl<'a> Parser<'a> {
    fn document(&mut self) -> Result<()> {
        let root = self.top_level()?.ok_or(MetadataError::NoSchema)?;
        match root.local() {
            "Edmx" => self.edmx(root)?,
            "Schema" => self.schema(root)?,
            other => {
                let found = other.to_owned();
                let at = self.pos(root.at);
                return Err(MetadataError::NotCsdl { at, found });
            }
        }
        match self.top_level()? {
            Some(extra) => Err(MetadataError::TrailingElement {
                at: self.pos(extra.at),
            }),
            None => Ok(()),
        }
    }

    /// The next element outside the root; `None` at the end of the input.
    fn top_level(&mut self) -> Result<Option<Element<'a>>> {
        loop {
            let at = self.reader.buffer_position();
            let (tag, open) = match self.read()? {
                Event::Start(tag) => (tag, true),
                Event::Empty(tag) => (tag, false),
                Event::Eof => return Ok(None),
                _ => continue,
            };
            return Ok(Some(Element { tag, open, at }));
        }
    }

    fn edmx(&mut self, el: Element<'a>) -> Result<()> {
        while let Some(child) = self.child(&el, "Edmx")? {
            if child.local() == "DataServices" {
                while let Some(schema) = self.child(&child, "DataServices")? {
                    match schema.local() {
                        "Schema" => self.schema(schema)?,
                        _ => self.skip(schema)?,
                    }
                }
            } else {
                self.skip(child)?;
            }
        }
        Ok(())
    }

    fn schema(&mut self, el: Element<'a>) -> Result<()> {
        let mut a = self.attrs(&el, "Schema", ["Namespace", "Alias"])?;
        let namespace = a.required(0)?;
        let alias = a.optional(1);
        self.raw.qualifiers.insert(namespace);
        self.raw.qualifiers.extend(alias);
        self.raw.schemas += 1;
        while let Some(child) = self.child(&el, "Schema")? {
            match child.local() {
                "EntityType" => self.entity_type(child)?,
                "ComplexType" => self.type_name(child, false)?,
                "EnumType" => self.type_name(child, true)?,
                "Function" => self.operation(child, false)?,
                "Action" => self.operation(child, true)?,
                "EntityContainer" => self.container(child)?,
                _ => self.skip(child)?,
            }
        }
        Ok(())
    }

    fn entity_type(&mut self, el: Element<'a>) -> Result<()> {
        let mut a = self.attrs(&el, "EntityType", ["Name", "BaseType", "Abstract"])?;
        let mut ty = EntityType {
            logical_name: a.required(0)?,
            base_type: a.optional(1),
            key: Vec::new(),
            properties: NameList::default(),
            navigation: Members::default(),
            is_abstract: a.flag(2)?,
            column_types: Vec::new(),
        };
        // Collected, then sorted once into the set: much faster than inserting one by one.
        let mut properties = Vec::new();
        let mut ty_pairs = Vec::new();
        let mut keyed = false;
        while let Some(child) = self.child(&el, "EntityType")? {
            match child.local() {
                "Key" if keyed => {
                    let name = ty.logical_name;
                    return Err(self.duplicate(child.at, "<Key> in entity type", name));
                }
                "Key" => {
                    keyed = true;
                    ty.key = self.key(child)?;
                }
                "Property" => {
                    let mut p = self.attrs(&child, "Property", ["Name", "Type"])?;
                    let name = p.required(0)?;
                    if let Some(written) = p.optional(1) {
                        let ty = self.raw.column_types.of(&written);
                        ty_pairs.push((name.clone(), ty));
                    }
                    properties.push(name);
                    self.skip(child)?;
                }
                "NavigationProperty" => self.navigation(child, &mut ty)?,
                _ => self.skip(child)?,
            }
        }
        ty.properties = NameList::from_iter(properties);
        ty.navigation.shrink_to_fit();
        // Stable: of duplicated names, the first declaration's type is kept.
        ty_pairs.sort_by(|a: &(String, _), b| a.0.cmp(&b.0));
        ty_pairs.dedup_by(|later, first| later.0 == first.0);
        ty_pairs.shrink_to_fit(); // held for the model's lifetime: no spare capacity
        ty.column_types = ty_pairs;
        if self.raw.type_index.contains_key(&ty.logical_name) {
            return Err(self.duplicate(el.at, "entity type", ty.logical_name));
        }
        self.raw
            .type_index
            .insert(ty.logical_name.clone(), self.raw.types.len());
        self.raw.types.push(ty);
        Ok(())
    }

    fn key(&mut self, el: Element<'a>) -> Result<Vec<String>> {
        let mut key = Vec::new();
        while let Some(child) = self.child(&el, "Key")? {
            if child.local() == "PropertyRef" {
                key.push(self.attrs(&child, "PropertyRef", ["Name"])?.required(0)?);
            }
            self.skip(child)?;
        }
        Ok(key)
    }

    fn navigation(&mut self, el: Element<'a>, ty: &mut EntityType) -> Result<()> {
        let mut a = self.attrs(&el, "NavigationProperty", ["Name", "Type", "Partner"])?;
        let (name, target, partner) = (a.required(0)?, a.required(1)?, a.optional(2));
        if ty.navigation.contains_key(&name) {
            return Err(self.duplicate(el.at, "navigation property", name));
        }
        let mut lookup = None;
        while let Some(child) = self.child(&el, "NavigationProperty")? {
            if child.local() == "ReferentialConstraint" {
                let property = self
                    .attrs(&child, "ReferentialConstraint", ["Property"])?
                    .required(0)?;
                // A composite constraint names more than one column: none of them alone is it.
                lookup = match lookup {
                    None => Some(Some(property)),
                    Some(_) => Some(None),
                };
            }
            self.skip(child)?;
        }
        let nav = super::Navigation {
            target,
            collection: false, // decided in `resolve`, from `target`
            lookup: lookup.flatten(),
            partner,
        };
        ty.navigation.insert(name, nav);
        Ok(())
    }

    fn type_name(&mut self, el: Element<'a>, is_enum: bool) -> Result<()> {
        let element = if is_enum { "EnumType" } else { "ComplexType" };
        let name = self.attrs(&el, element, ["Name"])?.required(0)?;
        let names = if is_enum {
            &mut self.raw.enum_types
        } else {
            &mut self.raw.complex_types
        };
        names.insert(name);
        self.skip(el)
    }

    fn operation(&mut self, el: Element<'a>, is_action: bool) -> Result<()> {
        let element = if is_action { "Action" } else { "Function" };
        let mut a = self.attrs(&el, element, ["Name", "IsBound"])?;
        let mut op = Operation {
            name: a.required(0)?,
            is_action,
            bound_to: None,
            parameters: Vec::new(),
            return_type: None,
        };
        let bound = a.flag(1)?;
        while let Some(child) = self.child(&el, element)? {
            match child.local() {
                "Parameter" => {
                    let mut p = self.attrs(&child, "Parameter", ["Name", "Type"])?;
                    op.parameters.push((p.required(0)?, p.required(1)?));
                }
                "ReturnType" if op.return_type.is_some() => {
                    return Err(self.duplicate(child.at, "<ReturnType> in operation", op.name));
                }
                "ReturnType" => {
                    let ty = self.attrs(&child, "ReturnType", ["Type"])?.required(0)?;
                    op.return_type = Some(ty);
                }
                _ => {}
            }
            self.skip(child)?;
        }
        self.raw.operations.push((op, bound));
        Ok(())
    }

    fn container(&mut self, el: Element<'a>) -> Result<()> {
        while let Some(child) = self.child(&el, "EntityContainer")? {
            match child.local() {
                "EntitySet" => {
                    let mut a = self.attrs(&child, "EntitySet", ["Name", "EntityType"])?;
                    let (name, ty) = (a.required(0)?, a.required(1)?);
                    if self.raw.sets.contains_key(&name) {
                        return Err(self.duplicate(child.at, "entity set", name));
                    }
                    self.raw.sets.insert(name, ty);
                }
                "FunctionImport" => self.import(&child, "FunctionImport", "Function")?,
                "ActionImport" => self.import(&child, "ActionImport", "Action")?,
                _ => {}
            }
            self.skip(child)?;
        }
        Ok(())
    }

    fn import(&mut self, el: &Element<'a>, element: &'static str, of: &'static str) -> Result<()> {
        let mut a = self.attrs(el, element, ["Name", of])?;
        let (name, target) = (a.required(0)?, a.required(1)?);
        let imports = if of == "Action" {
            &mut self.raw.action_imports
        } else {
            &mut self.raw.function_imports
        };
        if imports.contains_key(&name) {
            return Err(self.duplicate(el.at, element, name));
        }
        imports.insert(name, target);
        Ok(())
    }

    /// The next child element of `parent`; `None` at its end tag (at once when self-closing).
    fn child(&mut self, parent: &Element<'a>, name: &'static str) -> Result<Option<Element<'a>>> {
        if !parent.open {
            return Ok(None);
        }
        loop {
            let at = self.reader.buffer_position();
            let (tag, open) = match self.read()? {
                Event::Start(tag) => (tag, true),
                Event::Empty(tag) => (tag, false),
                Event::End(_) => return Ok(None),
                Event::Eof => {
                    let at = self.pos(at);
                    return Err(MetadataError::Truncated { at, element: name });
                }
                _ => continue,
            };
            return Ok(Some(Element { tag, open, at }));
        }
    }

    /// Consumes the element's content, if any, unread.
    fn skip(&mut self, el: Element<'a>) -> Result<()> {
        if el.open
            && let Err(source) = self.reader.read_to_end(el.tag.name())
        {
            return Err(self.xml_error(source));
        }
        Ok(())
    }

    fn read(&mut self) -> Result<Event<'a>> {
        crate::pace::point();
        self.reader
            .read_event()
            .map_err(|source| self.xml_error(source))
    }

    /// The attributes `names` of `el` (matched on local names), unescaped.
    fn attrs<'e, const N: usize>(
        &self,
        el: &'e Element<'_>,
        element: &'static str,
        names: [&'static str; N],
    ) -> Result<Attrs<'e, 'a, N>> {
        Attrs::pick(self.xml, &el.tag, el.at, element, names)
    }

    fn pos(&self, offset: u64) -> Position {
        Position::of(self.xml, offset)
    }

    fn xml_error(&self, source: quick_xml::Error) -> MetadataError {
        let at = self.pos(self.reader.error_position());
        MetadataError::Xml { at, source }
    }

    fn duplicate(&self, at: u64, kind: &'static str, name: String) -> MetadataError {
        let at = self.pos(at);
        MetadataError::Duplicate { at, kind, name }
    }
}
