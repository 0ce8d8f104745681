//! The hook's deadline. On the fast path (every container start) the kernel's alarm is
//! the deadline: it kills the hook, which fails closed, and costs nothing; a thread
//! costs too much there. Once the hook has work to do, a watchdog thread takes over.
//!
//! Two limits, from the moment the hook knows it has work: the load's budget
//! ([`Deadline`]), shorter than the hook's `--timeout` by [`reserve`], and the timeout
//! itself. Past the budget the load stops and removes what it inserted (the loader
//! between insertions, the watchdog when an insertion does not return); the reserve is
//! the time that takes. Past the timeout, whatever the hook is doing, it exits.

use std::time::{Duration, Instant};

use crate::kernel::ModuleSyscalls;
use crate::loader::deadline::{Deadline, Watch};
use crate::loader::LoadError;

/// Arms (or, with 0, cancels) the process's alarm: when it fires, SIGALRM's default
/// action ends the process. A runtime may have left SIGALRM ignored or blocked, and
/// both survive exec: arming first makes it the default action, unblocked.
pub fn alarm(secs: u64) {
    if secs > 0 {
        sigalrm_ends_the_process();
    }
    let secs = secs.min(u32::MAX as u64) as libc::c_uint;
    // SAFETY: alarm(2) takes a plain integer, touches no memory and cannot fail.
    unsafe { libc::alarm(secs) };
}

fn sigalrm_ends_the_process() {
    // SAFETY: signal(2) with SIG_DFL installs no handler code and touches no memory.
    unsafe { libc::signal(libc::SIGALRM, libc::SIG_DFL) };
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given; sigaddset then changes that
    // initialised set; pthread_sigmask only reads it (no old mask asked for). Threads
    // started later inherit the mask.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGALRM);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, set.as_ptr(), std::ptr::null_mut());
    }
}

/// What the hook keeps of a timeout for rolling back: a tenth of it, at least a
/// second, never more than half. Removing modules takes milliseconds (`delete_module`
/// never waits); the rest is margin for a loaded host.
pub fn reserve(timeout: Duration) -> Duration {
    (timeout / 10).max(Duration::from_secs(1)).min(timeout / 2)
}

/// The load's budget for a hook with `timeout`: the timeout less its [`reserve`], or
/// `asked` when that is shorter (tests make loads run out of time with it).
pub fn budget(timeout: Duration, asked: Option<Duration>) -> Duration {
    let most = timeout - reserve(timeout);
    asked.map_or(most, |a| a.min(most))
}

/// Runs `work` under the watchdog: when the load's budget runs out during an insertion,
/// the watchdog rolls the load back, hands the error to `stopped` (which reports it)
/// and exits 1 without letting the load go on; past `timeout` it exits 1 whatever the
/// hook is doing, so a stuck hook cannot hang the container's start forever.
pub fn watched<T>(
    timeout: Duration,
    load: &Deadline,
    syscalls: &dyn ModuleSyscalls,
    stopped: impl Fn(&LoadError) + Sync,
    work: impl FnOnce() -> T,
) -> T {
    let end = Instant::now() + timeout;
    std::thread::scope(|s| {
        s.spawn(|| {
            match load.watch(syscalls) {
                Watch::Finished => return,
                Watch::TakenOver(e, _held) => {
                    stopped(&e);
                    // `_held` keeps the loader from going on until the process is gone.
                    std::process::exit(1);
                }
                Watch::Passed => {}
            }
            if !load.wait_end(end) {
                eprintln!("modgate: hook timed out after {}s", timeout.as_secs());
                std::process::exit(1);
            }
        });
        let out = work();
        load.finish();
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_the_rollback_a_reserve() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // (timeout, asked, budget)
        let table = [
            (s(20), None, s(18)),
            (s(20), Some(ms(50)), ms(50)),
            (s(20), Some(s(60)), s(18)),
            (s(60), None, s(54)),
            (s(2), None, s(1)),
            (s(1), None, ms(500)),
            (s(0), None, s(0)),
        ];
        for (timeout, asked, want) in table {
            assert_eq!(budget(timeout, asked), want, "{timeout:?} {asked:?}");
            assert!(timeout.is_zero() || reserve(timeout) > Duration::ZERO);
        }
    }
}
