//! `modgate status`: every module modgate knows of (owned, or held by a container),
//! whether it is live and who holds it, and every container record; as JSON or as two
//! tables for a person.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::lifecycle::holders;
use crate::resolve::{KernelView, ModState};
use crate::state::{utc, ContainerRecord, Ledger, Stage};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleStatus {
    pub name: String,
    /// Inserted by modgate; otherwise pre-existing (or loaded by someone else).
    pub owned: bool,
    pub live: bool,
    pub holders: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerStatus {
    pub id: String,
    pub stage: Stage,
    pub holds: Vec<String>,
    pub requested: Vec<String>,
    pub inserted: Vec<String>,
    pub times: BTreeMap<String, String>,
}

/// `modgate status`: every module modgate knows of (owned or held) and every record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    pub modules: Vec<ModuleStatus>,
    pub containers: Vec<ContainerStatus>,
}

impl Status {
    pub fn build(ledger: &Ledger, records: &[ContainerRecord], kernel: &dyn KernelView) -> Self {
        let held = holders(records);
        let names: BTreeSet<&str> = ledger
            .modules
            .keys()
            .map(String::as_str)
            .chain(held.keys().copied())
            .collect();
        let modules = names
            .into_iter()
            .map(|name| {
                let owned = ledger.modules.get(name);
                ModuleStatus {
                    name: name.to_string(),
                    owned: owned.is_some(),
                    live: matches!(kernel.state(name), ModState::Live | ModState::Builtin),
                    holders: held
                        .get(name)
                        .map(|ids| ids.iter().map(|s| s.to_string()).collect())
                        .unwrap_or_default(),
                    loaded_at: owned.map(|o| utc(o.loaded_at)),
                    loaded_by: owned.map(|o| o.by.clone()),
                }
            })
            .collect();
        let containers = records
            .iter()
            .map(|r| ContainerStatus {
                id: r.id.clone(),
                stage: r.stage,
                holds: r.holds.clone(),
                requested: r.requested.clone(),
                inserted: r.inserted.clone(),
                times: r.times.iter().map(|(k, v)| (k.clone(), utc(*v))).collect(),
            })
            .collect();
        Status {
            modules,
            containers,
        }
    }

    /// Two tables for a person.
    pub fn render_table(&self) -> String {
        let mut rows = vec![[
            "MODULE".to_string(),
            "OWNER".into(),
            "LIVE".into(),
            "HOLDERS".into(),
            "LOADED".into(),
        ]];
        for m in &self.modules {
            rows.push([
                m.name.clone(),
                if m.owned { "modgate" } else { "pre-existing" }.into(),
                if m.live { "yes" } else { "no" }.into(),
                dash(&m.holders.join(",")),
                dash(m.loaded_at.as_deref().unwrap_or("")),
            ]);
        }
        let mut out = table(&rows);
        out.push('\n');
        let mut rows = vec![[
            "CONTAINER".to_string(),
            "STAGE".into(),
            "SINCE".into(),
            "HOLDS".into(),
        ]];
        for c in &self.containers {
            let since = c.times.values().min().cloned().unwrap_or_default();
            let stage = match c.stage {
                Stage::Loading => "loading",
                Stage::Holding => "holding",
            };
            rows.push([
                c.id.clone(),
                stage.into(),
                dash(&since),
                dash(&c.holds.join(",")),
            ]);
        }
        out.push_str(&table(&rows));
        out
    }
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (k, c) in r.iter().enumerate() {
            line.push_str(&format!("{c:<w$}  ", w = widths[k]));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct K {
        live: Vec<&'static str>,
    }

    impl KernelView for K {
        fn state(&self, name: &str) -> ModState {
            if self.live.contains(&name) {
                ModState::Live
            } else {
                ModState::Absent
            }
        }
    }

    fn rec(id: &str, holds: &[&str]) -> ContainerRecord {
        let mut r = ContainerRecord::new(id, Stage::Holding);
        r.holds = holds.iter().map(|s| s.to_string()).collect();
        r.times.insert("prestart".into(), 1_000);
        r
    }

    #[test]
    fn status_lists_owned_and_held_modules() {
        let mut l = Ledger::default();
        l.insert("ip_vs", "c1", 1_700_000_000_000, None);
        l.insert("dummy", "c0", 1_700_000_000_000, None);
        let records = [rec("c1", &["nf_conntrack", "ip_vs"]), rec("c2", &["ip_vs"])];
        let k = K {
            live: vec!["ip_vs", "nf_conntrack"],
        };
        let s = Status::build(&l, &records, &k);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["modules"][1],
            serde_json::json!({"name":"ip_vs","owned":true,"live":true,"holders":["c1","c2"],
                "loaded_at":"2023-11-14T22:13:20Z","loaded_by":"c1"})
        );
        assert_eq!(
            json["modules"][2],
            serde_json::json!({"name":"nf_conntrack","owned":false,"live":true,"holders":["c1"]})
        );
        assert_eq!(json["modules"][0]["live"], false);
        assert_eq!(json["containers"][1]["id"], "c2");
        assert_eq!(json["containers"][1]["holds"], serde_json::json!(["ip_vs"]));
        let t = s.render_table();
        assert!(t.contains("nf_conntrack  pre-existing  yes   c1"), "{t}");
        assert!(t.contains("dummy         modgate       no    -"), "{t}");
        assert!(
            t.contains("c2         holding  1970-01-01T00:00:01Z  ip_vs"),
            "{t}"
        );
    }
}
