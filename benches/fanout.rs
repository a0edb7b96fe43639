//! Fan-out of one turn's broadcasts to N connections through the worker's
//! real flush path (in-memory sockets), and one hop across the bus.
//!
//! Guards: the user-space cost per recipient of a broadcast, which must stay
//! a small fraction of the `writev` syscall it feeds (no per-recipient copy,
//! no allocation, no refcount traffic on the fast path), and the cost of
//! crossing to a worker, paid once per worker per broadcast.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fanout::bench_support::{BusRig, FanoutRig};
use fanout::ws::encode;
use fanout::Message;

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("fan_out");
    let frame = encode::message_frame(&Message::binary(Bytes::from(vec![1u8; 64])));
    for (connections, frames_per_turn) in [(1_000usize, 1usize), (10_000, 1), (10_000, 16)] {
        let frames = vec![frame.clone(); frames_per_turn];
        let mut rig = FanoutRig::new(connections);
        group.throughput(Throughput::Elements((connections * frames_per_turn) as u64));
        let id = BenchmarkId::new(format!("{frames_per_turn}_frames"), connections);
        group.bench_function(id, |b| b.iter(|| rig.fan_out(&frames)));
    }
    group.finish();
}

fn bus_hop(c: &mut Criterion) {
    let rig = BusRig::new().expect("a poller for the bus");
    let frame = encode::message_frame(&Message::binary(Bytes::from(vec![1u8; 64])));
    c.bench_function("bus/hop", |b| b.iter(|| rig.hop(&frame)));
}

criterion_group!(benches, fan_out, bus_hop);
criterion_main!(benches);
