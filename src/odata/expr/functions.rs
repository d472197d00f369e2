//! The Dataverse query functions (`Microsoft.Dynamics.CRM.<Name>(...)` in `$filter`) and the
//! parameters each takes, from the Web API Query Function Reference.
//!
//! Pure data. A function missing here is refused by the parser; so is an argument a function
//! does not declare.

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
}

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
pub(super) fn query_function(name: &str) -> Option<Kind> {
    let params = match name {
        "EqualBusinessId"
        | "EqualRoleBusinessId"
        | "EqualUserId"
        | "EqualUserLanguage"
        | "EqualUserOrUserHierarchy"
        | "EqualUserOrUserHierarchyAndTeams"
        | "EqualUserOrUserTeams"
        | "EqualUserTeams"
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
        _ => return None,
    };
    Some(Kind::Column(params))
}
