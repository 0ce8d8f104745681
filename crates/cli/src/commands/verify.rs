//! `modgate verify NAME|PATH...`: what the policy's integrity check would see in each
//! module file (signature and signer, hash algorithm, vermagic, taint, sha256) and what
//! the policy would decide. A name is resolved like `plan` and brings the modules it
//! depends on; a path (anything with a `/`) is that file. Exits 1 when a signature does
//! not verify or the policy would refuse a module.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use modgate_core::policy::Policy;
use modgate_core::Action;
use modgate_host::kernel::NothingLoaded;
use modgate_host::{integrity, modfile, policyfile};
use modgate_integrity::{TrustStore, Verdict};

use crate::cli::{Global, VerifyArgs};
use crate::settings::Settings;
use crate::Error;

#[derive(Debug, thiserror::Error)]
pub enum VerifyCmdError {
    #[error("cannot read kernel image {path}")]
    KernelImage {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no certificate found in kernel image {path}")]
    NoCerts {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("module {module:?} is built into the kernel: there is no file to verify")]
    Builtin { module: String },
    #[error("module {module:?} has no file")]
    NoFile { module: String },
}

/// One checked module, as the report prints it.
#[derive(serde::Serialize)]
struct Checked {
    module: String,
    path: String,
    #[serde(flatten)]
    verdict: Verdict,
    /// Present when the policy has integrity keys: why it would refuse, or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_refusal: Option<Option<String>>,
    /// With --timings.
    #[serde(skip_serializing_if = "Option::is_none")]
    timings_us: Option<Timings>,
}

/// What one module costs, in microseconds: reading (and decompressing) the file, the
/// sha256 of the image, the signature check alone (digest of the content and the
/// public-key operation), and the whole report the loader computes.
#[derive(serde::Serialize)]
struct Timings {
    read: u128,
    sha256: u128,
    signature: u128,
    check: u128,
}

/// Times `f`, in microseconds.
fn timed<T>(f: impl FnOnce() -> T) -> (T, u128) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_micros())
}

pub fn run(g: &Global, args: &VerifyArgs) -> Result<ExitCode, Error> {
    let s = Settings::resolve(g)?;
    let policy = policyfile::load(&s.root, args.policy.as_deref())?;
    let store = trust_store(&s, &policy, args)?;
    let mut out = Vec::new();
    let mut ctx = None;
    for m in &args.modules {
        if m.contains('/') {
            let path = Path::new(m);
            let (image, read) = timed(|| read_path(path));
            let image = image?;
            let name = path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.split('.').next())
                .unwrap_or(m)
                .replace('-', "_");
            let mut c = check(&name, m, &image, &store, &policy, &s.release);
            if args.timings {
                c.timings_us = Some(time(&image, &store, read));
            }
            out.push(c);
            continue;
        }
        if ctx.is_none() {
            ctx = Some(s.context()?);
        }
        let Some(ctx) = ctx.as_ref() else { continue };
        let plan = ctx.plan(&[m.as_str()], &NothingLoaded)?;
        for step in &plan.steps {
            if out.iter().any(|c: &Checked| c.module == step.module) {
                continue;
            }
            let path = match &step.action {
                Action::Insert { path, .. } => path,
                Action::Builtin if plan.targets.iter().any(|t| t.module == step.module) => {
                    return Err(VerifyCmdError::Builtin {
                        module: step.module.clone(),
                    }
                    .into())
                }
                Action::Missing | Action::Disabled { .. } if step.required => {
                    return Err(VerifyCmdError::NoFile {
                        module: step.module.clone(),
                    }
                    .into())
                }
                _ => continue,
            };
            let rel = modfile::relative(&ctx.dir.dirname, path);
            let (image, read) = timed(|| modfile::read_module(&ctx.dir.dir, rel));
            let image = image?;
            let shown = ctx.dir.dir.join(rel).display().to_string();
            let mut c = check(&step.module, &shown, &image, &store, &policy, &s.release);
            if args.timings {
                c.timings_us = Some(time(&image, &store, read));
            }
            out.push(c);
        }
    }
    let ok = out
        .iter()
        .all(|c| c.verdict.verified() && !matches!(c.policy_refusal, Some(Some(_))));
    let text = if args.json {
        let mut j = serde_json::to_string_pretty(&out)?;
        j.push('\n');
        j
    } else {
        out.iter().map(render).collect::<Vec<_>>().join("\n")
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--certs` and `--kernel-image` when given, else the policy's trusted_certs.
fn trust_store(s: &Settings, policy: &Policy, args: &VerifyArgs) -> Result<TrustStore, Error> {
    if args.certs.is_empty() && args.kernel_images.is_empty() {
        return Ok(integrity::trust_store(&s.root, policy)?);
    }
    let mut store = TrustStore::new();
    for c in &args.certs {
        store.load_path(c)?;
    }
    for k in &args.kernel_images {
        let shown = k.display().to_string();
        let bytes = std::fs::read(k).map_err(|source| VerifyCmdError::KernelImage {
            path: shown.clone(),
            source,
        })?;
        let certs =
            modgate_integrity::extract_certs(&bytes).map_err(|e| VerifyCmdError::NoCerts {
                path: shown.clone(),
                source: Box::new(e),
            })?;
        for der in certs {
            store.add_der(&der, &shown)?;
        }
    }
    Ok(store)
}

fn time(image: &[u8], store: &TrustStore, read: u128) -> Timings {
    let (_, sha256) = timed(|| modgate_integrity::Sha256Pin::of(image));
    let (_, signature) = timed(|| modgate_integrity::verify(image, store).is_ok());
    let (_, check) = timed(|| modgate_integrity::check(image, store));
    Timings {
        read,
        sha256,
        signature,
        check,
    }
}

fn read_path(path: &Path) -> Result<Vec<u8>, Error> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    Ok(modfile::read_module(dir, file)?)
}

fn check(
    module: &str,
    path: &str,
    image: &[u8],
    store: &TrustStore,
    policy: &Policy,
    release: &str,
) -> Checked {
    let verdict = modgate_integrity::check(image, store);
    let policy_refusal = policy
        .integrity
        .checks_files()
        .then(|| policy.integrity.refusal(module, &verdict, release));
    Checked {
        module: module.to_string(),
        path: path.to_string(),
        verdict,
        policy_refusal,
        timings_us: None,
    }
}

fn render(c: &Checked) -> String {
    let v = &c.verdict;
    let sig = &v.signature;
    let status = serde_json::to_value(sig.status)
        .ok()
        .and_then(|s| s.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut lines = vec![format!("{}  {}", c.module, c.path)];
    let mut row = |k: &str, val: String| lines.push(format!("  {k:<10} {val}"));
    row(
        "signature",
        match &sig.reason {
            None => status,
            Some(r) => format!("{status}: {r}"),
        },
    );
    match (&sig.signer, &sig.claimed_issuer) {
        (Some(s), _) => row(
            "signer",
            format!("{s} ({})", sig.signer_source.as_deref().unwrap_or("")),
        ),
        (None, Some(i)) => row("signer", format!("{i} (claimed, not verified)")),
        (None, None) => {}
    }
    if let Some(k) = &sig.claimed_key {
        row("sig_key", k.clone());
    }
    if let Some(h) = sig.hash_algo {
        let key = sig
            .key_type
            .and_then(|k| serde_json::to_value(k).ok())
            .and_then(|k| k.as_str().map(str::to_string))
            .unwrap_or_default();
        row("hash", format!("{} ({key})", h.name()));
    }
    let vermagic = match (&v.modinfo, &v.modinfo_error) {
        (Some(m), _) => m.vermagic.clone().unwrap_or_else(|| "none".into()),
        (None, Some(e)) => format!("unreadable: {e}"),
        (None, None) => "none".into(),
    };
    row("vermagic", vermagic.trim_end().to_string());
    row(
        "taint",
        if v.taint.is_empty() {
            "none".into()
        } else {
            format!("{} ({})", v.taint_letters, v.taint.names().join(", "))
        },
    );
    row("sha256", v.sha256.to_string());
    match &c.policy_refusal {
        Some(Some(r)) => row("policy", format!("refused: {r}")),
        Some(None) => row("policy", "allowed".into()),
        None => {}
    }
    if let Some(t) = &c.timings_us {
        row(
            "time",
            format!(
                "read {} us, sha256 {} us, signature {} us, whole check {} us",
                t.read, t.sha256, t.signature, t.check
            ),
        );
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}
