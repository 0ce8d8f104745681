use super::*;

const W: &str = "/usr/local/bin/modgate-runtime";

/// Debian's containerd package ships this file.
const DEBIAN: &str = r#"version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
path = "/var/lib/containerd/opt"
"#;

#[test]
fn merges_by_version() {
    let cases: Vec<(Option<&str>, &str)> = vec![
        (
            None,
            "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.modgate",
        ),
        (
            Some(DEBIAN),
            "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.modgate",
        ),
        (
            Some("# old style\n[plugins.cri]\n  sandbox_image = \"x\"\n"),
            "plugins.cri.containerd.runtimes.modgate",
        ),
        (
            Some("version = 3\n"),
            "plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.modgate",
        ),
    ];
    for (input, table) in cases {
        let e = merge(input, W, "config.toml").unwrap();
        assert!(e.changed, "{input:?}");
        assert!(
            e.text.contains(&format!(
                "[{table}]\nruntime_type = \"io.containerd.runc.v2\""
            )),
            "{}",
            e.text
        );
        assert!(
            e.text
                .contains(&format!("[{table}.options]\nBinaryName = \"{W}\"")),
            "{}",
            e.text
        );
        // Everything that was there is still there, byte for byte.
        if let Some(old) = input {
            assert!(e.text.starts_with(old), "{}", e.text);
        }
        let back: toml::Table = toml::from_str(&e.text).unwrap();
        assert!(back.contains_key("plugins"));
        assert_eq!(
            modgate_runtime(&e.text, "c").unwrap(),
            Some(("modgate".into(), W.into()))
        );
        let again = merge(Some(&e.text), W, "config.toml").unwrap();
        assert!(!again.changed, "second run changed:\n{}", e.text);
    }
}

#[test]
fn updates_binary_and_keeps_other_keys() {
    let old = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.modgate]\n  runtime_type = \"io.containerd.runc.v2\"\n  privileged_without_host_devices = true # keep me\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.modgate.options]\n  BinaryName = \"/old/modgate-runtime\"\n  SystemdCgroup = true\n";
    let e = merge(Some(old), W, "c").unwrap();
    assert!(e.changed);
    assert!(e
        .text
        .contains("privileged_without_host_devices = true # keep me"));
    assert!(e.text.contains("SystemdCgroup = true"));
    assert!(e.text.contains(&format!("BinaryName = \"{W}\"")));
    assert!(!e.text.contains("/old/"));
}

#[test]
fn rejects_malformed() {
    for bad in [
        "version = 2\n[plugins",
        "plugins = 3\nversion = 2",
        "version = \"two\"",
        "version = 9",
    ] {
        assert!(merge(Some(bad), W, "c").is_err(), "{bad}");
    }
}

#[test]
fn snippet_and_runtime_class() {
    let s = snippet(Some(DEBIAN), W, "c").unwrap();
    let key = "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes";
    assert_eq!(
        s,
        format!("[{key}.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n[{key}.modgate]\n  runtime_type = \"io.containerd.runc.v2\"\n  pod_annotations = [\"modgate.io/*\"]\n  container_annotations = [\"modgate.io/*\"]\n[{key}.modgate.options]\n  BinaryName = \"{W}\"\n")
    );
    // A config that names its runtimes needs no runc entry from us.
    let full = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n";
    assert!(!snippet(Some(full), W, "c").unwrap().contains(".runc]"));
    // The snippet, appended, is what merge writes.
    let appended = format!("{DEBIAN}{s}");
    assert_eq!(
        modgate_runtime(&appended, "c").unwrap(),
        Some(("modgate".into(), W.into()))
    );
    assert!(runtime_class().contains("handler: modgate\n"));
    assert_eq!(modgate_runtime(DEBIAN, "c").unwrap(), None);
}

fn runtimes(text: &str) -> toml::Table {
    let t: toml::Table = toml::from_str(text).unwrap();
    t["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
        .as_table()
        .unwrap()
        .clone()
}

#[test]
fn pod_annotations_reach_the_runtime() {
    let e = merge(Some(DEBIAN), W, "c").unwrap();
    let rt = runtimes(&e.text);
    for key in ["pod_annotations", "container_annotations"] {
        assert_eq!(
            rt["modgate"][key].as_array().unwrap(),
            &[toml::Value::from("modgate.io/*")],
            "{key}"
        );
    }
    // An operator's own patterns are kept, ours added once.
    let mine = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.modgate]\npod_annotations = [\"example.com/*\"]\n";
    let rt = runtimes(&merge(Some(mine), W, "c").unwrap().text);
    assert_eq!(
        rt["modgate"]["pod_annotations"].as_array().unwrap(),
        &[
            toml::Value::from("example.com/*"),
            toml::Value::from("modgate.io/*")
        ]
    );
    assert!(merge(Some(&e.text), W, "c").unwrap().text == e.text);
    let bad = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.modgate]\npod_annotations = \"x\"\n";
    assert!(merge(Some(bad), W, "c").is_err());
}

#[test]
fn the_default_runc_runtime_is_written_out_when_relied_on() {
    // (config, whether merge adds runtimes.runc)
    let cases: &[(&str, bool)] = &[
        // Debian's stock file: the CRI plugin's runtimes are all defaults.
        (DEBIAN, true),
        ("", true),
        ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n", true),
        ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"runc\"\n", true),
        // Defined already, or another default the operator configured.
        ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n    SystemdCgroup = true\n", false),
        ("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"crun\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\n  runtime_type = \"io.containerd.runc.v2\"\n", false),
    ];
    for (input, adds) in cases {
        let e = merge(Some(input), W, "c").unwrap();
        let rt = runtimes(&e.text);
        let has = rt.contains_key("runc");
        let had = runtimes_or_empty(input).contains_key("runc");
        assert_eq!(has && !had, *adds, "{input}\n->\n{}", e.text);
        if *adds {
            assert_eq!(
                rt["runc"]["runtime_type"].as_str(),
                Some("io.containerd.runc.v2")
            );
        }
        // An operator's runc settings are never touched.
        if input.contains("SystemdCgroup") {
            assert_eq!(rt["runc"]["options"]["SystemdCgroup"].as_bool(), Some(true));
        }
        assert!(!merge(Some(&e.text), W, "c").unwrap().changed, "{}", e.text);
    }
}

fn runtimes_or_empty(text: &str) -> toml::Table {
    let t: toml::Table = toml::from_str(text).unwrap();
    t.get("plugins")
        .and_then(|p| p.get("io.containerd.grpc.v1.cri"))
        .and_then(|c| c.get("containerd"))
        .and_then(|c| c.get("runtimes"))
        .and_then(|r| r.as_table())
        .cloned()
        .unwrap_or_default()
}
