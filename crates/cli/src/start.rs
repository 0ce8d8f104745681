//! The process's entry point. The C runtime calls [`main`] directly (the crate is
//! `no_main`): Rust's own start-up, which installs a stack-overflow handler on an
//! alternate signal stack and reads `/proc/self/maps` to find the main thread's guard
//! page, costs more than everything else a container start without a request does. A
//! stack overflow still kills the process (a hook fails closed); it is just not
//! announced. What the program relies on from that start-up is done here.

use std::ffi::{c_char, c_int};
use std::process::ExitCode;

/// The process entry point, called by the C runtime with the process's arguments
/// (std reads them itself, from the same place).
// SAFETY: `main` is the symbol the C runtime calls; no other item of the program
// defines it, and its signature is the one the C runtime expects.
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    open_std_fds();
    ignore_sigpipe();
    // `exit` flushes standard output, as returning from a Rust `main` would.
    std::process::exit(exit_status(crate::run_main()))
}

/// Also what Rust's start-up did: a standard descriptor the parent left closed is
/// opened on `/dev/null`, so that no file the program opens later takes its number and
/// receives what is printed.
fn open_std_fds() {
    for fd in 0..3 {
        // SAFETY: fcntl(F_GETFD) on a plain descriptor number only reads the process's
        // descriptor table.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1;
        if closed {
            // The lowest free number is `fd` (those below it are open): the new
            // descriptor must stay open for the life of the process.
            match std::fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                Ok(null) => std::mem::forget(null),
                Err(_) => std::process::abort(),
            }
        }
    }
}

/// Also what Rust's start-up did: a write to a closed pipe returns EPIPE (handled
/// where output is written) instead of killing the process, possibly between a load
/// and its record.
fn ignore_sigpipe() {
    // SAFETY: signal(2) with SIG_IGN installs no handler code and touches no memory.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// `ExitCode` keeps its number private: find it among the 256 a process can return.
fn exit_status(code: ExitCode) -> c_int {
    (0..=u8::MAX)
        .find(|&n| ExitCode::from(n) == code)
        .map_or(1, c_int::from)
}
