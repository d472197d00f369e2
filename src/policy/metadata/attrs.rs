//! The few attributes the parser wants from one start tag.
//!
//! Invariants: attributes are matched on their local name (`xml:base`, `m:Name` and unknown
//! attributes are ignored unless their local name is wanted); values are unescaped with the
//! five predefined XML entities only (no DTD entities, so no expansion attacks); a duplicated
//! attribute is an error, never "last one wins"; errors point at the start tag.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::events::BytesStart;

use super::{MetadataError, Position};

type Result<T> = std::result::Result<T, MetadataError>;

/// Attribute values picked from one start tag, taken out by index into `names`.
pub(super) struct Attrs<'e, 'x, const N: usize> {
    values: [Option<Cow<'e, str>>; N],
    names: [&'static str; N],
    /// Element name, for errors.
    element: &'static str,
    /// Byte offset of the start tag in `xml`, for errors.
    at: u64,
    xml: &'x [u8],
}

impl<'e, 'x, const N: usize> Attrs<'e, 'x, N> {
    /// Reads `tag`'s attributes once, keeping those named in `names`.
    pub(super) fn pick(
        xml: &'x [u8],
        tag: &'e BytesStart<'_>,
        at: u64,
        element: &'static str,
        names: [&'static str; N],
    ) -> Result<Self> {
        let mut values = [const { None }; N];
        for attr in tag.attributes() {
            let attr = attr.map_err(|source| MetadataError::Attribute {
                at: Position::of(xml, at),
                source,
            })?;
            let key = attr.key.local_name().into_inner();
            if let Some(i) = names.iter().position(|n| *n == key) {
                let value = attr
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|source| MetadataError::Xml {
                        at: Position::of(xml, at),
                        source,
                    })?;
                values[i] = Some(value);
            }
        }
        Ok(Attrs {
            values,
            names,
            element,
            at,
            xml,
        })
    }

    pub(super) fn optional(&mut self, i: usize) -> Option<String> {
        self.values[i].take().map(Cow::into_owned)
    }

    pub(super) fn required(&mut self, i: usize) -> Result<String> {
        self.optional(i)
            .ok_or_else(|| MetadataError::MissingAttribute {
                at: Position::of(self.xml, self.at),
                element: self.element,
                attribute: self.names[i],
            })
    }

    /// An `xs:boolean`; absent means false.
    pub(super) fn flag(&mut self, i: usize) -> Result<bool> {
        match self.values[i].as_deref() {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(MetadataError::NotBoolean {
                at: Position::of(self.xml, self.at),
                attribute: self.names[i],
                value: other.to_owned(),
            }),
        }
    }
}
