//! Verifies that a `Server::start` that fails half-way (no descriptor left for the acceptor) returns `ServerError::Start` and stops the worker threads it had already started.
// The only test in this file: it lowers the whole process's open-file limit.

mod util;

use std::fs::File;

use fanout::{EchoHandler, Server, ServerError};

/// Restores the open-file limit, even if the test fails.
struct LimitGuard {
    original: libc::rlimit,
}

impl LimitGuard {
    /// Lowers the soft limit to `soft`, remembering the current one.
    fn lower_to(soft: u64) -> LimitGuard {
        let mut original = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct we own.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut original) }, 0, "getrlimit");
        assert!(soft <= original.rlim_cur, "the limit is already below {soft}");
        set_limit(&libc::rlimit { rlim_cur: soft, rlim_max: original.rlim_max });
        LimitGuard { original }
    }
}

impl Drop for LimitGuard {
    fn drop(&mut self) {
        set_limit(&self.original);
    }
}

fn set_limit(limit: &libc::rlimit) {
    // SAFETY: setrlimit only reads the struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) }, 0, "setrlimit");
}

/// The highest descriptor number open in this process.
fn highest_descriptor() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// Names of this process's threads that are fanout workers.
fn worker_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("fanout-worker"))
        .collect()
}

/// Opens `/dev/null` until the limit refuses; returns what it opened.
fn fill_descriptors() -> Vec<File> {
    let mut fillers = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => fillers.push(file),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return fillers,
            Err(e) => panic!("opening a filler: {e}"),
        }
    }
}

#[test]
fn a_start_that_cannot_create_the_acceptor_fails_and_stops_the_workers_it_started() {
    const WORKERS: usize = 2;
    assert!(worker_threads().is_empty(), "no server runs yet");
    let config = util::config(WORKERS);
    // Room for bind (a listener, a poller and a waker per worker) and little more.
    let guard = LimitGuard::lower_to(highest_descriptor() + 1 + 64);
    let server = Server::bind(config, EchoHandler).expect("bind fits under the limit");
    let fillers = fill_descriptors();
    let started = server.start();
    drop(fillers);
    match started {
        Err(ServerError::Start { what, source }) => {
            assert_eq!(what, "the acceptor", "the workers were started before it");
            assert_eq!(source.raw_os_error(), Some(libc::EMFILE), "{source}");
        }
        Err(other) => panic!("expected ServerError::Start, got {other}"),
        Ok(_) => panic!("start succeeded with no descriptor left"),
    }
    util::wait_until("the started workers to stop", || worker_threads().is_empty());
    drop(guard);
    // With descriptors back, the same configuration starts, and its workers show up.
    let server = util::start(util::config(WORKERS), EchoHandler);
    util::wait_until("the workers to be named", || worker_threads().len() == WORKERS);
    server.shutdown().expect("a clean stop");
}
