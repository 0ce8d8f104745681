//! `modgate gc`: drops the records of containers that are gone (their poststop never
//! ran), then, with `unload = "on-last-release"`, removes the owned modules nobody
//! holds.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use modgate_core::policy::Unload;
use modgate_core::record::ContainerRecord;

use super::holding::unheld;
use super::store::{now_ms, StateError};
use super::uncounted::Uncounted;
use super::unload::Unloaded;
use super::Session;
use crate::kernel::ModuleSyscalls;
use crate::root::Root;

/// State directories, under the root, in which the runtimes of the engines modgate
/// installs into keep one directory per live container, named by its id: runc and
/// crun (alone, or under podman), Docker's runc, iSulad's runc (through isulad-shim,
/// under its default state directory).
pub const RUNTIME_STATE_DIRS: &[&str] = &[
    "run/runc",
    "run/crun",
    "run/docker/runtime-runc/moby",
    "run/isulad/runc",
];

/// The last component of a path, as text.
fn named(p: Option<&Path>) -> Option<&str> {
    p.and_then(Path::file_name).and_then(|n| n.to_str())
}

/// containerd keeps a task's bundle at `.../io.containerd.runtime.v2.task/NS/ID`, and
/// its runc shim the runc state at `run/containerd/runc/NS/ID`.
const CONTAINERD_TASKS: &str = "io.containerd.runtime.v2.task";

/// What gc knows of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Gone,
    /// No list names it and no runtime state directory speaks for it.
    Unknown,
}

/// gc's verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Drop,
    /// Gone by the evidence, but written after `now - grace`: the evidence may predate it.
    TooYoung,
    Unknown,
}

pub fn judge(record: &ContainerRecord, liveness: Liveness, now: u64, grace_ms: u64) -> Verdict {
    match liveness {
        Liveness::Alive => Verdict::Keep,
        Liveness::Unknown => Verdict::Unknown,
        Liveness::Gone if record.last_time().saturating_add(grace_ms) > now => Verdict::TooYoung,
        Liveness::Gone => Verdict::Drop,
    }
}

/// How gc tells a live container from a gone one.
pub enum Alive {
    /// The engine's list of live ids.
    Listed(BTreeSet<String>),
    /// The runtimes' state directories under the root.
    RuntimeDirs,
}

/// What gc did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct GcReport {
    pub dropped: Vec<String>,
    pub too_young: Vec<String>,
    pub unknown: Vec<String>,
    /// With `unload = "never"`: owned modules nobody holds, kept.
    pub kept: Vec<String>,
    pub unloaded: Unloaded,
}

/// Where the engine keeps this container's state while it exists (relative to the
/// root), when it is one gc knows: recorded at prestart, so that gc judges each record
/// against the engine it came from. The bundle says which containerd namespace or
/// iSulad engine a container belongs to, since ids repeat across them.
pub fn runtime_state_of(root: &Root, id: &str, bundle: &str) -> Option<String> {
    // Runtimes refuse such ids; never build a path out of one.
    if id.is_empty() || id == "." || id == ".." || id.contains('/') {
        return None;
    }
    let is_dir = |rel: &str| root.path(rel).is_dir();
    let b = Path::new(bundle);
    let safe = b.is_absolute()
        && b.components()
            .all(|c| !matches!(c, Component::ParentDir | Component::CurDir));
    if safe && named(Some(b)) == Some(id) {
        let rel = bundle.trim_start_matches('/').to_string();
        let (parent, grand) = (named(b.parent()), named(b.parent().and_then(Path::parent)));
        match (grand, parent) {
            // containerd (and Docker through it): the runc shim's state, else the task's
            // bundle, which containerd removes with the task.
            (Some(CONTAINERD_TASKS), Some(ns)) => {
                let runc = format!("run/containerd/runc/{ns}/{id}");
                return [runc, rel].into_iter().find(|p| is_dir(p));
            }
            // iSulad: GRAPH/engines/lcr/ID (lcr) and GRAPH/engines/runc/ID (runc through
            // isulad-shim), removed with the container.
            (Some("engines"), Some("lcr")) => return Some(rel).filter(|p| is_dir(p)),
            (Some("engines"), Some("runc")) => {
                let state = format!("run/isulad/runc/{id}");
                return [state, rel].into_iter().find(|p| is_dir(p));
            }
            _ => {}
        }
    }
    RUNTIME_STATE_DIRS
        .iter()
        .map(|d| format!("{d}/{id}"))
        .find(|rel| is_dir(rel))
}

fn liveness(root: &Root, r: &ContainerRecord, alive: &Alive) -> Liveness {
    let present = |rel: &str| {
        if root.path(rel).is_dir() {
            Liveness::Alive
        } else {
            Liveness::Gone
        }
    };
    match alive {
        Alive::Listed(ids) if ids.contains(&r.id) => Liveness::Alive,
        Alive::Listed(_) => Liveness::Gone,
        Alive::RuntimeDirs => match &r.runtime_state {
            Some(rel) => present(rel),
            None => match runtime_state_of(root, &r.id, &r.bundle) {
                Some(_) => Liveness::Alive,
                None => Liveness::Unknown,
            },
        },
    }
}

impl Session<'_> {
    /// Drops the records of gone containers, then (with `on-last-release`) removes the
    /// owned modules nobody holds and `uncounted` does not keep.
    pub fn gc(
        &mut self,
        syscalls: &dyn ModuleSyscalls,
        uncounted: &Uncounted,
        alive: &Alive,
        policy: Unload,
        grace_ms: u64,
        dry_run: bool,
    ) -> Result<GcReport, StateError> {
        let now = now_ms();
        let mut report = GcReport::default();
        let mut keep = Vec::new();
        for r in std::mem::take(&mut self.records) {
            match judge(&r, liveness(&self.root, &r, alive), now, grace_ms) {
                Verdict::Keep => keep.push(r),
                Verdict::TooYoung => {
                    report.too_young.push(r.id.clone());
                    keep.push(r);
                }
                Verdict::Unknown => {
                    report.unknown.push(r.id.clone());
                    keep.push(r);
                }
                Verdict::Drop => {
                    if !dry_run {
                        self.drop_record(&r)?;
                        tracing::info!(container = %r.id, "gc: container gone, record dropped");
                    }
                    report.dropped.push(r.id.clone());
                }
            }
        }
        self.records = keep;
        let candidates = unheld(&self.ledger, &self.records);
        match policy {
            Unload::OnLastRelease => {
                report.unloaded = self.unload(syscalls, uncounted, &candidates, dry_run)?
            }
            Unload::Never => report.kept = candidates.into_iter().map(|c| c.name).collect(),
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::FakeKernel;
    use crate::lifecycle::testing::{no_aliases, rec, TempRoot};

    #[test]
    fn gc_verdicts() {
        let r = rec("a", &[]);
        let table = [
            (Liveness::Alive, 100_000, Verdict::Keep),
            (Liveness::Unknown, 100_000, Verdict::Unknown),
            (Liveness::Gone, 100_000, Verdict::Drop),
            (Liveness::Gone, 20_000, Verdict::TooYoung),
        ];
        for (l, now, want) in table {
            assert_eq!(judge(&r, l, now, 30_000), want, "{l:?} at {now}");
        }
        assert_eq!(judge(&r, Liveness::Gone, 1_000, 0), Verdict::Drop);
    }

    #[test]
    fn each_engine_s_state_directory_is_found() {
        let t = TempRoot::new();
        let tasks = "run/containerd/io.containerd.runtime.v2.task";
        let dirs = [
            "run/runc/r1",
            "run/crun/c1",
            "run/docker/runtime-runc/moby/d1",
            "run/containerd/runc/k8s.io/k1",
            "run/containerd/runc/moby/same",
            "run/containerd/runc/other/same",
            &format!("{tasks}/k8s.io/k1"),
            &format!("{tasks}/ns/nr1"),
            "run/isulad/runc/i1",
            "var/lib/isulad/engines/runc/i1",
            "var/lib/isulad/engines/runc/i2",
            "var/lib/isulad/engines/lcr/l1",
        ];
        for d in dirs {
            std::fs::create_dir_all(t.root.path(d)).expect("mkdir");
        }
        let root = t.root.path("").display().to_string();
        let table: &[(&str, &str, Option<&str>)] = &[
            ("r1", "/srv/bundles/r1", Some("run/runc/r1")),
            ("c1", "/srv/bundles/c1", Some("run/crun/c1")),
            ("d1", "/whatever", Some("run/docker/runtime-runc/moby/d1")),
            (
                "k1",
                &format!("/{tasks}/k8s.io/k1"),
                Some("run/containerd/runc/k8s.io/k1"),
            ),
            // The same id in two namespaces: the bundle says which.
            (
                "same",
                &format!("/{tasks}/other/same"),
                Some("run/containerd/runc/other/same"),
            ),
            (
                "same",
                &format!("/{tasks}/moby/same"),
                Some("run/containerd/runc/moby/same"),
            ),
            // Another shim than runc's: the task's bundle.
            (
                "nr1",
                &format!("/{tasks}/ns/nr1"),
                Some(&format!("{tasks}/ns/nr1")),
            ),
            (
                "i1",
                "/var/lib/isulad/engines/runc/i1",
                Some("run/isulad/runc/i1"),
            ),
            (
                "i2",
                "/var/lib/isulad/engines/runc/i2",
                Some("var/lib/isulad/engines/runc/i2"),
            ),
            (
                "l1",
                "/var/lib/isulad/engines/lcr/l1",
                Some("var/lib/isulad/engines/lcr/l1"),
            ),
            ("l2", "/var/lib/isulad/engines/lcr/l2", None),
            ("x", &format!("{root}/nowhere/x"), None),
            ("r1", "relative/engines/lcr/r1", Some("run/runc/r1")),
        ];
        for (id, bundle, want) in table {
            assert_eq!(
                runtime_state_of(&t.root, id, bundle).as_deref(),
                *want,
                "{id} {bundle}"
            );
        }
    }

    #[test]
    fn runtime_state_directories_speak_for_a_container() {
        let t = TempRoot::new();
        std::fs::create_dir_all(t.root.path("run/crun/c1")).expect("mkdir");
        assert_eq!(
            runtime_state_of(&t.root, "c1", "/b/c1").as_deref(),
            Some("run/crun/c1")
        );
        for id in ["", ".", "..", "a/b", "c2"] {
            assert_eq!(runtime_state_of(&t.root, id, "/b"), None, "{id:?}");
        }
        let mut r = rec("c1", &[]);
        assert_eq!(liveness(&t.root, &r, &Alive::RuntimeDirs), Liveness::Alive);
        r.runtime_state = Some("run/runc/c1".into());
        assert_eq!(liveness(&t.root, &r, &Alive::RuntimeDirs), Liveness::Gone);
        assert_eq!(
            liveness(&t.root, &rec("c2", &[]), &Alive::RuntimeDirs),
            Liveness::Unknown
        );
        let listed = Alive::Listed(BTreeSet::from(["c2".to_string()]));
        assert_eq!(liveness(&t.root, &rec("c2", &[]), &listed), Liveness::Alive);
        assert_eq!(liveness(&t.root, &r, &listed), Liveness::Gone);
    }

    #[test]
    fn gc_drops_gone_records_and_unloads_or_keeps_by_policy() {
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        t.inserted_by(&k, "gone", "dummy");
        let none = Alive::Listed(BTreeSet::new());
        let r = t.with_session(|s| {
            s.gc(
                &k,
                &Uncounted::new(&k, &no_aliases),
                &none,
                Unload::Never,
                0,
                false,
            )
            .expect("gc")
        });
        let left: Vec<_> = std::fs::read_dir(t.root.path("run/modgate/containers"))
            .expect("containers/")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            left.is_empty(),
            "nothing of the dropped container: {left:?}"
        );
        assert_eq!(r.dropped, ["gone"]);
        assert_eq!(r.kept, ["dummy"]);
        assert!(k.deleted().is_empty());
        let r = t.with_session(|s| {
            s.gc(
                &k,
                &Uncounted::new(&k, &no_aliases),
                &none,
                Unload::OnLastRelease,
                0,
                true,
            )
            .expect("gc")
        });
        assert_eq!(r.unloaded.removed, ["dummy"]);
        assert!(k.deleted().is_empty(), "a dry run removes nothing");
        let r = t.with_session(|s| {
            s.gc(
                &k,
                &Uncounted::new(&k, &no_aliases),
                &none,
                Unload::OnLastRelease,
                0,
                false,
            )
            .expect("gc")
        });
        assert_eq!(r.unloaded.removed, ["dummy"]);
        assert_eq!(k.deleted(), ["dummy"]);
        assert!(t.with_session(|s| s.ledger().modules.is_empty()));
    }

    #[test]
    fn a_module_a_link_uses_stays_at_release_and_gc_removes_it_once_the_link_is_gone() {
        let t = TempRoot::new();
        let k = FakeKernel::new(&t.root);
        t.inserted_by(&k, "a", "veth");
        // A pair made on the host after the container asked for veth: no reference.
        k.add_link("veth-a", Some("veth"));
        k.add_link("veth-b", Some("veth"));
        let out = t
            .claim("a", &[])
            .release(&k, &Uncounted::new(&k, &no_aliases), Unload::OnLastRelease)
            .expect("release")
            .expect("had a record");
        assert!(out.unloaded.is_empty(), "{out:?}");
        assert_eq!(out.left.len(), 1, "{out:?}");
        assert_eq!(out.left[0].0, "veth");
        assert!(
            out.left[0].1.contains("network link veth-a (kind veth)"),
            "{out:?}"
        );
        assert!(k.deleted().is_empty(), "the pair survives");
        let none = Alive::Listed(BTreeSet::new());
        let gc = |dry_run| {
            t.with_session(|s| {
                s.gc(
                    &k,
                    &Uncounted::new(&k, &no_aliases),
                    &none,
                    Unload::OnLastRelease,
                    0,
                    dry_run,
                )
                .expect("gc")
            })
        };
        let r = gc(true);
        assert!(r.unloaded.removed.is_empty(), "a dry run keeps it too");
        let r = gc(false);
        assert!(r.unloaded.removed.is_empty());
        assert!(
            matches!(&r.unloaded.left[..], [(m, crate::lifecycle::unload::Left::Kept(_))] if m == "veth"),
            "{:?}",
            r.unloaded
        );
        assert!(k.deleted().is_empty());
        assert!(
            t.with_session(|s| s.ledger().owns("veth")),
            "still modgate's"
        );
        k.remove_link("veth-a");
        k.remove_link("veth-b");
        let r = gc(false);
        assert_eq!(r.unloaded.removed, ["veth"]);
        assert_eq!(k.deleted(), ["veth"]);
    }
}
