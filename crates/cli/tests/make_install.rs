//! The Makefile's install, with DESTDIR, of the binary this test suite built
//! (`make install-files BIN=...`; `make install` builds the release binary first).

mod realrt;

use std::path::Path;
use std::process::Command;

use realrt::*;

fn make(dest: &Path, gen: &Path, target: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = run(
        Command::new("make")
            .arg("-C")
            .arg(&repo)
            .arg("--no-print-directory")
            .arg(target)
            .arg(format!("DESTDIR={}", dest.display()))
            .arg(format!("BIN={MODGATE}"))
            .arg(format!("GEN={}", gen.display())),
        &format!("make {target}"),
    );
    assert!(out.status.success(), "make {target} failed");
    stdout(&out)
}

#[test]
fn make_install_with_destdir() {
    if !can_run("make_install_with_destdir", &["make", "install"]) {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let (dest, gen) = (t.path().join("dest"), t.path().join("gen"));
    // An iSulad host without syscontainer-tools: the hook slot gets a link.
    std::fs::create_dir_all(dest.join("var/lib/isulad/hooks")).expect("mkdir");
    make(&dest, &gen, "install-files");
    let d = |rel: &str| dest.join(rel);
    for f in [
        "usr/local/bin/modgate",
        "usr/local/share/man/man1/modgate.1",
        "usr/local/share/man/man1/modgate-install-hooks-d.1",
        "usr/local/share/man/man1/modgate-doctor.1",
        "usr/local/share/bash-completion/completions/modgate",
        "usr/local/share/zsh/site-functions/_modgate",
        "usr/local/share/fish/vendor_completions.d/modgate.fish",
        "usr/local/share/doc/modgate/examples/policy.toml",
        "usr/local/share/modgate/hooks.d/modgate-prestart.json",
        "usr/local/lib/systemd/system/modgate-gc.service",
        "usr/local/lib/systemd/system/modgate-gc.timer",
        "usr/local/lib/tmpfiles.d/modgate.conf",
        "etc/modgate/policy.toml",
        "usr/share/containers/oci/hooks.d/modgate-prestart.json",
        "usr/share/containers/oci/hooks.d/modgate-poststop.json",
    ] {
        assert!(d(f).is_file(), "{f} not installed");
    }
    assert_eq!(
        std::fs::read_link(d("usr/local/bin/modgate-runtime")).expect("link"),
        Path::new("modgate")
    );
    assert_eq!(
        std::fs::read_link(d("var/lib/isulad/hooks/syscontainer-hooks")).expect("link"),
        Path::new("/usr/local/bin/modgate")
    );
    let hook: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d("usr/share/containers/oci/hooks.d/modgate-prestart.json"))
            .expect("read"),
    )
    .expect("json");
    assert_eq!(hook["hook"]["path"], "/usr/local/bin/modgate");
    let unit = std::fs::read_to_string(d("usr/local/lib/systemd/system/modgate-gc.service"))
        .expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/modgate gc\n"),
        "{unit}"
    );
    let man = std::fs::read_to_string(d("usr/local/share/man/man1/modgate-install-docker.1"))
        .expect("man");
    assert!(man.contains("default\\-runtime"), "{man}");
    assert!(
        std::fs::read_to_string(d("usr/local/share/bash-completion/completions/modgate"))
            .expect("bash")
            .contains("hooks-d")
    );

    // A second install keeps an operator's policy and changes no hooks.d file.
    std::fs::write(d("etc/modgate/policy.toml"), "mode = \"permissive\"\n").expect("write");
    let again = make(&dest, &gen, "install-files");
    assert!(
        again.contains("keeping the existing /etc/modgate/policy.toml"),
        "{again}"
    );
    assert!(
        again.contains("unchanged: /usr/share/containers/oci/hooks.d/modgate-prestart.json"),
        "{again}"
    );
    assert_eq!(
        std::fs::read_to_string(d("etc/modgate/policy.toml")).expect("read"),
        "mode = \"permissive\"\n"
    );

    make(&dest, &gen, "uninstall");
    assert!(!d("usr/local/bin/modgate").exists());
    assert!(std::fs::symlink_metadata(d("usr/local/bin/modgate-runtime")).is_err());
    assert!(std::fs::symlink_metadata(d("var/lib/isulad/hooks/syscontainer-hooks")).is_err());
    assert!(!d("usr/share/containers/oci/hooks.d/modgate-prestart.json").exists());
    for gone in [
        "usr/local/share/doc/modgate",
        "usr/local/share/modgate",
        "usr/local/lib/systemd/system/modgate-gc.timer",
        "usr/local/lib/tmpfiles.d/modgate.conf",
    ] {
        assert!(!d(gone).exists(), "uninstall left {gone}");
    }
    assert!(
        d("etc/modgate/policy.toml").exists(),
        "uninstall removed the policy"
    );
}
