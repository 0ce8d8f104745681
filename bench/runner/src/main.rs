//! `modgate-bench-runner RUNS WARMUP [STDIN] -- CMD... [-- CMD...]`
//!
//! Runs each command RUNS times, interleaved, with stdin from STDIN (or /dev/null) and
//! stdout/stderr to /dev/null. Prints one line per command:
//! `median_us p10_us p90_us max_rss_kib failures`. Timing is from fork to reap; the peak
//! RSS is the child's own, from wait4, measured from this small parent so that the
//! parent's memory does not count (a child's maxrss includes what it had before exec).

use std::ffi::CString;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: modgate-bench-runner RUNS WARMUP [STDIN] -- CMD... [-- CMD...]");
        std::process::exit(2)
    };
    let runs: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage());
    let warmup: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage());
    let (stdin, rest) = match args.get(2).map(String::as_str) {
        Some("--") => ("/dev/null".to_string(), &args[2..]),
        Some(f) => (f.to_string(), &args[3..]),
        None => usage(),
    };
    let mut cmds: Vec<Vec<CString>> = Vec::new();
    for a in rest {
        if a == "--" {
            cmds.push(Vec::new());
        } else if let Some(c) = cmds.last_mut() {
            c.push(CString::new(a.as_str()).unwrap_or_else(|_| usage()));
        }
    }
    if cmds.is_empty() || cmds.iter().any(|c| c.is_empty()) {
        usage();
    }
    let stdin = CString::new(stdin).unwrap_or_else(|_| usage());
    let mut times: Vec<Vec<u128>> = vec![Vec::new(); cmds.len()];
    let mut rss = vec![0i64; cmds.len()];
    let mut failures = vec![0usize; cmds.len()];
    for round in 0..warmup + runs {
        for (i, c) in cmds.iter().enumerate() {
            let (us, maxrss, ok) = run(c, &stdin);
            if round >= warmup {
                times[i].push(us);
                rss[i] = rss[i].max(maxrss);
                if !ok {
                    failures[i] += 1;
                }
            }
        }
    }
    for i in 0..cmds.len() {
        let t = &mut times[i];
        t.sort_unstable();
        let pct = |p: usize| t[(t.len() - 1) * p / 100];
        println!(
            "{} {} {} {} {}",
            pct(50),
            pct(10),
            pct(90),
            rss[i],
            failures[i]
        );
    }
}

fn run(cmd: &[CString], stdin: &CString) -> (u128, i64, bool) {
    let mut argv: Vec<*const libc::c_char> = cmd.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let devnull = c"/dev/null";
    let start = Instant::now();
    // SAFETY: fork(2) then, in the child, only async-signal-safe calls (open, dup2,
    // execv, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above; the pointers stay valid in the child's copy of memory.
        unsafe {
            let i = libc::open(stdin.as_ptr(), libc::O_RDONLY);
            let o = libc::open(devnull.as_ptr(), libc::O_WRONLY);
            libc::dup2(i, 0);
            libc::dup2(o, 1);
            libc::dup2(o, 2);
            libc::execv(argv[0], argv.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4(2) fills in; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4(2) on our own child with valid out-pointers.
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let us = start.elapsed().as_micros();
    (
        us,
        usage.ru_maxrss,
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    )
}
