//! `$expand`: which navigation properties a request expands, with their nested options.
//!
//! Pure. `nav1($select=a,b;$filter=x eq 1;$expand=nav2($select=c)),nav3` becomes a tree. Only the
//! options Dataverse supports inside `$expand` are accepted (`$select`, `$filter`, `$orderby`,
//! `$top`, `$expand`); `*`, `$levels`, casts and `$ref` expansions are not understood.

use super::{ParseError, is_identifier};

const NESTED_OPTIONS: &[&str] = &["$select", "$filter", "$orderby", "$top", "$expand"];

/// One expanded navigation property, borrowing from the `$expand` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandItem<'a> {
    pub nav: &'a str,
    pub options: Vec<(&'a str, &'a str)>,
    pub children: Vec<ExpandItem<'a>>,
}

impl<'a> ExpandItem<'a> {
    pub fn option(&self, name: &str) -> Option<&'a str> {
        self.options
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

pub fn parse_expand(value: &str) -> Result<Vec<ExpandItem<'_>>, ParseError> {
    parse_list(value, 0)
}

fn parse_list(value: &str, depth: usize) -> Result<Vec<ExpandItem<'_>>, ParseError> {
    if depth > 10 {
        return Err(ParseError::NotUnderstood(
            "$expand nested more than 10 levels".into(),
        ));
    }
    split_top(value, b',')?
        .into_iter()
        .map(|item| parse_item(item.trim(), depth))
        .collect()
}

fn parse_item(item: &str, depth: usize) -> Result<ExpandItem<'_>, ParseError> {
    let (nav, options) = match item.find('(') {
        Some(open) => {
            let inner = item[open + 1..].strip_suffix(')').ok_or_else(|| {
                ParseError::Malformed(format!("unbalanced parentheses in `$expand={item}`"))
            })?;
            (&item[..open], inner)
        }
        None => (item, ""),
    };
    if !is_identifier(nav) {
        return Err(ParseError::NotUnderstood(format!(
            "`$expand={item}`: only navigation property names are inspected"
        )));
    }
    let mut out = ExpandItem {
        nav,
        options: Vec::new(),
        children: Vec::new(),
    };
    for opt in split_top(options, b';')? {
        let opt = opt.trim();
        if opt.is_empty() {
            continue;
        }
        let (name, value) = opt.split_once('=').unwrap_or((opt, ""));
        if !NESTED_OPTIONS.contains(&name) {
            return Err(ParseError::NotUnderstood(format!(
                "`{name}` inside $expand is not inspected"
            )));
        }
        if out.options.iter().any(|(n, _)| *n == name) {
            return Err(ParseError::Malformed(format!(
                "`{name}` appears twice inside $expand={nav}(...)"
            )));
        }
        if name == "$expand" {
            out.children = parse_list(value, depth + 1)?;
        }
        // `$top` is the one option whose value is not parsed where it is used: a number only.
        if name == "$top" && value.parse::<u32>().is_err() {
            return Err(ParseError::Malformed(format!(
                "`$top={value}` inside $expand={nav}(...) is not a whole number"
            )));
        }
        out.options.push((name, value));
    }
    Ok(out)
}

/// Splits on `sep` outside parentheses and string literals.
fn split_top(s: &str, sep: u8) -> Result<Vec<&str>, ParseError> {
    let b = s.as_bytes();
    let (mut depth, mut start, mut in_str) = (0i32, 0, false);
    let mut out = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'\'' => in_str = !in_str,
            b'(' if !in_str => depth += 1,
            b')' if !in_str => depth -= 1,
            c if c == sep && !in_str && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(ParseError::Malformed(format!(
                "unbalanced parentheses in `{s}`"
            )));
        }
    }
    if depth != 0 || in_str {
        return Err(ParseError::Malformed(format!(
            "unbalanced parentheses or quotes in `{s}`"
        )));
    }
    if !s.is_empty() {
        out.push(&s[start..]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_expands_with_options() {
        let items = parse_expand(
            "parentcustomerid_account($select=name,revenue;$filter=name eq 'a;b(';$expand=primarycontactid($select=fullname)),createdby",
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].nav, "parentcustomerid_account");
        assert_eq!(items[0].option("$select"), Some("name,revenue"));
        assert_eq!(items[0].option("$filter"), Some("name eq 'a;b('"));
        assert_eq!(items[0].children[0].nav, "primarycontactid");
        assert_eq!(items[0].children[0].option("$select"), Some("fullname"));
        assert_eq!(items[1].nav, "createdby");
    }

    #[test]
    fn unknown_shapes() {
        assert!(matches!(
            parse_expand("*"),
            Err(ParseError::NotUnderstood(_))
        ));
        assert!(matches!(
            parse_expand("a($levels=2)"),
            Err(ParseError::NotUnderstood(_))
        ));
        assert!(matches!(
            parse_expand("a/$ref"),
            Err(ParseError::NotUnderstood(_))
        ));
        assert!(matches!(
            parse_expand("a($select=x"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_expand("a($select=x;$select=y)"),
            Err(ParseError::Malformed(_))
        ));
        // `$top` takes a whole number, never text that reads as more options
        for bad in [
            "a($top=x)",
            "a($top=1=x$filter=createdby/fullname)",
            "a($top=-1)",
            "a($top)",
        ] {
            assert!(
                matches!(parse_expand(bad), Err(ParseError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_expand("a($top=5)").unwrap()[0].option("$top"),
            Some("5")
        );
        let deep = "a($expand=".repeat(12) + "b" + &")".repeat(12);
        assert!(parse_expand(&deep).is_err());
    }
}
