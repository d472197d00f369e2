//! The part of `$filter` the simulator evaluates: a conjunction of simple comparisons
//! `<property> eq <literal>` or `<property> ne <literal>` (either way round) and the functions
//! `contains`, `startswith` and `endswith(<property>,'<text>')`, joined by `and`, each optionally
//! in parentheses. Literals: `'text'` (with `''` for a quote), numbers, `true`, `false`, `null` and
//! bare GUIDs. Text compares case-insensitively (Dataverse's default collation). Parameter
//! aliases are bound before this parser sees the filter (see `query`).
//!
//! Anything else (`or`, `not`, other operators and functions, lookup paths, lambdas) makes
//! [`parse`] return `None`, and the caller ignores the whole filter, as the
//! simulator did for every filter before. Which properties exist is the caller's business
//! (`records` drops comparisons on columns the simulated tables lack).
//!
//! Pure: no I/O, no clock.

use serde_json::{Map, Value};

use super::schema::is_guid;

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(f64),
    Bool(bool),
    Null,
}

/// How a property compares with a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    /// `contains(property,'text')`, case-insensitive.
    Contains,
    StartsWith,
    EndsWith,
}

/// `property <op> literal`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub property: String,
    pub op: Op,
    pub literal: Literal,
}

/// The conditions of a simple filter, or `None` when the filter is not one the simulator
/// evaluates.
pub fn parse(filter: &str) -> Option<Vec<Condition>> {
    let terms = split_and(filter)?;
    terms.iter().map(|t| condition(t)).collect()
}

/// Whether an entity (as JSON) satisfies every condition. A missing property is `null`.
pub fn matches(conditions: &[Condition], entity: &Map<String, Value>) -> bool {
    conditions.iter().all(|c| {
        let value = entity.get(&c.property).unwrap_or(&Value::Null);
        let text = |v: &Value| v.as_str().map(str::to_lowercase);
        let (have, want) = match (text(value), &c.literal) {
            (Some(have), Literal::Text(want)) => (have, want.to_lowercase()),
            _ => (String::new(), String::new()),
        };
        match c.op {
            Op::Eq => equal(value, &c.literal),
            Op::Ne => !equal(value, &c.literal),
            Op::Contains => value.is_string() && have.contains(&want),
            Op::StartsWith => value.is_string() && have.starts_with(&want),
            Op::EndsWith => value.is_string() && have.ends_with(&want),
        }
    })
}

fn equal(value: &Value, literal: &Literal) -> bool {
    match (literal, value) {
        (Literal::Null, v) => v.is_null(),
        (Literal::Text(t), Value::String(s)) => s.to_lowercase() == t.to_lowercase(),
        (Literal::Number(n), Value::Number(v)) => v.as_f64() == Some(*n),
        (Literal::Bool(b), Value::Bool(v)) => b == v,
        _ => false,
    }
}

/// Splits on top-level ` and ` (outside quotes and parentheses).
fn split_and(filter: &str) -> Option<Vec<&str>> {
    let mut terms = Vec::new();
    let (mut depth, mut quoted, mut start) = (0usize, false, 0);
    let bytes = filter.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth = depth.checked_sub(1)?,
            b' ' if !quoted && depth == 0 && filter[i..].starts_with(" and ") => {
                terms.push(&filter[start..i]);
                i += 5;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if quoted || depth != 0 {
        return None;
    }
    terms.push(&filter[start..]);
    Some(terms)
}

fn condition(term: &str) -> Option<Condition> {
    let term = strip_parens(term.trim());
    if let Some(call) = function(term) {
        return Some(call);
    }
    let (left, op, right) =
        [(" eq ", Op::Eq), (" ne ", Op::Ne)]
            .into_iter()
            .find_map(|(word, op)| {
                let at = outside_quotes(term, word)?;
                Some((term[..at].trim(), op, term[at + word.len()..].trim()))
            })?;
    // A property on either side: `@p eq 3&@p=statuscode` binds to `3 eq statuscode`.
    let (property, literal) = match (is_property(left), is_property(right)) {
        (true, _) => (left, right),
        (false, true) => (right, left),
        (false, false) => return None,
    };
    Some(Condition {
        property: property.to_string(),
        op,
        literal: parse_literal(literal)?,
    })
}

/// `contains(p,'x')`, `startswith(p,'x')` or `endswith(p,'x')`.
fn function(term: &str) -> Option<Condition> {
    let (name, rest) = term.split_once('(')?;
    let op = match name.trim() {
        "contains" => Op::Contains,
        "startswith" => Op::StartsWith,
        "endswith" => Op::EndsWith,
        _ => return None,
    };
    let (property, literal) = rest.strip_suffix(')')?.split_once(',')?;
    let property = property.trim();
    let literal @ Literal::Text(_) = parse_literal(literal.trim())? else {
        return None;
    };
    is_property(property).then(|| Condition {
        property: property.to_string(),
        op,
        literal,
    })
}

/// A plain column name (not a literal keyword).
fn is_property(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !matches!(text, "null" | "true" | "false")
        && !is_guid(text)
}

/// Where `needle` first occurs outside single-quoted literals.
fn outside_quotes(haystack: &str, needle: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in haystack.char_indices() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && haystack[i..].starts_with(needle) {
            return Some(i);
        }
    }
    None
}

/// Removes parentheses that wrap the whole term, as often as they do.
fn strip_parens(mut term: &str) -> &str {
    while let Some(inner) = term.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        if split_and(inner).is_none() {
            break;
        }
        term = inner.trim();
    }
    term
}

fn parse_literal(text: &str) -> Option<Literal> {
    if let Some(quoted) = text.strip_prefix('\'') {
        let mut value = String::new();
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\'' {
                value.push(c);
            } else if chars.peek() == Some(&'\'') {
                value.push('\'');
                chars.next();
            } else {
                return chars.next().is_none().then_some(Literal::Text(value));
            }
        }
        return None;
    }
    match text {
        "null" => Some(Literal::Null),
        "true" => Some(Literal::Bool(true)),
        "false" => Some(Literal::Bool(false)),
        _ if is_guid(text) => Some(Literal::Text(text.to_string())),
        _ => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Literal::Number),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entity(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parses_conjunctions_of_simple_comparisons() {
        let got = parse("LogicalName eq 'contact'").expect("simple");
        assert_eq!(got[0].property, "LogicalName");
        assert_eq!(got[0].literal, Literal::Text("contact".into()));
        let got = parse("IsPrivate eq false and (SchemaName eq 'O''Brien')").expect("and");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].literal, Literal::Text("O'Brien".into()));
        let got = parse("revenue ne 12.5 and statuscode eq null").expect("numbers");
        assert_eq!(
            (got[0].op, &got[0].literal),
            (Op::Ne, &Literal::Number(12.5))
        );
        assert_eq!(got[1].literal, Literal::Null);
        let got = parse("3 eq statuscode").expect("either way round");
        assert_eq!(
            (got[0].property.as_str(), &got[0].literal),
            ("statuscode", &Literal::Number(3.0))
        );
        let got = parse("contains(name,'a b') and endswith(name,'x')").expect("functions");
        assert_eq!((got[0].op, got[1].op), (Op::Contains, Op::EndsWith));
        let guid = "A0000000-0000-4000-8000-000000000001";
        let got = parse(&format!("_parentcustomerid_value eq {guid}")).expect("guid");
        assert_eq!(got[0].literal, Literal::Text(guid.into()));
        assert!(parse("name eq 'a and b'").is_some());
    }

    #[test]
    fn anything_else_is_not_evaluated() {
        for filter in [
            "a eq 1 or b eq 2",
            "contains(name,5)",
            "substringof('x',name)",
            "'a' eq 'b'",
            "revenue gt 5",
            "primarycontactid/fullname eq 'x'",
            "name eq 'open",
            "name eq 'a' 'b'",
            "name eq",
            "(name eq 'x'",
            "name eq x",
            "",
        ] {
            assert_eq!(parse(filter), None, "{filter}");
        }
    }

    #[test]
    fn matching_is_case_insensitive_for_text() {
        let row = entity(json!({"name": "Contoso Ltd", "revenue": 5.0, "flag": true}));
        let check = |f: &str| matches(&parse(f).expect(f), &row);
        assert!(check("name eq 'contoso ltd'"));
        assert!(check("revenue eq 5 and flag eq true"));
        assert!(check("missing eq null and name ne null"));
        assert!(!check("name eq 'Fabrikam'"));
        assert!(!check("revenue eq '5'"));
        assert!(check("contains(name,'SO L') and startswith(name,'cont')"));
        assert!(!check("contains(revenue,'5')") && !check("endswith(name,'x')"));
    }
}
