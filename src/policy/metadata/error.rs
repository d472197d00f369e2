//! Why a CSDL document was refused, and where.
//!
//! Every variant that points into the document carries a [`Position`] (byte offset and 1-based
//! line). The document comes from Dataverse, so every failure is the upstream's fault and
//! retrying with the same bytes cannot help.

use std::fmt;

use quick_xml::events::attributes::AttrError;

use crate::error::Fault;

/// A place in the document: byte offset and 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub line: u64,
}

impl Position {
    /// The position of byte `offset` of `xml` (clamped to its length).
    pub fn of(xml: &[u8], offset: u64) -> Position {
        let end = usize::try_from(offset).map_or(xml.len(), |o| o.min(xml.len()));
        let newlines = xml[..end].iter().filter(|&&b| b == b'\n').count();
        Position {
            offset,
            line: newlines as u64 + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} (byte {})", self.line, self.offset)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("malformed XML at {at}: {source}")]
    Xml {
        at: Position,
        #[source]
        source: quick_xml::Error,
    },
    #[error("malformed attribute at {at}: {source}")]
    Attribute {
        at: Position,
        #[source]
        source: AttrError,
    },
    #[error("the document ends at {at} inside <{element}>")]
    Truncated { at: Position, element: &'static str },
    #[error("not a CSDL document: the root element at {at} is <{found}>")]
    NotCsdl { at: Position, found: String },
    #[error("the document declares no <Schema>")]
    NoSchema,
    #[error("<{element}> at {at} lacks the {attribute} attribute")]
    MissingAttribute {
        at: Position,
        element: &'static str,
        attribute: &'static str,
    },
    #[error("{attribute}=\"{value}\" at {at} is not a boolean")]
    NotBoolean {
        at: Position,
        attribute: &'static str,
        value: String,
    },
    #[error("duplicate {kind} `{name}` at {at}")]
    Duplicate {
        at: Position,
        kind: &'static str,
        name: String,
    },
    #[error("entity type `{name}` inherits from itself")]
    InheritanceCycle { name: String },
    #[error("element after the root element at {at}")]
    TrailingElement { at: Position },
}

impl MetadataError {
    /// Dataverse served this document.
    pub fn fault(&self) -> Fault {
        Fault::Upstream
    }

    /// The same bytes fail the same way.
    pub fn retryable(&self) -> bool {
        false
    }

    /// Where in the document the failure is, when it has a place.
    pub fn position(&self) -> Option<Position> {
        match self {
            MetadataError::Xml { at, .. }
            | MetadataError::Attribute { at, .. }
            | MetadataError::Truncated { at, .. }
            | MetadataError::NotCsdl { at, .. }
            | MetadataError::MissingAttribute { at, .. }
            | MetadataError::NotBoolean { at, .. }
            | MetadataError::Duplicate { at, .. }
            | MetadataError::TrailingElement { at } => Some(*at),
            MetadataError::NoSchema | MetadataError::InheritanceCycle { .. } => None,
        }
    }
}
