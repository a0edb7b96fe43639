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

fn offsets(stream: &StoredStream) -> Vec<u64> {
    stream.messages.iter().map(|m| m.0).collect()
}

#[test]
fn a_batch_survives_closing_and_reopening() {
    let dir = temp_dir("reopen");
    {
        let store = DurableStore::open(&dir).unwrap();
        let batch: Vec<Record> = (1..=3).map(|n| record("a", "e1", n)).chain([record("b", "e2", 1)]).collect();
        store.write_batch(&batch, &[], None).unwrap();
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
    let store = DurableStore::open(&dir).unwrap();
    let batch: Vec<Record> = (1..=5).map(|n| record("a", "e1", n)).collect();
    store.write_batch(&batch, &[], Some(3)).unwrap();
    assert_eq!(offsets(&store.load(None, None).unwrap()[0]), [3, 4, 5]);
    assert_eq!(offsets(&store.load(Some(2), None).unwrap()[0]), [4, 5]);
    store.write_batch(&[record("a", "e2", 1)], &[], Some(3)).unwrap();
    let stream = &store.load(None, None).unwrap()[0];
    assert_eq!((stream.epoch.as_str(), stream.top, offsets(stream)), ("e2", 1, vec![1]));
    store.write_batch(&[], &["a".to_owned()], None).unwrap();
    assert!(store.load(None, None).unwrap().is_empty(), "a forgotten stream is gone");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn messages_older_than_the_ttl_are_not_loaded() {
    let dir = temp_dir("ttl");
    let store = DurableStore::open(&dir).unwrap();
    let mut old = record("a", "e1", 1);
    old.wall_ms -= 60_000;
    store.write_batch(&[old, record("a", "e1", 2)], &[], None).unwrap();
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
