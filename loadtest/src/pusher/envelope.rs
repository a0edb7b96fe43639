//! The envelope of every message a Pusher server sends: a JSON object with `event`, usually
//! `channel`, and `data` (a JSON string holding the payload, or for some protocol events an
//! object). A load generator receives millions of these per second, so the object is scanned
//! once, in place, without building a DOM: only the three top-level fields are kept, as slices
//! of the input, and a string is decoded (escapes resolved) only when asked for, borrowing the
//! input when it holds no escape. Whatever a server sends, scanning never panics; malformed JSON
//! yields `None`.

use std::borrow::Cow;

/// A JSON string as it appears on the wire, between its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawStr<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl<'a> RawStr<'a> {
    /// The string with its escapes resolved; borrowed when there are none. `None` for a bad
    /// escape or invalid UTF-8.
    pub fn decode(&self) -> Option<Cow<'a, str>> {
        if !self.escaped {
            return std::str::from_utf8(self.raw).ok().map(Cow::Borrowed);
        }
        unescape(self.raw).map(Cow::Owned)
    }

    /// The string's bytes as written, when it holds no escape (so they are its value).
    pub fn plain(&self) -> Option<&'a [u8]> {
        (!self.escaped).then_some(self.raw)
    }

    /// True when the decoded string is `s` (no allocation unless the string holds escapes).
    pub fn is(&self, s: &str) -> bool {
        if self.escaped {
            self.decode().is_some_and(|d| d == s)
        } else {
            self.raw == s.as_bytes()
        }
    }
}

/// A field's value: a string, or any other JSON value left as its raw text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A JSON string.
    Str(RawStr<'a>),
    /// An object, array, number or literal, as written.
    Other(&'a [u8]),
}

/// The fields of a server message that loadtest looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The event name, e.g. `pusher:connection_established` or `bench`.
    pub event: RawStr<'a>,
    /// The channel the event was published on, when the message has one.
    pub channel: Option<RawStr<'a>>,
    /// The payload, when the message has one.
    pub data: Option<Value<'a>>,
}

impl<'a> Envelope<'a> {
    /// Scans a top-level JSON object for `event` (a string, required), `channel` (a string) and
    /// `data`; other fields are skipped. `None` when the input is not such an object.
    pub fn parse(input: &'a [u8]) -> Option<Envelope<'a>> {
        let mut s = Scan { b: input, i: 0 };
        s.ws();
        s.eat(b'{')?;
        let (mut event, mut channel, mut data) = (None, None, None);
        s.ws();
        if s.peek() == Some(b'}') {
            return None;
        }
        loop {
            s.ws();
            let key = s.string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let value = s.value()?;
            if key.is("event") {
                event = match value {
                    Value::Str(v) => Some(v),
                    Value::Other(_) => return None,
                };
            } else if key.is("channel") {
                channel = match value {
                    Value::Str(v) => Some(v),
                    Value::Other(_) => None,
                };
            } else if key.is("data") {
                data = Some(value);
            }
            s.ws();
            match s.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        Some(Envelope { event: event?, channel, data })
    }

    /// `data` when it is a JSON string.
    pub fn data_str(&self) -> Option<RawStr<'a>> {
        match self.data {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// A cursor over the input.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string starting at the cursor's `"`; the cursor ends after the closing quote.
    fn string(&mut self) -> Option<RawStr<'a>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Event data is most of every message: jump to the next quote or backslash.
            self.i += memchr::memchr2(b'"', b'\\', &self.b[self.i..])?;
            match self.next()? {
                b'"' => return Some(RawStr { raw: &self.b[start..self.i - 1], escaped }),
                _ => {
                    escaped = true;
                    self.next()?;
                }
            }
        }
    }

    /// Any value; nested objects and arrays are skipped by depth, minding their strings.
    fn value(&mut self) -> Option<Value<'a>> {
        let start = self.i;
        match self.peek()? {
            b'"' => return self.string().map(Value::Str),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                while !matches!(self.peek(), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
            }
        }
        Some(Value::Other(&self.b[start..self.i]))
    }
}

/// Resolves the escapes of a JSON string body (RFC 8259 §7), surrogate pairs included.
fn unescape(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *raw.get(i)?;
        i += 1;
        let simple = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = hex4(raw.get(i..i + 4)?)?;
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if raw.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let lo = hex4(raw.get(i + 2..i + 6)?)?;
                    i += 6;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                let ch = char::from_u32(code)?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(simple);
    }
    String::from_utf8(out).ok()
}

fn hex4(h: &[u8]) -> Option<u32> {
    u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(e: &Envelope<'_>) -> String {
        e.data_str().and_then(|d| d.decode()).expect("string data").into_owned()
    }

    #[test]
    fn a_bench_event_is_read_in_any_field_order() {
        let e = Envelope::parse(br#"{"event":"bench","channel":"bench-3","data":"lt1:abc"}"#).unwrap();
        assert!(e.event.is("bench") && e.channel.is_some_and(|c| c.is("bench-3")));
        assert_eq!(data(&e), "lt1:abc");
        let e = Envelope::parse(br#" { "data" : "x" , "user_id":7, "channel":"c", "event" : "bench" } "#).unwrap();
        assert!(e.event.is("bench") && e.channel.is_some_and(|c| c.is("c")));
        assert_eq!(data(&e), "x");
    }

    #[test]
    fn escaped_data_is_decoded_and_plain_data_borrowed() {
        let wire =
            br#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}"#;
        let e = Envelope::parse(wire).unwrap();
        assert_eq!(data(&e), r#"{"socket_id":"1.2","activity_timeout":120}"#);
        let e = Envelope::parse(br#"{"event":"bench","data":"tab\there \u00e9 \ud83d\ude00 \/ \\"}"#).unwrap();
        assert_eq!(data(&e), "tab\there \u{e9} \u{1F600} / \\");
        let e = Envelope::parse(br#"{"event":"bench","data":"plain"}"#).unwrap();
        assert!(matches!(e.data_str().unwrap().decode(), Some(Cow::Borrowed("plain"))));
        let e = Envelope::parse(br#"{"event":"b\u0065nch","data":"x"}"#).unwrap();
        assert!(e.event.is("bench"), "escaped event names compare decoded");
    }

    #[test]
    fn object_data_and_nested_values_are_skipped_whole() {
        let e = Envelope::parse(br#"{"event":"pusher:error","data":{"code":4001,"message":"a } \" ]"}}"#).unwrap();
        assert!(e.event.is("pusher:error"));
        assert_eq!(e.data, Some(Value::Other(br#"{"code":4001,"message":"a } \" ]"}"#)));
        let e = Envelope::parse(br#"{"x":[1,{"y":[2]}],"event":"pusher:ping","data":{}}"#).unwrap();
        assert_eq!(e.data, Some(Value::Other(b"{}")));
        assert_eq!(e.channel, None);
    }

    #[test]
    fn malformed_input_is_refused_without_panicking() {
        for bad in [
            &b""[..],
            b"{",
            b"{}",
            b"[]",
            b"{\"data\":\"x\"}",
            b"{\"event\":1}",
            b"{\"event\":\"a\"",
            b"{\"event\":\"a\",}",
            b"{\"event\":\"a\" \"data\":1}",
            b"{\"event\":\"a\\",
            b"{\"event\":\"a\",\"data\":{\"b\":[}",
            b"\xff\xfe",
        ] {
            assert_eq!(Envelope::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let e = Envelope::parse(br#"{"event":"e","data":"bad \q escape"}"#).unwrap();
        assert_eq!(e.data_str().unwrap().decode(), None);
        let e = Envelope::parse(br#"{"event":"e","data":"lone \ud800 surrogate"}"#).unwrap();
        assert_eq!(e.data_str().unwrap().decode(), None);
    }
}
