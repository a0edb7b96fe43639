//! Frame encoding and decoding, and the upgrade parser.
//!
//! Guards: the cost of framing a broadcast (done once per message, so it
//! bounds publish throughput) and of decoding client frames (done for every
//! message a client sends, so it bounds inbound throughput per core).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fanout::bench_support::{ReaderOutcome, ReaderRig};
use fanout::http::Limits;
use fanout::ws::{encode, handshake, Decoder};
use fanout::Message;

fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0xA1, 0xB2, 0xC3, 0xD4];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in [64usize, 4096] {
        let message = Message::binary(Bytes::from(vec![7u8; size]));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("message_frame", size), &message, |b, m| {
            b.iter(|| encode::message_frame(m))
        });
    }
    group.finish();
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in [64usize, 4096] {
        let text = "x".repeat(size);
        let frame = masked_frame(0x1, text.as_bytes());
        let input: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * 100).collect();
        group.throughput(Throughput::Elements(100));
        group.bench_with_input(BenchmarkId::new("100_text_frames", size), &input, |b, input| {
            let mut events = Vec::with_capacity(100);
            b.iter(|| {
                let mut decoder = Decoder::new(1 << 20);
                events.clear();
                decoder.feed(input, &mut events).expect("valid frames");
                events.len()
            })
        });
    }
    group.finish();
}

fn upgrade(c: &mut Criterion) {
    let request = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\r\n";
    let limits = Limits::default();
    c.bench_function("handshake/parse_and_validate", |b| {
        b.iter(|| match ReaderRig::default().feed(request, &limits).first() {
            Some(ReaderOutcome::Request(request)) => handshake::validate_upgrade(request).is_ok(),
            _ => false,
        })
    });
}

criterion_group!(benches, encoding, decoding, upgrade);
criterion_main!(benches);
