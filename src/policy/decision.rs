//! The allowlist decision: default deny.
//!
//! Pure: a [`Classified`] request (or the reason it could not be classified) and the tenant's
//! [`Policy`] in, a [`Decision`] out. Invariants (each pinned by tests that try to break them):
//! - allowed only when EVERY use is allowlisted: each table for the verb it implies, each column
//!   named on a column-restricted table, each function, action and metadata read;
//! - a read that would return every column of a column-restricted table is allowed only as the
//!   request's main read, and then the gateway adds `$select` with the allowed columns;
//! - a request the classifier could not resolve, or that needs metadata the gateway does not
//!   have, is denied;
//! - `savedQuery`/`userQuery`/`sql` (uninspectable) are allowed only when `allow_uninspectable`
//!   lists them AND the table has no column list: their columns cannot be checked;
//! - PATCH on a table that allows PATCH but not POST carries `If-Match: *` (no upsert-create),
//!   and `If-None-Match: *` (create-only) on such a table is denied.

use std::borrow::Cow;
use std::fmt;

use http::HeaderMap;

use crate::config::{Policy, Verb};
use crate::policy::classify::{Classified, Use};
use crate::policy::odata::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The allowlist does not permit it, or it cannot be inspected: 403.
    Policy,
    /// Malformed or ambiguous: 400.
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `None` when allowed.
    pub denial: Option<Denial>,
    /// What the request uses, for explain and the audit log.
    pub uses: Vec<Use>,
    /// Every reason it was denied, or a text that says why it was allowed; `None` when the
    /// reason is the allowlist rules that allow `uses` (see [`Decision::reason`]), which are
    /// written only when read: the audit log writes them straight into its line.
    text: Option<String>,
    /// `$select` to append because the main table has a column list and the request had none.
    pub add_select: Option<String>,
    /// Send `If-Match: *` (PATCH on a table without POST).
    pub if_match_star: bool,
}

impl Drop for Decision {
    /// The list of uses goes back to this thread's spares for the next classification
    /// (`policy::classify::spare_uses`).
    fn drop(&mut self) {
        crate::policy::classify::spare_uses::give(std::mem::take(&mut self.uses));
    }
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.describe(&mut s);
        f.write_str(&s)
    }
}

impl Use {
    /// Appends how `explain` and the audit log show this use (its `Display`), without the
    /// formatting machinery: the audit log writes it for every request.
    pub fn describe(&self, out: &mut String) {
        match self {
            Use::Table(t) => {
                out.extend([t.verb.as_str(), " ", &*t.set]);
                let mut columns = t.columns.iter();
                if let Some(first) = columns.next() {
                    out.extend([" [", first]);
                    for c in columns {
                        out.extend([", ", c]);
                    }
                    out.push(']');
                }
                if t.all_columns {
                    out.push_str(" (all columns)");
                }
            }
            Use::Function(n) => out.extend(["function ", n]),
            Use::Action(n) => out.extend(["action ", n]),
            Use::Definition(s) => out.extend(["EntityDefinitions of ", s]),
            Use::AllDefinitions => out.push_str("EntityDefinitions listing"),
            Use::Metadata => out.push_str("$metadata"),
            Use::Uninspectable { kind, set } => out.extend([kind.as_str(), " on ", set]),
        }
    }
}

/// Why a decision was made, as [`Decision::reason_ref`] gives it: written on demand.
#[derive(Debug, Clone, Copy)]
pub enum Reason<'a> {
    /// The allowlist rules that allow these uses, each once, in order of first use.
    Rules(&'a [Use]),
    Text(&'a str),
}

impl Reason<'_> {
    /// Appends the reason to `out`.
    pub fn write(&self, out: &mut String) {
        match *self {
            Reason::Text(t) => out.push_str(t),
            Reason::Rules(uses) => {
                for (i, u) in uses.iter().enumerate() {
                    let rule = Rule::of(u);
                    if uses[..i].iter().any(|e| Rule::of(e) == rule) {
                        continue;
                    }
                    if i > 0 {
                        out.push_str("; ");
                    }
                    rule.write(out);
                }
            }
        }
    }

    /// About how long the written reason is (exact for a text).
    pub fn len_hint(&self) -> usize {
        match self {
            Reason::Text(t) => t.len(),
            Reason::Rules(uses) => 40 * uses.len(),
        }
    }
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Text(t) => f.write_str(t),
            Reason::Rules(_) => {
                let mut s = String::new();
                self.write(&mut s);
                f.write_str(&s)
            }
        }
    }
}

impl Decision {
    /// A decision with `reason` as its text.
    pub fn new(denial: Option<Denial>, uses: Vec<Use>, reason: String) -> Decision {
        Decision {
            denial,
            uses,
            text: Some(reason),
            add_select: None,
            if_match_star: false,
        }
    }

    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }

    /// The rules that allowed the request, or every reason it was denied.
    pub fn reason(&self) -> Cow<'_, str> {
        match &self.text {
            Some(t) => Cow::Borrowed(t),
            None => Cow::Owned(self.reason_ref().to_string()),
        }
    }

    /// [`Decision::reason`] without writing it out.
    pub fn reason_ref(&self) -> Reason<'_> {
        match &self.text {
            Some(t) => Reason::Text(t),
            None => Reason::Rules(&self.uses),
        }
    }

    /// The reason as a text to edit (written out first when it is the rules).
    pub fn reason_mut(&mut self) -> &mut String {
        let uses = &self.uses;
        self.text
            .get_or_insert_with(|| Reason::Rules(uses).to_string())
    }

    /// A 400 decision for a reason found outside the URL (for example a refused header).
    pub fn malformed(reason: impl Into<String>) -> Decision {
        Decision::new(Some(Denial::Malformed), vec![], reason.into())
    }

    pub fn denied(reason: impl Into<String>) -> Decision {
        Decision::new(Some(Denial::Policy), vec![], reason.into())
    }
}

impl From<ParseError> for Decision {
    fn from(e: ParseError) -> Decision {
        match e {
            ParseError::Malformed(m) => Decision::malformed(m),
            ParseError::NotUnderstood(m) => Decision::denied(m),
        }
    }
}

/// Decides on a classified request.
pub fn decide(
    policy: &Policy,
    classified: Result<Classified, ParseError>,
    headers: &HeaderMap,
) -> Decision {
    let c = match classified {
        Ok(c) => c,
        Err(e) => return Decision::from(e),
    };
    if c.needs_metadata {
        let mut d = Decision::denied(
            "this request needs the org's metadata, which the gateway has not loaded (fail closed)",
        );
        d.uses = c.uses;
        return d;
    }
    // Every reason it is denied, each once; when there is none, the reason is the rules that
    // allow the uses, written on demand (`Reason::Rules`).
    let mut reasons: Vec<String> = Vec::new();
    let mut add_select = None;
    for u in &c.uses {
        if let Err(reason) = check(policy, u, &mut add_select)
            && !reasons.contains(&reason)
        {
            reasons.push(reason)
        }
    }
    let mut if_match_star = false;
    if let Some(set) = &c.upsert
        && policy
            .tables
            .get(set)
            .is_some_and(|r| !r.allows(Verb::Post))
    {
        if header_is_star(headers, http::header::IF_NONE_MATCH) {
            reasons.push(format!(
                "PATCH with If-None-Match: * creates a row in `{set}`, which needs POST"
            ));
        }
        if_match_star = !headers.contains_key(http::header::IF_MATCH);
        // The agent's own condition stands only when it is one Dataverse must check (the row
        // must exist to match it); a value it might not parse must not turn the PATCH into an
        // unconditional upsert.
        if !if_match_star && !if_match_well_formed(headers) {
            reasons.push(format!(
                "PATCH with a malformed If-Match could create a row in `{set}`, which needs POST \
                 (send `If-Match: *` or the row's ETag)"
            ));
        }
    }
    if c.uses.is_empty() {
        reasons.push("the request touches nothing the gateway can allow".into());
    }
    let denial = (!reasons.is_empty()).then_some(Denial::Policy);
    let text = match reasons.len() {
        0 => None,
        1 => reasons.pop(),
        _ => Some(reasons.join("; ")),
    };
    Decision {
        denial,
        uses: c.uses,
        text,
        add_select: if denial.is_none() { add_select } else { None },
        if_match_star,
    }
}

/// The rule of the allowlist that allows a use, as the allow reason names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule<'u> {
    Table(&'u str, Verb),
    Function(&'u str),
    Action(&'u str),
    Definition(&'u str),
    AllDefinitions,
    Metadata,
    Uninspectable(&'u str),
}

impl<'u> Rule<'u> {
    /// The rule that allows `u` when it is allowed (two uses with the same rule print it once).
    fn of(u: &'u Use) -> Rule<'u> {
        match u {
            Use::Table(t) => Rule::Table(&t.set, t.verb),
            Use::Function(n) => Rule::Function(n),
            Use::Action(n) => Rule::Action(n),
            Use::Definition(s) => Rule::Definition(s),
            Use::AllDefinitions => Rule::AllDefinitions,
            Use::Metadata => Rule::Metadata,
            Use::Uninspectable { kind, .. } => Rule::Uninspectable(kind),
        }
    }

    fn write(&self, out: &mut String) {
        match *self {
            Rule::Table(set, verb) => out.extend(["allow.", set, " permits ", verb.as_str()]),
            Rule::Function(n) => out.extend(["functions lists ", n]),
            Rule::Action(n) => out.extend(["actions lists ", n]),
            Rule::Definition(s) => out.extend(["EntityDefinitions of allowlisted `", s, "`"]),
            Rule::AllDefinitions => out.push_str("allow_all_entity_definitions"),
            Rule::Metadata => out.push_str("allow_metadata"),
            Rule::Uninspectable(kind) => out.extend(["allow_uninspectable lists ", kind]),
        }
    }
}

/// Whether the policy allows `u` (the rule that allows it is always [`Rule::of`] `u`, which
/// [`Reason::Rules`] writes), else why not.
fn check(policy: &Policy, u: &Use, add_select: &mut Option<String>) -> Result<(), String> {
    match u {
        Use::Table(t) => {
            let rule = policy.tables.get(&*t.set).ok_or_else(|| {
                format!(
                    "{} on `{}`: the table is not in this tenant's allowlist",
                    t.verb, t.set
                )
            })?;
            if !rule.allows(t.verb) {
                let allowed: Vec<&str> = rule.verbs.iter().map(|v| v.as_str()).collect();
                let allowed = if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                };
                return Err(format!(
                    "{} on `{}` is not allowed (allowed: {allowed})",
                    t.verb, t.set
                ));
            }
            if let Some(cols) = &rule.columns {
                if let Some(bad) = t.columns.iter().find(|x| !cols.iter().any(|c| c == x)) {
                    return Err(format!(
                        "column `{bad}` of `{}` is not in its column list",
                        t.set
                    ));
                }
                if t.all_columns {
                    if t.verb == Verb::Get && t.main {
                        *add_select = Some(cols.join(","));
                    } else {
                        return Err(format!(
                            "this request returns every column of `{}`, which has a column list: name the columns ($select, or <attribute> in fetchXml)",
                            t.set
                        ));
                    }
                }
            }
            Ok(())
        }
        Use::Function(n) if policy.functions.contains(n) => Ok(()),
        Use::Function(n) => Err(format!(
            "function `{n}` is not in this tenant's functions list"
        )),
        Use::Action(n) if policy.actions.contains(n) => Ok(()),
        Use::Action(n) => Err(format!("action `{n}` is not in this tenant's actions list")),
        Use::Definition(s) if policy.tables.contains_key(s) => Ok(()),
        Use::Definition(s) => Err(format!(
            "EntityDefinitions of `{s}`: the table is not in this tenant's allowlist"
        )),
        Use::AllDefinitions if policy.allow_all_entity_definitions => Ok(()),
        Use::AllDefinitions => Err(
            "unfiltered EntityDefinitions listings are not allowed (filter by LogicalName)".into(),
        ),
        Use::Metadata if policy.allow_metadata => Ok(()),
        Use::Metadata => Err("$metadata is not allowed for this tenant (allow_metadata)".into()),
        // A stored or SQL query can return any column: a column list cannot be enforced on it,
        // so allow_uninspectable never opens a column-restricted table.
        Use::Uninspectable { kind, set }
            if policy.tables.get(set).is_some_and(|r| r.columns.is_some()) =>
        {
            Err(format!(
                "{kind} on `{set}` is refused: the gateway cannot inspect which columns it returns and `{set}` has a column list (allow_uninspectable does not apply to column-restricted tables)"
            ))
        }
        Use::Uninspectable { kind, .. } if policy.allow_uninspectable.contains(kind) => Ok(()),
        Use::Uninspectable { kind, .. } => Err(format!(
            "{kind} runs a stored or SQL query the gateway cannot inspect (allow_uninspectable)"
        )),
    }
}

/// Whether every `If-Match` line is `*` or a list of entity-tags (RFC 9110: `"..."` or
/// `W/"..."`, no `"`, space or control byte inside), with at least one condition.
fn if_match_well_formed(headers: &HeaderMap) -> bool {
    fn entity_tag(t: &str) -> bool {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t.len() >= 2
            && t.starts_with('"')
            && t.ends_with('"')
            && t[1..t.len() - 1]
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
    }
    headers.get_all(http::header::IF_MATCH).iter().all(|v| {
        let Ok(s) = std::str::from_utf8(v.as_bytes()) else {
            return false;
        };
        let s = s.trim_matches([' ', '\t']);
        if s == "*" {
            return true;
        }
        let mut tags = s
            .split(',')
            .map(|t| t.trim_matches([' ', '\t']))
            .filter(|t| !t.is_empty())
            .peekable();
        tags.peek().is_some() && tags.all(entity_tag)
    })
}

fn header_is_star(headers: &HeaderMap, name: http::HeaderName) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|p| p.trim() == "*"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TableRule;
    use crate::policy::classify::Touch;

    fn get(set: &str, columns: &[&str]) -> Use {
        Use::Table(Touch {
            set: set.into(),
            verb: Verb::Get,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            all_columns: false,
            main: false,
        })
    }

    fn policy() -> Policy {
        let mut p = Policy::default();
        let rule = |columns: Option<Vec<String>>| TableRule {
            verbs: vec![Verb::Get],
            columns,
        };
        p.tables.insert("contacts".into(), rule(None));
        p.tables
            .insert("accounts".into(), rule(Some(vec!["name".into()])));
        p.functions.push("WhoAmI".into());
        p.allow_metadata = true;
        p
    }

    fn decided(uses: Vec<Use>) -> Decision {
        let c = Classified {
            uses,
            ..Classified::default()
        };
        decide(&policy(), Ok(c), &HeaderMap::new())
    }

    #[test]
    fn the_allow_reason_names_each_rule_once_in_order_of_first_use() {
        let d = decided(vec![
            get("contacts", &["fullname"]),
            Use::Function("WhoAmI".into()),
            get("accounts", &["name"]),
            get("contacts", &[]),
            Use::Metadata,
            Use::Function("WhoAmI".into()),
        ]);
        assert!(d.allowed());
        assert_eq!(
            d.reason(),
            "allow.contacts permits GET; functions lists WhoAmI; allow.accounts permits GET; \
             allow_metadata"
        );
    }

    #[test]
    fn an_allow_reason_is_written_on_demand_and_editable() {
        let mut d = decided(vec![get("contacts", &["fullname"]), Use::Metadata]);
        assert!(d.allowed());
        assert!(matches!(d.reason_ref(), Reason::Rules(u) if u.len() == 2));
        let want = "allow.contacts permits GET; allow_metadata";
        assert_eq!(d.reason_ref().to_string(), want);
        assert_eq!(d.reason_ref().len_hint(), 80);
        d.reason_mut().push_str(" (edited)");
        assert_eq!(d.reason(), format!("{want} (edited)"));
        assert!(matches!(d.reason_ref(), Reason::Text(_)));
        // A denial is always a text.
        let denied = decided(vec![get("leads", &[])]);
        assert!(matches!(denied.reason_ref(), Reason::Text(t) if t.contains("`leads`")));
    }

    #[test]
    fn a_denial_lists_only_the_denials_each_once() {
        let d = decided(vec![
            get("contacts", &[]),
            get("accounts", &["revenue"]),
            Use::Action("X".into()),
            get("accounts", &["revenue"]),
            get("leads", &[]),
        ]);
        assert_eq!(d.denial, Some(Denial::Policy));
        assert_eq!(
            d.reason(),
            "column `revenue` of `accounts` is not in its column list; action `X` is not in this \
             tenant's actions list; GET on `leads`: the table is not in this tenant's allowlist"
        );
    }
}
