//! Column references in `$filter` and `$orderby`.
//!
//! A small lexer: it skips string literals, numbers, GUIDs and dates, and returns the column
//! names the expression reads. A `/` (lookup path or `any`/`all` lambda) or an `@` (parameter
//! alias) outside a string reaches beyond the table and is not understood; neither is a
//! `Microsoft.Dynamics.CRM.*` query function whose `PropertyName` is not a plain column.

use super::{ParseError, is_identifier};

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "has", "in", "true", "false", "null",
    "add", "sub", "mul", "div", "mod", "asc", "desc",
];

/// Columns referenced by a `$filter` expression.
pub fn columns_in_filter(expr: &str) -> Result<Vec<String>, ParseError> {
    let mut columns = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' {
            i = skip_string(expr, i)?;
        } else if c == b'/' || c == b'@' {
            return Err(ParseError::NotUnderstood(format!(
                "`$filter={expr}`: lookup paths, lambdas and aliases are not inspected by this version"
            )));
        } else if c.is_ascii_digit()
            || (c == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i = skip_while(bytes, i + 1, |b| {
                b.is_ascii_alphanumeric() || b"-:.+".contains(&b)
            });
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let end = skip_while(bytes, i, |b| {
                b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
            });
            let word = &expr[i..end];
            let next = skip_while(bytes, end, |b| b == b' ');
            if bytes.get(next) == Some(&b'(') {
                if word.contains('.') {
                    i = crm_function(expr, next, &mut columns)?;
                    continue;
                }
            } else if bytes.get(next) == Some(&b'\'') {
                // typed literal such as guid'...' or datetime'...'
            } else if !KEYWORDS.contains(&word) {
                if !is_identifier(word) {
                    return Err(ParseError::NotUnderstood(format!(
                        "`{word}` in $filter is not inspected by this version"
                    )));
                }
                columns.push(word.to_string());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    Ok(columns)
}

/// Columns in an `$orderby` list: `col [asc|desc], ...`.
pub fn columns_in_orderby(expr: &str) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    for item in expr.split(',') {
        let mut words = item.split_whitespace();
        let col = words.next().unwrap_or("");
        let dir = words.next();
        if !is_identifier(col)
            || !matches!(dir, None | Some("asc") | Some("desc"))
            || words.next().is_some()
        {
            return Err(ParseError::NotUnderstood(format!(
                "`$orderby={expr}`: only plain columns are inspected by this version"
            )));
        }
        out.push(col.to_string());
    }
    Ok(out)
}

/// Reads the arguments of `Microsoft.Dynamics.CRM.Fn(PropertyName='col',...)` starting at `(`.
fn crm_function(expr: &str, open: usize, columns: &mut Vec<String>) -> Result<usize, ParseError> {
    let bytes = expr.as_bytes();
    let mut i = open + 1;
    let not = || {
        ParseError::NotUnderstood(format!(
            "`$filter={expr}`: this query function is not inspected"
        ))
    };
    loop {
        i = skip_while(bytes, i, |b| b == b' ' || b == b',');
        match bytes.get(i) {
            Some(b')') => return Ok(i + 1),
            None => {
                return Err(ParseError::Malformed(format!(
                    "unbalanced parentheses in `{expr}`"
                )));
            }
            _ => {}
        }
        let name_end = skip_while(bytes, i, |b| b.is_ascii_alphanumeric() || b == b'_');
        let name = &expr[i..name_end];
        let eq = skip_while(bytes, name_end, |b| b == b' ');
        if bytes.get(eq) != Some(&b'=') {
            return Err(not());
        }
        let start = skip_while(bytes, eq + 1, |b| b == b' ');
        if bytes.get(start) == Some(&b'\'') {
            let end = skip_string(expr, start)?;
            let value = &expr[start + 1..end - 1];
            if name == "PropertyName" {
                if !is_identifier(value) {
                    return Err(not());
                }
                columns.push(value.to_string());
            }
            i = end;
        } else if bytes.get(start) == Some(&b'[') {
            i = skip_while(bytes, start, |b| b != b']') + 1;
        } else {
            i = skip_while(bytes, start, |b| b != b',' && b != b')');
            if expr[start..i].contains('@') || expr[start..i].contains('/') {
                return Err(not());
            }
        }
    }
}

/// Index just past the string literal starting at `start` (`''` is an escaped quote).
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

fn skip_while(bytes: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < bytes.len() && f(bytes[i]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_columns_and_skips_literals() {
        let cols = columns_in_filter(
            "fullname eq 'a/b@c' and contains(emailaddress1,'x''y') and _parentcustomerid_value eq \
             00000000-0000-0000-0000-000000000001 and createdon gt 2024-01-01T00:00:00Z and revenue ge -5.5",
        )
        .unwrap();
        assert_eq!(
            cols,
            vec![
                "fullname",
                "emailaddress1",
                "_parentcustomerid_value",
                "createdon",
                "revenue"
            ]
        );
    }

    #[test]
    fn crm_functions_expose_their_property() {
        let cols = columns_in_filter(
            "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=7) and statecode eq 0",
        )
        .unwrap();
        assert_eq!(cols, vec!["createdon", "statecode"]);
        let cols = columns_in_filter(
            "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['a','b'])",
        )
        .unwrap();
        assert_eq!(cols, vec!["name"]);
    }

    #[test]
    fn reaching_other_tables_is_not_understood() {
        for f in [
            "parentcustomerid_account/name eq 'x'",
            "contact_customer_accounts/any(c:c/fullname eq 'x')",
            "fullname eq @p1",
            "Microsoft.Dynamics.CRM.EqualUserId(PropertyName='owninguser/fullname')",
            "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=@p)",
        ] {
            assert!(
                matches!(columns_in_filter(f), Err(ParseError::NotUnderstood(_))),
                "{f}"
            );
        }
        assert!(matches!(
            columns_in_filter("fullname eq 'x"),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn orderby() {
        assert_eq!(
            columns_in_orderby("fullname desc, createdon").unwrap(),
            vec!["fullname", "createdon"]
        );
        assert!(columns_in_orderby("parentcustomerid_account/name").is_err());
        assert!(columns_in_orderby("a sideways").is_err());
    }
}
