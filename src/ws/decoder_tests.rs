//! Verifies that the decoder turns client bytes into events and refuses every
//! protocol violation with the right close code.

use super::*;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// A masked client frame with the given first byte (FIN, RSV, opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

fn feed(decoder: &mut Decoder, input: &[u8]) -> (Vec<Event>, Result<(), Violation>) {
    let mut events = Vec::new();
    let result = decoder.feed(input, &mut events);
    (events, result)
}

/// The close code a fresh decoder answers `input` with.
fn violation_code(input: &[u8]) -> u16 {
    let mut decoder = Decoder::new(1000);
    let (_, result) = feed(&mut decoder, input);
    assert!(decoder.is_finished());
    result.expect_err("expected a violation").code
}

fn text(s: &str) -> Event {
    Event::Message(Message::text(s))
}

#[test]
fn decoder_is_small_and_allocates_nothing_when_new() {
    assert!(std::mem::size_of::<Decoder>() <= 64, "{}", std::mem::size_of::<Decoder>());
    assert_eq!(Decoder::new(1 << 20).buffered_bytes(), 0);
}

#[test]
fn single_text_and_binary_frames_become_messages() {
    let mut input = frame(0x81, b"hello");
    input.extend(frame(0x82, &[0, 1, 2]));
    let (events, result) = feed(&mut Decoder::new(1000), &input);
    assert_eq!(result, Ok(()));
    assert_eq!(events, vec![text("hello"), Event::Message(Message::binary(vec![0, 1, 2]))]);
}

#[test]
fn many_frames_in_one_input_come_out_in_order() {
    let input: Vec<u8> = (0..100).flat_map(|i| frame(0x81, format!("m{i}").as_bytes())).collect();
    let mut decoder = Decoder::new(1000);
    let (events, result) = feed(&mut decoder, &input);
    assert_eq!(result, Ok(()));
    let expected: Vec<Event> = (0..100).map(|i| text(&format!("m{i}"))).collect();
    assert_eq!(events, expected);
    assert_eq!(decoder.buffered_bytes(), 0);
}

#[test]
fn frames_fed_one_byte_at_a_time_decode_the_same() {
    let mut input = frame(0x81, "héllo wörld".as_bytes());
    input.extend(frame(0x89, b"ping"));
    input.extend(frame(0x82, &[9u8; 300]));
    let mut decoder = Decoder::new(1000);
    let mut events = Vec::new();
    for byte in &input {
        decoder.feed(std::slice::from_ref(byte), &mut events).unwrap();
    }
    let binary = Event::Message(Message::binary(vec![9u8; 300]));
    assert_eq!(events, vec![text("héllo wörld"), Event::Ping(Bytes::from_static(b"ping")), binary]);
    assert_eq!(decoder.buffered_bytes(), 0);
}

#[test]
fn frame_split_across_inputs_with_more_frames_after_it() {
    let mut input = frame(0x81, b"first");
    input.extend(frame(0x81, b"second"));
    input.extend(frame(0x81, b"third"));
    let mut decoder = Decoder::new(1000);
    let (mut events, _) = feed(&mut decoder, &input[..14]);
    let (more, result) = feed(&mut decoder, &input[14..]);
    events.extend(more);
    assert_eq!(result, Ok(()));
    assert_eq!(events, vec![text("first"), text("second"), text("third")]);
}

#[test]
fn fragmented_message_is_reassembled_around_an_interleaved_ping() {
    let mut input = frame(0x01, b"Hel");
    input.extend(frame(0x89, b"p"));
    input.extend(frame(0x00, b"lo "));
    input.extend(frame(0x80, b"you"));
    let mut decoder = Decoder::new(1000);
    let (events, result) = feed(&mut decoder, &input);
    assert_eq!(result, Ok(()));
    assert_eq!(events, vec![Event::Ping(Bytes::from_static(b"p")), text("Hello you")]);
    assert_eq!(decoder.buffered_bytes(), 0, "assembly buffer freed on completion");
}

#[test]
fn memory_is_released_after_a_large_frame_arrives_in_pieces() {
    let input = frame(0x82, &vec![5u8; 100_000]);
    let mut decoder = Decoder::new(1 << 20);
    let mut events = Vec::new();
    for chunk in input.chunks(4096) {
        decoder.feed(chunk, &mut events).unwrap();
    }
    assert_eq!(events.len(), 1);
    assert_eq!(decoder.buffered_bytes(), 0);
}

#[test]
fn ping_and_pong_become_events() {
    let mut input = frame(0x89, b"are you there");
    input.extend(frame(0x8A, b""));
    let (events, _) = feed(&mut Decoder::new(10), &input);
    assert_eq!(events, vec![Event::Ping(Bytes::from_static(b"are you there")), Event::Pong(Bytes::new())]);
}

#[test]
fn close_ends_decoding_and_later_input_is_ignored() {
    let mut input = frame(0x88, b"\x03\xe8done");
    input.extend(frame(0x81, b"ignored"));
    let mut decoder = Decoder::new(1000);
    let (events, result) = feed(&mut decoder, &input);
    assert_eq!(result, Ok(()));
    assert_eq!(events, vec![Event::Close(Some(CloseFrame { code: 1000, reason: "done".into() }))]);
    assert!(decoder.is_finished());
    assert_eq!(feed(&mut decoder, &frame(0x81, b"x")).0, vec![]);
}

#[test]
fn empty_close_has_no_status() {
    assert_eq!(feed(&mut Decoder::new(0), &frame(0x88, b"")).0, vec![Event::Close(None)]);
}

#[test]
fn events_before_a_violation_are_kept_and_later_input_ignored() {
    let mut input = frame(0x81, b"ok");
    input.extend(frame(0x80, b"bad continuation"));
    let mut decoder = Decoder::new(1000);
    let (events, result) = feed(&mut decoder, &input);
    assert_eq!(events, vec![text("ok")]);
    assert_eq!(result.map_err(|v| v.code), Err(1002));
    assert_eq!(feed(&mut decoder, &frame(0x81, b"x")), (vec![], Ok(())));
}

#[test]
fn unmasked_frame_is_a_protocol_error() {
    assert_eq!(violation_code(&[0x81, 0x02, b'h', b'i']), 1002);
}

#[test]
fn reserved_bit_is_a_protocol_error() {
    assert_eq!(violation_code(&frame(0xC1, b"hi")), 1002);
    assert_eq!(violation_code(&frame(0x91, b"hi")), 1002);
}

#[test]
fn reserved_opcodes_are_protocol_errors() {
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        assert_eq!(violation_code(&frame(0x80 | opcode, b"")), 1002, "opcode {opcode}");
    }
}

#[test]
fn control_frame_over_125_bytes_is_a_protocol_error() {
    assert_eq!(violation_code(&frame(0x89, &[0u8; 126])), 1002);
}

#[test]
fn fragmented_control_frame_is_a_protocol_error() {
    assert_eq!(violation_code(&frame(0x09, b"p")), 1002);
}

#[test]
fn continuation_without_a_message_is_a_protocol_error() {
    assert_eq!(violation_code(&frame(0x80, b"x")), 1002);
}

#[test]
fn new_data_frame_inside_a_fragmented_message_is_a_protocol_error() {
    let mut input = frame(0x01, b"a");
    input.extend(frame(0x81, b"b"));
    assert_eq!(violation_code(&input), 1002);
}

#[test]
fn close_with_one_byte_or_a_bad_code_is_a_protocol_error() {
    assert_eq!(violation_code(&frame(0x88, &[0x03])), 1002);
    assert_eq!(violation_code(&frame(0x88, &1005u16.to_be_bytes())), 1002);
    assert_eq!(violation_code(&frame(0x88, &999u16.to_be_bytes())), 1002);
}

#[test]
fn close_reason_not_utf8_is_invalid_payload() {
    assert_eq!(violation_code(&frame(0x88, b"\x03\xe8\xc3\x28")), 1007);
}

#[test]
fn invalid_utf8_text_is_invalid_payload() {
    assert_eq!(violation_code(&frame(0x81, b"ab\xffcd")), 1007);
}

#[test]
fn invalid_utf8_in_an_early_fragment_fails_before_the_final_one() {
    let mut decoder = Decoder::new(1000);
    // "é" split across fragments is fine...
    assert_eq!(feed(&mut decoder, &frame(0x01, b"ok \xc3")).1, Ok(()));
    assert_eq!(feed(&mut decoder, &frame(0x00, b"\xa9 fine")).1, Ok(()));
    // ...but a byte that no valid text can continue with fails at once.
    let (_, result) = feed(&mut decoder, &frame(0x00, b"\xed\xa0\x80"));
    assert_eq!(result.map_err(|v| v.code), Err(1007));
}

#[test]
fn incomplete_utf8_at_the_end_of_the_final_fragment_is_invalid_payload() {
    let mut input = frame(0x01, b"abc");
    input.extend(frame(0x80, b"\xe2\x82"));
    assert_eq!(violation_code(&input), 1007);
}

#[test]
fn single_frame_over_the_limit_is_too_big_before_its_payload_arrives() {
    let input = frame(0x82, &[0u8; 1001]);
    // Only the header is fed: the verdict needs none of the payload.
    assert_eq!(violation_code(&input[..8]), 1009);
}

#[test]
fn fragments_adding_up_over_the_limit_are_too_big() {
    let mut input = frame(0x02, &[0u8; 600]);
    input.extend(frame(0x80, &[0u8; 401]));
    assert_eq!(violation_code(&input), 1009);
    let mut exact = frame(0x02, &[0u8; 600]);
    exact.extend(frame(0x80, &[0u8; 400]));
    assert_eq!(feed(&mut Decoder::new(1000), &exact).1, Ok(()));
}

#[test]
fn length_with_the_top_bit_set_is_refused_without_allocating() {
    let mut input = vec![0x82, 0xFF];
    input.extend_from_slice(&(1u64 << 63).to_be_bytes());
    input.extend_from_slice(&MASK);
    let mut decoder = Decoder::new(usize::MAX);
    let (_, result) = feed(&mut decoder, &input);
    assert_eq!(result.map_err(|v| v.code), Err(1002));
    assert_eq!(decoder.buffered_bytes(), 0);
}

#[test]
fn huge_announced_length_within_the_limit_allocates_only_what_arrived() {
    let mut input = vec![0x82, 0xFF];
    input.extend_from_slice(&(1u64 << 40).to_be_bytes());
    input.extend_from_slice(&MASK);
    input.extend_from_slice(&[0u8; 16]);
    let mut decoder = Decoder::new(usize::MAX);
    assert_eq!(feed(&mut decoder, &input).1, Ok(()));
    assert!(decoder.buffered_bytes() < 1024);
}

/// A small deterministic generator, so the tests below need no dependency.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn any_split_of_a_valid_stream_gives_the_same_events() {
    let mut input = frame(0x01, "fragmented ".as_bytes());
    input.extend(frame(0x89, b"between"));
    input.extend(frame(0x80, "tëxt".as_bytes()));
    input.extend(frame(0x82, &[3u8; 70_000]));
    input.extend(frame(0x88, b"\x0f\xa0bye"));
    let (expected, _) = feed(&mut Decoder::new(1 << 20), &input);
    let mut seed = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..50 {
        let mut decoder = Decoder::new(1 << 20);
        let mut events = Vec::new();
        let mut rest = input.as_slice();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at((xorshift(&mut seed) % 9000) as usize % rest.len() + 1);
            decoder.feed(chunk, &mut events).unwrap();
            rest = tail;
        }
        assert_eq!(events, expected);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x2545_F491_4F6C_DD1D;
    for _ in 0..2000 {
        let len = (xorshift(&mut seed) % 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
        let mut decoder = Decoder::new(256);
        let mut events = Vec::new();
        for chunk in bytes.chunks(1 + (xorshift(&mut seed) % 7) as usize) {
            let _ = decoder.feed(chunk, &mut events);
        }
    }
}

#[test]
fn progress_is_a_completed_frame_not_a_trickle_of_bytes() {
    let mut decoder = Decoder::new(1 << 20);
    let big = frame(0x82, &[7u8; 1000]);
    for byte in &big[..big.len() - 1] {
        let (events, result) = feed(&mut decoder, std::slice::from_ref(byte));
        assert!(events.is_empty() && result.is_ok());
        assert!(!decoder.take_progress(), "a partial frame is no progress");
    }
    assert_eq!(feed(&mut decoder, &big[big.len() - 1..]).1, Ok(()));
    assert!(decoder.take_progress());
    assert!(!decoder.take_progress(), "the mark clears once taken");
    // A continuation fragment completes a frame without producing an event.
    let (events, _) = feed(&mut decoder, &frame(0x02, b"part"));
    assert!(events.is_empty());
    assert!(decoder.take_progress());
}

/// `text` compressed as a client would (raw deflate, sync flush, tail removed).
fn deflated(text: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compress = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(text.len() + 64);
    compress.compress_vec(text, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn feed_deflate(decoder: &mut Decoder, input: &[u8]) -> (Vec<Event>, Result<(), Violation>) {
    let mut events = Vec::new();
    let mut inflater = crate::ws::deflate::Inflater::default();
    let result = decoder.feed_inflating(input, &mut events, &mut inflater);
    (events, result)
}

#[test]
fn compressed_messages_whole_or_fragmented_are_inflated() {
    let line = "a chat line that repeats, ".repeat(20);
    let compressed = deflated(line.as_bytes());
    let mut decoder = Decoder::with_deflate(1000);
    let (events, result) = feed_deflate(&mut decoder, &frame(0xC1, &compressed));
    assert_eq!((events, result), (vec![text(&line)], Ok(())));
    // Fragmented: RSV1 on the first frame only.
    let (head, tail) = compressed.split_at(compressed.len() / 2);
    let input = [frame(0x41, head), frame(0x89, b"ping"), frame(0x80, tail)].concat();
    let (events, result) = feed_deflate(&mut decoder, &input);
    assert_eq!(result, Ok(()));
    assert_eq!(events, vec![Event::Ping(Bytes::from_static(b"ping")), text(&line)]);
    // Uncompressed messages still pass on a deflate connection.
    let (events, _) = feed_deflate(&mut decoder, &frame(0x81, b"plain"));
    assert_eq!(events, vec![text("plain")]);
    let binary = deflated(&[7u8; 300]);
    let (events, _) = feed_deflate(&mut decoder, &frame(0xC2, &binary));
    assert_eq!(events, vec![Event::Message(Message::binary(vec![7u8; 300]))]);
}

#[test]
fn rsv1_is_refused_without_deflate_on_continuations_and_on_control_frames() {
    assert_eq!(violation_code(&frame(0xC1, b"x")), 1002, "not negotiated");
    for input in [[frame(0x01, b"a"), frame(0xC0, b"b")].concat(), frame(0xC9, b"ping")] {
        let mut decoder = Decoder::with_deflate(1000);
        let (_, result) = feed_deflate(&mut decoder, &input);
        assert_eq!(result.map_err(|v| v.code), Err(1002));
    }
}

#[test]
fn a_zip_bomb_is_1009_garbage_1007_and_bad_utf8_after_inflating_1007() {
    let bomb = deflated(&vec![b'a'; 200_000]);
    assert!(bomb.len() < 1000);
    let mut decoder = Decoder::with_deflate(100_000);
    let (_, result) = feed_deflate(&mut decoder, &frame(0xC1, &bomb));
    assert_eq!(result.map_err(|v| v.code), Err(1009));
    let mut decoder = Decoder::with_deflate(1000);
    let (_, result) = feed_deflate(&mut decoder, &frame(0xC1, &[0xff, 0xfe, 0xfd]));
    assert_eq!(result.map_err(|v| v.code), Err(1007));
    let mut decoder = Decoder::with_deflate(1000);
    let (_, result) = feed_deflate(&mut decoder, &frame(0xC1, &deflated(&[0xff; 200])));
    assert_eq!(result.map_err(|v| v.code), Err(1007));
}
