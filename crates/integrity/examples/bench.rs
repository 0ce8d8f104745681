//! Time per module for hashing and for the signature check, on a real kernel tree:
//!
//! ```text
//! eval "$(scripts/fetch-kernel)"
//! cargo run --release -p modgate-integrity --example bench -- "$ROOT" "$KV" [ROUNDS]
//! ```
//!
//! Prints, for each module of the ip_vs_wrr closure, the median over ROUNDS (default 50)
//! of: sha256 of the image, trailer + PKCS#7 parse, signature verification (digest of the
//! content plus RSA), modinfo, and the whole `check`.

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use modgate_integrity::{check, extract_certs, modinfo, verify, Sha256Pin, TrustStore};

const CLOSURE: &[&str] = &[
    "kernel/lib/libcrc32c.ko",
    "kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko",
    "kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko",
    "kernel/net/netfilter/nf_conntrack.ko",
    "kernel/net/netfilter/ipvs/ip_vs.ko",
    "kernel/net/netfilter/ipvs/ip_vs_wrr.ko",
    "kernel/arch/x86/crypto/crc32c-intel.ko",
    "kernel/crypto/crc32c_generic.ko",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(root), Some(release)) = (args.first(), args.get(1)) else {
        return Err("usage: bench ROOT RELEASE [ROUNDS]".into());
    };
    let rounds: usize = args
        .get(2)
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(50)
        .max(1);
    let root = PathBuf::from(root);
    let vmlinuz = std::fs::read(root.join("boot").join(format!("vmlinuz-{release}")))?;

    let t = Instant::now();
    let certs = extract_certs(&vmlinuz)?;
    let extract = t.elapsed();
    let t = Instant::now();
    let mut store = TrustStore::new();
    for c in &certs {
        store.add_der(c, "vmlinuz")?;
    }
    let build = t.elapsed();
    println!(
        "extract_certs({} MB vmlinuz): {:.1} ms, {} cert(s); TrustStore: {} us",
        vmlinuz.len() / 1_000_000,
        extract.as_secs_f64() * 1e3,
        certs.len(),
        us(build)
    );

    println!(
        "{:<20} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "module", "KiB", "sha256 us", "parse us", "verify us", "modinfo us", "check us"
    );
    let moddir = root.join("lib/modules").join(release);
    let (mut total_hash, mut total_verify, mut total_check) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for rel in CLOSURE {
        let image = std::fs::read(moddir.join(rel))?;
        verify(&image, &store)?;
        let hash = time(rounds, || Sha256Pin::of(&image));
        let parse = time(rounds, || {
            modgate_integrity::verify::parse_image(&image).is_ok()
        });
        let ver = time(rounds, || verify(&image, &store).is_ok());
        let mi = time(rounds, || modinfo::parse(&image).is_ok());
        let all = time(rounds, || check(&image, &store));
        total_hash += hash;
        total_verify += ver;
        total_check += all;
        let name = rel.rsplit('/').next().unwrap_or(rel);
        println!(
            "{:<20} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
            name,
            image.len() / 1024,
            us(hash),
            us(parse),
            us(ver),
            us(mi),
            us(all)
        );
    }
    println!(
        "closure total: sha256 {} us, verify {} us, check {} us",
        us(total_hash),
        us(total_verify),
        us(total_check)
    );
    Ok(())
}
