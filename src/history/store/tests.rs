use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fanout-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn record(channel: &str, epoch: &str, offset: u64) -> Record {
    Record {
        channel: channel.into(),
        epoch: epoch.into(),
        offset,
        wall_ms: wall_ms(),
        payload: format!("{channel} {offset}").into_bytes(),
    }
}

fn keep(size: usize) -> Retention {
    Retention { size: Some(size), ttl: None }
}

fn offsets(stream: &StoredStream) -> Vec<u64> {
    stream.messages.iter().map(|m| m.0).collect()
}

#[test]
fn a_batch_survives_closing_and_reopening() {
    let dir = temp_dir("reopen");
    {
        let mut store = DurableStore::open(&dir).unwrap();
        let batch: Vec<Record> = (1..=3).map(|n| record("a", "e1", n)).chain([record("b", "e2", 1)]).collect();
        store.write_batch(&batch, &[], Retention::default()).unwrap();
    }
    let store = DurableStore::open(&dir).unwrap();
    let mut streams = store.load(None, None).unwrap();
    streams.sort_by(|x, y| x.channel.cmp(&y.channel));
    assert_eq!((streams[0].epoch.as_str(), streams[0].top, offsets(&streams[0])), ("e1", 3, vec![1, 2, 3]));
    assert_eq!(streams[0].messages[1].2, b"a 2");
    assert_eq!((streams[1].channel.as_str(), streams[1].top), ("b", 1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn size_trims_on_write_and_on_load_and_a_new_epoch_replaces_the_stream() {
    let dir = temp_dir("trim");
    let mut store = DurableStore::open(&dir).unwrap();
    for n in 1..=5 {
        store.write_batch(&[record("a", "e1", n)], &[], keep(3)).unwrap();
    }
    assert_eq!(offsets(&store.load(None, None).unwrap()[0]), [3, 4, 5], "each commit trims its channel");
    assert_eq!(offsets(&store.load(Some(2), None).unwrap()[0]), [4, 5]);
    store.write_batch(&[record("a", "e2", 1)], &[], keep(3)).unwrap();
    let stream = &store.load(None, None).unwrap()[0];
    assert_eq!((stream.epoch.as_str(), stream.top, offsets(stream)), ("e2", 1, vec![1]));
    store.write_batch(&[], &["a".to_owned()], Retention::default()).unwrap();
    assert!(store.load(None, None).unwrap().is_empty(), "a forgotten stream is gone");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_commit_keeps_its_chunk_whole_and_loading_applies_the_size() {
    let dir = temp_dir("chunk");
    let mut store = DurableStore::open(&dir).unwrap();
    let batch: Vec<Record> = (1..=5).map(|n| record("a", "e1", n)).collect();
    store.write_batch(&batch, &[], keep(3)).unwrap();
    store.write_batch(&[record("a", "e1", 6)], &[], keep(3)).unwrap();
    assert_eq!(offsets(&store.load(None, None).unwrap()[0]), [1, 2, 3, 4, 5, 6], "one commit's chunk stays whole");
    assert_eq!(offsets(&store.load(Some(3), None).unwrap()[0]), [4, 5, 6]);
    let later: Vec<Record> = (7..=9).map(|n| record("a", "e1", n)).collect();
    store.write_batch(&later, &[], keep(3)).unwrap();
    assert_eq!(offsets(&store.load(None, None).unwrap()[0]), [7, 8, 9], "chunks wholly below the size go");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_batch_may_end_an_epoch_and_start_the_next() {
    let dir = temp_dir("epochs");
    let mut store = DurableStore::open(&dir).unwrap();
    store.write_batch(&[record("a", "e1", 40)], &[], Retention::default()).unwrap();
    let batch = [record("a", "e1", 41), record("a", "e2", 1), record("a", "e2", 2), record("b", "e3", 1)];
    store.write_batch(&batch, &[], Retention::default()).unwrap();
    let mut streams = store.load(None, None).unwrap();
    streams.sort_by(|x, y| x.channel.cmp(&y.channel));
    assert_eq!((streams[0].epoch.as_str(), streams[0].top, offsets(&streams[0])), ("e2", 2, vec![1, 2]));
    assert_eq!((streams[1].epoch.as_str(), offsets(&streams[1])), ("e3", vec![1]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stream_created_after_reopening_does_not_share_an_older_ones_rows() {
    let dir = temp_dir("ids");
    {
        let mut store = DurableStore::open(&dir).unwrap();
        store.write_batch(&[record("a", "e1", 1), record("b", "e1", 1)], &[], Retention::default()).unwrap();
    }
    let mut store = DurableStore::open(&dir).unwrap();
    store.write_batch(&[record("c", "e1", 1)], &[], Retention::default()).unwrap();
    store.write_batch(&[], &["a".to_owned()], Retention::default()).unwrap();
    let mut streams = store.load(None, None).unwrap();
    streams.sort_by(|x, y| x.channel.cmp(&y.channel));
    let seen: Vec<(&str, Vec<u64>)> = streams.iter().map(|s| (s.channel.as_str(), offsets(s))).collect();
    assert_eq!(seen, [("b", vec![1]), ("c", vec![1])]);
    assert_eq!(streams[1].messages[0].2, b"c 1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_ttl_drops_expired_chunks_on_write() {
    let dir = temp_dir("ttl-write");
    let mut store = DurableStore::open(&dir).unwrap();
    let mut old = record("a", "e1", 1);
    old.wall_ms -= 60_000;
    store.write_batch(&[old], &[], Retention::default()).unwrap();
    let ttl = Retention { size: None, ttl: Some(Duration::from_secs(30)) };
    store.write_batch(&[record("a", "e1", 2)], &[], ttl).unwrap();
    let stream = &store.load(None, None).unwrap()[0];
    assert_eq!((stream.top, offsets(stream)), (2, vec![2]), "the expired chunk is gone from disk");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn messages_older_than_the_ttl_are_not_loaded() {
    let dir = temp_dir("ttl");
    let mut store = DurableStore::open(&dir).unwrap();
    let mut old = record("a", "e1", 1);
    old.wall_ms -= 60_000;
    store.write_batch(&[old, record("a", "e1", 2)], &[], Retention::default()).unwrap();
    let stream = &store.load(None, Some(Duration::from_secs(30))).unwrap()[0];
    assert_eq!((stream.top, offsets(stream)), (2, vec![2]), "the position stays; the old message goes");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_that_is_not_a_store_is_an_error_naming_it() {
    let dir = temp_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(FILE_NAME), vec![0x5a; 8192]).unwrap();
    let error = DurableStore::open(&dir).unwrap_err().to_string();
    assert!(error.contains(&dir.join(FILE_NAME).display().to_string()), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
