use bytes::Bytes;

use super::*;

fn store(size: Option<usize>, ttl_ms: Option<u64>, max_bytes: usize) -> History<Bytes> {
    let config = HistoryConfig { size, ttl: ttl_ms.map(Duration::from_millis), max_bytes };
    History::new(config, EpochSource::seeded(7))
}

/// Appends `payload` counted at its length.
fn put(history: &History<Bytes>, channel: &str, payload: Bytes, now_ms: u64) -> Position {
    let size = payload.len();
    history.append(channel, payload, size, now_ms)
}

fn msg(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn offsets(entries: &[Entry<Bytes>]) -> Vec<u64> {
    entries.iter().map(|e| e.offset).collect()
}

#[test]
fn offsets_are_gapless_per_channel_under_one_epoch() {
    let history = store(Some(10), None, 1 << 20);
    let a1 = put(&history, "a", msg("1"), 0);
    let b1 = put(&history, "b", msg("1"), 0);
    let a2 = put(&history, "a", msg("2"), 0);
    assert_eq!((a1.offset, a2.offset, b1.offset), (1, 2, 1));
    assert_eq!(a1.epoch, a2.epoch);
    assert_ne!(a1.epoch, b1.epoch, "each channel's stream has its own epoch");
}

#[test]
fn a_client_recovers_exactly_what_came_after_its_offset() {
    let history = store(Some(10), None, 1 << 20);
    let seen = put(&history, "room", msg("one"), 0);
    put(&history, "room", msg("two"), 1);
    let top = put(&history, "room", msg("three"), 2);
    let Recovery::Recovered { missed, top: now } = history.recover("room", &seen, 3) else {
        panic!("the gap is in history")
    };
    assert_eq!(offsets(&missed), [2, 3]);
    assert_eq!(missed[1].payload, msg("three"));
    assert_eq!(now, top);
    // Nothing missed is a recovery too.
    assert_eq!(history.recover("room", &top, 3), Recovery::Recovered { missed: Vec::new(), top: top.clone() });
}

#[test]
fn a_gap_beyond_the_size_a_different_epoch_or_a_future_offset_is_lost() {
    let history = store(Some(2), None, 1 << 20);
    let first = put(&history, "room", msg("1"), 0);
    for n in 2..=4 {
        put(&history, "room", msg(&n.to_string()), 0);
    }
    let top = Position { offset: 4, epoch: first.epoch.clone() };
    assert_eq!(history.recover("room", &first, 0), Recovery::Lost { top: Some(top.clone()) }, "2 was trimmed");
    let kept = Position { offset: 2, epoch: first.epoch.clone() };
    let Recovery::Recovered { missed, .. } = history.recover("room", &kept, 0) else { panic!("3 and 4 are kept") };
    assert_eq!(offsets(&missed), [3, 4]);
    let other_epoch = Position { offset: 3, epoch: Arc::from("elsewhere") };
    assert_eq!(history.recover("room", &other_epoch, 0), Recovery::Lost { top: Some(top.clone()) });
    let ahead = Position { offset: 9, epoch: first.epoch.clone() };
    assert_eq!(history.recover("room", &ahead, 0), Recovery::Lost { top: Some(top) });
    assert_eq!(history.recover("nowhere", &first, 0), Recovery::Lost { top: None });
}

#[test]
fn messages_expire_after_the_ttl_and_an_emptied_channel_starts_a_new_epoch() {
    let history = store(None, Some(1000), 1 << 20);
    let old = put(&history, "room", msg("old"), 0);
    let newer = put(&history, "room", msg("newer"), 600);
    assert_eq!(history.latest("room", 10, None, 999).1.len(), 2);
    let (_, left) = history.latest("room", 10, None, 1000);
    assert_eq!(offsets(&left), [2], "the first expired at 1000 ms");
    assert!(matches!(history.recover("room", &Position { offset: 0, ..old.clone() }, 1000), Recovery::Lost { .. }));
    let Recovery::Recovered { missed, .. } = history.recover("room", &old, 1000) else { panic!("2 is kept") };
    assert_eq!(offsets(&missed), [2]);
    // Both gone: the stream ends, and the next message starts another.
    assert_eq!(history.recover("room", &newer, 1600), Recovery::Lost { top: None });
    let next = put(&history, "room", msg("again"), 1700);
    assert_eq!(next.offset, 1);
    assert_ne!(next.epoch, old.epoch);
    assert_eq!(history.stats().trimmed, 2);
}

#[test]
fn the_byte_bound_evicts_the_oldest_message_of_any_channel() {
    let per_message = 10 + ENTRY_OVERHEAD;
    let per_channel = CHANNEL_OVERHEAD + 1;
    // Room for two channels and four messages.
    let history = store(Some(100), None, 2 * per_channel + 4 * per_message);
    let a1 = put(&history, "a", msg("aaaaaaaaa1"), 0);
    put(&history, "b", msg("bbbbbbbbb1"), 1);
    put(&history, "a", msg("aaaaaaaaa2"), 2);
    put(&history, "b", msg("bbbbbbbbb2"), 3);
    assert_eq!(history.stats().evicted, 0);
    put(&history, "b", msg("bbbbbbbbb3"), 4);
    let stats = history.stats();
    assert_eq!((stats.messages, stats.evicted), (4, 1));
    assert!(stats.bytes <= 2 * per_channel + 4 * per_message);
    assert!(matches!(history.recover("a", &Position { offset: 0, ..a1.clone() }, 5), Recovery::Lost { .. }));
    let Recovery::Recovered { missed, .. } = history.recover("a", &a1, 5) else { panic!("a2 is kept") };
    assert_eq!(offsets(&missed), [2]);
    assert_eq!(offsets(&history.latest("b", 10, None, 5).1), [1, 2, 3]);
}

#[test]
fn memory_stays_bounded_over_many_channels_and_stale_records_are_compacted() {
    let max_bytes = 64 * 1024;
    let history = store(Some(3), None, max_bytes);
    // First a few busy channels (trimmed to their size), then many (evicted for bytes).
    for i in 0..20_000u64 {
        let channel = if i < 5_000 { i % 20 } else { i % 2_000 };
        put(&history, &format!("channel-{channel}"), Bytes::from(vec![b'x'; 100]), i);
        let stats = history.stats();
        assert!(stats.bytes <= max_bytes, "{} bytes after {i} appends", stats.bytes);
    }
    let stats = history.stats();
    assert!(stats.evicted > 0 && stats.trimmed > 0, "{stats:?}");
    let inner = history.inner.lock();
    assert!(
        inner.order.len() <= 2 * inner.messages + 16,
        "{} records for {} messages",
        inner.order.len(),
        inner.messages
    );
    let held: usize = inner.channels.values().map(|log| log.entries.len()).sum();
    assert_eq!(held, inner.messages);
    let counted: usize = inner
        .channels
        .values()
        .map(|log| {
            CHANNEL_OVERHEAD
                + log.name.len()
                + log.entries.iter().map(|e| e.payload.len() + ENTRY_OVERHEAD).sum::<usize>()
        })
        .sum();
    assert_eq!(counted, inner.bytes, "the byte count is exact");
}

#[test]
fn latest_pages_backwards_from_an_offset() {
    let history = store(Some(10), None, 1 << 20);
    for n in 1..=6 {
        put(&history, "room", msg(&n.to_string()), 0);
    }
    let (top, page) = history.latest("room", 2, None, 0);
    assert_eq!((top.map(|t| t.offset), offsets(&page)), (Some(6), vec![5, 6]));
    assert_eq!(offsets(&history.latest("room", 2, Some(5), 0).1), [3, 4]);
    assert_eq!(offsets(&history.latest("room", 10, Some(2), 0).1), [1]);
    assert_eq!(history.latest("nowhere", 10, None, 0), (None, Vec::new()));
}

#[test]
fn a_size_of_zero_keeps_nothing_and_each_message_opens_a_new_stream() {
    let history = store(Some(0), None, 1 << 20);
    let first = put(&history, "room", msg("1"), 0);
    let second = put(&history, "room", msg("2"), 0);
    assert_eq!((first.offset, second.offset), (1, 1));
    assert_ne!(first.epoch, second.epoch);
    assert_eq!(history.stats(), HistoryStats { trimmed: 2, ..HistoryStats::default() });
}

#[test]
fn the_next_position_is_the_one_the_next_append_gets() {
    let history = store(Some(10), Some(1000), 1 << 20);
    let predicted = history.next_position("room", 0);
    assert_eq!(put(&history, "room", msg("1"), 0), predicted);
    let predicted = history.next_position("room", 10);
    assert_eq!((predicted.offset, put(&history, "room", msg("2"), 10)), (2, predicted.clone()));
    // Everything expired: the next message opens a new stream, as predicted.
    let predicted = history.next_position("room", 5000);
    assert_eq!(predicted.offset, 1);
    assert_eq!(put(&history, "room", msg("3"), 5000), predicted);
}

#[test]
fn a_restored_stream_continues_its_offsets_and_a_lost_one_starts_over() {
    let history = store(Some(3), None, 1 << 20);
    let messages = (5..=9).map(|n| (n, 0, msg(&n.to_string()), 1)).collect();
    history.restore("room", "abc", 9, messages, 0);
    let (top, kept) = history.latest("room", 10, None, 0);
    assert_eq!(
        (top.map(|t| (t.offset, t.epoch.to_string())), offsets(&kept)),
        (Some((9, "abc".into())), vec![7, 8, 9])
    );
    let next = put(&history, "room", msg("10"), 0);
    assert_eq!((next.offset, &*next.epoch), (10, "abc"));
    history.lose("room", "other");
    assert_eq!(history.stats().messages, 3, "another epoch's loss leaves this stream");
    history.lose("room", "abc");
    assert_eq!(history.stats(), HistoryStats { trimmed: 3, ..HistoryStats::default() });
    assert_eq!(put(&history, "room", msg("again"), 0).offset, 1);
}
