//! The text indexes a kernel package ships before depmod runs: `modules.dep`,
//! `modules.alias`/`modules.symbols`, `modules.builtin`, `modules.builtin.modinfo`.
//! The first byte picks the form. What a parse finds, written back in the same form,
//! parses to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modgate_core::moddb::{
    parse_alias_text, parse_builtin_modinfo, parse_builtin_text, parse_dep_text, AliasIndex,
    BuiltinIndex, DepIndex, ModuleDb,
};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match sel % 4 {
        0 => {
            let dep = parse_dep_text(&text);
            for (name, line) in &dep {
                let again = parse_dep_text(line);
                assert_eq!(again.get(name), Some(line), "line of {name:?} reparses");
            }
            let db = ModuleDb {
                dep: DepIndex::Text(dep),
                alias: AliasIndex::Missing,
                symbols: AliasIndex::Missing,
                builtin: BuiltinIndex::Missing,
                builtin_alias: AliasIndex::Missing,
            };
            let _ = db.dep_line("ip_vs");
        }
        1 => {
            let aliases = parse_alias_text(&text);
            let entries = aliases.entries().to_vec();
            let rendered: String = entries
                .iter()
                .map(|(p, m, _)| format!("alias {p} {m}\n"))
                .collect();
            let again = parse_alias_text(&rendered);
            assert_eq!(
                again.entries(),
                &entries[..],
                "rendered alias text reparses"
            );
            let db = ModuleDb {
                dep: DepIndex::Text(Default::default()),
                alias: AliasIndex::Text(aliases),
                symbols: AliasIndex::Missing,
                builtin: BuiltinIndex::Missing,
                builtin_alias: AliasIndex::Missing,
            };
            if let Some((p, m, _)) = entries.first() {
                if !p.contains(['*', '?', '[', ']', '\\']) {
                    let found = db.aliases(p).expect("text indexes do not fail");
                    assert!(found.contains(m), "alias {p:?} -> {m:?} not found");
                }
            }
            let dump = db
                .render_modprobe_c_dump()
                .expect("text indexes do not fail");
            assert_eq!(dump, rendered);
        }
        2 => {
            let builtin = parse_builtin_text(&text);
            // A name with a CR only comes from a last line without its newline: written
            // back with one, the CR would become part of the line ending.
            let names: Vec<&String> = builtin
                .iter()
                .filter(|m| !m.trim().is_empty() && !m.contains('\r'))
                .collect();
            let rendered: String = names.iter().map(|m| format!("kernel/{m}.ko\n")).collect();
            let again = parse_builtin_text(&rendered);
            for m in names {
                assert!(again.contains(m), "builtin {m:?} reparses");
            }
        }
        _ => {
            let modinfo = parse_builtin_modinfo(rest);
            let entries = modinfo.entries().to_vec();
            let db = ModuleDb {
                dep: DepIndex::Text(Default::default()),
                alias: AliasIndex::Missing,
                symbols: AliasIndex::Missing,
                builtin: BuiltinIndex::Missing,
                builtin_alias: AliasIndex::Text(modinfo),
            };
            if let Some((p, m, _)) = entries.first() {
                if !p.contains(['*', '?', '[', ']', '\\']) {
                    let found = db.builtin_aliases(p).expect("text indexes do not fail");
                    assert!(found.contains(m), "builtin alias {p:?} -> {m:?} not found");
                }
            }
        }
    }
});
