//! Response heads, written straight into the connection's output buffer.
//!
//! [`write_head`] appends the status line, the cached `Date` line, the
//! handler's headers and the framing headers the host owns
//! (`Content-Length`, `Connection`). The caller then appends the body if
//! [`body_allowed`] says so. Nothing is formatted through `fmt`: numbers are
//! written digit by digit into the reused `Vec`, so a response head costs a
//! few `memcpy`s. Header names and values from plugins are checked with
//! [`valid_header_name`] / [`valid_header_value`] when the plugin adds them,
//! not here, so this stays a plain copy.

use super::body::{is_field_byte, is_token_byte};
use super::{date, eq_ignore_case, HttpError};

/// The interim response sent before reading a body the client is waiting to send.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How to frame a response for the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOpts {
    /// The request's minor version (0 or 1).
    pub http_minor: u8,
    /// Keep the connection open after this response.
    pub keep_alive: bool,
    /// The request was `HEAD`.
    pub head_request: bool,
}

/// Whether a response with this status to this request carries a body
/// (RFC 9110 §6.4.1, §9.3.2, §15.3.6): not for HEAD, 1xx, 204, 205 or 304.
pub fn body_allowed(status: u16, head_request: bool) -> bool {
    !head_request && !matches!(status, 100..=199 | 204 | 205 | 304)
}

/// The `Content-Length` to send, if any (RFC 9110 §8.6): none on 1xx and
/// 204; 0 on 205, which has no content whatever the handler built
/// (§15.3.6); on 304 only the length the 200 would have had, which we know
/// only when the handler supplied that body — an empty 304 gets none, since
/// `Content-Length: 0` would tell a cache the stored representation is empty.
fn content_length(status: u16, body_len: u64) -> Option<u64> {
    match status {
        100..=199 | 204 => None,
        205 => Some(0),
        304 if body_len == 0 => None,
        _ => Some(body_len),
    }
}

/// Append a response head to `out`.
///
/// `body_len` is the length of the body the response has (for HEAD and 304:
/// would have), sent as `Content-Length` as [`content_length`] says. `headers` is zero or more complete
/// `Name: value\r\n` lines, already validated (a plugin's headers are
/// serialised as they are added); it must not contain the fields
/// [`host_managed_header`] names, which the host writes.
#[inline]
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[u8],
    body_len: usize,
    opts: WriteOpts,
) {
    write_head_framed(out, status, headers, Framing::Length(body_len as u64), opts);
}

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` (as [`content_length`] says for the status).
    Length(u64),
    /// `Transfer-Encoding: chunked`: a stream of unknown length to an
    /// HTTP/1.1 client.
    Chunked,
    /// Neither: the body ends when the connection closes (a stream of
    /// unknown length to an HTTP/1.0 client, which knows no chunks); the
    /// caller must pass `keep_alive: false`.
    Close,
}

/// [`write_head`] for a body delimited as `framing` says.
#[inline]
pub fn write_head_framed(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[u8],
    framing: Framing,
    opts: WriteOpts,
) {
    // We always answer as HTTP/1.1, the highest version we conform to, even
    // to an HTTP/1.0 request (RFC 9110 §2.5).
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    date::append_date_line(out);
    out.extend_from_slice(headers);
    match framing {
        Framing::Length(body_len) => {
            if let Some(len) = content_length(status, body_len) {
                out.extend_from_slice(b"Content-Length: ");
                push_decimal(out, len);
                out.extend_from_slice(b"\r\n");
            }
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::Close => {}
    }
    if !opts.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if opts.http_minor == 0 {
        // An HTTP/1.0 client closes unless told the connection persists.
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Append a complete error response (head and short text body) for `err`;
/// returns the length of its body, for the access log. It always says
/// `Connection: close`: the caller closes after writing it.
pub fn write_error(out: &mut Vec<u8>, err: &HttpError, http_minor: u8) -> usize {
    let headers = b"Content-Type: text/plain; charset=utf-8\r\n";
    let opts = WriteOpts {
        http_minor,
        keep_alive: false,
        head_request: false,
    };
    let body_len = err.reason.len() + 1;
    write_head(out, err.status, headers, body_len, opts);
    if body_allowed(err.status, false) {
        out.extend_from_slice(err.reason.as_bytes());
        out.push(b'\n');
    }
    body_len
}

/// The standard reason phrase: one table, in the SDK, for host and plugins.
pub use drupe_sdk::reason_phrase;

/// A field name is a non-empty token (RFC 9110 §5.1, §5.6.2).
pub fn valid_header_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_token_byte(b))
}

/// A field value has no CR, LF, NUL or other control byte except HTAB, and
/// no DEL (RFC 9110 §5.5) — anything else could split the response.
pub fn valid_header_value(value: &[u8]) -> bool {
    value.iter().all(|&b| is_field_byte(b))
}

/// Fields the host writes itself; a plugin may not set them, since they
/// decide the framing of the connection.
pub fn host_managed_header(name: &[u8]) -> bool {
    [
        &b"content-length"[..],
        b"transfer-encoding",
        b"connection",
        b"date",
    ]
    .iter()
    .any(|m| eq_ignore_case(m, name))
}

/// Append `n` in decimal without going through `fmt` (two digits at a
/// time, no allocation): for response heads and access log lines.
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEEP: WriteOpts = WriteOpts {
        http_minor: 1,
        keep_alive: true,
        head_request: false,
    };

    /// The response as text with the Date value replaced by `DATE`.
    fn normalised(out: &[u8]) -> String {
        let text = String::from_utf8(out.to_vec()).unwrap();
        let start = text.find("Date: ").unwrap() + 6;
        let end = start + text[start..].find("\r\n").unwrap();
        format!("{}DATE{}", &text[..start], &text[end..])
    }

    fn head(status: u16, len: usize, opts: WriteOpts) -> String {
        let mut out = Vec::new();
        write_head(&mut out, status, b"", len, opts);
        normalised(&out)
    }

    #[test]
    fn simple_response_bytes() {
        let mut out = Vec::new();
        let headers = b"Content-Type: text/plain; charset=utf-8\r\n";
        write_head(&mut out, 200, headers, 13, KEEP);
        if body_allowed(200, false) {
            out.extend_from_slice(b"Hello, World!");
        }
        assert_eq!(
            normalised(&out),
            "HTTP/1.1 200 OK\r\nDate: DATE\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 13\r\n\r\nHello, World!"
        );
    }

    #[test]
    fn connection_header_by_version_and_keep_alive() {
        let close = WriteOpts {
            keep_alive: false,
            ..KEEP
        };
        assert!(head(200, 0, close).ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"));
        let ka10 = WriteOpts {
            http_minor: 0,
            ..KEEP
        };
        assert!(head(200, 0, ka10).ends_with("Connection: keep-alive\r\n\r\n"));
        assert!(!head(200, 0, KEEP).contains("Connection"));
    }

    #[test]
    fn no_content_length_for_1xx_and_204_but_for_304_and_head() {
        assert!(!head(204, 0, KEEP).contains("Content-Length"));
        assert!(!head(101, 0, KEEP).contains("Content-Length"));
        assert!(head(304, 42, KEEP).contains("Content-Length: 42\r\n"));
        assert!(!head(304, 0, KEEP).contains("Content-Length"));
        assert!(head(205, 9, KEEP).contains("Content-Length: 0\r\n"));
        let head_req = WriteOpts {
            head_request: true,
            ..KEEP
        };
        assert!(head(200, 13, head_req).contains("Content-Length: 13\r\n"));
    }

    #[test]
    fn body_allowed_rules() {
        assert!(body_allowed(200, false));
        assert!(body_allowed(404, false));
        assert!(!body_allowed(200, true));
        assert!(!body_allowed(100, false));
        assert!(!body_allowed(204, false));
        assert!(!body_allowed(304, false));
        assert!(!body_allowed(205, false));
    }

    #[test]
    fn error_response() {
        let mut out = Vec::new();
        write_error(&mut out, &HttpError::bad("invalid Content-Length"), 1);
        assert_eq!(
            normalised(&out),
            "HTTP/1.1 400 Bad Request\r\nDate: DATE\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 23\r\nConnection: close\r\n\r\ninvalid Content-Length\n"
        );
    }

    #[test]
    fn unknown_status_and_big_lengths() {
        assert!(head(299, 0, KEEP).starts_with("HTTP/1.1 299 \r\n"));
        assert!(
            head(200, usize::MAX, KEEP).contains(&format!("Content-Length: {}\r\n", usize::MAX))
        );
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
    }

    #[test]
    fn header_validation() {
        assert!(valid_header_name(b"X-Powered-By"));
        assert!(!valid_header_name(b""));
        assert!(!valid_header_name(b"X Y"));
        assert!(!valid_header_name(b"X:Y"));
        assert!(!valid_header_name(b"X\r\nY"));
        assert!(valid_header_value(b"text/html; charset=utf-8"));
        assert!(valid_header_value(b"a\tb \xc3\xa9"));
        assert!(valid_header_value(b""));
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"a\x01b", b"a\x7fb"] {
            assert!(!valid_header_value(bad));
        }
        assert!(host_managed_header(b"content-length"));
        assert!(host_managed_header(b"Transfer-Encoding"));
        assert!(host_managed_header(b"CONNECTION"));
        assert!(host_managed_header(b"Date"));
        assert!(!host_managed_header(b"Content-Type"));
    }
}
