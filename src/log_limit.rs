//! Rate-limited logging for events that can come in storms (slow-consumer
//! closes, dropped frames, panicking hooks): a few lines per window, then
//! one line saying how many were left out.

use std::time::{Duration, Instant};

/// Lines logged per window before the rest are only counted.
const LINES_PER_WINDOW: u32 = 5;

/// The window over which lines are counted.
const WINDOW: Duration = Duration::from_secs(10);

/// One kind of event's logging budget.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// Whether to log an event, and how many were left out before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log it; `suppressed` events were not logged since the last line.
    Log { suppressed: u64 },
    /// Only count it.
    Quiet,
}

impl LogLimit {
    /// Decides for one event happening at `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        let expired = self.window_start.is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if expired {
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged < LINES_PER_WINDOW {
            self.logged += 1;
            let suppressed = std::mem::take(&mut self.suppressed);
            return Verdict::Log { suppressed };
        }
        self.suppressed += 1;
        Verdict::Quiet
    }
}

/// " (and N more like it not logged)" when `suppressed` is not zero.
pub(crate) fn more(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} more like it in the last {}s not logged)", WINDOW.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_logs_a_few_lines_then_reports_what_it_left_out() {
        let mut limit = LogLimit::default();
        let start = Instant::now();
        let logged = (0..1000).filter(|_| limit.check(start) != Verdict::Quiet).count();
        assert_eq!(logged, LINES_PER_WINDOW as usize);
        assert_eq!(limit.check(start + WINDOW), Verdict::Log { suppressed: 1000 - u64::from(LINES_PER_WINDOW) });
        assert_eq!(more(0), "");
        assert!(more(3).contains("3 more"));
    }
}
