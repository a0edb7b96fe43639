//! Verifies that at `--max-connections` and at the process's open-file limit new upgrades get a clean refusal, accepting never spins on EMFILE, and the server recovers when connections go away.

mod child;
mod crowd;
mod util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use child::Fanout;
use crowd::Crowd;
use fanout::EchoHandler;

/// The open-file limit the binary runs under: about 190 connections fit.
const FILE_LIMIT: u64 = 200;

/// What an upgrade attempt got.
enum Answer {
    Upgraded(TcpStream),
    Refused(String),
}

/// Sends an upgrade and reads the answer: a 101 keeps the connection, any
/// other answer is read to the end (FIN or reset) and returned.
fn try_upgrade(addr: SocketAddr) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(util::upgrade_request("/").as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => answer.push(byte[0]),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no answer to an upgrade ({e}); got {:?}", String::from_utf8_lossy(&answer)),
        }
    }
    let head = String::from_utf8_lossy(&answer).into_owned();
    if head.starts_with("HTTP/1.1 101 ") {
        return Answer::Upgraded(stream);
    }
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("a refused connection was not closed: {e}"),
    }
    Answer::Refused(head)
}

fn echo(stream: &mut TcpStream, text: &[u8]) {
    stream.write_all(&util::client_frame(true, 0x1, text)).unwrap();
    let frame = util::read_frame(stream).expect("an echo");
    assert_eq!(frame.payload, text);
}

#[test]
fn at_the_open_file_limit_upgrades_get_503_without_spinning_and_the_server_recovers() {
    let args = ["--bind", "127.0.0.1:0", "--workers", "1", "--mode", "echo", "--ping-interval", "off"];
    let fanout = Fanout::spawn(&args, Some(FILE_LIMIT));
    let addr = fanout.addr;
    let idle_cpu = fanout.cpu_share_over(Duration::from_millis(300));

    // Upgrade until the descriptors run out.
    let mut open = Vec::new();
    let first_refusal = loop {
        assert!(open.len() < FILE_LIMIT as usize, "{} upgrades under a limit of {FILE_LIMIT} files", open.len());
        match try_upgrade(addr) {
            Answer::Upgraded(stream) => open.push(stream),
            Answer::Refused(head) => break head,
        }
    };
    assert!(first_refusal.starts_with("HTTP/1.1 503 "), "the first refusal was {first_refusal:?}");
    let at_cap = open.len();
    assert!(at_cap > FILE_LIMIT as usize - 30, "only {at_cap} connections fit under {FILE_LIMIT} files");

    // At the cap: every further upgrade gets a prompt 503, and the open ones still work.
    for _ in 0..20 {
        let started = Instant::now();
        match try_upgrade(addr) {
            Answer::Refused(head) => assert!(head.starts_with("HTTP/1.1 503 "), "refused with {head:?}"),
            Answer::Upgraded(_) => panic!("an upgrade succeeded at the open-file limit"),
        }
        assert!(started.elapsed() < Duration::from_secs(1), "a refusal took {:?}", started.elapsed());
    }
    echo(&mut open[0], b"at the cap");
    echo(&mut open[at_cap - 1], b"at the cap too");

    // No spinning: neither idle at the cap, nor while connections keep coming.
    let cpu_at_cap = fanout.cpu_share_over(Duration::from_secs(1));
    let stop = Arc::new(AtomicBool::new(false));
    let refusals = Arc::new(AtomicU64::new(0));
    let knocker = {
        let (stop, refusals) = (stop.clone(), refusals.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Answer::Refused(_) = try_upgrade(addr) {
                    refusals.fetch_add(1, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let cpu_knocked = fanout.cpu_share_over(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    knocker.join().unwrap();
    let knocked = refusals.load(Ordering::Relaxed);
    assert!(knocked > 20, "only {knocked} refusals while knocking");
    assert!(cpu_at_cap < 0.5, "the server used {:.0}% of a core idle at the cap", cpu_at_cap * 100.0);
    assert!(cpu_knocked < 0.5, "the server used {:.0}% of a core refusing", cpu_knocked * 100.0);

    // Recovery: half the clients leave, and as many newcomers get in.
    let leaving = at_cap / 2;
    for stream in open.drain(..leaving) {
        drop(stream);
    }
    let mut admitted = 0;
    let deadline = Instant::now() + util::PATIENCE;
    while admitted < leaving - 10 {
        assert!(Instant::now() < deadline, "only {admitted} upgrades admitted after {leaving} clients left");
        match try_upgrade(addr) {
            Answer::Upgraded(mut stream) => {
                echo(&mut stream, b"a newcomer");
                open.push(stream);
                admitted += 1;
            }
            // The server may not have seen every departure yet.
            Answer::Refused(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    echo(&mut open[0], b"an old-timer");
    eprintln!(
        "open-file limit {FILE_LIMIT}: {at_cap} connections fit; \
         CPU idle {:.1}%, at the cap {:.1}%, refusing {knocked} knocks/s {:.1}% of a core; \
         {admitted} admitted again after {leaving} left",
        idle_cpu * 100.0,
        cpu_at_cap * 100.0,
        cpu_knocked * 100.0,
    );
    drop(fanout);
}

#[test]
fn at_max_connections_a_crowd_of_upgrades_gets_exactly_the_limit_and_503_for_the_rest() {
    const LIMIT: usize = 300;
    let server = util::start(
        util::with_config(util::config(2), |c| {
            c.max_connections = LIMIT;
        }),
        EchoHandler,
    );
    let handle = server.handle();
    let addr = server.local_addr();
    let mut crowd = Crowd::connect(addr, 2 * LIMIT, None);
    crowd.send_all(util::upgrade_request("/").as_bytes());
    let mut heads: Vec<Option<String>> = vec![None; crowd.len()];
    let mut answered = 0;
    let all = crowd.pump_until(util::PATIENCE, |peers, ready| {
        for &i in ready {
            if heads[i].is_none() {
                heads[i] = peers[i].take_head();
                answered += usize::from(heads[i].is_some());
            }
        }
        answered == heads.len()
    });
    assert!(all, "only {answered} of {} upgrades were answered", heads.len());
    let upgraded: Vec<usize> =
        (0..heads.len()).filter(|&i| heads[i].as_ref().unwrap().starts_with("HTTP/1.1 101 ")).collect();
    assert_eq!(upgraded.len(), LIMIT);
    for head in heads.iter().flatten().filter(|h| !h.starts_with("HTTP/1.1 101 ")) {
        assert!(head.starts_with("HTTP/1.1 503 "), "refused with {head:?}");
    }
    // Every refused socket is closed by the server.
    let refused_closed = crowd.pump_until(util::PATIENCE, |peers, _| {
        (0..peers.len()).filter(|i| !upgraded.contains(i)).all(|i| peers[i].ended.is_some())
    });
    assert!(refused_closed, "a refused socket was left open");
    let stats = handle.stats();
    assert_eq!((stats.connections, stats.refused_over_limit), (LIMIT, LIMIT as u64));

    // A hundred leave; exactly a hundred newcomers get in.
    for &i in upgraded.iter().take(100) {
        crowd.peers[i].hang_up();
    }
    util::wait_until("the leavers to be forgotten", || handle.connection_count() == LIMIT - 100);
    let mut newcomers = Crowd::connect(addr, 101, None);
    newcomers.send_all(util::upgrade_request("/").as_bytes());
    let mut heads: Vec<Option<String>> = vec![None; newcomers.len()];
    let mut answered = 0;
    assert!(newcomers.pump_until(util::PATIENCE, |peers, ready| {
        for &i in ready {
            if heads[i].is_none() {
                heads[i] = peers[i].take_head();
                answered += usize::from(heads[i].is_some());
            }
        }
        answered == heads.len()
    }));
    let admitted = heads.iter().flatten().filter(|h| h.starts_with("HTTP/1.1 101 ")).count();
    assert_eq!(admitted, 100);
    assert_eq!(handle.stats().refused_over_limit, LIMIT as u64 + 1);
    assert_eq!(handle.connection_count(), LIMIT);
    server.shutdown().unwrap();
}
