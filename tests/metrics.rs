//! Verifies that `/metrics` is OpenMetrics text that a real parser (Python's `prometheus-client`) accepts, and that its values count what clients did.
//!
//! Without the parser (outside CI) the checks of parsed values are skipped;
//! see `openmetrics`.

mod http_client;
mod openmetrics;
mod util;

use fanout::ChatHandler;
use http_client::{exchange_and_close, request};
use openmetrics::{parse, python};
use tungstenite::Message as WsMessage;

#[test]
fn a_scrape_parses_as_openmetrics_and_counts_what_clients_did() {
    const CLIENTS: usize = 4;
    const ROUNDS: usize = 3;
    let server = util::start(util::config(2), ChatHandler::default());
    let (addr, handle) = (server.local_addr(), server.handle());

    let mut clients: Vec<util::Client> = (0..CLIENTS).map(|_| util::connect_chat(addr)).collect();
    let (mut messages, mut bytes) = (0usize, 0usize);
    for round in 0..ROUNDS {
        for sender in 0..CLIENTS {
            let text = format!("round {round} from client {sender}: {}", "x".repeat(sender * 10));
            clients[sender].send(WsMessage::text(text.clone())).expect("send");
            for (reader, client) in clients.iter_mut().enumerate().filter(|&(i, _)| i != sender) {
                let relayed = util::next_message(client);
                assert_eq!(relayed.to_text().expect("text"), text, "relayed to client {reader}");
            }
            messages += 1;
            bytes += text.len();
        }
    }
    let relayed = messages * (CLIENTS - 1);
    let not_found = exchange_and_close(addr, util::upgrade_request("/nowhere").as_bytes());
    assert_eq!(not_found.status, 404);
    let malformed = exchange_and_close(addr, b"NOT AN HTTP REQUEST\r\n\r\n");
    assert_eq!(malformed.status, 400);
    let plain = exchange_and_close(addr, request("GET", "/", "Connection: close\r\n").as_bytes());
    assert_eq!(plain.status, 200);
    // Deliveries are counted just after the write that made them: past the
    // clients' reads, not necessarily before them.
    util::wait_until("the relays to be counted", || handle.stats().frames_out >= (relayed + CLIENTS) as u64);

    let scrape = exchange_and_close(addr, request("GET", "/metrics", "Connection: close\r\n").as_bytes());
    assert_eq!(scrape.status, 200, "{}", scrape.head);
    assert_eq!(scrape.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert!(scrape.text().ends_with("# EOF\n"), "{}", scrape.text());
    let Some(python) = python() else { return };
    let parsed = parse(&python, scrape.text());

    for (family, kind) in [
        ("fanout_connections_opened", "counter"),
        ("fanout_connections", "gauge"),
        ("fanout_handshake_failures", "counter"),
        ("fanout_broadcast_write_latency_seconds", "histogram"),
    ] {
        assert_eq!(parsed.types.get(family).map(String::as_str), Some(kind), "the type of {family}");
    }
    let count = |name: &str| parsed.value(name, "") as usize;
    assert_eq!(count("fanout_connections_opened_total"), CLIENTS);
    // The clients, the three requests above and the scrape itself.
    assert_eq!(count("fanout_connections_accepted_total"), CLIENTS + 4);
    let open = parsed.family("fanout_connections");
    assert_eq!(open.keys().collect::<Vec<_>>(), ["worker=0", "worker=1"]);
    assert_eq!(open.values().sum::<f64>() as usize, CLIENTS, "{open:?}");
    assert_eq!(count("fanout_messages_in_total"), messages);
    assert_eq!(count("fanout_message_bytes_in_total"), bytes);
    let deliveries = count("fanout_deliveries_total");
    assert!(deliveries >= relayed + CLIENTS, "{deliveries} deliveries for {relayed} relays and {CLIENTS} welcomes");
    // The plain GET and the scrape, which counts itself.
    assert_eq!(count("fanout_http_requests_total"), 2);
    for (cause, expected) in [("not_found", 1.0), ("malformed", 1.0), ("too_large", 0.0), ("bad_upgrade", 0.0)] {
        let failures = parsed.value("fanout_handshake_failures_total", &format!("cause={cause}"));
        assert_eq!(failures, expected, "handshake failures for {cause}");
    }
    assert_eq!(count("fanout_protocol_errors_total"), 0);

    let latency = "fanout_broadcast_write_latency_seconds";
    let observed = count(&format!("{latency}_count"));
    assert!(observed >= messages, "{observed} latencies observed for {messages} broadcasts");
    let mut buckets: Vec<(f64, f64)> = parsed
        .family(&format!("{latency}_bucket"))
        .iter()
        .map(|(labels, &value)| {
            let bound = labels.strip_prefix("le=").unwrap_or_else(|| panic!("a bucket labelled {labels}"));
            (if bound == "+Inf" { f64::INFINITY } else { bound.parse().expect("a numeric bound") }, value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1), "buckets are cumulative: {buckets:?}");
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, observed as f64)), "the +Inf bucket holds every observation");
    assert!(parsed.value(&format!("{latency}_sum"), "") >= 0.0);
}
