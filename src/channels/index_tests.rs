use super::*;

fn keys(index: &ChannelIndex, name: &str) -> Vec<u32> {
    let mut keys: Vec<u32> = index.members(name).iter().map(|m| m.key).collect();
    keys.sort_unstable();
    keys
}

#[test]
fn joining_reports_the_first_member_and_repeats_are_idempotent() {
    let mut index = ChannelIndex::default();
    assert_eq!(index.join(1, "a", Dialect::DEFAULT).1, Joined::New { first_here: true });
    assert_eq!(index.join(2, "a", Dialect::DEFAULT).1, Joined::New { first_here: false });
    assert_eq!(index.join(1, "a", Dialect::DEFAULT).1, Joined::Already);
    assert_eq!(keys(&index, "a"), vec![1, 2]);
}

#[test]
fn a_repeated_join_changes_the_dialect_only() {
    let mut index = ChannelIndex::default();
    let pusher = Dialect::new(1).expect("a dialect");
    index.join(1, "a", Dialect::DEFAULT);
    index.join(1, "a", pusher);
    assert_eq!(index.members("a"), &[Member { key: 1, dialect: pusher }]);
}

#[test]
fn leaving_keeps_every_other_membership_exact() {
    let mut index = ChannelIndex::default();
    for key in 0..6 {
        index.join(key, "a", Dialect::DEFAULT);
        index.join(key, "b", Dialect::DEFAULT);
    }
    // Removing from the middle moves the last member into the hole.
    assert_eq!(index.leave(2, "a").map(|(n, last)| (n.to_string(), last)), Some(("a".into(), false)));
    assert_eq!(index.leave(0, "a").map(|(_, last)| last), Some(false));
    assert_eq!(keys(&index, "a"), vec![1, 3, 4, 5]);
    // The moved member's position was updated: it can still leave.
    assert_eq!(index.leave(5, "a").map(|(_, last)| last), Some(false));
    assert_eq!(keys(&index, "a"), vec![1, 3, 4]);
    assert_eq!(keys(&index, "b"), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(index.leave(5, "a"), None, "not a member any more");
    assert_eq!(index.leave(1, "nowhere"), None);
}

#[test]
fn the_last_member_leaving_removes_the_channel() {
    let mut index = ChannelIndex::default();
    index.join(7, "a", Dialect::DEFAULT);
    assert_eq!(index.channel_count(), 1);
    assert_eq!(index.leave(7, "a").map(|(_, last)| last), Some(true));
    assert_eq!(index.channel_count(), 0);
    assert!(index.members("a").is_empty());
    assert!(index.channels_of(7).is_empty());
}

#[test]
fn closing_leaves_every_channel_and_reports_which_emptied() {
    let mut index = ChannelIndex::default();
    index.join(1, "solo", Dialect::DEFAULT);
    index.join(1, "shared", Dialect::DEFAULT);
    index.join(2, "shared", Dialect::DEFAULT);
    let mut left: Vec<(String, bool)> = index.leave_all(1).into_iter().map(|(n, l)| (n.to_string(), l)).collect();
    left.sort();
    assert_eq!(left, vec![("shared".into(), false), ("solo".into(), true)]);
    assert_eq!(keys(&index, "shared"), vec![2]);
    assert!(index.leave_all(1).is_empty());
}

#[test]
fn a_random_walk_of_joins_and_leaves_matches_a_simple_model() {
    use std::collections::BTreeSet;
    let mut index = ChannelIndex::default();
    let mut model: BTreeSet<(usize, u8)> = BTreeSet::new();
    let mut seed = 0x9e37_79b9_u64;
    for _ in 0..5_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let key = (seed % 17) as usize;
        let channel = ((seed >> 8) % 5) as u8;
        let name = format!("c{channel}");
        match (seed >> 16) % 5 {
            0 | 1 => {
                index.join(key, &name, Dialect::DEFAULT);
                model.insert((key, channel));
            }
            2 | 3 => {
                let was = model.remove(&(key, channel));
                assert_eq!(index.leave(key, &name).is_some(), was);
            }
            _ => {
                index.leave_all(key);
                model.retain(|&(k, _)| k != key);
            }
        }
    }
    for channel in 0..5u8 {
        let expected: Vec<u32> = model.iter().filter(|(_, c)| *c == channel).map(|&(k, _)| k as u32).collect();
        assert_eq!(keys(&index, &format!("c{channel}")), expected);
    }
}
