//! A webhook receiver for the tests: answers 200 to every HTTP request on a
//! fresh port and keeps each request's body.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The bodies posted so far, in arrival order.
pub type Bodies = Arc<Mutex<Vec<String>>>;

/// Starts a receiver; returns its URL (`http://127.0.0.1:PORT/hooks`) and
/// the bodies it keeps.
pub fn start() -> (String, Bodies) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
    let bodies: Bodies = Arc::default();
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then as much body as Content-Length says.
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    kept.lock().expect("bodies").push(body.to_owned());
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    break;
                }
            }
        }
    });
    (url, bodies)
}

/// Every webhook event in the bodies so far (Pusher's `{"events": [..]}`).
pub fn events(bodies: &Bodies) -> Vec<serde_json::Value> {
    let bodies = bodies.lock().expect("bodies");
    bodies
        .iter()
        .filter_map(|body| serde_json::from_str::<serde_json::Value>(body).ok())
        .flat_map(|posted| posted["events"].as_array().cloned().unwrap_or_default())
        .collect()
}
