//! The resource path after `/api/data/{version}/`.
//!
//! Understood shapes: `name`, `name()`, `name(<key>)`, `name/$count`, `$metadata`, `$batch`.
//! A key is a GUID, or `prop=literal` pairs (alternate and composite keys), or, for functions,
//! parameters. Percent-encoding is accepted only inside the parentheses, where key literals
//! need it; names must be written plainly.

use super::{ParseError, is_identifier, percent_decode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourcePath {
    /// `name` or `name(...)`, optionally followed by `/$count`.
    Named {
        name: String,
        key: Option<KeySpec>,
        count: bool,
    },
    Metadata,
    Batch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// `()` — a function call without parameters.
    Empty,
    Guid(String),
    /// `prop=literal,...` after decoding.
    Pairs(Vec<(String, String)>),
}

pub fn parse_path(raw: &str) -> Result<ResourcePath, ParseError> {
    let segments: Vec<&str> = raw.split('/').collect();
    if segments.len() > 1 && segments.contains(&"") {
        return Err(ParseError::Malformed(
            "the path has an empty segment (`//` or a trailing `/`)".into(),
        ));
    }
    match segments.as_slice() {
        [""] => Err(ParseError::NotUnderstood(
            "the service document lists every table; request a table instead".into(),
        )),
        ["$metadata"] => Ok(ResourcePath::Metadata),
        ["$batch"] => Ok(ResourcePath::Batch),
        [first] => named(first, false),
        [first, "$count"] => named(first, true),
        [_, second, ..] => Err(ParseError::NotUnderstood(format!(
            "the gateway does not yet inspect path segments after the first (`{}`): navigation, \
             property and bound-operation paths are denied",
            second
        ))),
        [] => Err(ParseError::Malformed("empty path".into())),
    }
}

fn named(segment: &str, count: bool) -> Result<ResourcePath, ParseError> {
    let (name, key) = match segment.find('(') {
        Some(open) => {
            let Some(inner) = segment[open + 1..].strip_suffix(')') else {
                return Err(ParseError::Malformed(format!(
                    "unbalanced parentheses in `{segment}`"
                )));
            };
            (&segment[..open], Some(parse_key(inner)?))
        }
        None => (segment, None),
    };
    if !is_identifier(name) {
        let msg = if name.contains('%') {
            format!("`{name}` is percent-encoded: write entity set and operation names plainly")
        } else if name.contains('.') {
            format!("`{name}`: qualified operation names are not inspected yet")
        } else {
            format!("`{name}` is not a valid entity set or operation name")
        };
        return Err(if name.contains('.') {
            ParseError::NotUnderstood(msg)
        } else {
            ParseError::Malformed(msg)
        });
    }
    Ok(ResourcePath::Named {
        name: name.to_string(),
        key,
        count,
    })
}

fn parse_key(raw: &str) -> Result<KeySpec, ParseError> {
    let decoded = percent_decode(raw, false)?;
    if decoded.is_empty() {
        return Ok(KeySpec::Empty);
    }
    if decoded.contains('@') && !decoded.contains('\'') {
        return Err(ParseError::NotUnderstood(
            "parameter aliases in keys are not inspected yet".into(),
        ));
    }
    if is_guid(&decoded) {
        return Ok(KeySpec::Guid(decoded.to_ascii_lowercase()));
    }
    let mut pairs = Vec::new();
    let mut rest = decoded.as_str();
    loop {
        let eq = rest
            .find('=')
            .ok_or_else(|| ParseError::Malformed(format!("`{decoded}` is not a valid key")))?;
        let prop = rest[..eq].trim();
        if !is_identifier(prop) {
            return Err(ParseError::Malformed(format!(
                "`{prop}` is not a valid key property"
            )));
        }
        let (literal, after) = split_literal(rest[eq + 1..].trim_start())?;
        if literal.starts_with('@') {
            return Err(ParseError::NotUnderstood(
                "parameter aliases in keys are not inspected yet".into(),
            ));
        }
        pairs.push((prop.to_string(), literal));
        let after = after.trim_start();
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None if after.is_empty() => break,
            None => {
                return Err(ParseError::Malformed(format!(
                    "`{decoded}` is not a valid key"
                )));
            }
        }
    }
    Ok(KeySpec::Pairs(pairs))
}

/// Splits one OData literal off the front: a quoted string (with `''` escapes) or a bare token.
fn split_literal(s: &str) -> Result<(String, &str), ParseError> {
    if let Some(body) = s.strip_prefix('\'') {
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                if bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                return Ok((format!("'{}'", &body[..i]), &body[i + 1..]));
            }
            i += 1;
        }
        return Err(ParseError::Malformed(
            "unterminated string literal in key".into(),
        ));
    }
    let end = s.find(',').unwrap_or(s.len());
    let token = s[..end].trim();
    let ok = !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:_@".contains(c));
    if !ok {
        return Err(ParseError::Malformed(format!(
            "`{token}` is not a valid key value"
        )));
    }
    Ok((token.to_string(), &s[end..]))
}

pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "00000000-0000-0000-0000-000000000001";

    fn named(name: &str, key: Option<KeySpec>, count: bool) -> ResourcePath {
        ResourcePath::Named {
            name: name.into(),
            key,
            count,
        }
    }

    #[test]
    fn understood_shapes() {
        assert_eq!(
            parse_path("contacts").unwrap(),
            named("contacts", None, false)
        );
        assert_eq!(
            parse_path("contacts/$count").unwrap(),
            named("contacts", None, true)
        );
        let rec = parse_path(&format!("contacts({ID})")).unwrap();
        assert_eq!(
            rec,
            named("contacts", Some(KeySpec::Guid(ID.into())), false)
        );
        assert_eq!(
            parse_path("WhoAmI()").unwrap(),
            named("WhoAmI", Some(KeySpec::Empty), false)
        );
        assert_eq!(parse_path("$metadata").unwrap(), ResourcePath::Metadata);
        assert_eq!(parse_path("$batch").unwrap(), ResourcePath::Batch);
    }

    #[test]
    fn alternate_and_composite_keys() {
        let p = parse_path("contacts(emailaddress1='a%40b.com',firstname='O''Neil')").unwrap();
        let pairs = vec![
            ("emailaddress1".to_string(), "'a@b.com'".to_string()),
            ("firstname".to_string(), "'O''Neil'".to_string()),
        ];
        assert_eq!(p, named("contacts", Some(KeySpec::Pairs(pairs)), false));
        let p = parse_path(&format!("contacts(contactid={ID})")).unwrap();
        let pairs = vec![("contactid".to_string(), ID.to_string())];
        assert_eq!(p, named("contacts", Some(KeySpec::Pairs(pairs)), false));
    }

    #[test]
    fn everything_else_is_not_understood_or_malformed() {
        use ParseError::*;
        let not = |p: &str| matches!(parse_path(p), Err(NotUnderstood(_)));
        let bad = |p: &str| matches!(parse_path(p), Err(Malformed(_)));
        assert!(not(&format!("contacts({ID})/parentcustomerid_account")));
        assert!(not(&format!("contacts({ID})/fullname/$value")));
        assert!(not("accounts/Microsoft.Dynamics.CRM.CreateMultiple"));
        assert!(not("Microsoft.Dynamics.CRM.WhoAmI()"));
        assert!(not("contacts(@p1)"));
        assert!(not(""));
        assert!(bad("%63ontacts"));
        assert!(bad("contacts(emailaddress1='x'"));
        assert!(bad("contacts(emailaddress1='x)"));
        assert!(bad("contacts(x)/"));
        assert!(bad("contacts(a=1 b=2)"));
        // an encoded quote closes the literal exactly as Dataverse would read it
        assert!(bad("contacts(emailaddress1='a%27%27)"));
        assert!(parse_path("contacts(emailaddress1='a%27)").is_ok());
    }
}
