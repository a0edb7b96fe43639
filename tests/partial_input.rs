//! Verifies that incomplete input is judged as such: trickling bytes of one frame does not count as activity for the idle timeout, the worker-wide ceiling on held input closes the connection that passes it with 1013, and an upgrade request sent byte by byte still completes.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fanout::EchoHandler;
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::Message as WsMessage;

const KIB: usize = 1024;

/// Sends a text frame and expects it echoed.
fn echo_raw(stream: &mut TcpStream, text: &str) {
    stream.write_all(&util::client_frame(true, 0x1, text.as_bytes())).expect("send");
    let frame = util::read_frame(stream).expect("an echo");
    assert_eq!((frame.opcode, frame.payload.as_slice()), (0x1, text.as_bytes()));
}

#[test]
fn a_client_trickling_one_frame_is_closed_by_the_idle_timeout_while_one_sending_whole_frames_stays() {
    const IDLE: Duration = Duration::from_millis(300);
    const BEAT: Duration = Duration::from_millis(50);
    let config = util::with_config(util::config(1), |c| {
        c.idle_timeout = Some(IDLE);
    });
    let server = util::start(config, EchoHandler);
    let mut trickler = util::raw_upgrade(server.local_addr(), "/");
    let mut steady = util::raw_upgrade(server.local_addr(), "/");
    let started = Instant::now();

    // One byte of a 1000-byte frame every 50 ms: it would take 50 s to finish.
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let (mut writer, stop) = (trickler.try_clone().expect("clone"), stop.clone());
        let frame = util::client_frame(true, 0x1, &[b'x'; 1000]);
        thread::spawn(move || {
            let mut sent = 0;
            for byte in frame {
                if stop.load(Ordering::Relaxed) || writer.write_all(&[byte]).is_err() {
                    break;
                }
                sent += 1;
                thread::sleep(BEAT);
            }
            sent
        })
    };
    // A whole small frame every 50 ms, for well over twice the idle timeout.
    let beats = thread::spawn(move || {
        for i in 0..16 {
            echo_raw(&mut steady, &format!("beat {i}"));
            thread::sleep(BEAT);
        }
        steady
    });

    let close = util::read_frame(&mut trickler).expect("a close frame");
    let waited = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert_eq!((close.close_code(), close.close_reason().as_str()), (1001, "idle timeout"));
    assert!(waited >= IDLE - BEAT, "closed after only {waited:?}");
    let sent = trickle.join().expect("trickler");
    // Bytes kept arriving, a beat apart, all through the idle timeout.
    assert!(sent >= 5, "only {sent} bytes trickled");

    let mut steady = beats.join().expect("the steady client got every echo");
    echo_raw(&mut steady, "still open");
    let stats = server.handle().stats();
    assert_eq!((stats.idle_timeouts, stats.connections), (1, 1));
}

#[test]
fn the_client_that_pushes_held_input_past_the_workers_ceiling_is_closed_with_1013() {
    let config = util::with_config(util::config(1), |c| {
        c.max_message_size = 64 * KIB;
        c.max_worker_partial_bytes = 96 * KIB;
    });
    let server = util::start(config, EchoHandler);
    let addr = server.local_addr();
    let message: Vec<u8> = (0..64 * KIB).map(|i| (i % 251) as u8).collect();

    // The first client's message stops after a 40 KiB fragment; the pong to
    // a ping sent behind it proves the worker holds those 40 KiB.
    let mut first = util::raw_upgrade(addr, "/");
    first.write_all(&util::client_frame(false, 0x2, &message[..40 * KIB])).expect("send");
    first.write_all(&util::client_frame(true, 0x9, b"held?")).expect("send");
    let pong = util::read_frame(&mut first).expect("a pong");
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"held?"[..]));
    assert_eq!(server.handle().stats().input_overflows, 0);

    // 60 KiB of a 64 KiB frame: within the ceiling alone, past it with the first's 40.
    let mut second = util::raw_upgrade(addr, "/");
    let frame = util::client_frame(true, 0x2, &message);
    second.write_all(&frame[..frame.len() - 4 * KIB]).expect("send");
    let close = util::read_frame(&mut second).expect("a close frame");
    assert_eq!((close.close_code(), close.close_reason().as_str()), (1013, "server input buffers are full"));
    assert_eq!(server.handle().stats().input_overflows, 1);

    // The first client finishes its message and gets all of it back.
    first.write_all(&util::client_frame(true, 0x0, &message[40 * KIB..])).expect("send");
    let echo = util::read_frame(&mut first).expect("the echo");
    assert_eq!(echo.opcode, 0x2);
    assert!(echo.payload == message, "the echo differs from the message ({} bytes)", echo.payload.len());
    let stats = server.handle().stats();
    assert_eq!((stats.input_overflows, stats.connections), (1, 1));
}

#[test]
fn an_upgrade_sent_one_byte_at_a_time_completes_while_the_worker_serves_others() {
    let server = util::start(util::config(1), EchoHandler);
    let addr = server.local_addr();
    let mut other = util::connect(addr, "/");
    let mut stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(util::PATIENCE)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    for (i, byte) in util::upgrade_request("/").bytes().enumerate() {
        stream.write_all(&[byte]).expect("send one byte");
        if i % 32 == 0 {
            other.send(WsMessage::text(format!("during byte {i}"))).expect("send");
            assert_eq!(util::next_message(&mut other), WsMessage::text(format!("during byte {i}")));
        }
        thread::sleep(Duration::from_millis(1));
    }
    let head = util::read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{head}");
    let mut client = WebSocket::from_raw_socket(stream, Role::Client, None);
    client.send(WsMessage::text("after a byte-by-byte upgrade")).expect("send");
    assert_eq!(util::next_message(&mut client), WsMessage::text("after a byte-by-byte upgrade"));
    assert_eq!(server.handle().connection_count(), 2);
}
