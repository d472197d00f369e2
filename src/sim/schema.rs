//! The schema of the simulated org: its tables (entity set, logical name, key, columns,
//! lookups) and id helpers.
//!
//! Invariant: [`TABLES`] agrees with `metadata.xml` (a unit test checks every table, column and
//! lookup). Pure: no I/O, no clock.

/// A single-valued navigation property and the lookup column it sets.
#[derive(Debug, PartialEq, Eq)]
pub struct Lookup {
    pub nav: &'static str,
    pub column: &'static str,
    pub target_set: &'static str,
}

/// One table of the simulated org.
#[derive(Debug, PartialEq, Eq)]
pub struct Table {
    pub set: &'static str,
    pub logical: &'static str,
    /// Schema name, as used in privilege names (`prvReadContact`).
    pub schema: &'static str,
    pub key: &'static str,
    /// The primary name column (`PrimaryNameAttribute` in `EntityDefinitions`).
    pub primary_name: &'static str,
    /// Object type code, quoted in privilege errors.
    pub otc: u32,
    /// Columns other than the key.
    pub columns: &'static [&'static str],
    pub lookups: &'static [Lookup],
}

impl Table {
    pub fn has_column(&self, name: &str) -> bool {
        name == self.key || self.columns.contains(&name)
    }

    pub fn lookup(&self, nav: &str) -> Option<&'static Lookup> {
        self.lookups.iter().find(|l| l.nav == nav)
    }
}

const CREATEDBY: Lookup = Lookup {
    nav: "createdby",
    column: "_createdby_value",
    target_set: "systemusers",
};

pub static TABLES: &[Table] = &[
    Table {
        set: "contacts",
        logical: "contact",
        schema: "Contact",
        key: "contactid",
        primary_name: "fullname",
        otc: 2,
        columns: &[
            "fullname",
            "firstname",
            "lastname",
            "emailaddress1",
            "_parentcustomerid_value",
            "_createdby_value",
        ],
        lookups: &[
            Lookup {
                nav: "parentcustomerid_account",
                column: "_parentcustomerid_value",
                target_set: "accounts",
            },
            CREATEDBY,
        ],
    },
    Table {
        set: "accounts",
        logical: "account",
        schema: "Account",
        key: "accountid",
        primary_name: "name",
        otc: 1,
        columns: &[
            "name",
            "revenue",
            "_primarycontactid_value",
            "_createdby_value",
        ],
        lookups: &[
            Lookup {
                nav: "primarycontactid",
                column: "_primarycontactid_value",
                target_set: "contacts",
            },
            CREATEDBY,
        ],
    },
    Table {
        set: "leads",
        logical: "lead",
        schema: "Lead",
        key: "leadid",
        primary_name: "fullname",
        otc: 4,
        columns: &["subject", "fullname", "emailaddress1", "_createdby_value"],
        lookups: &[CREATEDBY],
    },
    Table {
        set: "opportunities",
        logical: "opportunity",
        schema: "Opportunity",
        key: "opportunityid",
        primary_name: "name",
        otc: 3,
        columns: &[
            "name",
            "estimatedvalue",
            "statuscode",
            "_parentaccountid_value",
            "_createdby_value",
        ],
        lookups: &[
            Lookup {
                nav: "parentaccountid",
                column: "_parentaccountid_value",
                target_set: "accounts",
            },
            CREATEDBY,
        ],
    },
    Table {
        set: "systemusers",
        logical: "systemuser",
        schema: "SystemUser",
        key: "systemuserid",
        primary_name: "fullname",
        otc: 8,
        columns: &["fullname", "domainname"],
        lookups: &[],
    },
    Table {
        set: "annotations",
        logical: "annotation",
        schema: "Annotation",
        key: "annotationid",
        primary_name: "subject",
        otc: 5,
        columns: &[
            "subject",
            "documentbody",
            "_objectid_value",
            "_createdby_value",
        ],
        lookups: &[
            Lookup {
                nav: "objectid_contact",
                column: "_objectid_value",
                target_set: "contacts",
            },
            Lookup {
                nav: "objectid_account",
                column: "_objectid_value",
                target_set: "accounts",
            },
            CREATEDBY,
        ],
    },
];

/// The table behind an entity set name (case-sensitive, as in Dataverse).
pub fn table(set: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.set == set)
}

/// The table whose logical name is `logical` (case-sensitive).
pub fn table_by_logical(logical: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.logical == logical)
}

/// A deterministic id: `<prefix>-0000-4000-8000-<n as 12 hex digits>`.
pub fn seeded_id(prefix: &str, n: u64) -> String {
    format!("{prefix}-0000-4000-8000-{n:012x}")
}

/// True for a bare GUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any hex case).
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_shape() {
        assert!(is_guid("c0000000-0000-4000-8000-000000000001"));
        assert!(is_guid("C0000000-0000-4000-8000-00000000000F"));
        assert!(!is_guid("c0000000-0000-4000-8000-00000000001"));
        assert!(!is_guid("not-a-guid"));
        assert!(!is_guid("g0000000-0000-4000-8000-000000000001"));
    }

    #[test]
    fn metadata_declares_every_table_column_and_lookup() {
        let xml = include_str!("metadata.xml");
        for action in ["CreateMultiple", "UpdateMultiple", "UpsertMultiple"] {
            let declared = format!("<Action Name=\"{action}\" IsBound=\"true\">");
            assert!(xml.contains(&declared), "{action}");
        }
        for t in TABLES {
            assert!(
                xml.contains(&format!("<EntityType Name=\"{}\"", t.logical)),
                "{}",
                t.logical
            );
            assert!(xml.contains(&format!(
                "<EntitySet Name=\"{}\" EntityType=\"mscrm.{}\"",
                t.set, t.logical
            )));
            assert!(
                xml.contains(&format!("<PropertyRef Name=\"{}\" />", t.key)),
                "{}",
                t.key
            );
            assert!(t.has_column(t.primary_name), "{}", t.primary_name);
            for column in t.columns {
                assert!(
                    xml.contains(&format!("<Property Name=\"{column}\" ")),
                    "{}.{column}",
                    t.logical
                );
            }
            for lookup in t.lookups {
                assert!(
                    xml.contains(&format!("<NavigationProperty Name=\"{}\"", lookup.nav)),
                    "{}",
                    lookup.nav
                );
                let target = table(lookup.target_set).expect("lookup target");
                let bound = format!(
                    "<NavigationPropertyBinding Path=\"{}\" Target=\"{}\" />",
                    lookup.nav, target.set
                );
                assert!(xml.contains(&bound), "{bound}");
            }
        }
    }
}
