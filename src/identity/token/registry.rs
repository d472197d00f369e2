//! Token sources shared by every tenant that uses the same app registration for the same
//! resource: one cache, one refresh, per (authority, tenant, client, scope, credential).
//!
//! Invariant: the registry holds sources weakly, so a source lives exactly as long as a
//! configuration snapshot uses it; a reloaded configuration with the same key gets the same
//! source and keeps its valid token.

use std::sync::{Arc, Mutex, Weak};

use super::TokenSource;
use crate::clock::Clock;
use crate::config::Auth;

#[derive(Default)]
pub struct Registry {
    sources: Mutex<Vec<(Auth, Weak<TokenSource>)>>,
}

fn same_key(a: &Auth, b: &Auth) -> bool {
    a.authority == b.authority
        && a.tenant_id.eq_ignore_ascii_case(&b.tenant_id)
        && a.client_id.eq_ignore_ascii_case(&b.client_id)
        && a.scope.eq_ignore_ascii_case(&b.scope)
        && a.credential == b.credential
}

impl Registry {
    /// The live source for `auth`'s key, or a new one.
    pub fn source(
        &self,
        auth: &Auth,
        http: &reqwest::Client,
        clock: &Arc<dyn Clock>,
    ) -> Arc<TokenSource> {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.retain(|(_, w)| w.strong_count() > 0);
        if let Some(found) = sources
            .iter()
            .find(|(a, _)| same_key(a, auth))
            .and_then(|(_, w)| w.upgrade())
        {
            return found;
        }
        let source = TokenSource::new(auth.clone(), http.clone(), Arc::clone(clock));
        sources.push((auth.clone(), Arc::downgrade(&source)));
        source
    }
}
