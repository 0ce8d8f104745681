//! Tables for a person: a load plan and `modgate status`. (`--json` prints the same
//! values with serde.)

use modgate_core::plan::{Action, Plan, Reason};
use modgate_core::record::RecordStage;
use modgate_host::lifecycle::StatusReport;

/// `modgate plan`: one row a step.
pub fn plan_table(plan: &Plan) -> String {
    let mut rows = vec![[
        "STEP".to_string(),
        "MODULE".into(),
        "ACTION".into(),
        "FILE".into(),
        "WHY".into(),
    ]];
    for (i, s) in plan.steps.iter().enumerate() {
        let (action, file) = match &s.action {
            Action::Insert { path, options } if options.is_empty() => {
                ("insert".to_string(), path.clone())
            }
            Action::Insert { path, options } => (format!("insert ({options})"), path.clone()),
            Action::Builtin => ("builtin".into(), "-".into()),
            Action::Loaded => ("already loaded".into(), "-".into()),
            Action::Coming => ("being loaded".into(), "-".into()),
            Action::Disabled { source, .. } => (
                format!("disabled by install command in {source}"),
                "-".into(),
            ),
            Action::Missing => ("no module file".into(), "-".into()),
        };
        let mut why = match &s.reason {
            Reason::Requested { name } if *name == s.module => "requested".to_string(),
            Reason::Requested { name } => format!("requested as {name}"),
            Reason::Dependency { of } => format!("dependency of {of}"),
            Reason::SoftdepPre { of } => format!("softdep (pre) of {of}"),
            Reason::SoftdepPost { of } => format!("softdep (post) of {of}"),
        };
        if !s.required {
            why.push_str(", optional");
        }
        rows.push([(i + 1).to_string(), s.module.clone(), action, file, why]);
    }
    table(&rows)
}

/// `modgate status`: the modules, then the containers.
pub fn status_tables(status: &StatusReport) -> String {
    let mut rows = vec![[
        "MODULE".to_string(),
        "OWNER".into(),
        "LIVE".into(),
        "HOLDERS".into(),
        "LOADED".into(),
    ]];
    for m in &status.modules {
        rows.push([
            m.name.clone(),
            if m.owned { "modgate" } else { "pre-existing" }.into(),
            if m.live { "yes" } else { "no" }.into(),
            dash(&m.holders.join(",")),
            dash(m.loaded_at.as_deref().unwrap_or("")),
        ]);
    }
    let mut out = table(&rows);
    for m in &status.modules {
        if let Some(why) = &m.kept {
            let line = format!("kept {}: {why}", m.name);
            out.push_str(&modgate_core::printable(&line));
            out.push('\n');
        }
    }
    out.push('\n');
    let mut rows = vec![[
        "CONTAINER".to_string(),
        "STAGE".into(),
        "SINCE".into(),
        "HOLDS".into(),
    ]];
    for c in &status.containers {
        let since = c.times.values().min().cloned().unwrap_or_default();
        let stage = match c.stage {
            RecordStage::Loading => "loading",
            RecordStage::Holding => "holding",
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

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks; control
/// characters in a cell (a container's id) are escaped.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|r| r.clone().map(|c| modgate_core::printable(&c).into_owned()))
        .collect();
    let mut widths = [0usize; N];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (k, c) in r.iter().enumerate() {
            // Padded by hand: a format width past 65,535 aborts the process.
            line.push_str(c);
            let pad = widths[k].saturating_sub(c.chars().count()) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Writes a command's output to stdout. A reader that went away (`modgate plan … | head`)
/// is not an error: the output was wanted only up to there.
pub fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modgate_core::plan::Step;
    use modgate_host::lifecycle::status::{ContainerStatus, ModuleStatus};
    use std::collections::BTreeMap;

    #[test]
    fn status_tables_show_owner_liveness_and_holders() {
        let module = |name: &str, owned: bool, live: bool, holders: &[&str]| ModuleStatus {
            name: name.into(),
            owned,
            live,
            holders: holders.iter().map(|s| s.to_string()).collect(),
            loaded_at: owned.then(|| "2023-11-14T22:13:20Z".into()),
            loaded_by: owned.then(|| "c1".into()),
            kept: None,
        };
        let mut veth = module("veth", true, true, &[]);
        veth.kept = Some("used by network link v0 (kind veth)".into());
        let s = StatusReport {
            modules: vec![
                module("dummy", true, false, &[]),
                module("ip_vs", true, true, &["c1", "c2"]),
                module("nf_conntrack", false, true, &["c1"]),
                veth,
            ],
            containers: vec![ContainerStatus {
                id: "c2".into(),
                stage: RecordStage::Holding,
                holds: vec!["ip_vs".into()],
                requested: vec!["ip_vs".into()],
                inserted: Vec::new(),
                times: BTreeMap::from([("prestart".into(), "1970-01-01T00:00:01Z".into())]),
            }],
        };
        let t = status_tables(&s);
        assert!(t.contains("nf_conntrack  pre-existing  yes   c1"), "{t}");
        assert!(t.contains("dummy         modgate       no    -"), "{t}");
        assert!(
            t.contains("ip_vs         modgate       yes   c1,c2    2023-11-14T22:13:20Z"),
            "{t}"
        );
        assert!(
            t.contains("c2         holding  1970-01-01T00:00:01Z  ip_vs"),
            "{t}"
        );
        assert!(
            t.contains("\nkept veth: used by network link v0 (kind veth)\n"),
            "{t}"
        );
        assert!(t.lines().all(|l| l == l.trim_end()), "{t}");
    }

    #[test]
    fn a_cell_wider_than_a_format_width_is_shown() {
        let wide = "x".repeat(70_000);
        let t = table(&[[wide.clone(), "b".into()], ["a".into(), "c".into()]]);
        assert!(t.starts_with(&format!("{wide}  b\n")), "{}", &t[..80]);
        assert!(t.ends_with(&format!("a{}c\n", " ".repeat(70_001))));
    }

    #[test]
    fn plan_table_says_what_each_step_does_and_why() {
        let step = |module: &str, action, reason, required| Step {
            module: module.into(),
            action,
            reason,
            required,
        };
        let mut plan = Plan::default();
        plan.push_step(step(
            "crc32c_generic",
            Action::Builtin,
            Reason::SoftdepPre {
                of: "libcrc32c".into(),
            },
            false,
        ));
        plan.push_step(step(
            "ip_vs",
            Action::Insert {
                path: "/lib/modules/x/ip_vs.ko".into(),
                options: "conn_tab_bits=12".into(),
            },
            Reason::Dependency {
                of: "ip_vs_wrr".into(),
            },
            true,
        ));
        plan.push_step(step(
            "ip_vs_wrr",
            Action::Loaded,
            Reason::Requested {
                name: "ip-vs-wrr".into(),
            },
            true,
        ));
        let t = plan_table(&plan);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines,
            [
                "STEP  MODULE          ACTION                     FILE                     WHY",
                "1     crc32c_generic  builtin                    -                        softdep (pre) of libcrc32c, optional",
                "2     ip_vs           insert (conn_tab_bits=12)  /lib/modules/x/ip_vs.ko  dependency of ip_vs_wrr",
                "3     ip_vs_wrr       already loaded             -                        requested as ip-vs-wrr",
            ]
        );
    }
}
