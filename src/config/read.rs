//! Reads a positioned YAML tree into [`Config`], collecting every error and warning.
//!
//! Each diagnostic carries the file, line, column and YAML path of the offending node and prints
//! as `FILE:LINE:COL: yaml.path: message`, the way compilers print errors. Nothing here prints a
//! secret value: inline secrets are reported by path only.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::yaml::{self, Key, Node, Pos, Value};
use super::*;
use crate::config::secret::{Secret, SecretRef};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    pub path: String,
    pub message: String,
    /// A warning for `check` (a reviewer runs it without the secrets) that stops `serve`.
    pub fatal_for_serve: bool,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(f, "{}:{}: {}: {}", self.file, self.pos, path, self.message)
    }
}

/// Everything `read` found. `errors` empty means the config is valid.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Reads and validates a config file. `Err` lists every error; `Ok` carries the warnings.
pub fn load_file(path: &Path) -> Result<(Config, Vec<Diagnostic>), Diagnostics> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text, &name),
        Err(e) => Err(Diagnostics {
            errors: vec![Diagnostic {
                file: name,
                pos: Pos { line: 0, column: 0 },
                path: String::new(),
                message: format!("cannot read the config file: {e}"),
                fatal_for_serve: true,
            }],
            warnings: vec![],
        }),
    }
}

/// Parses and validates config text; `file` is only used in diagnostics.
pub fn parse_str(text: &str, file: &str) -> Result<(Config, Vec<Diagnostic>), Diagnostics> {
    let mut r = Reader {
        file: file.to_string(),
        diags: Diagnostics::default(),
        defaults: Vec::new(),
        client_ids: Vec::new(),
    };
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            r.error(
                e.pos,
                "",
                format!("invalid YAML: {}", strip_position(&e.message)),
            );
            return Err(r.diags);
        }
    };
    let config = r.config(&root);
    match config {
        Some(c) if r.diags.errors.is_empty() => Ok((c, r.diags.warnings)),
        _ => {
            r.diags.errors.sort_by_key(|d| (d.pos.line, d.pos.column));
            Err(r.diags)
        }
    }
}

struct Reader {
    file: String,
    diags: Diagnostics,
    /// Tenants marked `default: true`, valid or not, with where they say so.
    defaults: Vec<(String, Pos)>,
    /// Client ids seen so far, with the tenant path that uses each.
    client_ids: Vec<(String, String)>,
}

/// A mapping being read: tracks which keys were used so the rest can be reported as unknown.
struct Map<'n> {
    path: String,
    pos: Pos,
    entries: &'n [(Key, Node)],
    used: Vec<bool>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Reader {
    fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let d = Diagnostic {
            file: self.file.clone(),
            pos,
            path: path.to_string(),
            message: message.into(),
            fatal_for_serve: true,
        };
        self.diags.errors.push(d);
    }

    fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let d = Diagnostic {
            file: self.file.clone(),
            pos,
            path: path.to_string(),
            message: message.into(),
            fatal_for_serve: false,
        };
        self.diags.warnings.push(d);
    }

    fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<Map<'n>> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                path,
                format!("expected a mapping, found {}", node.value.kind()),
            );
            return None;
        };
        let mut seen: BTreeMap<&str, Pos> = BTreeMap::new();
        for (key, _) in entries {
            if let Some(first) = seen.get(key.name.as_str()) {
                let msg = format!("duplicate key `{}` (first defined at {first})", key.name);
                self.error(key.pos, &join(path, &key.name), msg);
            } else {
                seen.insert(&key.name, key.pos);
            }
        }
        let used = vec![false; entries.len()];
        Some(Map {
            path: path.to_string(),
            pos: node.pos,
            entries,
            used,
        })
    }

    /// Reports every key of `map` that no reader asked for.
    fn finish(&mut self, map: Map<'_>, known: &[&str]) {
        for (i, (key, _)) in map.entries.iter().enumerate() {
            if !map.used[i] {
                let msg = format!(
                    "unknown key `{}` (expected one of: {})",
                    key.name,
                    known.join(", ")
                );
                self.error(key.pos, &join(&map.path, &key.name), msg);
            }
        }
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(s) => Some(s.clone()),
            other => {
                self.error(
                    node.pos,
                    path,
                    format!("expected a string, found {}", other.kind()),
                );
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<(String, Pos)>> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.pos,
                path,
                format!("expected a list, found {}", node.value.kind()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            if let Some(s) = self.string(item, &p) {
                out.push((s, item.pos));
            }
        }
        Some(out)
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Scalar(s) if s == "true" => Some(true),
            Value::Scalar(s) if s == "false" => Some(false),
            _ => {
                self.error(node.pos, path, "expected true or false");
                None
            }
        }
    }

    fn number(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u32> {
        let parsed = match &node.value {
            Value::Scalar(s) => s.parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if n >= min && n <= max => u32::try_from(n).ok(),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("expected a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let parsed = match &node.value {
            Value::Scalar(s) => parse_duration(s),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                node.pos,
                path,
                "expected a duration such as 500ms, 30s, 5m or 1h",
            );
        }
        parsed
    }

    /// A byte size: `1048576`, `512KiB`, `16MiB`, `1GiB`.
    fn size(&mut self, node: &Node, path: &str) -> Option<u64> {
        let parsed = match &node.value {
            Value::Scalar(s) => parse_size(s),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                node.pos,
                path,
                "expected a size such as 1048576, 512KiB or 16MiB",
            );
        }
        parsed
    }

    fn socket_addr(&mut self, node: &Node, path: &str) -> Option<SocketAddr> {
        let s = self.string(node, path)?;
        match s.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    node.pos,
                    path,
                    format!("`{s}` is not an address such as 127.0.0.1:8080"),
                );
                None
            }
        }
    }

    fn path(&mut self, node: &Node, path: &str) -> Option<PathBuf> {
        let s = self.string(node, path)?;
        if s.is_empty() {
            self.error(node.pos, path, "expected a file path");
            return None;
        }
        Some(PathBuf::from(s))
    }

    fn secret_ref(&mut self, node: &Node, path: &str) -> Option<SecretRef> {
        if let Value::Scalar(s) = &node.value {
            self.warn(
                node.pos,
                path,
                "inline secret in the config file: use { env: NAME } or { file: PATH }",
            );
            return Some(SecretRef::Inline(Secret::new(s.as_str())));
        }
        let mut m = self.map(node, path)?;
        let env = m.take("env");
        let file = m.take("file");
        let out = match (env, file) {
            (Some(e), None) => self.string(e, &join(path, "env")).map(SecretRef::Env),
            (None, Some(f)) => self.path(f, &join(path, "file")).map(SecretRef::File),
            _ => {
                self.error(node.pos, path, "expected exactly one of `env` or `file`");
                None
            }
        };
        self.finish(m, &["env", "file"]);
        let out = out?;
        if let Err(e) = out.resolve() {
            self.warn(
                node.pos,
                path,
                format!("secret cannot be resolved on this machine: {e}"),
            );
            if let Some(last) = self.diags.warnings.last_mut() {
                last.fatal_for_serve = true;
            }
        }
        Some(out)
    }
}

impl<'n> Map<'n> {
    fn take(&mut self, key: &str) -> Option<&'n Node> {
        let entries: &'n [(Key, Node)] = self.entries;
        let i = entries.iter().position(|(k, _)| k.name == key)?;
        // Later duplicates were already reported as duplicates, not as unknown keys.
        for (j, (k, _)) in entries.iter().enumerate() {
            if k.name == key {
                self.used[j] = true;
            }
        }
        Some(&entries[i].1)
    }

    fn entries(&mut self) -> &'n [(Key, Node)] {
        self.used.iter_mut().for_each(|u| *u = true);
        self.entries
    }
}

/// Drops a leading `error: line N column M:` that the parser puts in its message: the
/// diagnostic already carries the position.
fn strip_position(message: &str) -> &str {
    let m = message.strip_prefix("error: ").unwrap_or(message);
    match m
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((pos, rest)) if pos.contains(" column ") => rest,
        _ => m,
    }
}

/// Parses `1048576`, `512KiB`, `16MiB`, `1GiB` (at least 1 KiB).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let unit = match &s[split..] {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(unit).filter(|v| *v >= 1024)
}

/// Parses `500ms`, `30s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

#[cfg(test)]
mod bounds_tests;
mod clients;
mod credential;
mod mcp;
mod ops;
mod policy;
mod sections;
#[cfg(test)]
mod tests;
mod vault;
