//! `modgate status`: every module modgate knows of (owned, or held by a container),
//! whether it is live and who holds it, and every container record. The binary shows
//! it as JSON or as tables.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use modgate_core::record::{utc, ContainerRecord, Ledger, RecordStage};

use super::holding::holders;
use super::uncounted::Uncounted;
use super::Session;
use crate::kernel::{KernelView, ModState};

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
    /// Owned, held by no container, yet not to be removed: why (see [`Uncounted`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerStatus {
    pub id: String,
    pub stage: RecordStage,
    pub holds: Vec<String>,
    pub requested: Vec<String>,
    pub inserted: Vec<String>,
    pub times: BTreeMap<String, String>,
}

/// `modgate status`: every module modgate knows of (owned or held) and every record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub modules: Vec<ModuleStatus>,
    pub containers: Vec<ContainerStatus>,
}

impl StatusReport {
    pub fn build(ledger: &Ledger, records: &[ContainerRecord], kernel: &dyn KernelView) -> Self {
        let held = holders(records);
        let names: BTreeSet<&str> = ledger
            .modules
            .keys()
            .map(|m| m.as_str())
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
                    kept: None,
                }
            })
            .collect();
        let containers = records
            .iter()
            .map(|r| ContainerStatus {
                id: r.id.clone(),
                stage: r.stage,
                holds: strings(&r.holds),
                requested: strings(&r.requested),
                inserted: strings(&r.inserted),
                times: r.times.iter().map(|(k, v)| (k.clone(), utc(*v))).collect(),
            })
            .collect();
        StatusReport {
            modules,
            containers,
        }
    }
}

impl StatusReport {
    /// Says why each live module modgate owns and no container holds stays loaded, when
    /// something the kernel does not count uses it (what gc and unload would say).
    pub fn note_kept(&mut self, uncounted: &Uncounted) {
        for m in &mut self.modules {
            if m.owned && m.live && m.holders.is_empty() {
                m.kept = uncounted.keep(&m.name);
            }
        }
    }
}

fn strings(names: &[modgate_core::ModuleName]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

impl Session<'_> {
    pub fn status(&self) -> StatusReport {
        StatusReport::build(&self.ledger, &self.records, &self.kernel())
    }

    /// The status and the store's counters in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        let counters = super::metrics::read(self.store.dir());
        super::metrics::prometheus(&self.status(), &counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::testing::mn;

    use crate::kernel::fake::FakeKernel;
    use crate::lifecycle::testing::{rec, TempRoot};

    #[test]
    fn status_lists_owned_and_held_modules() {
        let mut l = Ledger::default();
        l.insert(&mn("ip_vs"), "c1", 1_700_000_000_000, None);
        l.insert(&mn("dummy"), "c0", 1_700_000_000_000, None);
        let records = [rec("c1", &["nf_conntrack", "ip_vs"]), rec("c2", &["ip_vs"])];
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        k.set_live(&["ip_vs", "nf_conntrack"]);
        let s = StatusReport::build(&l, &records, &k);
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
    }

    #[test]
    fn status_says_why_an_unheld_owned_module_stays() {
        let mut l = Ledger::default();
        l.insert(&mn("veth"), "c0", 1_700_000_000_000, None);
        l.insert(&mn("dummy"), "c0", 1_700_000_000_000, None);
        l.insert(&mn("ip_vs"), "c0", 1_700_000_000_000, None);
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        k.set_live(&["veth", "dummy", "ip_vs"]);
        k.add_link("veth-a", Some("veth"));
        k.add_link("dummy7", Some("dummy"));
        let records = [rec("c1", &["dummy"])];
        let mut s = StatusReport::build(&l, &records, &k);
        let none = |_: &str| Vec::new();
        s.note_kept(&Uncounted::new(&k, &none));
        let kept: Vec<(&str, Option<&str>)> = s
            .modules
            .iter()
            .map(|m| (m.name.as_str(), m.kept.as_deref()))
            .collect();
        assert_eq!(kept[0], ("dummy", None), "held by c1: no reason needed");
        assert_eq!(kept[1], ("ip_vs", None));
        assert!(
            kept[2]
                .1
                .is_some_and(|w| w.contains("network link veth-a (kind veth)")),
            "{kept:?}"
        );
    }
}
