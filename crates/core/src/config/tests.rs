//! modprobe.d directives, the kernel command line and `modprobe -c` rendering.

use super::*;

fn parse(text: &str) -> Config {
    let mut c = Config::default();
    c.parse_file("/etc/modprobe.d/t.conf", text.as_bytes());
    c
}

#[test]
fn directives() {
    let c = parse(concat!(
        "# comment\n",
        "alias my-alias ip_vs-wrr\n",
        "options ip-vs  conn_tab_bits=12\tx=1\n",
        "options ip_vs y=2\n",
        "blacklist dccp-ipv4\n",
        "install dccp /bin/false\n",
        "remove foo /bin/true\n",
        "softdep libcrc32c pre: crc32c a post: b\n",
        "softdep libcrc32c pre: ignored\n",
        "bogus line\n",
        "alias onlyone\n",
        "include /x\n",
    ));
    assert_eq!(c.aliases[0].pattern, "my_alias");
    assert_eq!(c.aliases[0].module, "ip_vs_wrr");
    assert_eq!(c.options_for("ip_vs", None), " conn_tab_bits=12 x=1 y=2");
    assert!(c.blacklisted("dccp_ipv4").is_some());
    assert_eq!(
        c.install_for("dccp").map(|x| x.command.as_str()),
        Some("/bin/false")
    );
    assert_eq!(
        c.remove_for("foo").map(|x| x.command.as_str()),
        Some("/bin/true")
    );
    let sd = c.softdep_for("libcrc32c").unwrap();
    assert_eq!(sd.pre, ["crc32c", "a"]);
    assert_eq!(sd.post, ["b"]);
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("line 10"));
}

#[test]
fn options_by_alias_and_empty_tail() {
    let c = parse("options foo\noptions foo \noptions al a=1\n");
    assert_eq!(c.options.len(), 1);
    assert_eq!(c.options_for("bar", Some("al")), "a=1");
    assert_eq!(c.warnings.len(), 2);
}

#[test]
fn wrapped_lines_join_and_drop_backslashes() {
    let c = parse("options foo a=1 \\\n b=2\noptions bar x\\y\n");
    assert_eq!(c.options_for("foo", None), "a=1  b=2");
    assert_eq!(c.options_for("bar", None), "xy");
}

#[test]
fn install_and_softdep_patterns_use_fnmatch() {
    let c = parse("install dccp* /bin/false\nsoftdep nf_* pre: x\n");
    assert!(c.install_for("dccp_ipv6").is_some());
    assert!(c.install_for("ip_vs").is_none());
    assert!(c.softdep_for("nf_conntrack").is_some());
}

/// `(module, options)` pairs and the blacklist, as `modprobe -c` would list them.
fn kcmdline(line: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut c = Config::default();
    c.parse_kcmdline(line);
    (
        c.options
            .iter()
            .map(|o| (o.module.clone(), o.options.clone()))
            .collect(),
        c.blacklist.iter().map(|b| b.module.clone()).collect(),
    )
}

#[test]
fn kernel_command_line() {
    // Each row checked against kmod 30's `modprobe -c` with the line bind-mounted
    // over /proc/cmdline.
    let opts: &[(&str, &[(&str, &str)])] = &[
        ("foo.a foo.b=1", &[("foo", "a"), ("foo", "b=1")]),
        ("foo.p=1.5G", &[("foo", "p=1.5G")]),
        ("foo.p=\"a b\"", &[("foo", "p=\"a b\"")]),
        ("\"foo.p=a b\"", &[("foo", "p=\"a b\"")]),
        ("foo.x.y=1", &[]),
        ("quiet rdinit=/x -- 0.0.0.0:1 k.p=v.w", &[("k", "p=v.w")]),
        (
            "a-b.c=1 a[-].d=2 a].e=3 a[.f=4",
            &[("a_b", "c=1"), ("a[-]", "d=2")],
        ),
        ("foo.p=\"unterminated", &[]),
        (
            "foo.p=\"a b\"c bar.q=1\nbaz.r=2\0x.y=1",
            &[("foo", "p=\"a b\"c"), ("bar", "q=1"), ("baz", "r=2")],
        ),
        (
            "\"zz.q=a\tb\" y.p=a\x0bb\x01",
            &[("zz", "q=\"a b\""), ("y", "p=a")],
        ),
        (
            "x\"y.p=1 foo.\"p=1 foo.p=a\"b c\" z.q",
            &[("foo", "p=a\"b c\""), ("z", "q")],
        ),
        ("foo.p=a\tb .q=1 foo=1.p=2", &[("foo", "p=a"), ("", "q=1")]),
    ];
    for (line, want) in opts {
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(m, o)| (m.to_string(), o.to_string()))
            .collect();
        assert_eq!(kcmdline(line).0, want, "{line:?}");
    }
    let (o, b) = kcmdline(
        "modprobe.blacklist=a,b-c,,d modprobe.blacklist=\"e,f\" \"modprobe.blacklist=g\" modprobe.blacklist modprobe.other=1",
    );
    assert_eq!(b, ["a", "b-c", "", "d", "\"e", "f\"", "\"g\""]);
    assert_eq!(
        o,
        [
            ("modprobe".to_string(), "blacklist".to_string()),
            ("modprobe".to_string(), "other=1".to_string())
        ]
    );
    // kmod reads at most 4095 bytes.
    let long = format!("{} foo.p=1", "x".repeat(4089));
    assert_eq!(kcmdline(&long).0, [("foo".to_string(), "p".to_string())]);
}

#[test]
fn modprobe_c_rendering_and_softdep_words() {
    // The expected text is kmod 30's `modprobe -c` for the same file.
    let c = parse(concat!(
        "softdep f1 pre: a post: b pre: c\n",
        "softdep f2 post: c\n",
        "softdep f4 pre:\n",
        "softdep f5  pre:   a   b  \n",
        "softdep f6 pre:a x\n",
        "softdep f7 post: a pre: b post: c\n",
        "softdep f-8 pre: x-y\tpost:\tz\n",
        "blacklist a-b\n",
        "alias a-b c-d\n",
        "install i-j  /bin/x  y\n",
        "remove r\toptions\n",
        "options o\t\ta\tb\n",
    ));
    assert_eq!(c.softdeps[0].pre, ["a", "c"]);
    assert_eq!(c.softdeps[0].post, ["b"]);
    assert!(c.softdeps[3].pre.is_empty(), "two blanks hide pre:");
    assert_eq!(
        c.render_modprobe_c(),
        concat!(
            "blacklist a_b\n",
            "install i_j  /bin/x  y\n",
            "remove r options\n",
            "alias a_b c_d\n",
            "options o  a b\n",
            "softdep f1 pre: a b cpost: b\n",
            "softdep f2 post: c\n",
            "softdep f4 \n",
            "softdep f5 \n",
            "softdep f6 \n",
            "softdep f7 pre: bpost: a b c\n",
            "softdep f_8 pre: x-ypost: z\n",
            "\n# End of configuration files. Dumping indexes now:\n\n",
        )
    );
}

#[test]
fn file_order_and_masking() {
    let dirs = vec![
        (
            "/etc/modprobe.d".to_string(),
            Some(vec![
                "z.conf".into(),
                "b.conf".into(),
                ".hidden.conf".into(),
                "x.txt".into(),
            ]),
        ),
        (
            "/lib/modprobe.d".to_string(),
            Some(vec!["b.conf".into(), "a.alias".into()]),
        ),
        ("/lib/modules/K/modules.softdep".to_string(), None),
    ];
    assert_eq!(
        order_files(&dirs),
        [
            "/lib/modprobe.d/a.alias",
            "/etc/modprobe.d/b.conf",
            "/lib/modules/K/modules.softdep",
            "/etc/modprobe.d/z.conf"
        ]
    );
}
