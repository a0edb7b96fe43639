//! Every OS-specific call the client makes: the monotonic clock, open-file limits, CPU usage,
//! server RSS, a nanosecond timer for the event loop, and client socket creation with a chosen
//! source address.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// Linux's `IP_BIND_ADDRESS_NO_PORT`: bind the source address now, choose the port at `connect`,
/// so that binding does not reserve a port machine-wide for every client socket.
const IP_BIND_ADDRESS_NO_PORT: libc::c_int = 24;

/// Nanoseconds on `CLOCK_MONOTONIC`. The clock is system-wide, so stamps taken in one loadtest
/// process can be compared in another (this is what makes `--processes` latency valid).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Makes the calling thread's timers fire on time: the default 50 µs timer slack would add
/// itself to every scheduled send and show up as client send lag.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long by value and affects only this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the limit now in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls with a valid pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// User plus system CPU time, in nanoseconds, of the calling thread (`thread = true`) or of the
/// whole process.
pub fn cpu_time_ns(thread: bool) -> u64 {
    let who = if thread { libc::RUSAGE_THREAD } else { libc::RUSAGE_SELF };
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0;
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// User plus system CPU time of process `pid`, in nanoseconds, from `/proc/PID/stat` (clock-tick
/// resolution: 10 ms at the usual 100 Hz; threads that ended still count).
pub fn process_cpu_ns(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_cpu_ticks(&text).ok_or_else(|| io::Error::other(format!("bad /proc/{pid}/stat")))?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&hz| hz > 0).unwrap_or(100);
    Ok(ticks * 1_000_000_000 / hz)
}

/// utime + stime, in clock ticks, from a `/proc/PID/stat` line (fields 14 and 15, counted after
/// the command name, which may hold spaces and parentheses).
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of process `pid` in bytes, read from `/proc/PID/status`.
pub fn vm_rss_bytes(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&text).ok_or_else(|| io::Error::other(format!("no VmRSS line for pid {pid}")))
}

/// Extracts `VmRSS:   1234 kB` from a `/proc/PID/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Number of IPv4 TCP sockets in TIME_WAIT on this machine (state 06 in `/proc/net/tcp`): the
/// usual reason `connect` runs out of local ports after a previous run.
pub fn count_time_wait() -> usize {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines().skip(1).filter(|l| l.split_whitespace().nth(3) == Some("06")).count()
}

/// Creates a non-blocking TCP socket, optionally bound to `source` (port chosen at connect time),
/// and starts connecting it to `addr`. `EINPROGRESS` is success: the caller waits for writability.
pub fn start_connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<mio::net::TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        set_bind_no_port(&socket)?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(socket.into()))
}

/// Sets `IP_BIND_ADDRESS_NO_PORT`; must happen before `bind`.
fn set_bind_no_port(socket: &Socket) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: valid fd and a pointer to a c_int of the stated length.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Closes `stream` with an RST instead of a FIN (`SO_LINGER` 0), so the client keeps no
/// TIME_WAIT socket when the server did not close first.
pub fn abort(stream: mio::net::TcpStream) {
    let socket = socket2::SockRef::from(&stream);
    let _ = socket.set_linger(Some(std::time::Duration::ZERO));
    drop(stream);
}

/// A `timerfd` on `CLOCK_MONOTONIC` armed at absolute nanosecond deadlines. The event loop needs
/// sub-millisecond wake-ups to send on schedule; `epoll_wait`'s timeout is in whole milliseconds.
pub struct Timer {
    fd: OwnedFd,
    armed_at: u64,
}

impl Timer {
    /// Creates a disarmed, non-blocking timer.
    pub fn new() -> io::Result<Timer> {
        // SAFETY: plain syscall; the fd is owned by the returned value.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by timerfd_create and is not owned elsewhere.
        Ok(Timer { fd: unsafe { OwnedFd::from_raw_fd(fd) }, armed_at: 0 })
    }

    /// Arms the timer for `deadline_ns` (CLOCK_MONOTONIC); a no-op when already armed there.
    pub fn arm(&mut self, deadline_ns: u64) {
        let deadline_ns = deadline_ns.max(1);
        if deadline_ns == self.armed_at {
            return;
        }
        self.armed_at = deadline_ns;
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid fd and itimerspec pointer.
        unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut()) };
    }

    /// Consumes the expiration count; required with edge-triggered polling, or the timer never
    /// reports readiness again.
    pub fn clear(&mut self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a valid buffer; errors (EAGAIN) are fine.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        self.armed_at = 0;
    }

    /// Raw fd for registration with mio.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The kernel's ephemeral port range (`ip_local_port_range`), as the number of ports in it.
pub fn local_port_count() -> u64 {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let v: Vec<u64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    match v.as_slice() {
        [lo, hi] if hi >= lo => hi - lo + 1,
        _ => 28_232,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (fan (out) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1 2"), None);
    }

    #[test]
    fn vm_rss_is_parsed_in_bytes() {
        let text = "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t    1234 kB\nThreads: 1\n";
        assert_eq!(parse_vm_rss(text), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn clock_is_monotonic_and_own_rss_readable() {
        let a = now_ns();
        assert!(now_ns() >= a);
        assert!(vm_rss_bytes(std::process::id()).unwrap() > 0);
        assert!(raise_nofile_limit() >= 1024);
    }
}
