//! The hook's deadline. On the fast path (every container start) the kernel's alarm is
//! the deadline: it kills the hook, which fails closed, and costs nothing; a thread
//! costs too much there. Once the hook has work to do, a watchdog thread takes over so
//! that an overrun fails with a message instead of a signal.

use std::time::Duration;

/// Arms (or, with 0, cancels) the process's alarm: when it fires, SIGALRM's default
/// action ends the process.
pub fn alarm(secs: u64) {
    let secs = secs.min(u32::MAX as u64) as libc::c_uint;
    // SAFETY: alarm(2) takes a plain integer, touches no memory and cannot fail.
    unsafe { libc::alarm(secs) };
}

/// Fails the hook cleanly when it overruns its deadline, so a stuck load cannot hang
/// the container's start forever.
pub fn watchdog(secs: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        eprintln!("modgate: hook timed out after {secs}s");
        std::process::exit(1);
    });
}
