//! Plain-language warnings about what limited a run: the client's own CPU, file and port limits,
//! failed or dropped connections, and sends the client could not make on time.

use crate::client::Cause;
use crate::report::{Report, SATURATED};
use crate::stats::Partial;

/// What an echo run that got nothing back most likely means.
pub const NO_ECHO: &str = "no echo received: is the server in echo mode (`fanout --mode echo`)?";

/// Looks at a finished report and says what a reader should know before trusting it.
pub fn collect(r: &Report, p: &Partial) -> Vec<String> {
    let mut w = Vec::new();
    let c = &r.connections;
    if r.client.busiest_thread_percent > SATURATED * 100.0 {
        w.push(format!(
            "the client itself is saturated: its busiest thread was on CPU {:.0}% of the time it measured, so these \
             figures may be loadtest's limit rather than the server's (try more --threads or --processes, \
             or give the client its own core)",
            r.client.busiest_thread_percent
        ));
    }
    let count = |cause: &Cause| c.failures.get(&cause.key()).copied().unwrap_or(0);
    let fd = count(&Cause::ClientFdLimit);
    if fd > 0 {
        w.push(format!(
            "{fd} connections failed because loadtest reached its own open-file limit (EMFILE): the client, \
             not the server, stopped them; spread the connections with --processes"
        ));
    }
    let ports = count(&Cause::ClientNoPorts);
    if ports > 0 {
        w.push(format!(
            "{ports} connections failed because the client ran out of local ports (EADDRNOTAVAIL), with {} \
             sockets in TIME_WAIT on this machine: the client, not the server, stopped them; wait 60 s for \
             TIME_WAIT to clear or spread sources with --source-ips 127.0.0.1-127.0.0.16",
            p.time_wait_seen
        ));
    }
    let failed: u64 = c.failures.values().sum();
    if failed > fd + ports {
        w.push(format!("{} of {} connections never opened (see the failure causes)", failed - fd - ports, c.requested));
    }
    if c.attempted < c.requested {
        w.push(format!("only {} of {} connections were attempted before the test ended", c.attempted, c.requested));
    }
    let ended: u64 = c.ended_early.values().sum();
    if ended > 0 {
        w.push(format!("{ended} connections were closed by the server (or dropped) before the test ended"));
    }
    if c.opened > c.open_at_measure + ended && r.scenario != "connect" {
        w.push(format!(
            "{} connections opened only after measuring began and were left out (raise --settle or lower the connect rate)",
            c.opened - c.open_at_measure - ended
        ));
    }
    if let Some(d) = &c.permessage_deflate {
        if d.not_compressed > 0 {
            w.push(format!(
                "--deflate: the server did not agree to permessage-deflate on {} of {} connections; those ran \
                 uncompressed",
                d.not_compressed, c.opened
            ));
        }
        if d.agreed > 0 && d.compressed_messages == 0 && r.scenario != "connect" {
            w.push(
                "--deflate: permessage-deflate was agreed but no message arrived compressed (servers leave small \
                 messages uncompressed: fanout does below 128 bytes; try a larger --size)"
                    .into(),
            );
        }
    }
    if let Some(b) = &r.broadcast {
        if b.unsent > 0 {
            w.push(format!(
                "{} scheduled messages were never sent: a publisher's socket backed up (the server is not \
                 reading fast enough) or its connection ended",
                b.unsent
            ));
        }
        if b.sent > 0 && b.received == 0 {
            w.push(
                "messages were sent but none was delivered: is the server relaying to the other connections?".into(),
            );
        }
    }
    if let Some(sio) = &r.socketio {
        sio.warnings(c.open_at_measure, &mut w);
    }
    if let Some(e) = &r.echo {
        if e.unsent > 0 {
            w.push(format!(
                "{} scheduled echo messages were never sent: their connection had ended or its socket backed up \
                 (the server is not reading fast enough)",
                e.unsent
            ));
        }
        if e.no_echo {
            w.push(format!("{NO_ECHO}; {} other messages arrived instead", e.other));
        }
    }
    if r.client.send_lag_ms.p99 > 1.0 {
        w.push(format!(
            "client send lag p99 is {:.3} ms: that much of the latency is the client being late, not the server",
            r.client.send_lag_ms.p99
        ));
    }
    w
}
