//! Unit tests of `flush_one` on in-memory sockets: one vectored write per
//! turn, partial writes, would-block, and both slow-consumer policies.

use bytes::Bytes;

use super::*;
use crate::shard::connection::Flag;
use crate::shard::rig::{open_connection, Sink};

fn frames(n: usize, len: usize) -> Vec<Broadcast> {
    (0..n)
        .map(|i| Broadcast {
            frame: Bytes::from(vec![i as u8; len]),
            except: None,
            sent_at: None,
            deflated: Default::default(),
        })
        .collect()
}

fn limit(max_bytes: usize, policy: SlowConsumerPolicy) -> QueueLimit {
    QueueLimit { max_bytes, policy }
}

fn concat(batch: &[Broadcast]) -> Vec<u8> {
    batch.iter().flat_map(|b| b.frame.iter().copied()).collect()
}

#[test]
fn a_turns_broadcasts_go_out_in_one_vectored_write() {
    let mut conn = open_connection(Sink::keeping(None), 1);
    let batch = frames(5, 66);
    let counters = WorkerCounters::default();
    let flushed = flush_one(&mut conn, &batch, limit(1 << 20, SlowConsumerPolicy::Close), &counters);
    assert!(flushed.error.is_none() && !flushed.more);
    assert_eq!(conn.socket.writes, 1);
    assert_eq!(conn.socket.written, concat(&batch));
    assert!(conn.queue.is_empty());
}

#[test]
fn a_partial_write_keeps_the_rest_in_order_for_the_next_turn() {
    let mut conn = open_connection(Sink::keeping(Some(10)), 1);
    let batch = frames(3, 6);
    let counters = WorkerCounters::default();
    let lim = limit(1 << 20, SlowConsumerPolicy::Close);
    flush_one(&mut conn, &batch, lim, &counters);
    assert_eq!(conn.socket.written.len(), 10);
    assert_eq!(conn.queue.bytes(), 8);
    assert!(!conn.flags.is(Flag::Writable), "a short write means the socket is full");
    conn.socket.room = None;
    conn.flags.set(Flag::Writable, true);
    flush_one(&mut conn, &[], lim, &counters);
    assert_eq!(conn.socket.written, concat(&batch), "no byte lost, duplicated or reordered");
}

#[test]
fn a_socket_that_would_block_gets_everything_queued() {
    let mut conn = open_connection(Sink::keeping(Some(0)), 1);
    let batch = frames(4, 10);
    let flushed = flush_one(&mut conn, &batch, limit(1 << 20, SlowConsumerPolicy::Close), &WorkerCounters::default());
    assert!(flushed.error.is_none());
    assert_eq!(conn.queue.bytes(), 40);
    assert!(!conn.flags.is(Flag::Writable));
}

#[test]
fn a_blocked_socket_is_not_even_tried_until_writable() {
    let mut conn = open_connection(Sink::keeping(Some(0)), 1);
    conn.flags.set(Flag::Writable, false);
    flush_one(&mut conn, &frames(2, 10), limit(1 << 20, SlowConsumerPolicy::Close), &WorkerCounters::default());
    assert_eq!(conn.socket.writes, 0);
    assert_eq!(conn.queue.bytes(), 20);
}

#[test]
fn past_the_bound_the_close_policy_reports_a_slow_consumer() {
    let mut conn = open_connection(Sink::keeping(Some(0)), 1);
    let flushed =
        flush_one(&mut conn, &frames(5, 400), limit(1024, SlowConsumerPolicy::Close), &WorkerCounters::default());
    assert!(flushed.slow_consumer);
    assert!(conn.queue.bytes() <= 1024);
}

#[test]
fn past_the_bound_the_drop_policy_drops_whole_frames_and_counts_them() {
    let mut conn = open_connection(Sink::keeping(Some(0)), 1);
    let counters = WorkerCounters::default();
    // Room for two frames of 400 bytes, each with its overhead.
    let lim = limit(2 * (400 + crate::shard::send_queue::CHUNK_OVERHEAD), SlowConsumerPolicy::Drop);
    let batch = frames(5, 400);
    let flushed = flush_one(&mut conn, &batch, lim, &counters);
    assert!(flushed.dropped && !flushed.slow_consumer);
    assert_eq!(conn.queue.bytes(), 800);
    assert_eq!(counters.frames_dropped.load(std::sync::atomic::Ordering::Relaxed), 3);
    conn.socket.room = None;
    conn.flags.set(Flag::Writable, true);
    flush_one(&mut conn, &[], lim, &counters);
    assert_eq!(conn.socket.written, concat(&batch[..2]), "the first two frames, whole and in order");
}

#[test]
fn a_broadcast_skips_the_connection_it_excludes() {
    let mut conn = open_connection(Sink::keeping(None), 1);
    let mut batch = frames(3, 5);
    batch[1].except = Some(conn.id);
    flush_one(&mut conn, &batch, limit(1 << 20, SlowConsumerPolicy::Close), &WorkerCounters::default());
    assert_eq!(conn.socket.written, [concat(&batch[..1]), concat(&batch[2..])].concat());
}

#[test]
fn more_chunks_than_one_writev_takes_all_go_out_while_the_socket_takes_them() {
    let mut conn = open_connection(Sink::keeping(None), 1);
    let batch = frames(2 * MAX_IOV + 44, 3);
    let lim = limit(1 << 20, SlowConsumerPolicy::Close);
    let flushed = flush_one(&mut conn, &batch, lim, &WorkerCounters::default());
    assert_eq!(conn.socket.writes, 3, "one writev per {MAX_IOV} chunks");
    assert_eq!(conn.socket.written, concat(&batch));
    assert_eq!(flushed.written, batch.len() * 3);
    assert!(conn.queue.is_empty() && !flushed.more);
}

#[test]
fn a_socket_that_fills_midway_keeps_the_rest_queued_in_order() {
    let mut conn = open_connection(Sink::keeping(Some(MAX_IOV * 3 + 4)), 1);
    let batch = frames(2 * MAX_IOV, 3);
    let lim = limit(1 << 20, SlowConsumerPolicy::Close);
    flush_one(&mut conn, &batch, lim, &WorkerCounters::default());
    assert_eq!(conn.socket.writes, 2, "the second writev was short");
    assert!(!conn.flags.is(Flag::Writable));
    conn.socket.room = None;
    conn.flags.set(Flag::Writable, true);
    flush_one(&mut conn, &[], lim, &WorkerCounters::default());
    assert_eq!(conn.socket.written, concat(&batch), "no byte lost, duplicated or reordered");
}

#[test]
fn a_closing_connection_half_closes_once_its_queue_is_written() {
    let mut conn = open_connection(Sink::keeping(None), 1);
    conn.phase = Phase::Closing { fin_sent: false };
    conn.queue.push(Bytes::from_static(b"\x88\x02\x03\xe8"));
    flush_one(&mut conn, &[], limit(1 << 20, SlowConsumerPolicy::Close), &WorkerCounters::default());
    assert!(matches!(conn.phase, Phase::Closing { fin_sent: true }));
}

#[test]
fn an_empty_queue_takes_one_frame_larger_than_the_bound() {
    // A message of max_message_size framed for its echo is a few bytes over an equal max_backpressure
    // (both 1 MiB by default); the client is not slow, so it must get the frame, not a 1008.
    let mut conn = open_connection(Sink::keeping(Some(0)), 1);
    let counters = WorkerCounters::default();
    let lim = limit(1024, SlowConsumerPolicy::Close);
    let flushed = flush_one(&mut conn, &frames(1, 1034), lim, &counters);
    assert!(!flushed.slow_consumer);
    assert_eq!(conn.queue.bytes(), 1034);
    let flushed = flush_one(&mut conn, &frames(1, 10), lim, &counters);
    assert!(flushed.slow_consumer, "behind it, the bound applies again");
}

#[test]
fn tiny_frames_are_bounded_by_what_each_one_really_costs() {
    let mut conn = open_connection(Sink::keeping(Some(0)), 1);
    let counters = WorkerCounters::default();
    let lim = limit(64 * 1024, SlowConsumerPolicy::Drop);
    let batch = frames(10_000, 3);
    flush_one(&mut conn, &batch, lim, &counters);
    let per_frame = 3 + crate::shard::send_queue::CHUNK_OVERHEAD;
    assert_eq!(conn.queue.len(), 64 * 1024 / per_frame, "counted by payload alone, 21,845 frames would fit");
    assert!(conn.queue.cost() <= 64 * 1024);
    assert_eq!(counters.frames_dropped.load(std::sync::atomic::Ordering::Relaxed), 10_000 - conn.queue.len() as u64);
}
