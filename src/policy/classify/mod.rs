//! The classifier: one Dataverse request in, everything it touches out.
//!
//! Pure: request parts and the tenant's metadata in, [`Classified`] out — no I/O, no clock, no
//! policy. The invariant the policy relies on: every table a request can read or write appears
//! in [`Classified::uses`] with the verb it implies and every column whose value it can observe
//! (named, filtered, ordered, grouped, joined on, or navigated through: a navigation counts the
//! lookup it is bound to, see `lookups`), except the table's own primary key; every operation
//! it invokes appears too. A shape this module cannot resolve completely is an error
//! ([`ParseError::NotUnderstood`], denied) — never a partial answer.
//!
//! Verbs are data operations: reading rows is GET (also a table whose rows' primary names come
//! back as annotations), creating is POST (also deep inserts and `CreateMultiple`), changing a
//! row is PATCH (also a one-column `PUT` or `DELETE`, `$ref` changes and `UpdateMultiple`),
//! DELETE deletes a row. No request implies PUT.

mod annotations;
mod body;
mod columns;
mod fetch;
mod json;
mod lookups;
mod options;
mod resource;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderMap, Method};

use crate::config::Verb;
use crate::policy::metadata::Metadata;
use crate::policy::odata::{self, Head, ParseError, Query};

pub use annotations::{AnnotationRead, FORMATTED_VALUE};
pub use body::resolve_reference;
pub use columns::Columns;

/// One table access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// The entity set, shared with the metadata when it names one of its sets.
    pub set: Arc<str>,
    pub verb: Verb,
    /// Columns named (selected, filtered, ordered, written).
    pub columns: Columns,
    /// The request returns whole rows of this table (no `$select`).
    pub all_columns: bool,
    /// This is the request's own read of its rows (not an expansion or a lookup): the one place
    /// where the gateway may add `$select` to a column-restricted table.
    pub main: bool,
}

/// Something a request uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    Table(Touch),
    Function(String),
    Action(String),
    /// `EntityDefinitions` read for the table with this entity set.
    Definition(String),
    /// Unfiltered `EntityDefinitions` listing.
    AllDefinitions,
    /// `$metadata`.
    Metadata,
    /// `savedQuery`, `userQuery` or `sql` on this entity set: the query cannot be inspected.
    Uninspectable {
        kind: String,
        set: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classified {
    pub uses: Vec<Use>,
    /// A PATCH on a key of this set (an upsert).
    pub upsert: Option<String>,
    /// The request needs the tenant's metadata and it was not available.
    pub needs_metadata: bool,
    /// Tables read only through an annotation the request asks for: in `uses`, except the
    /// conditional ones (lookups of a main read without `$select`), which depend on the table's
    /// column list and are counted by [`crate::policy::inspect`] before the decision.
    pub annotation_reads: Vec<AnnotationRead>,
}

impl Classified {
    fn touch(&mut self, set: &str, verb: Verb, columns: impl Into<Columns>, all_columns: bool) {
        self.touch_set(&Arc::from(set), verb, columns, all_columns);
    }

    /// [`Classified::touch`] of a set named by the metadata (its name shared, not copied).
    fn touch_set(
        &mut self,
        set: &Arc<str>,
        verb: Verb,
        columns: impl Into<Columns>,
        all_columns: bool,
    ) {
        self.uses.push(Use::Table(Touch {
            set: Arc::clone(set),
            verb,
            columns: columns.into(),
            all_columns,
            main: false,
        }));
    }

    /// The request's own read of `set` returning whole rows: `$select` may be added.
    fn touch_main(&mut self, set: &Arc<str>, columns: Columns) {
        self.uses.push(Use::Table(Touch {
            set: Arc::clone(set),
            verb: Verb::Get,
            columns,
            all_columns: true,
            main: true,
        }));
    }
}

/// Absolute URLs a request body or batch part may use for records.
#[derive(Debug, Clone, Default)]
pub struct Urls {
    /// The org origin, `https://org.crm.dynamics.com`.
    pub org: String,
    /// Gateway bases this tenant is reachable at, e.g. `http://gw:8080/contoso`, `http://gw:8080`.
    pub gateway: Vec<String>,
    pub api_version: String,
}

/// What the classifier knows about the tenant.
pub struct Env<'a> {
    pub metadata: Option<&'a Metadata>,
    /// Unbound functions the policy lists: without metadata, the only way to tell them from sets.
    pub known_functions: &'a [String],
    pub urls: &'a Urls,
    /// Inside a `$batch` change set: Content-ID (`$1`) → entity set of the row it created.
    pub content_ids: &'a BTreeMap<String, String>,
}

/// One request, as the classifier sees it.
pub struct Request<'a> {
    pub method: &'a Method,
    /// Raw resource path after `/api/data/{version}/`.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The body, when it was read (writes and action calls).
    pub body: Option<&'a [u8]>,
}

/// Whether the policy needs to read this request's body before deciding.
pub fn needs_body(method: &Method, path: &str) -> bool {
    let write = matches!(*method, Method::POST | Method::PATCH | Method::PUT);
    write && !path.ends_with("/$value")
}

pub fn classify(req: &Request<'_>, env: &Env<'_>) -> Result<Classified, ParseError> {
    let path = odata::parse_path(req.path)?;
    // Room to decode the query's escapes into (zeroed only when there is a query).
    let mut room;
    let scratch: &mut [u8] = match req.query {
        Some(_) => {
            room = [0u8; odata::QUERY_SCRATCH];
            &mut room
        }
        None => &mut [],
    };
    let mut query = Query::default();
    odata::parse_query_into(req.query, scratch, &mut query)?;
    let mut out = Classified {
        uses: spare_uses::take(),
        ..Classified::default()
    };
    match &path.head {
        Head::ServiceRoot => {
            return Err(ParseError::NotUnderstood(
                "the service document lists every table".into(),
            ));
        }
        Head::Metadata => {
            only(req.method, &[Method::GET, Method::HEAD], "$metadata")?;
            out.uses.push(Use::Metadata);
        }
        Head::Batch => {
            return Err(ParseError::Malformed(
                "$batch is classified part by part".into(),
            ));
        }
        Head::Name { name, key } if *name == "EntityDefinitions" => {
            options::entity_definitions(req, key.as_ref(), &path.tail, &query, env, &mut out)?;
        }
        Head::Name { .. } | Head::ContentId(_) => match env.metadata {
            Some(meta) => resource::walk(req, &path, &query, meta, env, &mut out)?,
            None => resource::without_metadata(req, &path, &query, env, &mut out)?,
        },
    }
    if let Some(meta) = env.metadata.filter(|m| m.any_currency()) {
        lookups::money_brings_currency(meta, &mut out);
    }
    annotations::reads(req, env.metadata, &mut out)?;
    if let Some(meta) = env.metadata {
        lookups::free_own_keys(meta, &mut out);
    }
    Ok(out)
}

fn only(method: &Method, allowed: &[Method], what: &str) -> Result<(), ParseError> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(ParseError::NotUnderstood(format!(
            "{method} is not a valid method for {what}"
        )))
    }
}

/// The verb a method implies on the final resource of a path.
fn method_verb(method: &Method) -> Result<Verb, ParseError> {
    Ok(match *method {
        Method::GET | Method::HEAD => Verb::Get,
        Method::POST => Verb::Post,
        Method::PATCH => Verb::Patch,
        Method::PUT => Verb::Put,
        Method::DELETE => Verb::Delete,
        ref m => {
            return Err(ParseError::Malformed(format!(
                "{m} is not a Dataverse Web API method"
            )));
        }
    })
}

fn not(msg: impl Into<String>) -> ParseError {
    ParseError::NotUnderstood(msg.into())
}

fn query_needs_metadata(q: &Query) -> bool {
    ["$expand", "$apply", "fetchXml"]
        .iter()
        .any(|o| q.get(o).is_some())
        || !q.aliases.is_empty()
}

/// The lists of uses of requests this thread has finished with, emptied, for the next
/// requests' classifications: a request's list lives in its [`crate::policy::decision::Decision`]
/// until the request ends (the audit record reads it), and given back then (the decision's
/// `Drop`) the next request does not allocate its own (~0.2 k instructions to allocate and
/// free, a tenth of the load benchmark's whole policy work).
pub(crate) mod spare_uses {
    use super::Use;
    use crate::spare::Spares;

    /// Kept per thread: about the requests one thread finishes in one turn of its event loop.
    const KEEP: usize = 32;
    /// A list that held more (a batch's, a large `$expand`'s) is not kept: one such request
    /// does not pin its allocation for the thread's life.
    const MAX_CAPACITY: usize = 16;

    thread_local! {
        static SPARES: Spares<Vec<Use>> = const { Spares::new(KEEP) };
    }

    /// An empty list, with room when one was given back on this thread.
    pub(crate) fn take() -> Vec<Use> {
        Spares::take(&SPARES).unwrap_or_default()
    }

    /// Keeps `uses`, emptied, for a later [`take`] (when it has room and is not too large, and
    /// fewer than [`KEEP`] are kept). Its uses are dropped here.
    pub(crate) fn give(mut uses: Vec<Use>) {
        if uses.capacity() == 0 || uses.capacity() > MAX_CAPACITY {
            return;
        }
        uses.clear();
        Spares::give(&SPARES, uses);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn spares() -> usize {
            Spares::len(&SPARES)
        }

        #[test]
        fn a_list_given_back_comes_out_empty_with_its_room() {
            let mut uses = take();
            uses.push(Use::Metadata);
            uses.push(Use::Function("WhoAmI".into()));
            let room = uses.capacity();
            give(uses);
            assert_eq!(spares(), 1);
            let again = take();
            assert!(again.is_empty(), "nothing of the earlier request is left");
            assert_eq!(again.capacity(), room, "the same allocation, kept");
            assert_eq!(spares(), 0);
        }

        #[test]
        fn empty_large_and_surplus_lists_are_not_kept() {
            give(Vec::new());
            give(Vec::with_capacity(MAX_CAPACITY + 1));
            assert_eq!(spares(), 0);
            for _ in 0..KEEP + 5 {
                give(Vec::with_capacity(1));
            }
            assert_eq!(spares(), KEEP);
            for _ in 0..KEEP + 1 {
                take();
            }
            assert_eq!(spares(), 0);
        }
    }
}
