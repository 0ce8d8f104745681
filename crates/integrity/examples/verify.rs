//! The JSON report of some modules, the shape a `verify --json` command would print:
//!
//! ```text
//! cargo run -p modgate-integrity --example verify -- CERTS MODULE.ko...
//! ```
//!
//! CERTS is a PEM/DER certificate file or directory, or a kernel image (`vmlinuz-*`),
//! whose certificates are extracted. Modules must be uncompressed images.

use std::error::Error;
use std::path::Path;

use modgate_integrity::{check, extract_certs, TrustStore};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((certs, modules)) = args.split_first() else {
        return Err("usage: verify CERTS MODULE.ko...".into());
    };
    let mut store = TrustStore::new();
    let path = Path::new(certs);
    let is_kernel = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"));
    if is_kernel {
        for der in extract_certs(&std::fs::read(path)?)? {
            store.add_der(&der, certs)?;
        }
    } else {
        store.load_path(path)?;
    }
    let mut out = Vec::new();
    for m in modules {
        let image = std::fs::read(m)?;
        let mut v = serde_json::to_value(check(&image, &store))?;
        v["path"] = serde_json::Value::from(m.as_str());
        out.push(v);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
