//! The deterministic rows every simulator starts with, and the fixed ids of the simulated org
//! (business unit, organization, application users).
//!
//! Invariant: the same inputs always give the same rows and ids, so tests can hard-code them.
//! Pure: no I/O, no clock.

use serde_json::{Map, Value, json};

use super::data::Store;
use super::schema::seeded_id;

pub const CONTACT_PREFIX: &str = "c0000000";
pub const ACCOUNT_PREFIX: &str = "a0000000";
pub const LEAD_PREFIX: &str = "1ead0000";
pub const OPPORTUNITY_PREFIX: &str = "0990e000";
pub const USER_PREFIX: &str = "5e000000";
pub const ANNOTATION_PREFIX: &str = "a1100000";

pub const BUSINESS_UNIT_ID: &str = "b0000000-0000-4000-8000-000000000001";
pub const ORGANIZATION_ID: &str = "0c000000-0000-4000-8000-000000000001";

/// The application user (systemuser id) that app number `index` in the config acts as.
pub fn app_user_id(index: usize) -> String {
    seeded_id(USER_PREFIX, 0x100 + index as u64)
}

/// Id of the `n`th (1-based) seeded row of a table.
pub fn contact_id(n: u64) -> String {
    seeded_id(CONTACT_PREFIX, n)
}

pub fn account_id(n: u64) -> String {
    seeded_id(ACCOUNT_PREFIX, n)
}

const ACCOUNTS: [(&str, f64); 6] = [
    ("Contoso Ltd", 1_500_000.0),
    ("Fabrikam Inc", 820_000.0),
    ("Adventure Works", 2_300_000.0),
    ("Northwind Traders", 410_000.0),
    ("Litware Inc", 95_000.0),
    ("Tailspin Toys", 1_250_000.0),
];

const CONTACTS: [(&str, &str); 8] = [
    ("Yvonne", "McKay"),
    ("Susanna", "Stubberod"),
    ("Nancy", "Anderson"),
    ("Maria", "Campbell"),
    ("Sidney", "Higa"),
    ("Scott", "Konersmann"),
    ("Robert", "Lyon"),
    ("Paul", "Cannon"),
];

const LEADS: [(&str, &str, &str); 5] = [
    ("Interested in our products", "Kim", "Abercrombie"),
    ("New store opening", "Ben", "Smith"),
    ("Large order request", "Ana", "Trujillo"),
    ("Renewal due", "Ivan", "Petrov"),
    ("Trade show contact", "Lena", "Olsen"),
];

const OPPORTUNITIES: [(&str, f64, i64); 6] = [
    ("10 Airpot coffee makers", 4_500.0, 1),
    ("Espresso machines for HQ", 18_000.0, 1),
    ("Annual maintenance", 7_200.0, 2),
    ("Cafe franchise rollout", 120_000.0, 1),
    ("Grinder replacement", 2_100.0, 3),
    ("Office expansion", 36_000.0, 1),
];

const USERS: [(&str, &str); 4] = [
    ("Alex Wilber", "alexw@contoso.onmicrosoft.com"),
    ("Megan Bowen", "meganb@contoso.onmicrosoft.com"),
    ("Lee Gu", "leeg@contoso.onmicrosoft.com"),
    ("Lidia Holloway", "lidiah@contoso.onmicrosoft.com"),
];

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn email(first: &str, last: &str) -> String {
    format!(
        "{}.{}@example.com",
        first.to_lowercase(),
        last.to_lowercase()
    )
}

/// A store filled with the seed rows; `app_client_ids` become application users.
pub fn seeded_store(app_client_ids: &[&str]) -> Store {
    let mut store = Store::empty();
    let creator = seeded_id(USER_PREFIX, 1);
    for (n, (name, domain)) in (1..).zip(USERS) {
        store.put(
            "systemusers",
            &seeded_id(USER_PREFIX, n),
            object(json!({"fullname": name, "domainname": domain})),
        );
    }
    for (i, client_id) in app_client_ids.iter().enumerate() {
        let fields =
            json!({"fullname": format!("# {client_id}"), "domainname": format!("{client_id}@sim")});
        store.put("systemusers", &app_user_id(i), object(fields));
    }
    for (n, (name, revenue)) in (1..).zip(ACCOUNTS) {
        let fields = json!({"name": name, "revenue": revenue, "_primarycontactid_value": contact_id(n),
            "_createdby_value": creator});
        store.put("accounts", &account_id(n), object(fields));
    }
    for (n, (first, last)) in (1..).zip(CONTACTS) {
        let fields = json!({"fullname": format!("{first} {last}"), "firstname": first, "lastname": last,
            "emailaddress1": email(first, last), "_parentcustomerid_value": account_id((n - 1) % 6 + 1),
            "_createdby_value": creator});
        store.put("contacts", &contact_id(n), object(fields));
    }
    for (n, (subject, first, last)) in (1..).zip(LEADS) {
        let fields = json!({"subject": subject, "fullname": format!("{first} {last}"),
            "emailaddress1": email(first, last), "_createdby_value": creator});
        store.put("leads", &seeded_id(LEAD_PREFIX, n), object(fields));
    }
    for (n, (name, value, status)) in (1..).zip(OPPORTUNITIES) {
        let fields = json!({"name": name, "estimatedvalue": value, "statuscode": status,
            "_parentaccountid_value": account_id((n - 1) % 6 + 1), "_createdby_value": creator});
        store.put(
            "opportunities",
            &seeded_id(OPPORTUNITY_PREFIX, n),
            object(fields),
        );
    }
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_deterministic_and_sized() {
        let store = seeded_store(&["app"]);
        assert_eq!(store.all("contacts").len(), 8);
        assert_eq!(store.all("accounts").len(), 6);
        assert_eq!(store.all("leads").len(), 5);
        assert_eq!(store.all("opportunities").len(), 6);
        assert_eq!(store.all("systemusers").len(), 5);
        assert!(store.all("annotations").is_empty());
        let again = seeded_store(&["app"]);
        let ids = |s: &Store| {
            s.all("contacts")
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&store), ids(&again));
        assert!(store.get("contacts", &contact_id(1)).is_some());
        assert!(store.get("systemusers", &app_user_id(0)).is_some());
    }
}
