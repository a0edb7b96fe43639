//! permessage-deflate negotiation (RFC 7692 section 7): the first offer the
//! server can honour, and the response parameters.
//!
//! The server always answers with `server_no_context_takeover` (each message
//! it sends is compressed alone, so a broadcast is compressed once and the
//! same bytes go to every compressing recipient) and
//! `client_no_context_takeover` (each message a client sends is inflated
//! alone, so a connection keeps no inflate window between messages: no
//! memory per idle connection). RFC 7692 lets a server add both to any
//! response.

/// What was agreed with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The LZ77 window the server may use for what it sends, in bits
    /// (`server_max_window_bits`, 15 unless the client asked for less).
    pub server_window_bits: u8,
    /// The client offered `client_max_window_bits` (with or without a
    /// value): the response may then name the client's window.
    pub client_window_offered: bool,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` value of the response.
    pub fn response_value(&self) -> String {
        let mut value = String::from("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
        if self.server_window_bits < 15 {
            value.push_str(&format!("; server_max_window_bits={}", self.server_window_bits));
        }
        value
    }
}

/// The first `permessage-deflate` offer among `values` (the request's
/// `Sec-WebSocket-Extensions` fields, in order) whose parameters are all
/// known, unrepeated and valid; `None` when there is none (the connection
/// then runs uncompressed, which every client must accept).
pub fn negotiate<'a>(values: impl Iterator<Item = &'a str>) -> Option<Agreed> {
    values.flat_map(|value| value.split(',')).find_map(parse_offer)
}

fn parse_offer(offer: &str) -> Option<Agreed> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut agreed = Agreed { server_window_bits: 15, client_window_offered: false };
    let mut seen: Vec<String> = Vec::new();
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (name.trim().to_ascii_lowercase(), Some(value.trim().trim_matches('"'))),
            None => (part.to_ascii_lowercase(), None),
        };
        if seen.contains(&name) {
            return None;
        }
        match (name.as_str(), value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("server_max_window_bits", Some(bits)) => agreed.server_window_bits = window_bits(bits)?,
            ("client_max_window_bits", None) => agreed.client_window_offered = true,
            ("client_max_window_bits", Some(bits)) => {
                window_bits(bits)?;
                agreed.client_window_offered = true;
            }
            _ => return None,
        }
        seen.push(name);
    }
    Some(agreed)
}

/// A window size parameter: 8 to 15, digits only.
fn window_bits(value: &str) -> Option<u8> {
    if value.is_empty() || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u8>().ok().filter(|bits| (8..=15).contains(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agree(values: &[&str]) -> Option<Agreed> {
        negotiate(values.iter().copied())
    }

    #[test]
    fn a_browser_offer_is_taken_with_no_context_takeover_both_ways() {
        let agreed = agree(&["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(agreed, Agreed { server_window_bits: 15, client_window_offered: true });
        assert_eq!(
            agreed.response_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn a_smaller_server_window_is_honoured_and_said() {
        let agreed = agree(&["permessage-deflate; server_max_window_bits=10"]).unwrap();
        assert_eq!(agreed.server_window_bits, 10);
        assert!(agreed.response_value().ends_with("; server_max_window_bits=10"));
    }

    #[test]
    fn an_offer_with_unknown_repeated_or_bad_parameters_is_skipped_for_the_next() {
        for bad in [
            "permessage-deflate; mystery",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=0x9",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(agree(&[bad]), None, "{bad}");
        }
        let agreed = agree(&["permessage-deflate; mystery, permessage-deflate; server_max_window_bits=12"]);
        assert_eq!(agreed.map(|a| a.server_window_bits), Some(12));
        assert_eq!(agree(&["foo", "permessage-deflate"]).map(|a| a.server_window_bits), Some(15));
        assert_eq!(agree(&[]), None);
    }
}
