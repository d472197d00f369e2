//! The Dataverse query functions (`Microsoft.Dynamics.CRM.<Name>(...)` in `$filter`) and the
//! parameters each takes, from the Web API Query Function Reference.
//!
//! Pure. A function missing here is refused; so is an argument a function does not declare,
//! and an argument whose value is not what the function takes (a column name, a literal, an
//! array of literals).

use super::{Operand, Parser, Tok, is_identifier, not};
use crate::policy::odata::ParseError;

/// What one argument carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arg {
    /// `PropertyName`: the logical name of the column evaluated.
    Column,
    /// `PropertyValue`, `PropertyValue1`, `PropertyValue2`: one literal.
    Value,
    /// `PropertyValues`: an array of literals.
    Values,
}

/// How the gateway treats a query function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Evaluates the named column only.
    Column(&'static [(&'static str, Arg)]),
    /// Compares rows through the table's hierarchical lookup, which the CSDL does not name: the
    /// gateway cannot say which column it observes.
    Hierarchy,
    /// Compares with the caller's teams or the users who report to the caller: data of tables
    /// the query does not name (as FetchXML's `eq-userteams`, `eq-useroruserhierarchy`, ...).
    Caller(&'static str),
}

const TEAMS: &str = "compares with the caller's teams, reading team membership";
const MANAGERS: &str = "compares with the users who report to the caller, reading systemusers";

const NAME: &[(&str, Arg)] = &[("PropertyName", Arg::Column)];
const VALUE: &[(&str, Arg)] = &[("PropertyName", Arg::Column), ("PropertyValue", Arg::Value)];
const VALUES: &[(&str, Arg)] = &[
    ("PropertyName", Arg::Column),
    ("PropertyValues", Arg::Values),
];
const PERIOD_AND_YEAR: &[(&str, Arg)] = &[
    ("PropertyName", Arg::Column),
    ("PropertyValue1", Arg::Value),
    ("PropertyValue2", Arg::Value),
];

/// The function `name` (unqualified, case-sensitive as Dataverse is), if it is a known query
/// function.
fn kind_of(name: &str) -> Option<Kind> {
    let params = match name {
        "EqualBusinessId"
        | "EqualRoleBusinessId"
        | "EqualUserId"
        | "EqualUserLanguage"
        | "NotEqualBusinessId"
        | "NotEqualUserId"
        | "Last7Days"
        | "LastFiscalPeriod"
        | "LastFiscalYear"
        | "LastMonth"
        | "LastWeek"
        | "LastYear"
        | "Next7Days"
        | "NextFiscalPeriod"
        | "NextFiscalYear"
        | "NextMonth"
        | "NextWeek"
        | "NextYear"
        | "ThisFiscalPeriod"
        | "ThisFiscalYear"
        | "ThisMonth"
        | "ThisWeek"
        | "ThisYear"
        | "Today"
        | "Tomorrow"
        | "Yesterday" => NAME,
        "Contains" | "InFiscalPeriod" | "InFiscalYear" | "LastXDays" | "LastXFiscalPeriods"
        | "LastXFiscalYears" | "LastXHours" | "LastXMonths" | "LastXWeeks" | "LastXYears"
        | "NextXDays" | "NextXFiscalPeriods" | "NextXFiscalYears" | "NextXHours"
        | "NextXMonths" | "NextXWeeks" | "NextXYears" | "OlderThanXDays" | "OlderThanXHours"
        | "OlderThanXMinutes" | "OlderThanXMonths" | "OlderThanXWeeks" | "OlderThanXYears"
        | "On" | "OnOrAfter" | "OnOrBefore" => VALUE,
        "Between" | "NotBetween" | "In" | "NotIn" | "ContainValues" | "DoesNotContainValues" => {
            VALUES
        }
        "InFiscalPeriodAndYear"
        | "InOrAfterFiscalPeriodAndYear"
        | "InOrBeforeFiscalPeriodAndYear" => PERIOD_AND_YEAR,
        "Above" | "AboveOrEqual" | "Under" | "UnderOrEqual" | "NotUnder" => {
            return Some(Kind::Hierarchy);
        }
        "EqualUserTeams" | "EqualUserOrUserTeams" => return Some(Kind::Caller(TEAMS)),
        "EqualUserOrUserHierarchy" | "EqualUserOrUserHierarchyAndTeams" => {
            return Some(Kind::Caller(MANAGERS));
        }
        _ => return None,
    };
    Some(Kind::Column(params))
}

impl<'a> Parser<'_, 'a> {
    /// `Microsoft.Dynamics.CRM.<name>(Arg=value, ...)` after its `(`.
    pub(super) fn query_function(&mut self, name: &str) -> Result<Operand<'a>, ParseError> {
        let params = match kind_of(name) {
            Some(Kind::Column(params)) => params,
            Some(Kind::Hierarchy) => {
                return Err(not(format!(
                    "the query function `{name}` compares rows through the table's hierarchy \
                     lookup, which the gateway cannot name: not inspected"
                )));
            }
            Some(Kind::Caller(why)) => {
                return Err(not(format!(
                    "the query function `{name}` {why}, which the query does not name as \
                     columns or tables"
                )));
            }
            None => {
                return Err(not(format!(
                    "`{name}` is not a Dataverse query function the gateway inspects"
                )));
            }
        };
        let mut seen: Vec<&str> = Vec::new();
        if self.peek() == Some(&Tok::Close) {
            self.pos += 1;
            return Ok(Operand::Expression);
        }
        loop {
            let (arg, kind) = match (self.next(), self.next()) {
                (Some(Tok::Word(a)), Some(Tok::Equals)) => {
                    match params.iter().find(|(p, _)| *p == a) {
                        Some(&(p, kind)) => (p, kind),
                        None => {
                            return Err(not(format!(
                                "`{a}` is not an argument of the query function `{name}`"
                            )));
                        }
                    }
                }
                _ => {
                    return Err(ParseError::Malformed(format!(
                        "`{name}` takes `Name=value` arguments"
                    )));
                }
            };
            if seen.contains(&arg) {
                return Err(ParseError::Malformed(format!(
                    "`{arg}` appears twice in `{name}`"
                )));
            }
            seen.push(arg);
            self.query_argument(name, arg, kind)?;
            match self.next() {
                Some(Tok::Comma) => continue,
                Some(Tok::Close) => return Ok(Operand::Expression),
                _ => {
                    return Err(ParseError::Malformed(format!(
                        "`{name}(...)`: arguments end with `)`"
                    )));
                }
            }
        }
    }

    fn query_argument(&mut self, function: &str, arg: &str, kind: Arg) -> Result<(), ParseError> {
        let before = (self.ctx.refs.paths.len(), self.ctx.refs.columns.len());
        let operand = self.nested(|p| p.operand())?;
        let named = (self.ctx.refs.paths.len(), self.ctx.refs.columns.len()) != before;
        let refuse = |what: &str| Err(not(format!("`{arg}` of `{function}` must be {what}")));
        match (kind, operand) {
            (_, _) if named => refuse("a literal, not an expression naming data"),
            (Arg::Column, Operand::Text(column)) => {
                // A text with a quote in it (decoded from `''`, so owned) is no column name.
                let segments: super::Path<'a> = match column {
                    std::borrow::Cow::Borrowed(c) => c.split('/').collect(),
                    std::borrow::Cow::Owned(_) => super::Path::new(),
                };
                if segments.is_empty() || !segments.iter().all(|s| is_identifier(s)) {
                    return Err(not(format!(
                        "`{arg}='{column}'` of `{function}` is not a column name"
                    )));
                }
                self.ctx.refs.columns.push(segments);
                Ok(())
            }
            (Arg::Column, _) => refuse("a quoted column name"),
            (Arg::Value, Operand::Text(_) | Operand::Literal) => Ok(()),
            (Arg::Value, _) => refuse("a literal"),
            (Arg::Values, Operand::Array) => Ok(()),
            (Arg::Values, _) => refuse("an array of literals"),
        }
    }
}
