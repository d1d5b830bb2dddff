//! One client connection: its buffers, its request state, and what to do
//! when the socket is ready.
//!
//! A connection is owned by one thread at a time (the one holding its
//! slot). [`Conn::on_ready`] reads what is there, serves every complete
//! request in the buffer in order (pipelining), writes the responses with
//! one `write`, and says whether to wait for input or for room to write.
//! A partial request just stays buffered; no thread waits for it.
//!
//! Deadlines: `headerTimeout` runs from the first byte of a request and is
//! not extended by later bytes, so a client trickling a byte a second is
//! cut off on time; `bodyTimeout` runs from the end of the head;
//! `keepAliveTimeout` from the end of the last response. `sendTimeout` is
//! time without progress, as nginx's `send_timeout`: it starts when a
//! write cannot take all the output, and every later write that moves
//! bytes starts it again, so a slow reader that keeps reading is never cut
//! while one that stops is, and neither holds a thread (the rest waits for
//! the next writable edge). A response that goes out in one write costs no
//! clock read for it. The worker's sweep closes a connection past its
//! deadline, with a 408 if a request was under way.
//!
//! A client that sends its last request and its FIN together raises one
//! edge for both; the short read that takes the request does not show the
//! FIN, and no later edge would. So the event's `EPOLLRDHUP` is passed in
//! ([`Conn::on_ready`]'s `hung_up`): once the socket is drained, what was
//! read is answered and the connection closes as soon as that is written.
//!
//! Requests refused here (400, 408, 413, 414, 431, 505, …) are counted as
//! unrouted and access-logged like any other; a connection that closes
//! without sending a byte is neither.
//!
//! Closing after a response the client did not ask to be the last (an
//! error, `maxKeepAliveRequests`, a stop) is done in stages, as RFC 9112
//! §9.6 recommends: half-close, then read and discard until the client
//! closes or [`LINGER`] passes. Closing at once while the client is still
//! sending makes the kernel answer with a reset, which can destroy the
//! response before the client has read it — exactly the error responses
//! that explain why the connection ends.

use super::access;
use super::body_out::{BodyOut, Pumped};
use super::dispatch::{self, Exchange};
use super::origin::{Client, Origin};
use super::transport::Transport;
use super::Shared;
use crate::http::spool::Spool;
use crate::http::{self, BodyKind, ChunkedDecoder, Head, HttpError};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// What the owning thread does with the connection next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait until readable.
    Read,
    /// Wait until writable (output is pending).
    Write,
    Close,
}

/// Where the current request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests: nothing of the next one received yet.
    Idle,
    /// Some of a request has arrived (head or body).
    Receiving,
    /// The last response is out and our side is shut: discarding input
    /// until the client closes (see the module doc).
    Lingering,
}

const INITIAL_BUFFER: usize = 4096;
/// Buffers grown past this for one large request or response are freed
/// once it is done.
const KEEP_BUFFER: usize = 64 * 1024;
/// Read at most this much per `read`; a larger buffer only grows when one
/// request needs it.
const READ_CHUNK: usize = 16 * 1024;
/// How long a closing connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(2);
/// How much a closing connection reads and discards before giving up.
const LINGER_MAX_BYTES: usize = 1 << 20;

#[derive(Debug)]
pub struct Conn {
    pub stream: Transport,
    /// The client's address as text: the socket's peer, or the source a
    /// PROXY header named (see `origin`).
    pub peer: String,
    /// The socket's peer, its trust, TLS, and a PROXY header still due.
    pub origin: Origin,
    /// Received bytes live in `inbuf[start..end]`.
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    written: usize,
    /// The body that follows `out` (a file, a stream), if any; no request
    /// after it is answered until it is all sent.
    tail: Option<BodyOut>,
    head: Head,
    /// Length of the parsed head of the current request, once complete.
    head_len: Option<usize>,
    chunked: ChunkedDecoder,
    /// Bytes after the head that the chunked decoder has consumed.
    chunk_pos: usize,
    /// De-chunked body of the current request.
    body: Vec<u8>,
    /// The current request's body, when larger than `bodyMemory`: it goes
    /// to this file as it arrives instead of into `inbuf` or `body`.
    spool: Option<Spool>,
    continue_sent: bool,
    phase: Phase,
    /// When the current phase must be over (header, body or idle timeout).
    pub deadline: Instant,
    served: usize,
    /// No further request will be served; close once the output is out.
    closing: bool,
    /// The last read took everything the socket had (before the first
    /// read: the socket's readiness is reported when it joins the set).
    drained: bool,
    /// Close in stages rather than at once (see the module doc).
    linger: bool,
    /// A write could not take all the output: `deadline` is the send
    /// deadline (`sendTimeout` from the last progress).
    stalled: bool,
    /// The client has shut its side (`EPOLLRDHUP`): nothing more will come
    /// than what the socket holds.
    hung_up: bool,
    /// When the first byte of the current request arrived (for the access
    /// log of a refused one); set with the header deadline, at no extra cost.
    began: Instant,
    /// Bytes discarded while lingering.
    lingered: usize,
}

impl Conn {
    pub fn new(stream: Transport, peer: SocketAddr, shared: &Shared) -> Conn {
        let now = Instant::now();
        let mut origin = Origin::new(peer, shared.proxy_protocol, &shared.trusted_proxies);
        origin.secure = stream.is_tls();
        Conn {
            stream,
            peer: peer.to_string(),
            origin,
            inbuf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            out: Vec::new(),
            written: 0,
            tail: None,
            head: Head::new(),
            head_len: None,
            chunked: ChunkedDecoder::default(),
            chunk_pos: 0,
            body: Vec::new(),
            spool: None,
            continue_sent: false,
            phase: Phase::Idle,
            deadline: now + shared.limits.header_timeout,
            served: 0,
            closing: false,
            drained: true,
            linger: false,
            stalled: false,
            hung_up: false,
            began: now,
            lingered: 0,
        }
    }

    /// True if no request is in progress and no output pending: the
    /// connection can be closed without cutting anything off.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Lingering
            || self.phase == Phase::Idle
                && self.start == self.end
                && self.written == self.out.len()
                && self.tail.is_none()
                && !self.stream.has_pending_output()
    }

    /// The socket is ready: make all the progress possible without blocking.
    /// `hung_up`: the client has shut its side (the event had `EPOLLRDHUP`,
    /// now or before). `readable`: the event may bring input; if not, and
    /// the last read drained the socket, there is nothing to read.
    pub fn on_ready(&mut self, shared: &Shared, hung_up: bool, readable: bool) -> Next {
        self.hung_up |= hung_up;
        let mut readable = readable || self.hung_up || !self.drained;
        loop {
            if self.written < self.out.len() || self.tail.is_some() {
                let had_tail = self.tail.is_some();
                match self.flush(shared) {
                    // Requests that came in behind a file or a stream wait
                    // in the buffer, and no edge will announce them again.
                    Ok(true) if had_tail && !self.closing && self.start < self.end => {
                        self.serve(shared);
                        continue;
                    }
                    Ok(true) => {}
                    Ok(false) => return Next::Write,
                    Err(_) => return Next::Close,
                }
            }
            if self.closing {
                // TLS: the last records and close_notify must be out first.
                match self.stream.end_output() {
                    Ok(true) => {}
                    Ok(false) => return Next::Write,
                    Err(_) => return Next::Close,
                }
                return if self.linger {
                    self.drain()
                } else {
                    Next::Close
                };
            }
            if !readable {
                return Next::Read;
            }
            readable = true;
            match self.fill(shared) {
                // The buffer is full and the request was refused: flush that.
                Ok(Some(0)) if self.closing => continue,
                Ok(Some(0)) => return Next::Close, // EOF; anything complete was answered
                Ok(Some(_)) => {}
                // Even when stopping: the worker's sweep closes idle
                // connections after a short linger, and a request that
                // arrives first (even the first on a just-accepted
                // connection) is served, with `Connection: close`.
                Ok(None) => return Next::Read, // would block
                Err(_) => return Next::Close,
            };
            self.serve(shared);
            // The request and the FIN came in one burst: the drained
            // socket holds only the EOF, and no edge will announce it.
            // Answer what was read, then close (nothing can follow).
            if self.drained && self.hung_up && !self.closing {
                self.closing = true;
                self.linger = false;
                continue;
            }
            // The socket was drained: send what was answered and wait for
            // the next edge instead of reading again. Reading on would also
            // let one quick client keep this thread to itself (its next
            // request arrives while we flush) and starve the other
            // connections of the batch; its next request raises a new edge
            // and waits its turn behind theirs.
            if self.drained && !self.closing {
                if self.tail.is_some() {
                    continue; // sent above, then what waits behind it is served
                }
                return match self.flush(shared) {
                    Ok(true) => Next::Read,
                    Ok(false) => Next::Write,
                    Err(_) => Next::Close,
                };
            }
        }
    }

    /// Writes pending output, then the body that follows it (`tail`).
    /// `Ok(true)` when all of it is out.
    fn flush(&mut self, shared: &Shared) -> io::Result<bool> {
        let before = self.written;
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stall(shared, self.written > before);
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let moved = self.written > before;
        self.out.clear();
        self.written = 0;
        if self.out.capacity() > KEEP_BUFFER {
            self.out = Vec::new(); // a large response is no reason to keep its memory
        }
        if let Some(tail) = self.tail.as_mut() {
            match tail.pump(&mut self.stream) {
                Ok(Pumped::Done) => self.tail = None,
                Ok(Pumped::Blocked { progressed }) => {
                    self.stall(shared, moved || progressed);
                    return Ok(false);
                }
                Err(e) => {
                    log::debug!("{}: sending the body: {e}", self.peer);
                    return Err(e);
                }
            }
        }
        if self.stalled {
            // The send deadline is over; what comes next is timed from now
            // (the one set when the response was built may have passed).
            self.stalled = false;
            self.deadline = Instant::now()
                + if self.phase == Phase::Idle {
                    shared.limits.keep_alive_timeout
                } else {
                    shared.limits.header_timeout
                };
        }
        Ok(true)
    }

    /// A write could not take everything. sendTimeout counts from the last
    /// progress: the first stall and every write since that moved bytes
    /// restart it; an edge that moved nothing does not.
    fn stall(&mut self, shared: &Shared, progressed: bool) {
        if !self.stalled || progressed {
            self.stalled = true;
            self.deadline = Instant::now() + shared.limits.send_timeout;
        }
    }

    /// Lingering close: shut our side once, then read and discard until the
    /// client closes, [`LINGER_MAX_BYTES`] is reached, or the sweep ends it
    /// at the deadline.
    fn drain(&mut self) -> Next {
        if self.phase != Phase::Lingering {
            let _ = self.stream.tcp().shutdown(Shutdown::Write);
            self.phase = Phase::Lingering;
            self.deadline = Instant::now() + LINGER;
        }
        loop {
            // The input buffer is never empty (INITIAL_BUFFER) and no longer needed.
            match self.stream.read(&mut self.inbuf) {
                Ok(0) => return Next::Close,
                Ok(n) => {
                    self.lingered += n;
                    if self.lingered > LINGER_MAX_BYTES {
                        return Next::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
    }

    /// Reads once into the input buffer. `Ok(None)` if it would block.
    fn fill(&mut self, shared: &Shared) -> io::Result<Option<usize>> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.inbuf.len() > KEEP_BUFFER {
                // A large request is over: give its memory back, so an idle
                // worker stays small after a burst of uploads.
                self.inbuf = vec![0; INITIAL_BUFFER];
                self.body = Vec::new();
            }
        } else if self.end == self.inbuf.len() && self.start > 0 {
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.inbuf.len() - self.end < 1024 {
            // Saturating: maxBodyBytes may be as large as usize::MAX, and
            // a wrapped sum would cap the buffer near zero (every body over
            // a few KiB a 413).
            let limit = shared
                .limits
                .max_header_bytes
                .saturating_add(shared.limits.max_body_bytes)
                .saturating_add(READ_CHUNK);
            let grown = (self.inbuf.len() * 2).min(limit.max(self.inbuf.len()));
            self.inbuf.resize(grown, 0);
        }
        let room = (self.inbuf.len() - self.end).min(READ_CHUNK);
        if room == 0 {
            // The buffer is at its limit and the current request still
            // needs more: the request is too large (normally caught
            // earlier). The caller flushes the answer, seeing `closing`.
            self.reject(
                shared,
                &HttpError {
                    status: 413,
                    reason: "request too large",
                },
            );
            return Ok(Some(0));
        }
        loop {
            match self.stream.read(&mut self.inbuf[self.end..self.end + room]) {
                Ok(n) => {
                    self.end += n;
                    // Less than asked for: the socket was empty at that
                    // moment, and anything later raises a new edge.
                    self.drained = n < room;
                    if n > 0 && self.phase == Phase::Idle {
                        self.phase = Phase::Receiving;
                        self.began = Instant::now();
                        self.deadline = self.began + shared.limits.header_timeout;
                    }
                    return Ok(Some(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.drained = true;
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Answers every complete request in the buffer, in order.
    fn serve(&mut self, shared: &Shared) {
        if self.origin.awaiting_proxy && !self.take_proxy_header() {
            return;
        }
        while !self.closing && self.tail.is_none() && self.start < self.end {
            let head_len = match self.head_len {
                Some(len) => len,
                None => match self.parse_head(shared) {
                    Ok(Some(len)) => len,
                    Ok(None) => return,
                    Err(e) => return self.reject(shared, &e),
                },
            };
            let (body_start, request_end) = match self.complete_body(head_len, &shared.limits) {
                Ok(Some(range)) => range,
                Ok(None) => return self.send_continue(),
                Err(e) => return self.reject(shared, &e),
            };
            self.served += 1;
            let keep_alive = self.head.keep_alive
                && !shared.stopping()
                && (shared.limits.max_keep_alive_requests == 0
                    || self.served < shared.limits.max_keep_alive_requests);
            let closes = self.respond(shared, body_start, request_end, keep_alive);
            self.finish_request(shared, request_end, keep_alive && !closes);
        }
    }

    /// `proxyProtocol`: the header before the first request. False while
    /// it is incomplete, or when there is none and the connection closes
    /// unanswered (haproxy's doc/proxy-protocol.txt §2: never guess).
    fn take_proxy_header(&mut self) -> bool {
        let buf = &self.inbuf[self.start..self.end];
        match self.origin.take_proxy_header(buf, &mut self.peer) {
            Ok(Some(len)) => {
                self.start += len;
                if self.start == self.end {
                    self.phase = Phase::Idle; // no request begun: none to time out with a 408
                }
                true
            }
            Ok(None) => false,
            Err(_) => {
                self.closing = true;
                self.linger = false;
                self.start = self.end;
                false
            }
        }
    }

    /// Parses the head of the current request; once it is complete, the
    /// body's deadline starts and its declared size is checked.
    /// `Ok(Some(head length))` when complete, `Ok(None)` to read more.
    #[inline]
    fn parse_head(&mut self, shared: &Shared) -> Result<Option<usize>, HttpError> {
        let buf = &self.inbuf[self.start..self.end];
        let Some(len) = self.head.parse(buf, &shared.head_limits)? else {
            return Ok(None);
        };
        self.head_len = Some(len);
        self.deadline = Instant::now() + shared.limits.body_timeout;
        self.check_body_size(shared)?;
        Ok(Some(len))
    }

    /// Where the body of the current request is, once it is all here:
    /// `(body start, request end)` relative to `start`. The body is that
    /// range of the input buffer (Content-Length: no copy) or, chunked, the
    /// de-chunked `self.body`. `Ok(None)` to read more.
    #[inline]
    fn complete_body(
        &mut self,
        head_len: usize,
        limits: &crate::config::Limits,
    ) -> Result<Option<(usize, usize)>, HttpError> {
        if let BodyKind::Length(n) = self.head.body {
            if n > limits.body_memory as u64 {
                return self.spool_body(head_len, n, limits);
            }
        }
        let buf = &self.inbuf[self.start..self.end];
        match self.head.body {
            BodyKind::None => Ok(Some((head_len, head_len))),
            BodyKind::Length(n) => {
                let n = n as usize; // checked against maxBodyBytes in `parse_head`
                Ok((buf.len() - head_len >= n).then_some((head_len, head_len + n)))
            }
            BodyKind::Chunked => {
                let from = head_len + self.chunk_pos;
                let decoded =
                    self.chunked
                        .decode(&buf[from..], &mut self.body, limits.max_body_bytes)?;
                if self.spool.is_some() || self.body.len() > limits.body_memory {
                    let spool = open_spool(&mut self.spool, limits)?;
                    spool.write(&self.body).map_err(spool_error)?;
                    self.body.clear();
                    if decoded.done {
                        spool.finish().map_err(spool_error)?;
                    }
                }
                if decoded.done {
                    self.chunk_pos += decoded.consumed;
                    let end = head_len + self.chunk_pos;
                    return Ok(Some((end, end)));
                }
                // The decoder took all the input and copied the data out:
                // drop the raw chunks, keeping only the head. Otherwise
                // framing overhead (1-byte chunks, long extensions) would
                // fill the buffer long before maxBodyBytes of body.
                self.end = self.start + head_len;
                self.chunk_pos = 0;
                Ok(None)
            }
        }
    }

    /// A `Content-Length` body over `bodyMemory`: what has arrived moves
    /// from the input buffer to the spool file (anything after it, a
    /// pipelined request, stays), so the buffer never holds more than a
    /// read's worth of it. Complete once the file holds all `n` bytes.
    fn spool_body(
        &mut self,
        head_len: usize,
        n: u64,
        limits: &crate::config::Limits,
    ) -> Result<Option<(usize, usize)>, HttpError> {
        let spool = open_spool(&mut self.spool, limits)?;
        let body_start = self.start + head_len;
        let owed = usize::try_from(n - spool.written()).unwrap_or(usize::MAX);
        let take = (self.end - body_start).min(owed);
        spool
            .write(&self.inbuf[body_start..body_start + take])
            .map_err(spool_error)?;
        self.inbuf
            .copy_within(body_start + take..self.end, body_start);
        self.end -= take;
        if spool.written() < n {
            return Ok(None);
        }
        spool.finish().map_err(spool_error)?;
        Ok(Some((head_len, head_len)))
    }

    /// Has the complete current request answered into `out`, and logs it.
    /// Returns whether the connection must close after it (a request past
    /// `requestTimeout`).
    #[inline]
    fn respond(
        &mut self,
        shared: &Shared,
        body_start: usize,
        request_end: usize,
        keep_alive: bool,
    ) -> bool {
        let buf = &self.inbuf[self.start..self.end];
        let body = match (&self.spool, self.head.body) {
            (Some(spool), _) => spool.body(),
            (None, BodyKind::Chunked) => &self.body[..],
            _ => &buf[body_start..request_end],
        };
        let client = Client::of(
            &self.origin,
            &self.peer,
            &shared.trusted_proxies,
            &self.head,
            buf,
        );
        let exchange = Exchange {
            buf,
            head: &self.head,
            body,
            client: &client,
            keep_alive,
            tls: self.origin.secure,
            fd: self.stream.as_raw_fd(),
            body_fd: self.spool.as_ref().map_or(-1, Spool::fd),
        };
        let started = shared.access.as_ref().map(|_| Instant::now());
        let sent = dispatch::respond(
            &shared.plugins,
            &shared.statics,
            &exchange,
            &mut self.out,
            &mut self.tail,
        );
        if let (Some(log), Some(started)) = (&shared.access, started) {
            access::record(
                log,
                &access::Entry {
                    peer: &client.addr,
                    request: access::Request::Parsed {
                        head: &self.head,
                        buf,
                    },
                    status: sent.status,
                    body_bytes: sent.body_bytes,
                    elapsed: started.elapsed(),
                },
            );
        }
        sent.closes
    }

    /// The current request is answered: forget it, decide whether the
    /// connection closes, and start the next deadline (keep-alive if the
    /// buffer is empty, else the next request's header timeout).
    #[inline]
    fn finish_request(&mut self, shared: &Shared, request_end: usize, keep_alive: bool) {
        self.start += request_end;
        self.head_len = None;
        self.chunked.reset();
        self.chunk_pos = 0;
        self.body.clear();
        self.spool = None; // unnamed: closing it frees the space
        self.continue_sent = false;
        if !keep_alive {
            self.closing = true;
            // Close at once only when the client said this was its last
            // request and sent nothing after it.
            self.linger = self.head.keep_alive || self.start < self.end;
        }
        let now = Instant::now();
        if self.start == self.end {
            self.phase = Phase::Idle;
            self.deadline = now + shared.limits.keep_alive_timeout;
        } else {
            self.phase = Phase::Receiving;
            self.began = now;
            self.deadline = now + shared.limits.header_timeout;
        }
    }

    fn check_body_size(&self, shared: &Shared) -> Result<(), HttpError> {
        match self.head.body {
            BodyKind::Length(n) if n > shared.limits.max_body_bytes as u64 => Err(HttpError {
                status: 413,
                reason: "request body larger than maxBodyBytes",
            }),
            _ => Ok(()),
        }
    }

    /// `Expect: 100-continue`: tell the client to send the body, once, and
    /// only for a request we have not already rejected (RFC 9110 §10.1.1).
    fn send_continue(&mut self) {
        if self.head.expect_continue && !self.continue_sent && self.head.http_minor == 1 {
            self.continue_sent = true;
            self.out.extend_from_slice(http::CONTINUE_100);
        }
    }

    /// Answers a request that cannot be served and stops reading: after a
    /// framing error the rest of the stream cannot be trusted.
    fn reject(&mut self, shared: &Shared, error: &HttpError) {
        log::debug!("{}: {} {}", self.peer, error.status, error.reason);
        let body_bytes = http::write_error(&mut self.out, error, self.head.http_minor);
        self.record_refused(shared, error.status, body_bytes);
        self.closing = true;
        self.linger = true;
        self.start = self.end;
    }

    /// The deadline passed and the connection is about to close: a client
    /// in the middle of a request gets a 408 first (best effort, one write);
    /// one that stopped taking its response is reset.
    pub fn on_timeout(&mut self, shared: &Shared) {
        if self.stalled {
            // sendTimeout: the client stopped reading. Closing normally
            // would leave the kernel sending it the rest of the buffered
            // response (megabytes) for as long as it cares to trickle.
            log::debug!("{}: no progress sending for sendTimeout; reset", self.peer);
            let _ = crate::sys::net::reset_on_close(self.stream.tcp());
            return;
        }
        if self.phase == Phase::Receiving && !self.origin.awaiting_proxy {
            let mut out = Vec::new();
            let body_bytes = http::write_error(
                &mut out,
                &HttpError {
                    status: 408,
                    reason: "request timeout",
                },
                1,
            );
            let _ = self.stream.write(&out);
            self.record_refused(shared, 408, body_bytes);
        }
    }

    /// Counts and access-logs a request the HTTP layer refused, with what
    /// is known of it: its head if that was parsed, else the bytes received.
    fn record_refused(&self, shared: &Shared, status: u16, body_bytes: usize) {
        dispatch::count_unrouted(status);
        let Some(log) = &shared.access else {
            return;
        };
        let buf = &self.inbuf[self.start..self.end];
        let request = match self.head_len {
            Some(_) => access::Request::Parsed {
                head: &self.head,
                buf,
            },
            None => access::Request::Unparsed(buf),
        };
        access::record(
            log,
            &access::Entry {
                peer: &self.peer,
                request,
                status,
                body_bytes,
                elapsed: self.began.elapsed(),
            },
        );
    }
}

/// The current request's spool file, created on first use.
fn open_spool<'s>(
    spool: &'s mut Option<Spool>,
    limits: &crate::config::Limits,
) -> Result<&'s mut Spool, HttpError> {
    if spool.is_none() {
        let folder = limits
            .body_folder
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        *spool = Some(Spool::create(&folder).map_err(|e| {
            log::error!("cannot spool a request body in {}: {e}", folder.display());
            HttpError::new(500, "cannot store the request body")
        })?);
    }
    spool
        .as_mut()
        .ok_or(HttpError::new(500, "cannot store the request body"))
}

fn spool_error(e: io::Error) -> HttpError {
    log::error!("spooling a request body: {e}");
    HttpError::new(500, "cannot store the request body")
}
