//! Plain-language warnings about a `channels` run, on top of the generic ones (client limits,
//! failed or dropped connections): subscriptions that did not happen, events the server refused
//! or the client could not send, client events over the usual per-connection limit.

use crate::channels::plan::{ChannelsPlan, Via};
use crate::channels::report::ChannelsReport;
use crate::report::{Report, SATURATED};
use crate::stats::Partial;

/// The per-connection client-event limit Pusher documents.
pub const PUSHER_CLIENT_EVENT_LIMIT: f64 = 10.0;

/// The generic warnings of `base` plus the scenario's own.
pub fn collect(r: &ChannelsReport, cp: &ChannelsPlan, base: &Report, p: &Partial) -> Vec<String> {
    let mut w = base.warnings.clone();
    if let Some(api) = r.api.as_ref().filter(|_| r.client.busiest_thread_percent < SATURATED * 100.0) {
        // The generic reading (the client was late) is wrong here: the API publisher waits for
        // answers, so a lag with an idle client means the server answered slower than offered.
        if let Some(lag) = w.iter_mut().find(|m| m.starts_with("client send lag")) {
            *lag = format!(
                "client send lag p99 is {:.3} ms: events waited for a free API connection (the server answered \
                 slower than the rate offered; {} requests in flight at most); their latency includes the wait",
                r.client.send_lag_ms.p99,
                if api.closed_by_server > 0 { cp.api_connections() } else { cp.api_connections() * cp.pipeline as u64 }
            );
        }
        if api.closed_by_server > 0 {
            w.push(format!(
                "the server closed the API connection after {} answers (no keep-alive, no pipelining): every event \
                 cost a new TCP connection, at most {} at a time (--publishers)",
                api.closed_by_server,
                cp.api_connections()
            ));
        }
    }
    let sub = &r.subscriptions;
    if sub.counted < sub.requested {
        w.push(format!(
            "only {} of {} subscribers were subscribed when measuring began; the others are left out of the \
             counts (see failures, pusher errors, and raise --settle)",
            sub.counted, sub.requested
        ));
    }
    if cp.via == Via::ClientEvents && sub.publishers < cp.publishers {
        w.push(format!(
            "only {} of {} publishing connections were subscribed when measuring began: the others sent late or \
             not at all",
            sub.publishers, cp.publishers
        ));
    }
    let errors: u64 = r.steps.iter().map(|s| s.errors).sum();
    if errors > 0 {
        w.push(format!(
            "{errors} measured events were refused or never answered (see api answers and pusher errors): they \
             are not owed to subscribers, and the steps they fell in are not sustained"
        ));
    }
    let unsent: u64 = r.steps.iter().map(|s| s.scheduled.saturating_sub(s.sent)).sum();
    if unsent > 0 {
        w.push(format!(
            "{unsent} scheduled events were never sent: the publishers' connections were full or down (api: raise \
             --publishers or --pipeline)"
        ));
    }
    if cp.via == Via::ClientEvents {
        let fastest = r.steps.iter().map(|s| s.rate).fold(0.0, f64::max) / cp.publishers as f64;
        if fastest > PUSHER_CLIENT_EVENT_LIMIT {
            w.push(format!(
                "each publishing connection sent up to {fastest:.1} client events/s; Pusher limits a connection to \
                 {PUSHER_CLIENT_EVENT_LIMIT}/s (sockudo: SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND, 100 by \
                 default): raise --publishers to stay under the server's limit"
            ));
        }
    }
    if r.misrouted > 0 {
        w.push(format!("{} events reached subscribers of another channel", r.misrouted));
    }
    let (accepted, received) = r.steps.iter().fold((0, 0), |(a, b), s| (a + s.accepted, b + s.received));
    if accepted > 0 && received == 0 {
        w.push("events were accepted but none was delivered: are the subscribers on the channels published to?".into());
    }
    if let Some(m) = &r.server {
        if m.rss_subscribed_bytes.is_none() {
            w.push(format!("could not read the memory of --server-pid {} once subscribed", m.pid));
        }
    }
    if p.sent_total == 0 && sub.counted > 0 {
        w.push("nothing was published: did the publishers connect?".into());
    }
    w
}
