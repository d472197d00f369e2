//! Secrets and secret references.
//!
//! Invariant: a [`Secret`] never prints its value — `Debug` and `Display` show `***` — so it cannot
//! leak through a log line, an error message or a panic. The value is reachable only through
//! [`Secret::expose`], which callers use at the single point where the value goes on the wire.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A secret value. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    /// Whether `other` holds the same value; a copy of this secret (the usual case: the token
    /// cache hands out clones) is known so without comparing the text.
    pub fn same(&self, other: &Secret) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }

    /// The value itself: only for putting it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from, as written in the config.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `{ env: NAME }`
    Env(String),
    /// `{ file: /path }` — surrounding whitespace (a trailing newline) is trimmed.
    File(PathBuf),
    /// A plain string in the config file. Accepted (demo, tests) but `check` warns about it.
    Inline(Secret),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
            SecretRef::Inline(_) => f.write_str("inline:***"),
        }
    }
}

/// Why a secret reference cannot be resolved. Never contains the value.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("environment variable {0} is empty")]
    EmptyEnv(String),
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret file {0} is empty")]
    EmptyFile(PathBuf),
}

impl SecretRef {
    /// Reads the secret now (environment or file).
    pub fn resolve(&self) -> Result<Secret, ResolveError> {
        match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) if v.trim().is_empty() => Err(ResolveError::EmptyEnv(name.clone())),
                Ok(v) => Ok(Secret::new(v.trim())),
                Err(_) => Err(ResolveError::MissingEnv(name.clone())),
            },
            SecretRef::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ResolveError::File {
                    path: path.clone(),
                    source,
                })?;
                if text.trim().is_empty() {
                    return Err(ResolveError::EmptyFile(path.clone()));
                }
                Ok(Secret::new(text.trim()))
            }
            SecretRef::Inline(secret) => Ok(secret.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_is_equality_of_the_value_shared_or_not() {
        let a = Secret::new("token-a");
        assert!(a.same(&a.clone()));
        assert!(a.same(&Secret::new("token-a")));
        assert!(!a.same(&Secret::new("token-b")));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        let r = SecretRef::Inline(s.clone());
        assert!(!format!("{r:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn file_secrets_are_trimmed_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "value\n").unwrap();
        assert_eq!(
            SecretRef::File(path.clone()).resolve().unwrap().expose(),
            "value"
        );
        let missing = dir.path().join("missing");
        let err = SecretRef::File(missing).resolve().unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        let err = SecretRef::Env("DVGW_TEST_SURELY_UNSET".into())
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("DVGW_TEST_SURELY_UNSET"));
    }
}
