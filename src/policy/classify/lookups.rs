//! Which columns following a navigation or naming a key observes: the rules behind "a column
//! list restricts every way a column's value can be observed".
//!
//! Pure, over the tenant's metadata. Navigating through a single-valued navigation property
//! reveals the lookup it is bound to on the starting row (`opportunities(id)/parentaccountid`
//! reveals `_parentaccountid_value`), a collection-valued one reveals the related rows' lookup
//! (the partner's). A table's own primary key reveals nothing more than the row it addresses.

use std::borrow::Cow;

use super::*;
use crate::policy::metadata::{CURRENCY_LOOKUP, Navigation, Observed};

/// The lookup column following the navigation property `name` (`nav`) observes, as `(columns of the starting
/// table, columns of the related table)`. When the metadata does not name it, a placeholder no
/// column list can contain stands in for it, so a column list refuses it and no other rule does.
pub(super) fn revealed<'m>(
    meta: &'m Metadata,
    name: &str,
    nav: &'m Navigation,
) -> (Option<Cow<'m, str>>, Option<Cow<'m, str>>) {
    let collection = nav.collection;
    match meta.observed(nav) {
        Observed::Own(column) => (Some(Cow::Borrowed(column)), None),
        Observed::Related(column) => (None, Some(Cow::Borrowed(column))),
        Observed::Association => (None, None),
        Observed::Unknown => {
            let placeholder = Cow::Owned(format!("the lookup behind {name}"));
            match collection {
                true => (None, Some(placeholder)),
                false => (Some(placeholder), None),
            }
        }
    }
}

/// A money column comes back with the row's currency lookup (Dataverse adds
/// `_transactioncurrencyid_value` to every read that names one): a read naming a money column
/// names the lookup too, so a column list must hold it and a requested `FormattedValue` reads
/// the currency's table. A read without `$select` names every column already.
pub(super) fn money_brings_currency(meta: &Metadata, out: &mut Classified) {
    for u in &mut out.uses {
        if let Use::Table(t) = u
            && t.verb == Verb::Get
            && !t.all_columns
            && meta.money_without_currency(&t.set, &t.columns).is_some()
        {
            t.columns.push(CURRENCY_LOOKUP);
        }
    }
}

/// A table's own primary key comes back with every row and addresses it: naming it (in
/// `$select`, a filter, an expansion, FetchXML) observes nothing more, so it is not counted
/// against the table's column list. Only the key of the table the use is about is removed:
/// another table's id or a lookup column stays.
// Called once per request, from `classify`: kept inline there (out of line it measured ~40
// instructions more on the policy bench's simple GET).
#[inline]
pub(super) fn free_own_keys(meta: &Metadata, out: &mut Classified) {
    for u in &mut out.uses {
        if let Use::Table(t) = u
            && !t.columns.is_empty()
            && let Some(key) = meta.key_of_set(&t.set)
        {
            t.columns.retain(|c| !key.iter().any(|k| k == c));
        }
    }
}
