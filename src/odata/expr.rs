//! Member paths in `$filter`, `$orderby` and `$apply` expressions.
//!
//! Pure. The result lists every path the expression reads, as segments from the request's
//! table: `parentcustomerid_account/name` is `["parentcustomerid_account", "name"]`. Lambda
//! variables are replaced by the path they range over, so
//! `contact_customer_accounts/any(c: c/fullname eq 'x')` yields `["contact_customer_accounts"]`
//! and `["contact_customer_accounts", "fullname"]`. Whether a segment is a navigation property
//! or a column is for the classifier to decide with the tenant's metadata. Parameter aliases
//! used are listed so their values can be checked. Anything unknown is not understood.

use super::{ParseError, is_identifier};

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "has", "in", "true", "false", "null",
    "add", "sub", "mul", "div", "mod", "asc", "desc", "with", "as", "from",
];
const FUNCTIONS: &[&str] = &[
    "contains",
    "startswith",
    "endswith",
    "length",
    "indexof",
    "substring",
    "tolower",
    "toupper",
    "trim",
    "concat",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "fractionalseconds",
    "date",
    "time",
    "now",
    "round",
    "floor",
    "ceiling",
    "totaloffsetminutes",
    "mindatetime",
    "maxdatetime",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    pub paths: Vec<Vec<String>>,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Alias(String),
    Literal,
    Open,
    Close,
    Comma,
    Slash,
    Colon,
    Other,
}

fn not(msg: String) -> ParseError {
    ParseError::NotUnderstood(msg)
}

fn tokenize(expr: &str) -> Result<Vec<Tok>, ParseError> {
    let b = expr.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        let tok = match c {
            b' ' | b'\t' => continue,
            b'\'' => {
                i = skip_string(expr, i - 1)?;
                Tok::Literal
            }
            b'(' => Tok::Open,
            b')' => Tok::Close,
            b',' => Tok::Comma,
            b'/' => Tok::Slash,
            b':' => Tok::Colon,
            b'[' | b']' | b'-' | b'+' | b'*' | b'='
                if !(c == b'-' && b.get(i).is_some_and(u8::is_ascii_digit)) =>
            {
                Tok::Other
            }
            b'@' | b'$' | b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                let start = i - 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                if let Some(alias) = word.strip_prefix('@') {
                    Tok::Alias(alias.to_string())
                } else if word.starts_with('$') {
                    return Err(not(format!("`{word}` in an expression is not inspected")));
                } else {
                    Tok::Ident(word.to_string())
                }
            }
            b'0'..=b'9' | b'-' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b"-:.+".contains(&b[i])) {
                    i += 1;
                }
                Tok::Literal
            }
            _ => {
                return Err(ParseError::Malformed(format!(
                    "unexpected character `{}` in `{expr}`",
                    c as char
                )));
            }
        };
        toks.push(tok);
    }
    Ok(toks)
}

fn skip_string(expr: &str, start: usize) -> Result<usize, ParseError> {
    let bytes = expr.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(ParseError::Malformed(format!(
        "unterminated string literal in `{expr}`"
    )))
}

/// Paths and aliases read by a `$filter` (or any boolean/common) expression.
pub fn filter_refs(expr: &str) -> Result<Refs, ParseError> {
    let toks = tokenize(expr)?;
    let mut refs = Refs::default();
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        vars: Vec::new(),
        refs: &mut refs,
        text: expr,
    };
    p.sequence(None)?;
    // Query functions (`Microsoft.Dynamics.CRM.LastXDays(PropertyName='x',...)`) name their
    // column in a string argument: those are member paths too.
    refs.paths.extend(property_name_args(expr)?);
    Ok(refs)
}

/// Paths in an `$orderby` list: `path [asc|desc], ...`.
pub fn orderby_refs(expr: &str) -> Result<Refs, ParseError> {
    let mut refs = Refs::default();
    for item in expr.split(',') {
        let item = item.trim();
        let (path, dir) = item
            .rsplit_once(' ')
            .map_or((item, None), |(p, d)| (p.trim(), Some(d)));
        if !matches!(dir, None | Some("asc") | Some("desc")) {
            return Err(not(format!(
                "`$orderby={expr}`: only paths with asc/desc are inspected"
            )));
        }
        let segments: Vec<String> = path.split('/').map(str::to_string).collect();
        if segments.iter().any(|s| !is_identifier(s)) {
            return Err(not(format!(
                "`$orderby={expr}`: only member paths are inspected"
            )));
        }
        refs.paths.push(segments);
    }
    Ok(refs)
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    /// Lambda variables in scope and the path each ranges over.
    vars: Vec<(String, Vec<String>)>,
    refs: &'a mut Refs,
    text: &'a str,
}

impl Parser<'_> {
    /// Parses tokens until the `)` matching an already consumed `(` (when `closing`), or the end.
    fn sequence(&mut self, closing: Option<()>) -> Result<(), ParseError> {
        while let Some(tok) = self.toks.get(self.pos).cloned() {
            self.pos += 1;
            match tok {
                Tok::Close if closing.is_some() => return Ok(()),
                Tok::Close => {
                    return Err(ParseError::Malformed(format!(
                        "unbalanced `)` in `{}`",
                        self.text
                    )));
                }
                Tok::Open => self.sequence(Some(()))?,
                Tok::Alias(a) => self.refs.aliases.push(a),
                Tok::Ident(word) => self.word(word)?,
                Tok::Slash | Tok::Colon => {
                    return Err(not(format!("`{}`: unexpected `/` or `:`", self.text)));
                }
                Tok::Literal | Tok::Comma | Tok::Other => {}
            }
        }
        match closing {
            Some(()) => Err(ParseError::Malformed(format!(
                "unbalanced `(` in `{}`",
                self.text
            ))),
            None => Ok(()),
        }
    }

    fn word(&mut self, word: String) -> Result<(), ParseError> {
        let next_open = self.toks.get(self.pos) == Some(&Tok::Open);
        if KEYWORDS.contains(&word.as_str()) {
            return Ok(());
        }
        if next_open && FUNCTIONS.contains(&word.as_str()) {
            return Ok(());
        }
        if next_open && word.starts_with(super::path::NAMESPACE) {
            self.pos += 1;
            return self.crm_function(&word);
        }
        if next_open || word.contains('.') {
            return Err(not(format!("`{word}` in `{}` is not inspected", self.text)));
        }
        self.path(word)
    }

    /// A member path starting with `first`, possibly ending in a lambda.
    fn path(&mut self, first: String) -> Result<(), ParseError> {
        let mut segments = match self.vars.iter().rev().find(|(v, _)| *v == first) {
            Some((_, base)) => base.clone(),
            None => vec![first],
        };
        while self.toks.get(self.pos) == Some(&Tok::Slash) {
            let Some(Tok::Ident(seg)) = self.toks.get(self.pos + 1).cloned() else {
                return Err(not(format!(
                    "`{}`: a path segment is not a plain name",
                    self.text
                )));
            };
            self.pos += 2;
            if (seg == "any" || seg == "all") && self.toks.get(self.pos) == Some(&Tok::Open) {
                self.pos += 1;
                return self.lambda(segments);
            }
            if !is_identifier(&seg) {
                return Err(not(format!(
                    "`{seg}` in `{}`: casts and qualified names are not inspected",
                    self.text
                )));
            }
            segments.push(seg);
        }
        if !segments.iter().all(|s| is_identifier(s)) {
            return Err(not(format!(
                "`{}` is not a plain member path",
                segments.join("/")
            )));
        }
        self.refs.paths.push(segments);
        Ok(())
    }

    /// After `any(` / `all(`: `var: expr)` or `)`.
    fn lambda(&mut self, collection: Vec<String>) -> Result<(), ParseError> {
        self.refs.paths.push(collection.clone());
        if self.toks.get(self.pos) == Some(&Tok::Close) {
            self.pos += 1;
            return Ok(());
        }
        let (Some(Tok::Ident(var)), Some(Tok::Colon)) = (
            self.toks.get(self.pos).cloned(),
            self.toks.get(self.pos + 1),
        ) else {
            return Err(ParseError::Malformed(format!(
                "`{}`: a lambda needs `variable: expression`",
                self.text
            )));
        };
        self.pos += 2;
        self.vars.push((var, collection));
        let result = self.sequence(Some(()));
        self.vars.pop();
        result
    }

    /// `Microsoft.Dynamics.CRM.Fn(Name=value, ...)` after its `(`: `PropertyName` values are paths.
    fn crm_function(&mut self, word: &str) -> Result<(), ParseError> {
        let start = self.pos;
        let mut depth = 1;
        while depth > 0 {
            match self.toks.get(self.pos) {
                Some(Tok::Open) => depth += 1,
                Some(Tok::Close) => depth -= 1,
                Some(Tok::Alias(a)) => self.refs.aliases.push(a.clone()),
                Some(Tok::Ident(_)) | Some(Tok::Literal) | Some(Tok::Comma) | Some(Tok::Other) => {}
                Some(_) => return Err(not(format!("`{word}` arguments are not inspected"))),
                None => {
                    return Err(ParseError::Malformed(format!(
                        "unbalanced `(` in `{}`",
                        self.text
                    )));
                }
            }
            self.pos += 1;
        }
        let _ = start;
        Ok(())
    }
}

/// Columns named by `PropertyName='...'` arguments of CRM query functions in `expr`.
pub fn property_name_args(expr: &str) -> Result<Vec<Vec<String>>, ParseError> {
    const NAME: &str = "propertyname";
    let lower = expr.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find(NAME) {
        let at = from + found + NAME.len();
        from = at;
        let Some(value) = expr[at..]
            .trim_start()
            .strip_prefix('=')
            .map(str::trim_start)
        else {
            continue;
        };
        let Some(body) = value.strip_prefix('\'') else {
            return Err(not("PropertyName must be a quoted column name".into()));
        };
        let end = body
            .find('\'')
            .ok_or_else(|| ParseError::Malformed("unterminated PropertyName".into()))?;
        let segments: Vec<String> = body[..end].split('/').map(str::to_string).collect();
        if segments.iter().any(|s| !is_identifier(s)) {
            return Err(not(format!(
                "PropertyName='{}' is not a member path",
                &body[..end]
            )));
        }
        out.push(segments);
        from = expr.len() - body.len() + end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
