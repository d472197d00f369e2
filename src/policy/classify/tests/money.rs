//! A money column comes back with the row's currency lookup (`_transactioncurrencyid_value`):
//! a column list must hold the lookup too, and a requested `FormattedValue` reads the
//! currency's table. The simulated org has no currencies; this CSDL gives `account` what a
//! real org's has (`revenue` and its `revenue_base` twin, the lookup, a `transactioncurrency`
//! table) and a decimal without a twin (`discount`), which is no money column.

use super::*;
use crate::policy::inspect;

fn money_meta() -> &'static Metadata {
    static M: OnceLock<Metadata> = OnceLock::new();
    M.get_or_init(|| {
        let sim = include_str!("../../../sim/metadata.xml");
        let account = r#"<Property Name="revenue" Type="Edm.Decimal" Scale="Variable" />"#;
        let lead = r#"<EntityType Name="lead" BaseType="mscrm.crmbaseentity">"#;
        let sets = r#"<EntitySet Name="accounts" EntityType="mscrm.account">"#;
        for needle in [account, lead, sets] {
            assert_eq!(sim.matches(needle).count(), 1, "{needle}");
        }
        let csdl = sim
            .replace(
                account,
                &format!(
                    r#"{account}
        <Property Name="revenue_base" Type="Edm.Decimal" Scale="Variable" />
        <Property Name="discount" Type="Edm.Decimal" Scale="Variable" />
        <Property Name="_transactioncurrencyid_value" Type="Edm.Guid" />
        <NavigationProperty Name="transactioncurrencyid" Type="mscrm.transactioncurrency" Nullable="false" Partner="transactioncurrency_account">
          <ReferentialConstraint Property="_transactioncurrencyid_value" ReferencedProperty="transactioncurrencyid" />
        </NavigationProperty>"#
                ),
            )
            .replace(
                lead,
                &format!(
                    r#"<EntityType Name="transactioncurrency" BaseType="mscrm.crmbaseentity">
        <Key>
          <PropertyRef Name="transactioncurrencyid" />
        </Key>
        <Property Name="transactioncurrencyid" Type="Edm.Guid" />
        <Property Name="currencyname" Type="Edm.String" Unicode="false" />
        <NavigationProperty Name="transactioncurrency_account" Type="Collection(mscrm.account)" Partner="transactioncurrencyid" />
      </EntityType>
      {lead}"#
                ),
            )
            .replace(
                sets,
                &format!(
                    r#"<EntitySet Name="transactioncurrencies" EntityType="mscrm.transactioncurrency">
          <NavigationPropertyBinding Path="transactioncurrency_account" Target="accounts" />
        </EntitySet>
        {sets}
          <NavigationPropertyBinding Path="transactioncurrencyid" Target="transactioncurrencies" />"#
                ),
            );
        Metadata::parse(csdl.as_bytes()).expect("the CSDL with a currency parses")
    })
}

/// The test policy, with `accounts` limited to `columns` (`None`: every column).
fn accounts_with(columns: Option<&[&str]>) -> Policy {
    let mut p = policy();
    if let Some(rule) = p.tables.get_mut("accounts") {
        rule.columns = columns.map(|c| c.iter().map(|s| s.to_string()).collect());
    }
    p
}

/// The decision the pipeline makes (classify, then the policy's own rules, then decide).
fn judge(policy: &Policy, url: &str, headers: &[(&str, &str)]) -> Decision {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let urls = urls();
    let tenant = inspect::Tenant {
        policy,
        metadata: Some(money_meta()),
        urls: &urls,
    };
    let req = Request {
        method: &http::Method::GET,
        path,
        query,
        headers: &h,
        body: None,
    };
    inspect::inspect(&tenant, &req).decision
}

const FORMATTED: (&str, &str) = ("prefer", "odata.include-annotations=\"*\"");

#[test]
fn only_decimals_with_a_base_twin_on_a_table_with_a_currency_are_money() {
    let m = money_meta();
    assert!(m.is_money("account", "revenue"));
    assert!(m.is_money("account", "revenue_base"));
    assert!(!m.is_money("account", "discount"), "no base twin");
    assert!(!m.is_money("account", "name"));
    assert!(
        !m.is_money("opportunity", "estimatedvalue"),
        "no currency lookup"
    );
    assert!(
        !meta().is_money("account", "revenue"),
        "the simulated org has no currency"
    );
    assert!(m.any_currency() && !meta().any_currency());
    assert!(m.with_currency("accounts").is_some());
    assert!(m.with_currency("contacts").is_none());
    assert!(meta().with_currency("accounts").is_none());
}

#[test]
fn a_column_list_must_hold_the_currency_lookup_of_its_money_columns() {
    let listed = accounts_with(Some(&["name", "revenue", "revenue_base"]));
    for url in [
        "accounts?$select=name,revenue",
        "accounts?$select=revenue_base",
        // Sent with the list as its `$select`: the lookup comes back all the same.
        "accounts",
        "contacts?$select=fullname&$expand=parentcustomerid_account($select=revenue)",
    ] {
        assert_outcome(
            &judge(&listed, url, &[]),
            no("column `_transactioncurrencyid_value` of `accounts` is not in its column list"),
            url,
        );
    }
    for url in ["accounts?$select=name", "accounts?$select=name,discount"] {
        let d = judge(
            &accounts_with(Some(&["name", "revenue", "discount"])),
            url,
            &[],
        );
        assert!(d.allowed(), "{url}: {}", d.reason());
    }
    let with_lookup = accounts_with(Some(&["name", "revenue", "_transactioncurrencyid_value"]));
    for url in ["accounts?$select=name,revenue", "accounts"] {
        let d = judge(&with_lookup, url, &[]);
        assert!(d.allowed(), "{url}: {}", d.reason());
    }
    assert_eq!(
        judge(&with_lookup, "accounts", &[]).add_select.as_deref(),
        Some("name,revenue,_transactioncurrencyid_value")
    );
}

#[test]
fn a_money_column_with_formatted_values_reads_the_currency_table() {
    let open = accounts_with(None);
    for url in [
        "accounts?$select=revenue",
        "accounts?$select=name,revenue_base",
        "contacts?$select=fullname&$expand=parentcustomerid_account($select=revenue)",
    ] {
        let d = judge(&open, url, &[FORMATTED]);
        assert!(!d.allowed(), "{url}");
        assert!(
            d.reason().contains("transactioncurrencies"),
            "{url}: {}",
            d.reason()
        );
    }
    for url in ["accounts?$select=name", "accounts?$select=discount"] {
        let d = judge(&open, url, &[FORMATTED]);
        assert!(d.allowed(), "{url}: {}", d.reason());
    }
    // Without the annotation the currency's name does not come back.
    assert!(judge(&open, "accounts?$select=revenue", &[]).allowed());
    // Allowlisting the currencies allows it.
    let mut with_currencies = accounts_with(None);
    with_currencies.tables.insert(
        "transactioncurrencies".into(),
        TableRule {
            verbs: vec![Verb::Get],
            columns: None,
        },
    );
    let d = judge(&with_currencies, "accounts?$select=revenue", &[FORMATTED]);
    assert!(d.allowed(), "{}", d.reason());
}

#[test]
fn column_lists_naming_money_without_the_lookup_are_found() {
    let m = money_meta();
    let found = inspect::money_without_currency(&accounts_with(Some(&["name", "revenue"])), m);
    assert_eq!(found, vec![("accounts".to_string(), "revenue".to_string())]);
    let held = accounts_with(Some(&["revenue", "_transactioncurrencyid_value"]));
    assert!(inspect::money_without_currency(&held, m).is_empty());
    let no_money = accounts_with(Some(&["name", "discount"]));
    assert!(inspect::money_without_currency(&no_money, m).is_empty());
    assert!(inspect::money_without_currency(&accounts_with(None), m).is_empty());
    let sim = accounts_with(Some(&["name", "revenue"]));
    assert!(
        inspect::money_without_currency(&sim, meta()).is_empty(),
        "no currency in the sim"
    );
}
