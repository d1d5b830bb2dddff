//! HTTP/1.1 framing without sockets: bytes in, bytes out.
//!
//! The worker owns the connection and its buffers; this module only looks at
//! bytes. [`Head::parse`] finds a request head in the read buffer (or says
//! "read more") and resolves its path's dot-segments (`target`),
//! [`ChunkedDecoder`] de-chunks a request body across reads, and
//! [`write_head`] / [`write_error`] append a response to the write buffer.
//! Everything here works on caller-owned buffers that are reused from one
//! request to the next, so the steady state allocates nothing; the `Date`
//! line is formatted once a second per thread ([`date`]).
//!
//! [`proxy`] reads the PROXY protocol header a load balancer may put before
//! the first request of a connection, [`forwarded`] the forwarding headers
//! a trusted proxy adds to each request.
//!
//! The parser is strict where leniency enables request smuggling (framing
//! headers, line folding, chunked syntax) and follows hyper's
//! `src/proto/h1/role.rs` in shape: `Ok(None)` means partial, limits on the
//! request line, header count and head size, and the RFC 9112 section for
//! each rejection cited where it is made.

mod body;
pub mod date;
pub mod forwarded;
pub mod proxy;
pub mod range;
mod request;
mod response;
pub mod spool;
mod target;

#[cfg(test)]
mod prop_tests;

pub use body::{ChunkedDecoder, Decoded};
pub use request::{first_line, BodyKind, Head, HeadLimits};
pub use response::{
    body_allowed, host_managed_header, push_decimal, reason_phrase, valid_header_name,
    valid_header_value, write_error, write_head, write_head_framed, Framing, WriteOpts,
    CONTINUE_100,
};
pub use target::{remove_dot_segments, unroutable};

/// A request the server refuses: what to tell the client.
///
/// Every `HttpError` ends the connection: after [`write_error`] the worker
/// closes it, because the framing of whatever follows cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpError {
    /// Status code of the error response (4xx or 5xx).
    pub status: u16,
    /// Short text for the response body and the log, e.g. "invalid Content-Length".
    pub reason: &'static str,
}

impl HttpError {
    pub(crate) const fn new(status: u16, reason: &'static str) -> Self {
        HttpError { status, reason }
    }

    /// 400 with the given reason.
    pub(crate) const fn bad(reason: &'static str) -> Self {
        HttpError::new(400, reason)
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for HttpError {}

/// ASCII case-insensitive comparison of header names and tokens.
#[inline]
pub(crate) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Trim optional whitespace (SP / HTAB, RFC 9110 §5.6.3) at both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The elements of a comma-separated header list (RFC 9110 §5.6.1), trimmed,
/// including empty ones (callers decide whether those are an error).
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}
