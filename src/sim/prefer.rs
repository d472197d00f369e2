//! The `Prefer` header of a Dataverse request: `odata.maxpagesize=N`, `return=representation`
//! and `odata.include-annotations="..."`.
//!
//! Preferences are separated by commas outside double quotes, so
//! `odata.include-annotations="A,B", odata.maxpagesize=2` is two preferences, the first naming
//! two annotations. An annotation filter is a comma-separated list of patterns: `*` (every
//! annotation), an exact term (`OData.Community.Display.V1.FormattedValue`), a namespace wildcard
//! (`Microsoft.Dynamics.CRM.*`), each optionally negated with a leading `-`. A term is included
//! when a positive pattern matches it and no negative one does (OData 4.01, 8.2.8.4).
//!
//! Pure: no I/O, no clock.

/// The individual preferences of every `Prefer` header value, trimmed.
pub fn preferences<'a>(prefer: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out = Vec::new();
    for value in prefer {
        let mut quoted = false;
        let mut start = 0;
        for (i, c) in value.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    out.push(value[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(value[start..].trim());
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The page size asked for with `odata.maxpagesize=N` (N ≥ 1), if any.
pub fn max_page_size<'a>(prefer: impl IntoIterator<Item = &'a str>) -> Option<usize> {
    preferences(prefer)
        .into_iter()
        .filter_map(|p| p.strip_prefix("odata.maxpagesize="))
        .find_map(|n| n.trim().parse().ok())
        .filter(|n| *n > 0)
}

/// True when a preference is `return=representation`.
pub fn wants_representation<'a>(prefer: impl IntoIterator<Item = &'a str>) -> bool {
    preferences(prefer)
        .into_iter()
        .any(|p| p == "return=representation")
}

/// The annotations a request asked for with `odata.include-annotations`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// The preference as sent (for `Preference-Applied`); `None` when not asked for.
    pub applied: Option<String>,
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Annotations {
    pub fn from_prefer<'a>(prefer: impl IntoIterator<Item = &'a str>) -> Self {
        let Some(preference) = preferences(prefer)
            .into_iter()
            .find(|p| p.starts_with("odata.include-annotations="))
        else {
            return Self::default();
        };
        let list = preference["odata.include-annotations=".len()..].trim();
        let list = list
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or(list);
        let mut out = Self {
            applied: Some(preference.to_string()),
            ..Self::default()
        };
        for pattern in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pattern.strip_prefix('-') {
                Some(negated) => out.exclude.push(negated.to_string()),
                None => out.include.push(pattern.to_string()),
            }
        }
        out
    }

    /// Whether the annotation `term` (e.g. `OData.Community.Display.V1.FormattedValue`) is
    /// included.
    pub fn wants(&self, term: &str) -> bool {
        let matches = |pattern: &String| match pattern.strip_suffix('*') {
            Some("") => true,
            Some(prefix) => term.starts_with(prefix),
            None => pattern == term,
        };
        self.include.iter().any(matches) && !self.exclude.iter().any(matches)
    }

    /// True when no annotation at all can be included.
    pub fn none(&self) -> bool {
        self.include.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";
    const LOGICAL: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";

    #[test]
    fn preferences_split_outside_quotes() {
        let got = preferences([
            "odata.include-annotations=\"A,B\", odata.maxpagesize=2",
            "return=representation",
        ]);
        assert_eq!(
            got,
            [
                "odata.include-annotations=\"A,B\"",
                "odata.maxpagesize=2",
                "return=representation"
            ]
        );
        assert_eq!(
            max_page_size(["odata.include-annotations=\"*\", odata.maxpagesize=2"]),
            Some(2)
        );
        assert_eq!(max_page_size(["odata.maxpagesize=0"]), None);
        assert_eq!(max_page_size(["return=representation"]), None);
        assert!(wants_representation([
            "odata.maxpagesize=2,return=representation"
        ]));
        assert!(!wants_representation(["return=minimal"]));
    }

    #[test]
    fn annotation_patterns() {
        let all = Annotations::from_prefer(["odata.include-annotations=\"*\""]);
        assert!(all.wants(FORMATTED) && all.wants(LOGICAL));
        assert_eq!(
            all.applied.as_deref(),
            Some("odata.include-annotations=\"*\"")
        );
        let exact = Annotations::from_prefer([&*format!(
            "odata.maxpagesize=5, odata.include-annotations=\"{FORMATTED},x.y\""
        )]);
        assert!(exact.wants(FORMATTED) && !exact.wants(LOGICAL));
        let prefix =
            Annotations::from_prefer(["odata.include-annotations=Microsoft.Dynamics.CRM.*"]);
        assert!(prefix.wants(LOGICAL) && !prefix.wants(FORMATTED));
        let minus =
            Annotations::from_prefer([&*format!("odata.include-annotations=\"*,-{FORMATTED}\"")]);
        assert!(minus.wants(LOGICAL) && !minus.wants(FORMATTED));
        let nothing = Annotations::from_prefer(["return=representation"]);
        assert!(nothing.none() && !nothing.wants(FORMATTED) && nothing.applied.is_none());
    }
}
