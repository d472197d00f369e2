//! Cases: one request, or several as one `$batch` (reads as top-level parts, writes in change
//! sets, Content-ID in the MIME part headers or in the inner request headers, `$n` references),
//! and the random allowlist each case is judged under.

use std::fmt::Write as _;

use dataverse_gateway::config::{Policy, TableRule, Verb};
use http::Method;

use crate::generator::{GATEWAYS, Gen, ORG};
use crate::oracle::{Call, Case, Need, annotation_needs};

pub const BOUNDARY: &str = "batch_prop";
const CHANGESET: &str = "changeset_prop";

impl Gen<'_> {
    pub fn case(&mut self) -> Case {
        let no_metadata = self.c.chance(6);
        if !self.c.chance(25) {
            return Case {
                calls: vec![self.call()],
                batch: None,
                no_metadata,
            };
        }
        let mut calls: Vec<Call> = Vec::new();
        for _ in 0..1 + self.c.below(3) {
            let created = calls.last().and_then(|c| c.creates);
            let call = match created {
                Some(t) if self.c.chance(70) => self.follow_up(t),
                _ if calls.is_empty() && self.c.chance(30) => self.call_of(1, false),
                _ => self.call(),
            };
            calls.push(call);
        }
        let body = self.batch_body(&mut calls);
        Case {
            calls,
            batch: Some(body),
            no_metadata,
        }
    }

    /// The calls as one `$batch`: reads as top-level parts, writes in change sets.
    fn batch_body(&mut self, calls: &mut [Call]) -> String {
        let mut out = String::new();
        let mut open_changeset = false;
        let mut content_id: usize = 0;
        for call in calls.iter_mut() {
            let target = match self.c.below(4) {
                _ if call.refers_back => call.target(),
                0 => call.target(),
                1 => format!("/api/data/v9.2/{}", call.target()),
                2 => format!("{}/api/data/v9.2/{}", GATEWAYS[0], call.target()),
                _ => format!("{ORG}/api/data/v9.2/{}", call.target()),
            };
            let write = call.method != Method::GET;
            if open_changeset && !call.refers_back && (!write || self.c.chance(30)) {
                write!(out, "--{CHANGESET}--\r\n\r\n").unwrap();
                open_changeset = false;
            }
            if write && !open_changeset {
                write!(
                    out,
                    "--{BOUNDARY}\r\nContent-Type: multipart/mixed; boundary={CHANGESET}\r\n\r\n"
                )
                .unwrap();
                open_changeset = true;
            }
            let delimiter = if write { CHANGESET } else { BOUNDARY };
            write!(
                out,
                "--{delimiter}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            )
            .unwrap();
            // A MIME part header other than the framing ones (here impersonation) is refused.
            if self.c.chance(5) {
                write!(out, "MSCRMCallerID: {}\r\n", self.guid()).unwrap();
                call.refused = Some("a part header outside the framing ones");
            }
            let mut inner_id = None;
            if write {
                content_id += 1;
                if self.c.chance(30) {
                    inner_id = Some(content_id);
                } else {
                    write!(out, "Content-ID: {content_id}\r\n").unwrap();
                }
            }
            let reference = format!("${}", content_id.saturating_sub(1));
            let target = target.replace("$REF", &reference);
            write!(out, "\r\n{} {target} HTTP/1.1\r\n", call.method).unwrap();
            if let Some(id) = inner_id {
                write!(out, "Content-ID: {id}\r\n").unwrap();
            }
            for (k, v) in &call.headers {
                write!(out, "{k}: {v}\r\n").unwrap();
            }
            let body = call
                .body
                .as_deref()
                .unwrap_or("")
                .replace("$REF", &reference);
            write!(out, "\r\n{body}\r\n").unwrap();
        }
        if open_changeset {
            write!(out, "--{CHANGESET}--\r\n").unwrap();
        }
        write!(out, "--{BOUNDARY}--\r\n").unwrap();
        out
    }

    /// A random allowlist around the request's oracle: every table it touches is granted its
    /// verbs (plus random extras), sometimes with a column list covering its columns (plus
    /// random extras); other tables are absent or random. Then, half of the time, exactly one
    /// oracle item is withdrawn: its table, its verb, one of its columns, or (for a read of
    /// every column) the freedom of having no column list. The simplest draw grants everything.
    pub fn policy(&mut self, case: &Case) -> Policy {
        let verbs = [Verb::Get, Verb::Post, Verb::Patch, Verb::Put, Verb::Delete];
        let mut needs: Vec<Need> = Vec::new();
        for call in &case.calls {
            needs.extend(call.needs.iter().cloned());
            if call.annotations {
                for n in &call.needs {
                    needs.extend(annotation_needs(self.s, n, None));
                }
            }
        }
        let mut policy = Policy::default();
        for call in &case.calls {
            for f in &call.functions {
                if !self.c.chance(20) {
                    policy.functions.push(f.clone());
                }
            }
        }
        for (t, table) in self.s.tables.iter().enumerate() {
            let mine: Vec<&Need> = needs.iter().filter(|n| n.table == t).collect();
            let all: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
            let navs: Vec<String> = table.navs.iter().map(|n| n.name.clone()).collect();
            let rule = if mine.is_empty() {
                if !self.c.chance(50) {
                    continue;
                }
                let columns = self.c.chance(30).then(|| self.c.subset(&all, 0));
                TableRule {
                    verbs: self.c.subset(&verbs, 0),
                    columns,
                }
            } else {
                let mut granted: Vec<Verb> = mine.iter().map(|n| n.verb).collect();
                granted.extend(self.c.subset(&verbs, 0));
                let columns = self.c.chance(35).then(|| {
                    let mut list: Vec<String> =
                        mine.iter().flat_map(|n| n.columns.clone()).collect();
                    list.extend(self.c.subset(&all, 0));
                    list.extend(self.c.subset(&navs, 0));
                    list
                });
                TableRule {
                    verbs: granted,
                    columns,
                }
            };
            policy.tables.insert(table.set.clone(), rule);
        }
        self.withdraw(&needs, &mut policy);
        for rule in policy.tables.values_mut() {
            rule.verbs.sort();
            rule.verbs.dedup();
            if let Some(list) = &mut rule.columns {
                list.sort();
                list.dedup();
            }
        }
        policy
    }

    fn withdraw(&mut self, needs: &[Need], policy: &mut Policy) {
        if needs.is_empty() || !self.c.chance(50) {
            return;
        }
        let mode = self.c.below(4);
        let fits = |n: &&Need| match mode {
            2 => !n.columns.is_empty(),
            3 => n.all_columns && !n.main_read,
            _ => true,
        };
        let candidates: Vec<&Need> = needs.iter().filter(fits).collect();
        if candidates.is_empty() {
            return;
        }
        let n = *self.c.one(&candidates);
        let set = &self.s.tables[n.table].set;
        let Some(rule) = policy.tables.get_mut(set) else {
            return;
        };
        match mode {
            0 => {
                policy.tables.remove(set);
            }
            1 => rule.verbs.retain(|v| *v != n.verb),
            2 => {
                let gone = self.c.one(&n.columns).clone();
                let list = rule.columns.get_or_insert_with(|| n.columns.clone());
                list.retain(|c| *c != gone);
            }
            _ => {
                rule.columns.get_or_insert_with(|| n.columns.clone());
            }
        }
    }
}
