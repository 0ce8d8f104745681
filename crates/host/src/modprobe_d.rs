//! Reads modprobe configuration from the host: the `modprobe.d` directories (or the
//! `--config-dir` list), the module directory's `modules.softdep`, and `proc/cmdline`.

use std::path::{Path, PathBuf};

use modgate_core::config::{order_files, Config};

use crate::root::Root;

/// kmod's search path, first wins for a file name.
pub const DEFAULT_DIRS: [&str; 5] = [
    "etc/modprobe.d",
    "run/modprobe.d",
    "usr/local/lib/modprobe.d",
    "usr/lib/modprobe.d",
    "lib/modprobe.d",
];

/// Loads the configuration. `dirs` replaces the default search path when given.
pub fn load(root: &Root, dirs: &[PathBuf], moddir: &Path) -> Config {
    let search: Vec<PathBuf> = if dirs.is_empty() {
        DEFAULT_DIRS.iter().map(|d| root.path(d)).collect()
    } else {
        dirs.to_vec()
    };
    let mut listing: Vec<(String, Option<Vec<String>>)> = Vec::new();
    for d in search
        .iter()
        .chain(std::iter::once(&moddir.join("modules.softdep")))
    {
        let Ok(meta) = std::fs::metadata(d) else {
            continue;
        };
        let path = d.to_string_lossy().into_owned();
        if meta.is_file() {
            listing.push((path, None));
        } else if meta.is_dir() {
            let Ok(rd) = std::fs::read_dir(d) else {
                continue;
            };
            let names = rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| !t.is_dir()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            listing.push((path, Some(names)));
        }
    }
    let mut config = Config::default();
    for file in order_files(&listing) {
        if let Ok(text) = std::fs::read(&file) {
            config.parse_file(&file, &text);
        }
    }
    // Bytes, not text: kmod reads the command line as bytes, and so must a line that is
    // not UTF-8.
    if let Ok(cmdline) = std::fs::read(root.path("proc/cmdline")) {
        config.parse_kcmdline(&cmdline);
    }
    config
}
