//! The `fanout` binary as a child process, for tests that need signals or
//! process limits: start it on a free port, read its address from its
//! start-up line, measure its CPU and descriptors, kill it if a test fails.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A running `fanout` child.
pub struct Fanout {
    child: Child,
    /// Its stderr, line by line (drained all along so it never blocks).
    pub stderr: mpsc::Receiver<String>,
    /// The address from its start-up line.
    pub addr: SocketAddr,
    /// What it printed up to its start-up line.
    early: Vec<String>,
}

impl Fanout {
    /// Starts `fanout ARGS` (which should bind 127.0.0.1:0), under an
    /// open-file limit of `file_limit` when given; waits for its start-up line.
    pub fn spawn(args: &[&str], file_limit: Option<u64>) -> Fanout {
        Fanout::start(args, file_limit, &[], None)
    }

    /// Starts `fanout ARGS` unable to grow any file past `bytes` (what a
    /// full disk looks like to it: writes fail with EFBIG; SIGXFSZ is
    /// ignored so that the process lives on).
    pub fn spawn_with_file_size_limit(args: &[&str], bytes: u64) -> Fanout {
        Fanout::start(args, None, &[], Some(bytes))
    }

    /// Starts `fanout ARGS` with extra environment variables.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Fanout {
        Fanout::start(args, None, env, None)
    }

    fn start(args: &[&str], file_limit: Option<u64>, env: &[(&str, &str)], file_size: Option<u64>) -> Fanout {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fanout"));
        command.args(args).env_remove("RUST_LOG").stdout(Stdio::null()).stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        // SAFETY: setrlimit and signal are async-signal-safe and change only the child.
        unsafe {
            command.pre_exec(move || {
                let limit = |resource, value| {
                    let rlimit = libc::rlimit { rlim_cur: value, rlim_max: value };
                    if libc::setrlimit(resource, &rlimit) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                };
                if let Some(files) = file_limit {
                    limit(libc::RLIMIT_NOFILE, files)?;
                }
                if let Some(bytes) = file_size {
                    limit(libc::RLIMIT_FSIZE, bytes)?;
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                }
                Ok(())
            });
        }
        let mut child = command.spawn().expect("spawn fanout");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut early = Vec::new();
        let addr = loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = stderr.recv_timeout(wait).expect("a start-up line on stderr");
            early.push(line.clone());
            if let Some((_, rest)) = line.split_once("listening on ") {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                break addr.parse().unwrap_or_else(|_| panic!("no address in {line:?}"));
            }
        };
        Fanout { child, stderr, addr, early }
    }

    /// The lines it printed up to and including its start-up line.
    pub fn lines_so_far(&self) -> Vec<String> {
        self.early.clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid");
        // SAFETY: kill only sends a signal to the child we spawned.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill failed");
    }

    /// Its exit status once it exits, or `None` if it runs past `limit`.
    pub fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// CPU time (user + system) it has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("/proc/PID/stat");
        // After the command name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')').expect("comm").1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // SAFETY: sysconf only reads a system constant.
        let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).expect("CLK_TCK");
        Duration::from_millis(ticks * 1000 / per_second)
    }

    /// The share of one core it used over the next `period`.
    pub fn cpu_share_over(&self, period: Duration) -> f64 {
        let before = self.cpu_time();
        thread::sleep(period);
        (self.cpu_time() - before).as_secs_f64() / period.as_secs_f64()
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
