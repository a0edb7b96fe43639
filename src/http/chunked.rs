//! [`ChunkedDecoder`]: the chunked transfer coding (RFC 9112 section 7.1),
//! decoded incrementally.

use super::body::reserve_within;
use super::{HttpError, Limits};

/// The longest chunk-size line (size, whitespace and extensions) accepted.
/// Extensions are almost never sent; this bounds the work on one line.
const MAX_SIZE_LINE: usize = 4096;

/// Decodes a chunked body as its bytes arrive, each byte looked at once.
///
/// Chunk extensions are skipped and trailer fields discarded. Line endings
/// must be CRLF: a bare LF is refused, because front ends that disagree on
/// where a chunk line ends can be made to see a different request boundary
/// than we do (request smuggling).
#[derive(Debug)]
pub(super) struct ChunkedDecoder {
    state: State,
    /// Bytes of the current chunk-size line, against [`MAX_SIZE_LINE`].
    line: usize,
    /// Bytes of the trailer section so far, against `max_head`.
    trailers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size; `digits` once one was seen.
    Size {
        size: usize,
        digits: bool,
    },
    /// After the size: whitespace before `;` or CR.
    AfterSize {
        size: usize,
    },
    /// Skipping a chunk extension up to CR.
    Extension {
        size: usize,
    },
    /// After the CR ending a chunk-size line.
    SizeLf {
        size: usize,
    },
    /// Copying chunk data.
    Data {
        remaining: usize,
    },
    /// After chunk data: its CR, then its LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    /// Inside a trailer field, up to its CR, then its LF.
    Trailer,
    TrailerLf,
    /// After the CR of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub(super) fn new() -> Self {
        ChunkedDecoder { state: State::Size { size: 0, digits: false }, line: 0, trailers: 0 }
    }

    /// Decodes from the start of `input`, appending chunk data to `body`.
    /// Returns how many bytes were taken and whether the body is complete;
    /// after the end, no byte is taken (it starts the next request).
    ///
    /// Refusals: a chunk that would take the body past `max_body` (413, as
    /// soon as its size is read), a trailer section longer than `max_head`
    /// (431), anything else that breaks the coding (400).
    pub(super) fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        limits: &Limits,
    ) -> Result<(usize, bool), HttpError> {
        let mut at = 0;
        while self.state != State::Done {
            let rest = input.get(at..).unwrap_or_default();
            let Some(&byte) = rest.first() else { break };
            if let State::Data { remaining } = self.state {
                // Chunk data is copied in one go, not stepped through.
                let data = rest.get(..remaining.min(rest.len())).unwrap_or_default();
                reserve_within(body, data.len(), limits.max_body);
                body.extend_from_slice(data);
                at += data.len();
                self.state = match remaining - data.len() {
                    0 => State::DataCr,
                    remaining => State::Data { remaining },
                };
            } else {
                self.state = self.step(byte, body.len(), limits)?;
                at += 1;
            }
        }
        Ok((at, self.state == State::Done))
    }

    /// The state after `byte`.
    fn step(&mut self, byte: u8, body_len: usize, limits: &Limits) -> Result<State, HttpError> {
        use State::*;
        if matches!(self.state, Size { .. } | AfterSize { .. } | Extension { .. } | SizeLf { .. }) {
            self.line += 1;
            if self.line > MAX_SIZE_LINE {
                return Err(HttpError::MalformedChunk("chunk-size line too long"));
            }
        }
        if matches!(self.state, TrailerStart | Trailer | TrailerLf | EndLf) {
            self.trailers += 1;
            if self.trailers > limits.max_head {
                return Err(HttpError::HeadTooLarge { limit: limits.max_head });
            }
        }
        let next = match (self.state, byte) {
            (Size { size, .. }, _) if byte.is_ascii_hexdigit() => {
                let digit = char::from(byte).to_digit(16).unwrap_or_default() as usize;
                let size = size.saturating_mul(16).saturating_add(digit);
                // Refused as soon as the size alone is over the budget: no
                // byte of a chunk that cannot fit is ever buffered.
                if size > limits.max_body.saturating_sub(body_len) {
                    return Err(HttpError::BodyTooLarge { limit: limits.max_body });
                }
                Size { size, digits: true }
            }
            (Size { digits: false, .. }, _) => return Err(HttpError::MalformedChunk("missing chunk size")),
            (Size { size, .. } | AfterSize { size }, b' ' | b'\t') => AfterSize { size },
            (Size { size, .. } | AfterSize { size } | Extension { size }, b';') => Extension { size },
            (Size { size, .. } | AfterSize { size } | Extension { size }, b'\r') => SizeLf { size },
            (Size { .. } | AfterSize { .. }, _) => return Err(HttpError::MalformedChunk("invalid chunk size")),
            (Extension { .. }, b'\n') => return Err(HttpError::MalformedChunk("bare LF in a chunk extension")),
            (Extension { size }, _) => Extension { size },
            (SizeLf { size: 0 }, b'\n') => TrailerStart,
            (SizeLf { size }, b'\n') => Data { remaining: size },
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => {
                self.line = 0;
                Size { size: 0, digits: false }
            }
            (DataCr | DataLf, _) => return Err(HttpError::MalformedChunk("chunk data not followed by CRLF")),
            (TrailerStart, b'\r') => EndLf,
            (Trailer, b'\r') => TrailerLf,
            (TrailerStart | Trailer, b'\n') => return Err(HttpError::MalformedChunk("bare LF in the trailer section")),
            (TrailerStart | Trailer, _) => Trailer,
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            (SizeLf { .. } | TrailerLf | EndLf, _) => return Err(HttpError::MalformedChunk("CR not followed by LF")),
            (Data { .. } | Done, _) => self.state,
        };
        Ok(next)
    }
}
