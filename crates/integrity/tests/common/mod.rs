//! Shared by the integrity tests that compare their verdicts with the openssl CLI:
//! whether the tool is here, running it, and the reference verification itself.
#![allow(dead_code)] // each test target uses its own part

use std::path::Path;
use std::process::Command;

/// Whether the `openssl` tool is here. Without it the test says so and passes, unless
/// `MODGATE_REQUIRE_REAL=1`, where it fails.
pub fn have_openssl() -> bool {
    let ok = Command::new("openssl").arg("version").output().is_ok();
    if !ok {
        if std::env::var("MODGATE_REQUIRE_REAL").as_deref() == Ok("1") {
            panic!("the openssl tool is required");
        }
        eprintln!("skipped: no openssl tool");
    }
    ok
}

/// `openssl ARGS` in `cwd`, which must succeed.
pub fn openssl(args: &[&str], cwd: &Path) -> std::process::Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The reference: does `openssl cms -verify` accept the DER `pkcs7` over `content`, with
/// only the certificates of `certfile` (PEM) as possible signers (`-nointern`) and no
/// chain (`-noverify`)? Both go to files `NAME.bin` and `NAME.p7s` in `dir`.
pub fn openssl_accepts(
    dir: &Path,
    name: &str,
    content: &[u8],
    pkcs7: &[u8],
    certfile: &Path,
) -> bool {
    let c = dir.join(format!("{name}.bin"));
    let s = dir.join(format!("{name}.p7s"));
    std::fs::write(&c, content).expect("test fixture");
    std::fs::write(&s, pkcs7).expect("test fixture");
    Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-noverify",
            "-nointern",
        ])
        .arg("-in")
        .arg(&s)
        .arg("-content")
        .arg(&c)
        .arg("-certfile")
        .arg(certfile)
        .args(["-out", "/dev/null"])
        .output()
        .expect("run openssl")
        .status
        .success()
}
