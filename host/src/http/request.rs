//! Request head parsing: request line and header fields, with `httparse`.
//!
//! [`Head::parse`] looks at the start of the connection's read buffer and
//! answers "need more bytes" (`Ok(None)`), "here is a head of `n` bytes"
//! (`Ok(Some(n))`, the body or next pipelined request starts at `n`), or an
//! [`HttpError`] after which the connection is closed. The head is not
//! copied: [`Head`] stores byte ranges into the buffer, and the accessors take
//! that buffer again, so one `Head` is reused for every request of a
//! connection without allocating once its header `Vec` has grown.
//!
//! Framing is decided here (`Content-Length`, `Transfer-Encoding`) and is
//! strict: every ambiguity a proxy in front of us might resolve differently
//! is a request-smuggling hole, so it is a 400, as in hyper's `role.rs`.

use std::mem::MaybeUninit;

use super::{eq_ignore_case, list_items, target, HttpError};

/// Most header fields a request may have, whatever the configuration says:
/// the size of the stack array handed to `httparse` (256 × 32 bytes).
pub const MAX_HEADERS_CAP: usize = 256;

/// How a request's body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`.
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`; decode with [`super::ChunkedDecoder`].
    Chunked,
}

/// Size limits for a request head; exceeding one is a 414 or 431.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest request line (method, target, version) in bytes → 414.
    pub max_request_line: usize,
    /// Longest whole head, request line included, in bytes → 431.
    pub max_header_bytes: usize,
    /// Most header fields (capped at [`MAX_HEADERS_CAP`]) → 431.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_request_line: 8192,
            max_header_bytes: 16384,
            max_headers: 100,
        }
    }
}

impl From<&crate::config::Limits> for HeadLimits {
    fn from(l: &crate::config::Limits) -> Self {
        HeadLimits {
            max_request_line: l.max_request_line,
            max_header_bytes: l.max_header_bytes,
            max_headers: l.max_headers,
        }
    }
}

/// A byte range into the read buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The range of `part`, which must be a sub-slice of `buf`.
    fn within(buf: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        Span {
            start,
            end: start + part.len(),
        }
    }

    /// The bytes; empty rather than a panic if handed the wrong buffer.
    fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or_default()
    }
}

/// A parsed request head, reused from request to request.
///
/// Accessors take the buffer that was passed to [`Head::parse`]; the head
/// stores only ranges into it.
#[derive(Debug, Clone)]
pub struct Head {
    method: Span,
    target: Span,
    /// Empty for an absolute-form target without a path, which means `/`.
    path: Span,
    query: Span,
    /// The path with its dot-segments resolved, when it had any.
    resolved: Vec<u8>,
    path_resolved: bool,
    /// The authority of an absolute-form target, else the `Host` field.
    host: Option<Span>,
    headers: Vec<(Span, Span)>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub http_minor: u8,
    /// How the body is framed.
    pub body: BodyKind,
    /// Whether the connection may serve another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1: send [`super::CONTINUE_100`] before reading the body.
    pub expect_continue: bool,
    /// The method is `HEAD`: the response gets no body.
    pub is_head: bool,
}

impl Default for Head {
    fn default() -> Self {
        Head::new()
    }
}

impl Head {
    /// An empty head; [`Head::parse`] fills it.
    pub fn new() -> Self {
        Head {
            method: Span::default(),
            target: Span::default(),
            path: Span::default(),
            query: Span::default(),
            resolved: Vec::new(),
            path_resolved: false,
            host: None,
            headers: Vec::new(),
            http_minor: 1,
            body: BodyKind::None,
            keep_alive: false,
            expect_continue: false,
            is_head: false,
        }
    }

    /// Parse the request head at the start of `buf`.
    ///
    /// `Ok(None)`: the head is incomplete, read more and call again with the
    /// grown buffer. `Ok(Some(len))`: the head is `buf[..len]`; the body (or
    /// the next pipelined request) starts at `len`. On `Err` answer with
    /// [`super::write_error`] and close the connection. The fields of `self`
    /// are meaningful only after `Ok(Some(_))`.
    pub fn parse(&mut self, buf: &[u8], limits: &HeadLimits) -> Result<Option<usize>, HttpError> {
        let mut storage =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
        let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
        let mut req = httparse::Request::new(&mut []);
        let head_len = match req.parse_with_uninit_headers(buf, &mut storage[..max_headers]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                check_partial(buf, limits)?;
                return Ok(None);
            }
            Err(e) => return Err(earliest_error(buf, limits, e)),
        };
        let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
            return Err(HttpError::bad("invalid request line"));
        };
        let (method, target) = (method.as_bytes(), target.as_bytes());
        // method SP target SP HTTP/1.x
        if method.len() + target.len() + 10 > limits.max_request_line {
            return Err(HttpError::new(414, "request line too long"));
        }
        if head_len > limits.max_header_bytes {
            return Err(HttpError::new(431, "request header too large"));
        }

        self.method = Span::within(buf, method);
        self.target = Span::within(buf, target);
        self.http_minor = minor;
        self.is_head = method == b"HEAD";
        self.host = None;
        self.parse_target(buf, method)?;

        self.headers.clear();
        let mut fields = Fields::default();
        for h in req.headers.iter() {
            let (name, value) = (h.name.as_bytes(), h.value);
            self.headers
                .push((Span::within(buf, name), Span::within(buf, value)));
            fields.note(name, value)?;
        }
        if self.host.is_none() {
            self.host = fields.host.map(|h| Span::within(buf, h));
        }
        self.body = fields.body_kind(minor)?;
        // RFC 9112 §3.2: a server MUST respond with 400 to an HTTP/1.1
        // request without Host or with more than one Host field line.
        if fields.hosts > 1 || (minor == 1 && fields.hosts == 0) {
            return Err(HttpError::bad("missing or repeated Host header"));
        }
        // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only
        // with an explicit "keep-alive" (RFC 7230 §A.1.2).
        self.keep_alive = !fields.close && (minor == 1 || fields.keep_alive);
        // RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 MUST be
        // ignored; any other expectation MAY be answered with 417, which we
        // do rather than pretend to meet it.
        if fields.expect_other {
            return Err(HttpError::new(417, "unsupported expectation"));
        }
        self.expect_continue = minor == 1 && fields.continue_100;
        Ok(Some(head_len))
    }

    /// Split the target by its form (RFC 9112 §3.2) and resolve the
    /// path's dot-segments (RFC 3986 §5.2.4), see [`super::target`].
    fn parse_target(&mut self, buf: &[u8], method: &[u8]) -> Result<(), HttpError> {
        let target = self.target.of(buf);
        // '#' is not part of any request-target form; a fragment is never
        // sent (RFC 9110 §7.1). httparse lets it through.
        if target.contains(&b'#') {
            return Err(HttpError::bad("invalid request target"));
        }
        let parts = target::split(target, method)?;
        let at = |r: std::ops::Range<usize>| Span {
            start: self.target.start + r.start,
            end: self.target.start + r.end,
        };
        if let Some(authority) = parts.authority {
            self.host = Some(at(authority));
        }
        self.path = at(parts.path.clone());
        self.query = at(parts.query);
        let path = &target[parts.path];
        self.path_resolved =
            path.first() == Some(&b'/') && target::remove_dot_segments(path, &mut self.resolved)?;
        Ok(())
    }

    /// The method, e.g. `GET` (case-sensitive, RFC 9110 §9.1).
    pub fn method<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.method.of(buf)
    }

    /// The request-target as sent.
    pub fn target<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.target.of(buf)
    }

    /// The path: the target up to `?` (for absolute-form, after the
    /// authority; `/` if it has none), with dot-segments resolved, still
    /// percent-encoded otherwise. `*` for asterisk-form.
    pub fn path<'a>(&'a self, buf: &'a [u8]) -> &'a [u8] {
        if self.path_resolved {
            return &self.resolved;
        }
        let path = self.path.of(buf);
        if path.is_empty() {
            b"/"
        } else {
            path
        }
    }

    /// The query after `?`, without it; empty when there is none.
    pub fn query<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.query.of(buf)
    }

    /// The authority of an absolute-form target, else the `Host` field.
    pub fn host<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        self.host.map(|s| s.of(buf))
    }

    /// All header fields in order, as (name, value); values are trimmed.
    pub fn headers<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.headers
            .iter()
            .map(move |(n, v)| (n.of(buf), v.of(buf)))
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| eq_ignore_case(n.of(buf), name))
            .map(|(_, v)| v.of(buf))
    }

    /// Everything this parse determined, as one line of text: for the
    /// property tests and the fuzz target, which compare two parses of the
    /// same bytes split differently.
    pub fn summary(&self, buf: &[u8]) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {} {:?} {} {} {}",
            self.method(buf),
            self.target(buf),
            self.path(buf),
            self.query(buf),
            self.host(buf),
            self.headers(buf).collect::<Vec<_>>(),
            self.http_minor,
            self.body,
            self.keep_alive,
            self.expect_continue,
            self.is_head,
        )
    }
}

/// What the framing and connection-management fields said, gathered while
/// the headers are copied, so each field is looked at once.
#[derive(Debug, Default)]
struct Fields<'a> {
    content_length: Option<u64>,
    /// A Transfer-Encoding field was present.
    te: bool,
    te_last_chunked: bool,
    te_chunked_count: u32,
    te_other: bool,
    hosts: u32,
    host: Option<&'a [u8]>,
    close: bool,
    keep_alive: bool,
    continue_100: bool,
    expect_other: bool,
}

impl<'a> Fields<'a> {
    fn note(&mut self, name: &[u8], value: &'a [u8]) -> Result<(), HttpError> {
        // Compare by length first: most fields are none of these.
        match name.len() {
            4 if eq_ignore_case(name, b"host") => {
                self.hosts += 1;
                self.host.get_or_insert(value);
                if !target::valid_host(value) {
                    return Err(HttpError::bad("invalid Host header"));
                }
            }
            6 if eq_ignore_case(name, b"expect") => {
                for item in list_items(value).filter(|t| !t.is_empty()) {
                    if eq_ignore_case(item, b"100-continue") {
                        self.continue_100 = true;
                    } else {
                        self.expect_other = true;
                    }
                }
            }
            10 if eq_ignore_case(name, b"connection") => {
                for token in list_items(value) {
                    self.close |= eq_ignore_case(token, b"close");
                    self.keep_alive |= eq_ignore_case(token, b"keep-alive");
                }
            }
            14 if eq_ignore_case(name, b"content-length") => {
                // RFC 9110 §8.6 lets a recipient either accept a list of
                // identical values ("5, 5", or the field repeated, which
                // is the same list spread over lines, §5.3) or reject it
                // as invalid. We reject it, as gunicorn does: a proxy in
                // front that framed the body by another reading of the
                // list would be out of step with us (request smuggling).
                // Anything else that is not 1*DIGIT — signs, inner
                // spaces, empty, overflow — is an invalid length, a 400 by
                // RFC 9112 §6.3 item 5.
                if self.content_length.is_some() {
                    return Err(HttpError::bad("repeated Content-Length"));
                }
                if value.contains(&b',') {
                    return Err(HttpError::bad("Content-Length is a list"));
                }
                let n = parse_content_length(super::trim_ows(value))
                    .ok_or(HttpError::bad("invalid Content-Length"))?;
                self.content_length = Some(n);
            }
            17 if eq_ignore_case(name, b"transfer-encoding") => {
                self.te = true;
                // Several fields concatenate into one list (RFC 9110 §5.3);
                // empty list elements are ignored (§5.6.1).
                for coding in list_items(value).filter(|t| !t.is_empty()) {
                    let chunked = eq_ignore_case(coding, b"chunked");
                    self.te_last_chunked = chunked;
                    if chunked {
                        self.te_chunked_count += 1;
                    } else {
                        self.te_other = true;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn body_kind(&self, minor: u8) -> Result<BodyKind, HttpError> {
        if !self.te {
            return Ok(match self.content_length {
                Some(0) | None => BodyKind::None,
                Some(n) => BodyKind::Length(n),
            });
        }
        // RFC 9112 §6.1: Content-Length with Transfer-Encoding "ought to be
        // handled as an error" — it is the classic smuggling vector.
        if self.content_length.is_some() {
            return Err(HttpError::bad("both Content-Length and Transfer-Encoding"));
        }
        // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means the
        // framing is faulty.
        if minor == 0 {
            return Err(HttpError::bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        // RFC 9112 §6.3 item 4: if chunked is not the final coding the length
        // cannot be determined: 400. §7: chunked MUST NOT be applied twice.
        if !self.te_last_chunked || self.te_chunked_count > 1 {
            return Err(HttpError::bad("invalid Transfer-Encoding"));
        }
        // RFC 9112 §6.1: a coding we do not understand SHOULD get a 501.
        if self.te_other {
            return Err(HttpError::new(501, "unsupported transfer coding"));
        }
        Ok(BodyKind::Chunked)
    }
}

/// `1*DIGIT` (RFC 9110 §8.6), no sign, no spaces, no overflow.
fn parse_content_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A partial head: fail early when it can no longer fit the limits, so a
/// client cannot make us buffer without end.
fn check_partial(buf: &[u8], limits: &HeadLimits) -> Result<(), HttpError> {
    // Empty lines before the request line are skipped (RFC 9112 §2.2).
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let window = &line[..line.len().min(limits.max_request_line.saturating_add(2))];
    let line_len = match window.iter().position(|&b| b == b'\n') {
        Some(lf) => lf - usize::from(lf > 0 && window[lf - 1] == b'\r'),
        // Not ended yet; a trailing CR may be the start of CRLF.
        None => window.len() - usize::from(window.ends_with(b"\r")),
    };
    if line_len > limits.max_request_line {
        return Err(HttpError::new(414, "request line too long"));
    }
    if buf.len() > limits.max_header_bytes {
        return Err(HttpError::new(431, "request header too large"));
    }
    Ok(())
}

/// The error for a buffer httparse refuses, the same however the bytes
/// were split across reads.
///
/// Read in pieces, a head that is too long is refused by
/// [`check_partial`] as soon as a limit is crossed, before any later bad
/// byte arrives; read whole, httparse would report the bad byte instead.
/// So find the shortest prefix that crosses a limit, and if httparse does
/// not already fail on that prefix, the limit was hit first.
fn earliest_error(buf: &[u8], limits: &HeadLimits, e: httparse::Error) -> HttpError {
    if check_partial(buf, limits).is_ok() {
        return map_error(e, buf);
    }
    // check_partial fails for every prefix at least as long as one it fails
    // for (the line and the buffer only grow): binary search for the first.
    let (mut ok, mut fails) = (0, buf.len());
    while fails - ok > 1 {
        let mid = ok + (fails - ok) / 2;
        if check_partial(&buf[..mid], limits).is_ok() {
            ok = mid;
        } else {
            fails = mid;
        }
    }
    let prefix = &buf[..fails];
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(prefix, &mut storage[..max_headers]) {
        Err(e) => map_error(e, prefix),
        // Partial (a complete head here would be complete in `buf` too).
        Ok(_) => check_partial(prefix, limits)
            .err()
            .unwrap_or_else(|| map_error(e, buf)),
    }
}

/// Map an `httparse` error to what the client is told.
fn map_error(e: httparse::Error, buf: &[u8]) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::new(431, "too many headers"),
        httparse::Error::Version => version_error(buf),
        // httparse refuses obsolete line folding in requests as a bad header
        // name (the continuation line starts with SP/HTAB); RFC 9112 §5.2
        // lets a server reject it with 400. Name it for the log.
        httparse::Error::HeaderName if has_obs_fold(buf) => HttpError::bad("obsolete line folding"),
        httparse::Error::HeaderName => HttpError::bad("invalid header name"),
        httparse::Error::HeaderValue => HttpError::bad("invalid header value"),
        httparse::Error::NewLine => HttpError::bad("invalid line ending"),
        _ => HttpError::bad("invalid request line"),
    }
}

/// httparse gives `Version` for anything that is not exactly `HTTP/1.0` or
/// `HTTP/1.1`. A well-formed other version (`HTTP/2.0`, the h2 preface's
/// `HTTP/2.0`) is a 505 (RFC 9110 §15.6.6); garbage is a 400.
fn version_error(buf: &[u8]) -> HttpError {
    let version = first_line(buf)
        .splitn(3, |&b| b == b' ')
        .nth(2)
        .unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', d, ..] if d.is_ascii_digit() => {
            HttpError::new(505, "HTTP version not supported")
        }
        _ => HttpError::bad("invalid HTTP version"),
    }
}

/// The first line of what a client sent, without its end and without the
/// empty lines a server ignores before a request (RFC 9112 §2.2): the
/// request line, or what stands in its place.
pub fn first_line(buf: &[u8]) -> &[u8] {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    buf[start..]
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default()
}

/// Whether some line starts with whitespace. Only used to name the error,
/// so scanning past the head (into a body) does no harm.
fn has_obs_fold(buf: &[u8]) -> bool {
    buf.windows(2)
        .any(|w| w[0] == b'\n' && (w[1] == b' ' || w[1] == b'\t'))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
