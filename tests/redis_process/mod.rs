//! A real `redis-server` (Debian's, which `.ci/run` installs) on a free
//! loopback port, for the cluster tests: start, kill -9, start again on the
//! same port, and ask it things with the `redis` crate.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `redis-server` process, killed when dropped.
pub struct RedisProcess {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// It speaks TLS only, with the test certificate of `localhost`.
    tls: bool,
}

/// The test CA, which signed the certificate a TLS Redis presents.
pub fn test_ca() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem")
}

impl RedisProcess {
    /// Starts one on a free port and waits until it answers.
    pub fn start() -> RedisProcess {
        let mut redis = RedisProcess { child: None, port: free_port(), tls: false };
        redis.restart();
        redis
    }

    /// Starts one that speaks TLS only (`rediss://localhost:PORT`), with
    /// the test certificate signed by [`test_ca`].
    pub fn start_tls() -> RedisProcess {
        let mut redis = RedisProcess { child: None, port: free_port(), tls: true };
        redis.restart();
        redis
    }

    /// A port where nothing listens yet, for a Redis started later.
    pub fn not_started() -> RedisProcess {
        RedisProcess { child: None, port: free_port(), tls: false }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        match self.tls {
            true => format!("rediss://localhost:{}", self.port),
            false => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Starts it (again) on its port, with nothing kept on disk.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
        let file = |name: &str| fixtures.join(name).to_string_lossy().into_owned();
        let port = self.port.to_string();
        let mut args: Vec<String> =
            ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"].map(String::from).to_vec();
        if self.tls {
            let tls = ["--port", "0", "--tls-port", &port, "--tls-auth-clients", "no"];
            args.extend(tls.map(String::from));
            args.extend([
                "--tls-cert-file".into(),
                file("server1.pem"),
                "--tls-key-file".into(),
                file("server1-key.pem"),
            ]);
            args.extend(["--tls-ca-cert-file".into(), file("ca.pem")]);
        } else {
            args.extend(["--port".to_owned(), port]);
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package; .ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.connection().is_err() {
            assert!(Instant::now() < deadline, "redis-server did not answer on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it at once (SIGKILL): no goodbye to its clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let client = match self.tls {
            true => {
                let root_cert = std::fs::read(test_ca()).expect("the test CA");
                let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) };
                redis::Client::build_with_tls(self.url(), certificates)?
            }
            false => redis::Client::open(self.url())?,
        };
        client.get_connection_with_timeout(Duration::from_secs(1))
    }

    /// Runs one command and returns its answer.
    pub fn query<T: redis::FromRedisValue>(&self, command: &mut redis::Cmd) -> T {
        let mut connection = self.connection().expect("connect to redis");
        command.query(&mut connection).expect("a redis command")
    }

    /// Redis channels with at least one subscriber, sorted.
    pub fn channels(&self, pattern: &str) -> Vec<String> {
        let mut channels: Vec<String> = self.query(redis::cmd("PUBSUB").arg("CHANNELS").arg(pattern));
        channels.sort();
        channels
    }

    /// Subscribers of one Redis channel.
    pub fn subscribers(&self, channel: &str) -> u64 {
        let answer: Vec<(String, u64)> = self.query(redis::cmd("PUBSUB").arg("NUMSUB").arg(channel));
        answer.first().map_or(0, |(_, n)| *n)
    }
}

/// A Redis Cluster of three masters on loopback (no replicas), every slot
/// served, killed when dropped.
pub struct RedisCluster {
    /// Its masters.
    pub masters: Vec<RedisProcess>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    /// Starts three `redis-server --cluster-enabled yes` and joins them
    /// into one cluster (with `redis-cli --cluster create`), waiting until
    /// it serves every slot.
    pub fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!("fanout-redis-cluster-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("a directory for the cluster's files");
        let masters: Vec<RedisProcess> = (0..3)
            .map(|_| {
                let port = free_port();
                let config = dir.join(format!("nodes-{port}.conf"));
                let child = Command::new("redis-server")
                    .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
                    .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                    .arg(&config)
                    .args(["--cluster-node-timeout", "2000", "--dir"])
                    .arg(&dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server (Debian's redis-server package; .ci/run installs it)");
                let redis = RedisProcess { child: Some(child), port, tls: false };
                let deadline = Instant::now() + Duration::from_secs(10);
                while redis.connection().is_err() {
                    assert!(Instant::now() < deadline, "redis-server did not answer on port {port}");
                    std::thread::sleep(Duration::from_millis(20));
                }
                redis
            })
            .collect();
        let nodes: Vec<String> = masters.iter().map(|m| format!("127.0.0.1:{}", m.port)).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli (Debian's redis-tools)");
        assert!(created.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&created.stdout));
        let cluster = RedisCluster { masters, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster.masters.iter().all(|m| {
            m.connection().is_ok_and(|mut c| {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).unwrap_or_default();
                info.contains("cluster_state:ok")
            })
        }) {
            assert!(Instant::now() < deadline, "the Redis Cluster did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The URL of its first master (a node fanout learns the others from).
    pub fn url(&self) -> String {
        self.masters[0].url()
    }

    /// Subscribers of shard channel `channel`, over every master.
    pub fn shard_subscribers(&self, channel: &str) -> u64 {
        self.masters
            .iter()
            .map(|m| {
                let answer: Vec<(String, u64)> = m.query(redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel));
                answer.first().map_or(0, |(_, n)| *n)
            })
            .sum()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.masters.iter_mut().for_each(RedisProcess::kill);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A TCP proxy to `127.0.0.1:target` that holds every chunk, each way, for
/// `delay` before passing it on (a Redis far away); returns its port.
pub fn delaying_proxy(target: u16, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else { continue };
            for (from, to) in [(client.try_clone(), server.try_clone()), (Ok(server), Ok(client))] {
                let (Ok(from), Ok(to)) = (from, to) else { continue };
                pump(from, to, delay);
            }
        }
    });
    port
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
fn pump(mut from: std::net::TcpStream, mut to: std::net::TcpStream, delay: Duration) {
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = std::io::Read::read(&mut from, &mut buf) {
            if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if std::io::Write::write_all(&mut to, &chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}
