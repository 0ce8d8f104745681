//! Fake modules and the module trees the system `depmod` builds from them: object files
//! whose `.modinfo` section carries `alias=`, `softdep=`, ... and whose
//! `__ksymtab_strings` section exports symbols other modules use. kmod reads such a tree
//! exactly as it reads a real kernel's.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One fake module: where it goes, its `.modinfo` strings, what it exports and uses.
pub struct FakeModule {
    /// Relative to the module directory (`kernel/...`, `updates/...`), or absolute
    /// under the root (`/opt/ext/...`) for an external directory.
    pub path: &'static str,
    pub modinfo: Vec<&'static str>,
    pub exports: Vec<&'static str>,
    pub uses: Vec<&'static str>,
}

pub fn module(
    path: &'static str,
    modinfo: &[&'static str],
    exports: &[&'static str],
    uses: &[&'static str],
) -> FakeModule {
    FakeModule {
        path,
        modinfo: modinfo.to_vec(),
        exports: exports.to_vec(),
        uses: uses.to_vec(),
    }
}

/// A tree to build: the kernel release, its modules and the files beside them.
#[derive(Default)]
pub struct Spec {
    pub name: &'static str,
    pub release: &'static str,
    pub modules: Vec<FakeModule>,
    /// `modules.builtin` lines; `None` leaves the file out.
    pub builtin: Option<Vec<&'static str>>,
    /// `modules.builtin.modinfo` records (`name.key=value`); `None` leaves the file out,
    /// as on every kernel before 5.2.
    pub builtin_modinfo: Option<Vec<&'static str>>,
    /// depmod.d text (`search`, `external` with `@ROOT@` for the root, `override`).
    pub depmod_conf: Option<&'static str>,
    /// modprobe.d files (name, text).
    pub modprobe_d: Vec<(&'static str, &'static str)>,
    /// Byte-for-byte replacements (same length) made in `modules.dep` and
    /// `modules.dep.bin` after depmod ran: depmod refuses to write a dependency cycle,
    /// and this is how a test gets one (as an older depmod or a hand-made tree has).
    pub patch_dep: Vec<(&'static str, &'static str)>,
    /// Files written into the module directory after depmod ran (name, bytes).
    pub extra_files: Vec<(&'static str, &'static [u8])>,
    /// Names to look up beyond those the indexes list (config aliases, unknown names).
    pub extra_names: Vec<&'static str>,
}

/// A built tree: `root/lib/modules/RELEASE`, the modprobe.d directory, the names to check.
pub struct Built {
    pub dir: tempfile::TempDir,
    pub release: String,
    pub conf: PathBuf,
    pub names: Vec<String>,
}

impl Built {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn moddir(&self) -> PathBuf {
        self.dir.path().join("lib/modules").join(&self.release)
    }
}

/// The C source of one fake module.
fn source(m: &FakeModule) -> String {
    let mut s = String::new();
    for (i, kv) in m.modinfo.iter().enumerate() {
        s.push_str(&format!(
            "static const char __attribute__((section(\".modinfo\"),used,aligned(1))) mi{i}[] = \"{kv}\";\n"
        ));
    }
    for (i, e) in m.exports.iter().enumerate() {
        s.push_str(&format!(
            "void {e}(void) {{}}\nstatic const char __attribute__((section(\"__ksymtab_strings\"),used,aligned(1))) ks{i}[] = \"{e}\";\n"
        ));
    }
    for u in &m.uses {
        s.push_str(&format!("extern void {u}(void);\n"));
    }
    s.push_str("void fake_module_uses(void) {");
    for u in &m.uses {
        s.push_str(&format!(" {u}();"));
    }
    s.push_str(" }\n");
    s
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the tree with `cc` and the system `depmod`, and lists every name to check:
/// each module of `modules.dep`, each alias (wildcards made concrete), each symbol,
/// each built-in module and built-in alias, and the spec's extra names.
pub fn build(spec: &Spec, cmdline: &str) -> Built {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let moddir = root.join("lib/modules").join(spec.release);
    std::fs::create_dir_all(&moddir).expect("mkdir moddir");
    std::fs::create_dir_all(root.join("proc")).expect("mkdir proc");
    std::fs::write(root.join("proc/cmdline"), cmdline).expect("write cmdline");
    let src = root.join("src");
    std::fs::create_dir_all(&src).expect("mkdir src");
    for (i, m) in spec.modules.iter().enumerate() {
        let dest = match m.path.strip_prefix('/') {
            Some(abs) => root.join(abs),
            None => moddir.join(m.path),
        };
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        let c = src.join(format!("m{i}.c"));
        std::fs::write(&c, source(m)).expect("write source");
        run(Command::new("cc").arg("-c").arg("-o").arg(&dest).arg(&c));
    }
    if let Some(lines) = &spec.builtin {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(moddir.join("modules.builtin"), text).expect("modules.builtin");
    }
    if let Some(recs) = &spec.builtin_modinfo {
        let data: Vec<u8> = recs
            .iter()
            .flat_map(|r| r.bytes().chain(std::iter::once(0)))
            .collect();
        std::fs::write(moddir.join("modules.builtin.modinfo"), data).expect("builtin.modinfo");
    }
    let mut depmod = Command::new("depmod");
    depmod.arg("-b").arg(root);
    if let Some(conf) = spec.depmod_conf {
        let d = root.join("depmod.d");
        std::fs::create_dir_all(&d).expect("mkdir depmod.d");
        let text = conf.replace("@ROOT@", &root.display().to_string());
        std::fs::write(d.join("tree.conf"), text).expect("depmod.d");
        depmod.arg("-C").arg(&d);
    }
    run(depmod.arg(spec.release));
    for (from, to) in &spec.patch_dep {
        assert_eq!(from.len(), to.len(), "a patch keeps the length");
        for file in ["modules.dep", "modules.dep.bin"] {
            let path = moddir.join(file);
            let mut data = std::fs::read(&path).expect("read modules.dep");
            let at = data
                .windows(from.len())
                .position(|w| w == from.as_bytes())
                .unwrap_or_else(|| panic!("{from:?} not in {file}"));
            data[at..at + to.len()].copy_from_slice(to.as_bytes());
            std::fs::write(&path, data).expect("write modules.dep");
        }
    }
    for (name, data) in &spec.extra_files {
        std::fs::write(moddir.join(name), data).expect("extra file");
    }
    let conf = root.join("modprobe.d");
    std::fs::create_dir_all(&conf).expect("mkdir modprobe.d");
    for (name, text) in &spec.modprobe_d {
        std::fs::write(conf.join(name), text).expect("modprobe.d file");
    }
    let mut names = index_names(&moddir);
    names.extend(spec.extra_names.iter().map(|n| n.to_string()));
    names.sort();
    names.dedup();
    Built {
        dir,
        release: spec.release.to_string(),
        conf,
        names,
    }
}

fn read(path: &Path) -> String {
    std::fs::read(path)
        .map(|d| String::from_utf8_lossy(&d).into_owned())
        .unwrap_or_default()
}

/// A wildcard pattern made into a name it matches.
fn concrete(p: &str) -> String {
    let mut s = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => s.push('0'),
            '?' => s.push('A'),
            '[' => {
                let class: String = chars.by_ref().take_while(|&c| c != ']').collect();
                match class.chars().next() {
                    Some(f) if f != '!' && f != '^' => s.push(f),
                    _ => s.push('Z'),
                }
            }
            c => s.push(c),
        }
    }
    s
}

fn index_names(moddir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for l in read(&moddir.join("modules.dep")).lines() {
        if let Some((p, _)) = l.split_once(':') {
            let base = p.rsplit('/').next().unwrap_or(p);
            names.push(base.split('.').next().unwrap_or(base).to_string());
        }
    }
    for file in ["modules.alias", "modules.symbols"] {
        for l in read(&moddir.join(file)).lines() {
            let mut it = l.split_whitespace();
            if it.next() == Some("alias") {
                if let Some(p) = it.next() {
                    names.push(concrete(p));
                }
            }
        }
    }
    for l in read(&moddir.join("modules.builtin")).lines() {
        let base = l.rsplit('/').next().unwrap_or(l);
        if let Some(n) = base.split('.').next().filter(|n| !n.is_empty()) {
            names.push(n.to_string());
        }
    }
    let modinfo = std::fs::read(moddir.join("modules.builtin.modinfo")).unwrap_or_default();
    for rec in modinfo.split(|&b| b == 0) {
        let rec = String::from_utf8_lossy(rec);
        if let Some((_, alias)) = rec.split_once(".alias=") {
            names.push(concrete(alias));
        }
    }
    names
}
