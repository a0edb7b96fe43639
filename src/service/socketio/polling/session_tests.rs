//! A polling session's queue, held poll and carrier, on a server that is
//! bound but not started: answers given early stay in the deferral table,
//! where the tests read them.

use super::*;
use crate::socketio::engine::Version;
use crate::{ChatHandler, Config, Server};

fn bound() -> (Server<ChatHandler>, ServerHandle) {
    let config = Config { bind: "127.0.0.1:0".parse().expect("an address"), workers: 1, ..Config::default() };
    let server = Server::bind(config, ChatHandler::default()).expect("bind");
    let handle = server.handle();
    (server, handle)
}

fn session(server: &ServerHandle, max_queue: usize) -> PollSession {
    PollSession::new(SioSession::new(Version::Eio4, None), server.clone(), max_queue)
}

/// A frame as the worker hands it over.
fn frame(text: &str) -> Bytes {
    Prepared::new(&Message::text(text)).frame
}

/// What a poll got.
#[derive(Debug, PartialEq, Eq)]
enum Polled {
    /// Answered at once with this body.
    Answered(String),
    /// Held: its answer will be deferred response `id`.
    Held(u64),
    /// Refused.
    Refused(PollError),
}

fn poll(server: &ServerHandle, session: &PollSession) -> Polled {
    let (placeholder, responder) = server.defer_response();
    let id = placeholder.deferred_id().expect("a placeholder");
    match session.poll(responder) {
        Ok(Some((responder, response))) => {
            responder.send(response);
            Polled::Answered(answer(server, id).expect("answered"))
        }
        Ok(None) => Polled::Held(id),
        Err((e, responder)) => {
            responder.send(Response::new(400));
            Polled::Refused(e)
        }
    }
}

fn held(polled: Polled) -> u64 {
    match polled {
        Polled::Held(id) => id,
        other => panic!("expected a held poll, got {other:?}"),
    }
}

/// The answer of deferred response `id`, if it was given.
fn answer(server: &ServerHandle, id: u64) -> Option<String> {
    let response = server.shared.deferrals.register(id, 0)?;
    Some(String::from_utf8(response.body_bytes().to_vec()).expect("UTF-8"))
}

#[test]
fn queued_packets_come_in_one_answer_joined_by_record_separators() {
    let (_bound, server) = bound();
    let session = session(&server, 1 << 20);
    assert!(session.deliver(&frame(r#"42["a",1]"#)) && session.deliver(&frame("2")));
    assert!(session.send_text("431[]"));
    assert_eq!(poll(&server, &session), Polled::Answered("42[\"a\",1]\x1e2\x1e431[]".into()));
}

#[test]
fn a_held_poll_is_answered_by_the_next_delivery_and_a_second_poll_overlaps() {
    let (_bound, server) = bound();
    let session = session(&server, 1 << 20);
    let held = held(poll(&server, &session));
    assert_eq!(poll(&server, &session), Polled::Refused(PollError::Overlap));
    assert!(session.deliver(&frame(r#"42["late"]"#)));
    assert_eq!(answer(&server, held).as_deref(), Some(r#"42["late"]"#));
}

#[test]
fn a_full_queue_refuses_the_frame_instead_of_growing() {
    let (_bound, server) = bound();
    let session = session(&server, 20);
    assert!(session.deliver(&frame(r#"42["0123456789"]"#)));
    assert!(!session.deliver(&frame(r#"42["0123456789"]"#)), "over 20 bytes");
    session.dropped();
    assert!(session.is_silent_for(std::time::Duration::from_secs(3600)), "the sweep closes it at once");
}

#[test]
fn the_probe_ends_the_held_poll_with_a_noop_and_later_polls_get_one_at_once() {
    let (_bound, server) = bound();
    let session = session(&server, 1 << 20);
    let held = held(poll(&server, &session));
    let ws = ConnId::from_u64(7);
    session.probing(ws);
    assert_eq!(answer(&server, held).as_deref(), Some(NOOP));
    assert_eq!(poll(&server, &session), Polled::Answered(NOOP.into()));
    assert!(!session.upgraded(ConnId::from_u64(8)), "not the probing socket");
    assert!(session.upgraded(ws));
    assert_eq!(poll(&server, &session), Polled::Refused(PollError::NotPolling));
    assert!(!session.socket_closed(ws), "the socket carried the session");
}

#[test]
fn a_probe_that_closes_leaves_the_session_polling() {
    let (_bound, server) = bound();
    let session = session(&server, 1 << 20);
    session.probing(ConnId::from_u64(7));
    assert!(session.socket_closed(ConnId::from_u64(7)));
    assert!(matches!(poll(&server, &session), Polled::Held(_)));
}

#[test]
fn closing_answers_the_held_poll_with_the_close_packet_once() {
    let (_bound, server) = bound();
    let session = session(&server, 1 << 20);
    let held = held(poll(&server, &session));
    assert_eq!(session.close("1"), Some(Vec::new()));
    assert_eq!(answer(&server, held).as_deref(), Some(CLOSE));
    assert_eq!(session.close("1"), None);
    assert_eq!(poll(&server, &session), Polled::Refused(PollError::NotPolling));
}
