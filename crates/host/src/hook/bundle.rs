//! What the runtime hands the hook: the OCI state on stdin (bounded) and the bundle's
//! `config.json` (read by [`crate::bundle`]: no symlink, no special file, bounded).

use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;
use std::path::Path;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;

use modgate_core::oci::{ConfigView, State};

use super::HookError;
pub use crate::bundle::BundleError;
use crate::bundle::{Bundle, CONFIG_NAME};

/// Largest state document accepted on stdin.
pub const MAX_STATE_BYTES: u64 = 1 << 20;

pub fn read_state(stdin: impl Read) -> Result<State, HookError> {
    Ok(State::parse(&state_bytes(stdin)?)?)
}

/// The state document as the runtime wrote it, up to [`MAX_STATE_BYTES`].
pub fn state_bytes(mut stdin: impl Read) -> Result<Vec<u8>, HookError> {
    let mut buf = Vec::new();
    stdin
        .by_ref()
        .take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(HookError::Stdin)?;
    if buf.len() as u64 > MAX_STATE_BYTES {
        return Err(HookError::StdinTooLarge);
    }
    Ok(buf)
}

/// The hook's stdin as runtimes hand it over. lxc (iSulad's lcr runtime) gives its OCI
/// hooks a non-blocking pipe and writes the state only after it started the hook, so a
/// read can find the pipe empty: this waits for it instead (`poll`), until the state
/// is there or the pipe is closed. A hook that never gets its state is ended by its
/// deadline.
pub struct Stdin<R>(pub R);

impl<R: Read + AsFd> Read for Stdin<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
                    match poll(&mut fds, None) {
                        Ok(_) | Err(Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                r => return r,
            }
        }
    }
}

/// Reads the fields the hook needs from `BUNDLE/config.json`, through the one bundle
/// reader the runtime wrapper uses too.
pub fn read_config(state: &State) -> Result<ConfigView, BundleError> {
    let dir = Path::new(state.bundle().unwrap_or("."));
    let (_bundle, config) = Bundle::open_config(dir, CONFIG_NAME)?;
    config.view()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// A pipe like lxc's: non-blocking, written only after the reader started.
    fn late_nonblocking_pipe(data: &'static [u8]) -> std::io::PipeReader {
        let (r, mut w) = std::io::pipe().expect("pipe");
        let flags = rustix::fs::fcntl_getfl(&r).expect("getfl");
        rustix::fs::fcntl_setfl(&r, flags | rustix::fs::OFlags::NONBLOCK).expect("setfl");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            w.write_all(data).expect("write");
        });
        r
    }

    #[test]
    fn a_nonblocking_pipe_written_late_is_read_whole() {
        let state = br#"{"ociVersion":"","id":"c1","pid":7,"bundle":"/b"}"#;
        let got = state_bytes(Stdin(late_nonblocking_pipe(state))).expect("state");
        assert_eq!(got, state);
    }

    #[test]
    fn without_waiting_the_same_pipe_fails_to_read() {
        let state = br#"{"ociVersion":"","id":"c1"}"#;
        match state_bytes(late_nonblocking_pipe(state)) {
            Err(HookError::Stdin(e)) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
            other => panic!("expected a would-block error, got {other:?}"),
        }
    }
}
