//! `Cursor`: where one stream of events stands in the schedule. Publishers (the API thread and
//! the client-event connections alike) ask it what is due; events carry their *intended* send
//! time, so a publisher that falls behind sends the backlog with the original stamps and the
//! delay shows as latency (coordinated omission corrected). A backlog lives only as long as
//! its step: once the saturation search has moved on, a stream skips what it still owes.

use crate::channels::board::ChannelsBoard;
use crate::channels::plan::ChannelsPlan;

/// How long a publisher waits before looking again for a step pace not decided yet (the search
/// decides a pace a little ahead of its start).
const UNDECIDED_POLL_NS: u64 = 1_000_000;

/// What a stream should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send the event intended at `t`, numbered `seq`; `step` is the step whose schedule it
    /// belongs to (it counts for that step when `t` is in its measured part).
    Due {
        /// Intended send time.
        t: u64,
        /// Its step.
        step: usize,
        /// Its sequence number.
        seq: u64,
    },
    /// Nothing is due before this instant.
    At(u64),
    /// The schedule is over.
    Done,
}

/// One stream's position: its step, the event number within the step, and the sequence number,
/// which runs on across steps so one tracker per subscriber sees the whole stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The stream.
    pub stream: u64,
    step: usize,
    k: u64,
    seq: u64,
}

impl Cursor {
    /// A stream at the start of the schedule.
    pub fn new(stream: u64) -> Cursor {
        Cursor { stream, step: 0, k: 0, seq: 0 }
    }

    /// What is due at `now`. Call [`Cursor::advance`] once the due event is sent.
    pub fn peek(&mut self, plan: &ChannelsPlan, board: &ChannelsBoard, now: u64) -> Next {
        loop {
            let Some(times) = plan.steps.get(self.step) else { return Next::Done };
            let Some(pace) = board.pace(self.step) else {
                return Next::At(now + UNDECIDED_POLL_NS);
            };
            let t = plan.intended(pace, self.stream, self.k);
            // Once the next step is decided the search has judged this one: what is still
            // unsent of it is dropped (it shows as unsent), so no backlog spills into the next.
            let superseded = board.pace(self.step + 1).is_some();
            if superseded || t >= plan.window(self.step, pace).1 || t >= times.end {
                (self.step, self.k) = (self.step + 1, 0);
                continue;
            }
            if t > now {
                return Next::At(t);
            }
            return Next::Due { t, step: self.step, seq: self.seq };
        }
    }

    /// The due event was sent.
    pub fn advance(&mut self) {
        self.k += 1;
        self.seq += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::plan::{tests, ChannelsPlan, Pace, Via};

    /// The test plan with one stream per channel (4).
    fn plan(via: Via, rate: Option<f64>) -> ChannelsPlan {
        ChannelsPlan { publishers: 4, ..tests::plan(via, rate) }
    }

    #[test]
    fn a_stream_walks_its_steps_and_waits_for_undecided_paces() {
        let p = plan(Via::Api, None);
        let board = ChannelsBoard::new(&p);
        let mut c = Cursor::new(1);
        // 100/s over 4 streams: stream 1 is due at 10 ms, then every 40 ms.
        assert_eq!(c.peek(&p, &board, 0), Next::At(1_010_000_000));
        assert_eq!(c.peek(&p, &board, 1_010_000_000), Next::Due { t: 1_010_000_000, step: 0, seq: 0 });
        c.advance();
        assert_eq!(c.peek(&p, &board, 1_020_000_000), Next::At(1_050_000_000));
        // Far past the first step: its events stay due (the backlog) until the step ends.
        let mut sent = 1;
        while let Next::Due { step: 0, .. } = c.peek(&p, &board, 9_000_000_000) {
            c.advance();
            sent += 1;
        }
        assert_eq!(sent, 38, "1.5 s at 25/s for this stream, rounded at the edges");
        // Step 1's pace is not decided: look again shortly.
        assert_eq!(c.peek(&p, &board, 9_000_000_000), Next::At(9_001_000_000));
        board.set_pace(1, Pace { start: 2_600_000_000, rate: 400.0 });
        assert_eq!(c.peek(&p, &board, 9_000_000_000), Next::Due { t: 2_602_500_000, step: 1, seq: 38 });
        c.advance();
        // The search moved on while this stream still owed step 1 events: they are skipped.
        board.set_pace(2, Pace { start: 3_500_000_000, rate: 4.0 });
        assert_eq!(c.peek(&p, &board, 3_500_000_000), Next::At(3_750_000_000));
        assert_eq!(c.peek(&p, &board, 3_800_000_000), Next::Due { t: 3_750_000_000, step: 2, seq: 39 });
    }

    #[test]
    fn the_schedule_ends() {
        let p = plan(Via::Api, Some(4.0));
        let board = ChannelsBoard::new(&p);
        let mut c = Cursor::new(0);
        let mut n = 0;
        while let Next::Due { .. } = c.peek(&p, &board, u64::MAX / 2) {
            c.advance();
            n += 1;
        }
        assert_eq!(n, 2, "1.5 s at 1/s per stream");
        assert_eq!(c.peek(&p, &board, u64::MAX / 2), Next::Done);
    }
}
