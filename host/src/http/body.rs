//! Request body framing: the chunked transfer coding (RFC 9112 §7.1).
//!
//! A `Content-Length` body needs no decoder: the worker counts bytes. A
//! chunked body arrives in whatever pieces the socket delivers, so
//! [`ChunkedDecoder`] is a byte-level state machine that consumes all the
//! input it is given, appends the chunk data to the caller's `Vec`, and keeps
//! its place across calls — a read may end mid size line, mid data, mid
//! trailer. When it reports `done`, `consumed` tells where the next pipelined
//! request starts.
//!
//! Decisions:
//! - Line endings inside chunked framing must be CRLF; a bare LF (or a CR
//!   not followed by LF) is a 400. RFC 9112 §2.2 allows a lenient reading of
//!   bare LF, but differences between parsers in exactly this spot are how
//!   chunked bodies get smuggled past proxies, so we take none.
//! - Chunk extensions (`;name=value`) are ignored (§7.1.1: a recipient MUST
//!   ignore unrecognized ones) but must follow the §7.1.1 grammar exactly —
//!   token names, token or quoted-string values, whitespace only where BWS
//!   is allowed (so none between the size and CRLF) — and a size line is
//!   bounded by [`MAX_SIZE_LINE`]. Lenient extension parsing is a known
//!   smuggling vector: a proxy that reads a quoted `\r\n` or a bare LF
//!   differently from us would see a different body.
//! - Trailer fields are checked for syntax and discarded (§7.1.2 lets a
//!   recipient drop them); the section is bounded by [`MAX_TRAILER_BYTES`]
//!   (431), and fields that must not be trailers (framing, routing,
//!   authentication, request modifiers: RFC 9110 §6.5.1) are a 400.
//! - The decoded total beyond `max_body` is a 413, detected from the chunk
//!   size before its data arrives.

use super::{eq_ignore_case, HttpError};
use drupe_sdk::hex_digit;

/// Longest chunk-size line (size, whitespace, extensions) before its CRLF.
pub const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section, final CRLF included.
pub const MAX_TRAILER_BYTES: usize = 8192;

/// Trailer field names we buffer to compare against [`FORBIDDEN_TRAILERS`];
/// longer names cannot be one of them.
const NAME_BUF: usize = 24;

/// Fields a client may not send as trailers (RFC 9110 §6.5.1): message
/// framing, routing, connection control, request modifiers, authentication.
const FORBIDDEN_TRAILERS: &[&[u8]] = &[
    b"content-length",
    b"transfer-encoding",
    b"host",
    b"connection",
    b"keep-alive",
    b"upgrade",
    b"te",
    b"trailer",
    b"expect",
    b"authorization",
    b"proxy-authorization",
    b"cookie",
    b"content-type",
    b"content-encoding",
    b"content-range",
    b"range",
    b"max-forwards",
    b"cache-control",
    b"pragma",
    b"if-match",
    b"if-none-match",
    b"if-modified-since",
    b"if-unmodified-since",
    b"if-range",
];

/// What one [`ChunkedDecoder::decode`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input used. Less than the input only when `done`: the
    /// rest belongs to the next request.
    pub consumed: usize,
    /// The last chunk and the trailer section have been read.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// Whitespace after the size: only BWS before a `;` may follow.
    SizeWs,
    /// After `;`: BWS, then an extension name.
    ExtBeforeName,
    ExtName,
    /// BWS after a name: `=` or `;` must follow.
    ExtAfterName,
    /// After `=`: BWS, then a token or a quoted-string.
    ExtBeforeValue,
    ExtToken,
    ExtQuoted,
    /// After a backslash inside a quoted-string.
    ExtQuotedPair,
    /// Right after a value: `;`, CR or BWS before a `;`.
    ExtValueEnd,
    /// BWS after a value: `;` must follow.
    ExtAfterValue,
    /// CR of the size line seen; LF must follow.
    SizeLf,
    /// `remaining` bytes of chunk data to copy.
    Data,
    /// Chunk data done; CR must follow.
    DataCr,
    /// CR after chunk data seen; LF must follow.
    DataLf,
    /// Start of a trailer field line, or of the final empty line.
    TrailerStart,
    TrailerName,
    TrailerValue,
    /// CR of a trailer field line seen.
    TrailerLf,
    /// CR of the final empty line seen.
    EndLf,
    Done,
}

/// Incremental, restartable decoder for one chunked body; [`reset`](Self::reset) for the next.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size being read, then data left in the current chunk.
    remaining: u64,
    digits: usize,
    line_len: usize,
    /// Decoded bytes so far, for `max_body`.
    total: u64,
    trailer_bytes: usize,
    name: [u8; NAME_BUF],
    name_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            remaining: 0,
            digits: 0,
            line_len: 0,
            total: 0,
            trailer_bytes: 0,
            name: [0; NAME_BUF],
            name_len: 0,
        }
    }

    /// Forget everything; ready for the next body.
    pub fn reset(&mut self) {
        *self = ChunkedDecoder::new();
    }

    /// Decoded body bytes so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Decode as much of `input` as possible, appending chunk data to `out`.
    ///
    /// Consumes all of `input` unless the body ends inside it. After an
    /// error the connection must be closed (the decoder is left unusable).
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_body: usize,
    ) -> Result<Decoded, HttpError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let avail = input.len() - i;
                // Never more than `avail`, so it fits usize.
                let n = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                out.extend_from_slice(&input[i..i + n]);
                i += n;
                self.remaining -= n as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(input[i], max_body)?;
            i += 1;
        }
        Ok(Decoded {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    /// Advance the state machine over one framing byte.
    fn step(&mut self, b: u8, max_body: usize) -> Result<(), HttpError> {
        const BAD_LINE: HttpError = HttpError::bad("invalid chunked encoding");
        match self.state {
            State::Size
            | State::SizeWs
            | State::ExtBeforeName
            | State::ExtName
            | State::ExtAfterName
            | State::ExtBeforeValue
            | State::ExtToken
            | State::ExtQuoted
            | State::ExtQuotedPair
            | State::ExtValueEnd
            | State::ExtAfterValue => {
                self.line_len += 1;
                if self.line_len > MAX_SIZE_LINE {
                    return Err(HttpError::bad("chunk size line too long"));
                }
            }
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => {
                self.trailer_bytes += 1;
                if self.trailer_bytes > MAX_TRAILER_BYTES {
                    return Err(HttpError::new(431, "trailer section too large"));
                }
            }
            _ => {}
        }
        if let (State::Size, Some(digit)) = (self.state, hex_digit(b)) {
            self.remaining = self
                .remaining
                .checked_mul(16)
                .and_then(|n| n.checked_add(u64::from(digit)))
                .ok_or(HttpError::bad("chunk size too large"))?;
            self.digits += 1;
            return Ok(());
        }
        self.state = match (self.state, b) {
            (State::Size, _) if self.digits == 0 => {
                return Err(HttpError::bad("invalid chunk size"))
            }
            // chunk = chunk-size [ chunk-ext ] CRLF
            // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
            // chunk-ext-val = token / quoted-string  (RFC 9112 §7.1.1)
            (State::Size | State::SizeWs, b' ' | b'\t') => State::SizeWs,
            (
                State::Size
                | State::SizeWs
                | State::ExtName
                | State::ExtAfterName
                | State::ExtToken
                | State::ExtValueEnd
                | State::ExtAfterValue,
                b';',
            ) => State::ExtBeforeName,
            (State::Size | State::ExtName | State::ExtToken | State::ExtValueEnd, b'\r') => {
                State::SizeLf
            }
            (State::ExtBeforeName, b' ' | b'\t') => State::ExtBeforeName,
            (State::ExtBeforeName | State::ExtName, _) if is_token_byte(b) => State::ExtName,
            (State::ExtName | State::ExtAfterName, b' ' | b'\t') => State::ExtAfterName,
            (State::ExtName | State::ExtAfterName, b'=') => State::ExtBeforeValue,
            (State::ExtBeforeValue, b' ' | b'\t') => State::ExtBeforeValue,
            (State::ExtBeforeValue, b'"') => State::ExtQuoted,
            (State::ExtBeforeValue | State::ExtToken, _) if is_token_byte(b) => State::ExtToken,
            (State::ExtToken | State::ExtValueEnd | State::ExtAfterValue, b' ' | b'\t') => {
                State::ExtAfterValue
            }
            (State::ExtQuoted, b'"') => State::ExtValueEnd,
            (State::ExtQuoted, b'\\') => State::ExtQuotedPair,
            // qdtext and quoted-pair (RFC 9110 §5.6.4): no controls but HTAB.
            (State::ExtQuoted | State::ExtQuotedPair, _) if is_field_byte(b) => State::ExtQuoted,
            (State::SizeLf, b'\n') => self.end_size_line(max_body)?,
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => {
                self.remaining = 0;
                self.digits = 0;
                self.line_len = 0;
                State::Size
            }
            (State::TrailerStart, b'\r') => State::EndLf,
            // A trailer line starting with SP/HTAB is obsolete folding (RFC 9112 §5.2).
            (State::TrailerStart | State::TrailerName, _) if is_token_byte(b) => {
                if self.state == State::TrailerStart {
                    self.name_len = 0;
                }
                if let Some(slot) = self.name.get_mut(self.name_len) {
                    *slot = b;
                }
                self.name_len += 1;
                State::TrailerName
            }
            (State::TrailerName, b':') => {
                let name = self.name.get(..self.name_len).unwrap_or_default();
                if FORBIDDEN_TRAILERS.iter().any(|f| eq_ignore_case(f, name)) {
                    return Err(HttpError::bad("forbidden trailer field"));
                }
                State::TrailerValue
            }
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, _) if is_field_byte(b) => State::TrailerValue,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            _ => return Err(BAD_LINE),
        };
        Ok(())
    }

    /// The size line is complete: start the data, or the trailer section
    /// after the last (zero-size) chunk.
    fn end_size_line(&mut self, max_body: usize) -> Result<State, HttpError> {
        if self.remaining == 0 {
            return Ok(State::TrailerStart);
        }
        let limit = u64::try_from(max_body).unwrap_or(u64::MAX);
        match self.total.checked_add(self.remaining) {
            Some(total) if total <= limit => {
                self.total = total;
                Ok(State::Data)
            }
            _ => Err(HttpError::new(413, "request body too large")),
        }
    }
}

/// tchar (RFC 9110 §5.6.2).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// field-vchar, SP or HTAB (RFC 9110 §5.5): no CTL, no DEL.
pub(crate) fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    /// Decode `input` fed in pieces of `step` bytes; returns the body and
    /// the bytes consumed in total.
    fn decode_in_steps(input: &[u8], step: usize) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + step).min(input.len());
            let r = d.decode(&input[pos..end], &mut out, MAX)?;
            pos += r.consumed;
            if r.done {
                return Ok((out, pos, true));
            }
            assert_eq!(pos, end, "a decoder that is not done consumes everything");
        }
        Ok((out, pos, false))
    }

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), HttpError> {
        decode_in_steps(input, input.len().max(1))
    }

    fn status(input: &[u8]) -> u16 {
        decode_all(input).unwrap_err().status
    }

    const BODY: &[u8] =
        b"5\r\nhello\r\n1;ext=\"v\" ; x\r\n \r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 1\r\n\r\n";

    #[test]
    fn decodes_and_stops_at_the_end() {
        let mut input = BODY.to_vec();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (out, consumed, done) = decode_all(&input).unwrap();
        assert!(done);
        assert_eq!(consumed, BODY.len());
        assert_eq!(out, b"hello 0123456789abcdef");
    }

    #[test]
    fn split_at_every_boundary() {
        for split in 0..=BODY.len() {
            let mut d = ChunkedDecoder::new();
            let mut out = Vec::new();
            let a = d.decode(&BODY[..split], &mut out, MAX).unwrap();
            assert_eq!(a.consumed, split);
            assert!(!a.done || split == BODY.len());
            let b = d.decode(&BODY[split..], &mut out, MAX).unwrap();
            assert!(b.done, "split at {split}");
            assert_eq!(a.consumed + b.consumed, BODY.len());
            assert_eq!(out, b"hello 0123456789abcdef");
        }
    }

    #[test]
    fn byte_by_byte() {
        let (out, consumed, done) = decode_in_steps(BODY, 1).unwrap();
        assert!(done);
        assert_eq!(consumed, BODY.len());
        assert_eq!(out, b"hello 0123456789abcdef");
    }

    #[test]
    fn empty_body_and_leading_zeros_and_uppercase_hex() {
        assert_eq!(decode_all(b"0\r\n\r\n").unwrap(), (vec![], 5, true));
        let (out, _, done) = decode_all(b"000A\r\n0123456789\r\n00\r\n\r\n").unwrap();
        assert!(done);
        assert_eq!(out, b"0123456789");
    }

    #[test]
    fn reset_reuses_the_decoder() {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        assert!(
            d.decode(b"3\r\nabc\r\n0\r\n\r\n", &mut out, MAX)
                .unwrap()
                .done
        );
        d.reset();
        out.clear();
        assert!(
            d.decode(b"2\r\nde\r\n0\r\n\r\n", &mut out, MAX)
                .unwrap()
                .done
        );
        assert_eq!(out, b"de");
        assert_eq!(d.total(), 2);
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(status(b"\r\n"), 400); // no digits
        assert_eq!(status(b";ext\r\n"), 400);
        assert_eq!(status(b"-1\r\n"), 400);
        assert_eq!(status(b"0x5\r\n"), 400);
        assert_eq!(status(b"5 5\r\nhello\r\n"), 400);
        assert_eq!(status(b"10000000000000000\r\n"), 400); // 2^64: overflow
        let huge = [b'0'; MAX_SIZE_LINE + 1];
        assert_eq!(status(&huge), 400);
    }

    #[test]
    fn rejects_bare_lf_and_missing_crlf() {
        assert_eq!(status(b"5\nhello\r\n0\r\n\r\n"), 400);
        assert_eq!(status(b"5\r\nhello\n0\r\n\r\n"), 400);
        assert_eq!(status(b"5\r\nhelloX0\r\n\r\n"), 400);
        assert_eq!(status(b"5\r\nhello\r\n0\r\n\n"), 400);
        assert_eq!(status(b"5\r\nhello\r\n0\r\nA: b\n\r\n"), 400);
        assert_eq!(status(b"5\rhello"), 400);
    }

    #[test]
    fn rejects_control_bytes_in_extensions() {
        assert_eq!(status(b"5;a\nb\r\nhello\r\n0\r\n\r\n"), 400);
        assert_eq!(status(b"5;a\0\r\nhello\r\n0\r\n\r\n"), 400);
    }

    #[test]
    fn extension_grammar() {
        for good in [
            &b"1;a\r\nx\r\n0\r\n\r\n"[..],
            b"1 ;a\r\nx\r\n0;b=c\r\n\r\n",
            b"1\t; a = b ;c=\"q \\\"x\\\" ;\"\r\nx\r\n0\r\n\r\n",
            b"1;a=\"\"\r\nx\r\n0\r\n\r\n",
        ] {
            assert_eq!(
                decode_all(good).unwrap().0,
                b"x",
                "{:?}",
                String::from_utf8_lossy(good)
            );
        }
        for bad in [
            &b"1 \r\nx\r\n0\r\n\r\n"[..], // whitespace before CRLF is not BWS before ';'
            b"1;\r\nx\r\n0\r\n\r\n",      // empty name
            b"1;a \r\nx\r\n0\r\n\r\n",
            b"1;a=\r\nx\r\n0\r\n\r\n", // empty value
            b"1;a=b c\r\nx\r\n0\r\n\r\n",
            b"1;a=\"b\r\nx\r\n0\r\n\r\n", // unterminated quoted-string
            b"1;a=\"b\"c\r\nx\r\n0\r\n\r\n",
            b"1;a@b\r\nx\r\n0\r\n\r\n",
            b"1;a=b@\r\nx\r\n0\r\n\r\n",
            b"1;;a\r\nx\r\n0\r\n\r\n",
            b"1;a=\"\\\x01\"\r\nx\r\n0\r\n\r\n",
        ] {
            assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn trailers_are_checked_and_discarded() {
        let ok = b"1\r\na\r\n0\r\nX-A: 1\r\nX-Checksum: abc\r\n\r\n";
        assert_eq!(decode_all(ok).unwrap().0, b"a");
        for bad in [
            &b"0\r\nContent-Length: 5\r\n\r\n"[..],
            b"0\r\ntransfer-encoding: chunked\r\n\r\n",
            b"0\r\nHOST: x\r\n\r\n",
            b"0\r\nX-A: 1\r\n folded\r\n\r\n",
            b"0\r\nX A: 1\r\n\r\n",
            b"0\r\n: 1\r\n\r\n",
            b"0\r\nX-A: \x01\r\n\r\n",
        ] {
            assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
        }
        let mut big = b"0\r\n".to_vec();
        while big.len() < MAX_TRAILER_BYTES + 16 {
            big.extend_from_slice(b"X-Pad: 0123456789\r\n");
        }
        big.extend_from_slice(b"\r\n");
        assert_eq!(status(&big), 431);
    }

    #[test]
    fn body_limit_is_413_before_the_data() {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let r = d.decode(b"4\r\nabcd\r\n0\r\n\r\n", &mut out, 4).unwrap();
        assert!(r.done);
        d.reset();
        out.clear();
        assert!(d.decode(b"3\r\nabc\r\n", &mut out, 4).is_ok());
        assert_eq!(d.decode(b"2\r\n", &mut out, 4).unwrap_err().status, 413);
        d.reset();
        let err = d.decode(b"ffffffffffffffff\r\n", &mut out, 4).unwrap_err();
        assert_eq!(err.status, 413);
    }

    #[test]
    fn never_panics_on_mutations() {
        for i in 0..BODY.len() {
            for b in [0u8, b'\r', b'\n', b' ', b';', b':', b'f', b'0', 0xff] {
                let mut input = BODY.to_vec();
                input[i] = b;
                for step in [1, 7, input.len()] {
                    let _ = decode_in_steps(&input, step);
                }
            }
        }
    }
}
