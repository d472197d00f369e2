//! Query options.
//!
//! Every option is decoded the way the server decodes it (`%XX`, `+` as space). Duplicate
//! options, unknown `$` options and case variants such as `$Select` are malformed: the gateway
//! must never decide on one reading while Dataverse applies another.

use super::{ParseError, is_identifier, percent_decode};

/// `$` options Dataverse accepts that this version inspects.
const UNDERSTOOD: &[&str] = &[
    "$select",
    "$filter",
    "$orderby",
    "$top",
    "$count",
    "$skiptoken",
    "$deltatoken",
];
/// `$` options Dataverse accepts that reach other tables and are not inspected yet.
const NOT_INSPECTED: &[&str] = &["$expand", "$apply"];
/// Non-`$` parameters that run queries the gateway cannot see into yet.
const QUERY_PARAMETERS: &[&str] = &["fetchXml", "savedQuery", "userQuery", "sql"];

/// The decoded query options, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub options: Vec<(String, String)>,
}

impl Query {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `$select` list, when present. Paths in `$select` are not understood.
    pub fn select(&self) -> Result<Option<Vec<String>>, ParseError> {
        let Some(raw) = self.get("$select") else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for item in raw.split(',') {
            let item = item.trim();
            if !is_identifier(item) {
                return Err(ParseError::NotUnderstood(format!(
                    "`$select={raw}`: only plain column names are inspected"
                )));
            }
            out.push(item.to_string());
        }
        Ok(Some(out))
    }
}

pub fn parse_query(raw: Option<&str>) -> Result<Query, ParseError> {
    let mut query = Query::default();
    let Some(raw) = raw else { return Ok(query) };
    for part in raw.split('&') {
        if part.is_empty() {
            continue;
        }
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = percent_decode(name, true)?;
        let value = percent_decode(value, true)?;
        check_name(&name)?;
        if query.options.iter().any(|(n, _)| *n == name) {
            return Err(ParseError::Malformed(format!(
                "query option `{name}` appears twice"
            )));
        }
        query.options.push((name, value));
    }
    if let Some(top) = query.get("$top")
        && top.parse::<u32>().is_err()
    {
        return Err(ParseError::Malformed(format!(
            "`$top={top}` is not a whole number"
        )));
    }
    if let Some(count) = query.get("$count")
        && count != "true"
        && count != "false"
    {
        return Err(ParseError::Malformed(format!(
            "`$count={count}` must be true or false"
        )));
    }
    Ok(query)
}

fn check_name(name: &str) -> Result<(), ParseError> {
    if UNDERSTOOD.contains(&name) {
        return Ok(());
    }
    if NOT_INSPECTED.contains(&name) {
        return Err(ParseError::NotUnderstood(format!(
            "`{name}` can read other tables and is not inspected by this version"
        )));
    }
    if QUERY_PARAMETERS.contains(&name) {
        return Err(ParseError::NotUnderstood(format!(
            "`{name}` queries are not inspected by this version"
        )));
    }
    if name.starts_with('@') {
        return Err(ParseError::NotUnderstood(format!(
            "parameter alias `{name}` is not inspected by this version"
        )));
    }
    let known_case_variant = UNDERSTOOD
        .iter()
        .chain(NOT_INSPECTED)
        .chain(QUERY_PARAMETERS)
        .find(|k| k.eq_ignore_ascii_case(name));
    if let Some(k) = known_case_variant {
        return Err(ParseError::Malformed(format!(
            "`{name}` must be written exactly `{k}`"
        )));
    }
    Err(ParseError::Malformed(format!(
        "unknown query option `{name}`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParseError::*;

    #[test]
    fn decodes_like_the_server() {
        let q = parse_query(Some(
            "%24select=fullname,emailaddress1&$filter=fullname+eq+'a%26b'",
        ))
        .unwrap();
        assert_eq!(q.get("$select"), Some("fullname,emailaddress1"));
        assert_eq!(q.get("$filter"), Some("fullname eq 'a&b'"));
        assert_eq!(
            q.select().unwrap().unwrap(),
            vec!["fullname", "emailaddress1"]
        );
    }

    #[test]
    fn rejects_ambiguity() {
        let err = |q: &str| parse_query(Some(q)).unwrap_err();
        assert!(matches!(err("$select=a&$select=b"), Malformed(_)));
        assert!(matches!(err("$select=a&%24select=b"), Malformed(_)));
        assert!(matches!(err("$Select=a"), Malformed(_)));
        assert!(matches!(err("$EXPAND=x"), Malformed(_)));
        assert!(matches!(err("$foo=1"), Malformed(_)));
        assert!(matches!(err("tag=x"), Malformed(_)));
        assert!(matches!(err("$top=ten"), Malformed(_)));
        assert!(matches!(err("$filter=%zz"), Malformed(_)));
    }

    #[test]
    fn other_tables_are_not_understood() {
        let err = |q: &str| parse_query(Some(q)).unwrap_err();
        assert!(matches!(
            err("$expand=parentcustomerid_account"),
            NotUnderstood(_)
        ));
        assert!(matches!(err("$apply=groupby((x))"), NotUnderstood(_)));
        assert!(matches!(err("fetchXml=%3Cfetch%2F%3E"), NotUnderstood(_)));
        assert!(matches!(err("@p1=1"), NotUnderstood(_)));
        assert!(matches!(err("%40p1=1"), NotUnderstood(_)));
        assert!(matches!(err("savedQuery=1"), NotUnderstood(_)));
        let q = parse_query(Some("$select=parentcustomerid_account/name")).unwrap();
        assert!(matches!(q.select(), Err(NotUnderstood(_))));
    }
}
