//! (d) A client's policy only narrows the tenant's. For every case the generator draws, with
//! `effective = intersect(tenant, client)`:
//! - what both allow, the effective policy allows (no over-denial from combining);
//! - the effective policy grants nothing that either does not (every table, verb, column,
//!   function, action and flag of it is in both), and what it allows passes (a) under it: the
//!   oracle's tables, verbs and columns are within it, so within both.
//!
//! "Allowed by the effective policy ⇒ allowed by each" does not hold as such and is not asked:
//! a column list also shapes the response (the gateway adds `$select`), so a request that one
//! layer's "all columns" refuses (say, for an annotation on a lookup it would return) can be
//! allowed under the other layer's column list, which returns only listed columns.

use dataverse_gateway::config::agents::{intersect, widenings};
use dataverse_gateway::config::{Policy, TableRule};
use proptest::test_runner::TestCaseError;

use crate::checks::{check as allowed_within, run};
use crate::oracle::Case;
use crate::schema::Schema;

fn within(rule: &TableRule, outer: Option<&TableRule>) -> bool {
    let Some(outer) = outer else {
        return false;
    };
    let verbs = rule.verbs.iter().all(|v| outer.verbs.contains(v));
    let columns = match (&rule.columns, &outer.columns) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(c), Some(o)) => c.iter().all(|x| o.contains(x)),
    };
    verbs && columns
}

/// Every grant of `inner` is a grant of `outer`.
fn subset(inner: &Policy, outer: &Policy) -> bool {
    let names = |a: &[String], b: &[String]| a.iter().all(|x| b.contains(x));
    inner
        .tables
        .iter()
        .all(|(set, r)| within(r, outer.tables.get(set)))
        && names(&inner.functions, &outer.functions)
        && names(&inner.actions, &outer.actions)
        && names(&inner.allow_uninspectable, &outer.allow_uninspectable)
        && (!inner.allow_metadata || outer.allow_metadata)
        && (!inner.allow_all_entity_definitions || outer.allow_all_entity_definitions)
}

pub fn check(
    s: &Schema,
    tenant: &Policy,
    client: &Policy,
    case: &Case,
) -> Result<(), TestCaseError> {
    let effective = intersect(tenant, client);
    let show = || {
        format!(
            "\n  tenant: {tenant:?}\n  client: {client:?}\n  effective: {effective:?}\n  case: {case:?}"
        )
    };
    let by_tenant = run(s, tenant, case).decision.allowed();
    let by_client = run(s, client, case).decision.allowed();
    let by_both = run(s, &effective, case).decision.allowed();
    if by_tenant && by_client && !by_both {
        return Err(TestCaseError::fail(format!(
            "both allow, the intersection does not{}",
            show()
        )));
    }
    if !subset(&effective, tenant) || !widenings("t", tenant, &effective).is_empty() {
        return Err(TestCaseError::fail(format!(
            "the intersection widens the tenant{}",
            show()
        )));
    }
    // Where the client names no columns it takes the tenant's; otherwise within the client.
    let mut read = client.clone();
    for (set, rule) in read.tables.iter_mut() {
        if rule.columns.is_none() {
            rule.columns = tenant.tables.get(set).and_then(|t| t.columns.clone());
        }
    }
    if !subset(&effective, &read) {
        return Err(TestCaseError::fail(format!(
            "the intersection widens the client{}",
            show()
        )));
    }
    if !widenings("t", tenant, tenant).is_empty() {
        return Err(TestCaseError::fail(format!(
            "a policy widens itself{}",
            show()
        )));
    }
    allowed_within(s, &effective, case)
}
