use super::*;
use crate::lifecycle::testing::mns;
use modgate_core::record::RecordStage;

fn setup() -> (tempfile::TempDir, Root) {
    let t = tempfile::tempdir().expect("tempdir");
    let root = Root::new(t.path());
    (t, root)
}

#[test]
fn records_owned_entries_and_lists_round_trip() {
    let (_t, root) = setup();
    let mut s = Store::open(&root).expect("open");
    let mut r = ContainerRecord::new("a/b", RecordStage::Holding);
    r.holds = mns(&["ip_vs"]);
    s.put_record(&r).expect("put");
    assert!(has_record(&root, "a/b"));
    let o = Owned {
        loaded_at: 5,
        by: "a/b".into(),
        seq: s.next_seq().expect("seq"),
        instance: None,
    };
    s.put_owned("ip_vs", &o).expect("owned");
    s.add_to(List::Holders, "ip_vs", &record_key("a/b"))
        .expect("add");
    let mut s = Store::open(&root).expect("open");
    assert_eq!(s.owned("ip_vs").expect("read"), Some(o));
    assert_eq!(s.next_seq().expect("seq"), 2);
    assert_eq!(s.record(&record_key("a/b")).expect("read"), Some(r.clone()));
    assert_eq!(s.records().expect("list"), [r]);
    assert_eq!(
        s.keys(List::Holders, "ip_vs", false).expect("keys"),
        [record_key("a/b")]
    );
    assert_eq!(s.modules().expect("modules"), mns(&["ip_vs"]));
    s.remove_record("a/b").expect("remove");
    s.remove_record("a/b").expect("removing twice is fine");
    s.remove_from(List::Holders, "ip_vs", &record_key("a/b"))
        .expect("rm");
    assert!(s.keys(List::Holders, "ip_vs", true).expect("k").is_empty());
    assert!(!has_record(&root, "a/b"));
    assert!(s.take_warnings().is_empty());
}

#[test]
fn a_record_for_another_id_or_past_the_limits_is_damaged() {
    let (t, root) = setup();
    let mut s = Store::open(&root).expect("open");
    let dir = t.path().join("run/modgate/containers");
    // ctr2's record under ctr1's name.
    let other = ContainerRecord::new("ctr2", RecordStage::Holding);
    let k1 = record_key("ctr1");
    std::fs::write(
        dir.join(format!("{k1}.json")),
        other.render().expect("render"),
    )
    .expect("write");
    assert_eq!(s.record(&k1).expect("read"), None);
    // An id past the limit is neither written nor read.
    let long = ContainerRecord::new(
        &"x".repeat(modgate_core::record::MAX_ID_BYTES + 1),
        RecordStage::Holding,
    );
    let e = s.put_record(&long).expect_err("too long");
    assert!(
        modgate_core::error_line(&e).contains("more than 1024"),
        "{e}"
    );
    let w = s.take_warnings();
    assert!(
        w.len() == 1 && w[0].contains("another container's file name"),
        "{w:?}"
    );
}

#[test]
fn damaged_files_are_moved_aside_with_a_warning() {
    let (t, root) = setup();
    let dir = t.path().join("run/modgate");
    std::fs::create_dir_all(dir.join(CONTAINERS)).expect("mkdir");
    std::fs::create_dir_all(dir.join("modules/dummy")).expect("mkdir");
    std::fs::write(dir.join("modules/dummy/owned.json"), "{garbage").expect("write");
    std::fs::write(dir.join("containers/bad.json"), "\0\0").expect("write");
    std::fs::write(dir.join("containers/odd"), "{}").expect("write");
    std::os::unix::fs::symlink("/etc/passwd", dir.join("containers/link.json")).expect("symlink");
    let good = ContainerRecord::new("good", RecordStage::Holding);
    let gk = record_key("good");
    std::fs::write(dir.join(format!("containers/.{gk}.json.tmp")), "half").expect("write");
    std::fs::write(
        dir.join(format!("containers/{gk}.json")),
        good.render().expect("render"),
    )
    .expect("write");

    let mut s = Store::open(&root).expect("open");
    s.remove_leftovers().expect("leftovers");
    assert_eq!(s.owned("dummy").expect("read"), None);
    assert_eq!(s.records().expect("list"), [good]);
    let w = s.take_warnings();
    assert_eq!(w.len(), 4, "{w:?}");
    assert!(w[0].contains("owned.json is damaged"), "{w:?}");
    assert!(w
        .iter()
        .any(|m| m.contains("link.json is damaged (a symbolic link)")));
    let aside: Vec<String> = std::fs::read_dir(dir.join(CORRUPT))
        .expect("corrupt dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(aside.len(), 4, "{aside:?}");
    assert!(!dir.join(format!("containers/.{gk}.json.tmp")).exists());
    assert!(
        std::fs::read_to_string("/etc/passwd").is_ok(),
        "target untouched"
    );
}
