//! Every operating-system specific call: the listening socket, the
//! open-file limit, CPU pinning, the spare descriptor for EMFILE.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// A non-blocking listener on `addr` with `backlog` pending connections.
pub fn bind_listener(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Restarting the server must not wait for the last run's TIME_WAIT sockets.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// What raising the open-file limit achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    /// The soft limit now in force.
    pub soft: u64,
    /// The hard limit (the most an unprivileged process may set).
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` towards `wanted` (never lowers it, never
/// past the hard limit) and reports the result.
pub fn raise_open_file_limit(wanted: u64) -> io::Result<FileLimit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let target = wanted.min(limit.rlim_max);
    if target > limit.rlim_cur {
        let raised = libc::rlimit { rlim_cur: target, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        limit.rlim_cur = target;
    }
    Ok(FileLimit { soft: limit.rlim_cur, hard: limit.rlim_max })
}

/// Pins the calling thread to core `index % cores`; false when the platform
/// refuses or reports no cores.
pub fn pin_current_thread(index: usize) -> bool {
    match core_affinity::get_core_ids() {
        Some(cores) if !cores.is_empty() => core_affinity::set_for_current(cores[index % cores.len()]),
        _ => false,
    }
}

/// One descriptor held in reserve: at the open-file limit, the acceptor
/// frees it to accept and refuse the waiting connection instead of leaving
/// it pending (where `accept` would fail again at once, forever).
pub(crate) fn spare_descriptor() -> Option<File> {
    File::open("/dev/null").ok()
}

/// True for the errors `accept` returns when the process or system is out
/// of descriptors.
pub(crate) fn is_descriptor_exhaustion(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Resident set size of this process, in bytes, from `/proc/self/status`.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Fills `buf` with bytes from the kernel's random source (`getrandom(2)`
/// behind `/dev/urandom`): for keys that must not be guessable.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read as _;
    File::open("/dev/urandom")?.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_to_the_current_limit_changes_nothing() {
        let before = raise_open_file_limit(0).unwrap();
        let after = raise_open_file_limit(before.soft).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn listener_binds_port_zero() {
        let listener = bind_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
    }

    #[test]
    fn emfile_is_recognised() {
        assert!(is_descriptor_exhaustion(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_descriptor_exhaustion(&io::Error::from_raw_os_error(libc::ECONNRESET)));
    }

    #[test]
    fn random_bytes_differ_between_calls() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn resident_size_is_readable() {
        assert!(resident_bytes().unwrap() > 0);
    }
}
