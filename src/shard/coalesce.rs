//! A busy turn's broadcasts joined into one buffer, once per worker per
//! turn, so that each socket's `writev` carries one slice instead of one
//! per frame: the kernel then copies one contiguous run, and a turn of
//! hundreds of small frames no longer needs several `writev`s per socket.
//! Connections that must skip some frame of the turn (the sender of a
//! chat relay) get the frames one by one as before.

use bytes::BytesMut;

use crate::bus::Broadcast;
use crate::conn_id::ConnId;

/// Fewer frames than this go out as they are: joining would save nothing.
pub(super) const JOIN_FROM: usize = 8;

/// A turn with more bytes of broadcasts than this is not joined (the
/// intake budget keeps turns far below it; a shutdown's last turn may not).
const MAX_JOINED: usize = 4 << 20;

/// This turn's broadcasts as one frame run, and who must not get all of it.
pub(super) struct Joined {
    run: [Broadcast; 1],
    /// Sorted ids excluded from some frame of the turn.
    excepted: Vec<ConnId>,
}

impl Joined {
    /// Joins `batch` when it is worth it; `None` otherwise.
    pub(super) fn of(batch: &[Broadcast]) -> Option<Joined> {
        if batch.len() < JOIN_FROM {
            return None;
        }
        let total: usize = batch.iter().map(|b| b.frame.len()).sum();
        if total > MAX_JOINED {
            return None;
        }
        let mut run = BytesMut::with_capacity(total);
        for broadcast in batch {
            run.extend_from_slice(&broadcast.frame);
        }
        let mut excepted: Vec<ConnId> = batch.iter().filter_map(|b| b.except).collect();
        excepted.sort_unstable();
        excepted.dedup();
        let run = Broadcast { frame: run.freeze(), except: None, sent_at: None, deflated: Default::default() };
        Some(Joined { run: [run], excepted })
    }

    /// The joined run for `conn`, or `None` when it must skip a frame.
    pub(super) fn for_conn(&self, conn: ConnId) -> Option<&[Broadcast]> {
        self.excepted.binary_search(&conn).is_err().then_some(&self.run[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn batch(n: usize, except: Option<ConnId>) -> Vec<Broadcast> {
        (0..n)
            .map(|i| Broadcast {
                frame: Bytes::from(vec![i as u8; 3]),
                except,
                sent_at: None,
                deflated: Default::default(),
            })
            .collect()
    }

    #[test]
    fn a_busy_turn_is_joined_in_order_and_a_quiet_one_is_not() {
        assert!(Joined::of(&batch(JOIN_FROM - 1, None)).is_none());
        let turn = batch(10, None);
        let joined = Joined::of(&turn).expect("joined");
        let run = joined.for_conn(ConnId::from_u64(1)).expect("for everyone");
        let expected: Vec<u8> = turn.iter().flat_map(|b| b.frame.iter().copied()).collect();
        assert_eq!(&run[0].frame[..], &expected[..]);
    }

    #[test]
    fn a_connection_excluded_from_a_frame_gets_the_frames_one_by_one() {
        let sender = ConnId::from_u64(7);
        let mut turn = batch(10, None);
        turn[4].except = Some(sender);
        let joined = Joined::of(&turn).expect("joined");
        assert!(joined.for_conn(sender).is_none());
        assert!(joined.for_conn(ConnId::from_u64(8)).is_some());
    }
}
