//! The status listener (`[status] socketPort`): `GET /_drupe/status`
//! (JSON) and `GET /_drupe/metrics` (Prometheus), on their own socket,
//! never on the public port.
//!
//! The master serves it from its poll loop. What the routes report is the
//! master's own knowledge — its worker table (pid, generation, state,
//! start time) and the scoreboard it maps — plus the counts of workers
//! that have exited, which only a long-lived process can keep so that the
//! counters never go backwards. A separate status process would need all
//! of that passed to it and would be one more child to supervise. The cost
//! is that the master must never block on a client: every socket is
//! non-blocking, a request head may be at most [`MAX_REQUEST`] bytes, a
//! connection gets [`TIMEOUT`] in all and is closed after one response,
//! and at most [`MAX_CONNECTIONS`] are open at once (more are closed at
//! accept). Parsing is httparse on one small buffer; nothing here runs
//! plugin code, and the responses are built from memory.

use super::report::{Report, WorkerRow};
use super::table::State;
use super::{Master, MasterError};
use crate::board::scoreboard::{self, Scoreboard};
use crate::board::stats::Totals;
use crate::config::Config;
use nix::poll::{PollFd, PollFlags};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Bytes of a request head; a status request is one short line.
pub const MAX_REQUEST: usize = 4096;
/// The most a status connection may take, from accept to the last byte.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Status connections open at once; monitoring needs a handful.
pub const MAX_CONNECTIONS: usize = 16;

/// The listener, its open connections, and the counts of exited workers.
#[derive(Debug)]
pub(super) struct StatusServer {
    front: Front,
    /// `[status]` as bound: changing it needs a restart.
    bound: crate::config::Status,
    started: Instant,
    retired: Totals,
    retired_plugins: BTreeMap<String, Totals>,
}

/// A connection served from the master's loop: one request of at most
/// [`MAX_REQUEST`] bytes, one response, within [`TIMEOUT`]. The redirect
/// listener's too.
#[derive(Debug)]
pub(super) struct Conn {
    stream: TcpStream,
    pub input: Vec<u8>,
    /// The response, once the request is complete.
    pub output: Option<Vec<u8>>,
    written: usize,
    pub deadline: Instant,
}

impl StatusServer {
    /// Binds `[status]` if a port is set.
    pub fn bind(config: &Config) -> Result<StatusServer, MasterError> {
        let bound = config.status.clone();
        let listener = match bound.socket_port {
            None => None,
            Some(port) => {
                let listener = super::listen::bind("[status]", &bound.socket_host, port, None)?;
                if let Ok(addr) = listener.local_addr() {
                    log::info!("status on http://{addr}/_drupe/status and /_drupe/metrics");
                }
                Some(listener)
            }
        };
        Ok(StatusServer {
            front: Front::new(listener, MAX_CONNECTIONS, "status"),
            bound,
            started: Instant::now(),
            retired: Totals::default(),
            retired_plugins: BTreeMap::new(),
        })
    }

    /// Why a reload to `config` cannot apply its `[status]`, if it changed.
    pub fn needs_restart(&self, config: &Config) -> Option<String> {
        let (old, new) = (&self.bound, &config.status);
        let shown = |s: &crate::config::Status| match s.socket_port {
            Some(port) => format!("{}:{port}", s.socket_host),
            None => "off".to_owned(),
        };
        (shown(old) != shown(new)).then(|| format!("[status] ({} -> {})", shown(old), shown(new)))
    }

    /// Adds the sockets to watch (see [`Front::poll_fds`]).
    pub fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) {
        self.front.poll_fds(fds);
    }

    /// When the oldest connection times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.front.deadline()
    }

    /// Keeps the counts of the worker that held scoreboard slot `slot` and
    /// has exited, before the slot is reused.
    pub fn absorb(&mut self, board: &Scoreboard, slot: usize) {
        let (unrouted, plugins) = board.stats().worker_totals(slot);
        self.retired.add(&unrouted);
        for (name, totals) in plugins {
            self.retired_plugins.entry(name).or_default().add(&totals);
        }
    }
}

/// A listener the master serves from its poll loop, and its open
/// connections: the status listener's, and the redirect listener's.
#[derive(Debug)]
pub(super) struct Front {
    listener: Option<TcpListener>,
    pub conns: Vec<Conn>,
    /// Connections open at once; more are closed at accept.
    max: usize,
    /// Names the listener in the log.
    what: &'static str,
}

impl Front {
    pub fn new(listener: Option<TcpListener>, max: usize, what: &'static str) -> Front {
        Front {
            listener,
            conns: Vec::new(),
            max,
            what,
        }
    }

    /// Adds the sockets to watch: the listener, then each connection.
    pub fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) {
        if let Some(listener) = &self.listener {
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            fds.extend(self.conns.iter().map(Conn::poll_fd));
        }
    }

    /// When the oldest connection times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.conns.iter().map(|c| c.deadline).min()
    }

    /// After a turn of serving: closes the connections at `done` (in
    /// ascending order), then accepts what is queued if the listener was
    /// ready (`ready[0]`, as [`Front::poll_fds`] added it).
    pub fn settle(&mut self, done: Vec<usize>, ready: &[PollFlags], now: Instant) {
        for index in done.into_iter().rev() {
            self.conns.remove(index).close();
        }
        if ready.first().is_some_and(|r| !r.is_empty()) {
            self.accept(now);
        }
    }

    fn accept(&mut self, now: Instant) {
        let Some(listener) = &self.listener else {
            return;
        };
        let what = self.what;
        loop {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("{what} listener: accept: {e}");
                    return;
                }
            };
            if self.conns.len() >= self.max || stream.set_nonblocking(true).is_err() {
                log::debug!(
                    "{what} listener: {} connections open; closing one more",
                    self.max
                );
                let _ = stream.shutdown(Shutdown::Both);
                continue;
            }
            self.conns.push(Conn {
                stream,
                input: Vec::new(),
                output: None,
                written: 0,
                deadline: now + TIMEOUT,
            });
        }
    }
}

impl Conn {
    /// The poll registration: readable until the response is ready, then
    /// writable.
    pub fn poll_fd(&self) -> PollFd<'_> {
        let wanted = if self.output.is_some() {
            PollFlags::POLLOUT
        } else {
            PollFlags::POLLIN
        };
        PollFd::new(self.stream.as_fd(), wanted)
    }

    /// Reads what has arrived; `false` if the connection is done for.
    pub fn read(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let room = MAX_REQUEST - self.input.len();
                    self.input.extend_from_slice(&buf[..n.min(room)]);
                    if self.input.len() >= MAX_REQUEST {
                        return true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }

    /// Writes what it can; `false` once the response is out (or cannot be).
    pub fn write(&mut self) -> bool {
        let Some(output) = &self.output else {
            return true;
        };
        while self.written < output.len() {
            match self.stream.write(&output[self.written..]) {
                Ok(0) => return false,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        false
    }

    pub fn close(self) {
        // shutdown, not just close: workers forked while this connection
        // was open hold a copy of its descriptor.
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// What a complete request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Ask {
    Status { head: bool },
    Metrics { head: bool },
    Answer(u16, &'static str),
}

/// `None` while the head is incomplete.
fn parse(input: &[u8]) -> Option<Ask> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(input);
    match parsed {
        Ok(httparse::Status::Partial) if input.len() < MAX_REQUEST => None,
        Ok(httparse::Status::Partial) => {
            Some(Ask::Answer(431, "Request Header Fields Too Large\n"))
        }
        Err(_) => Some(Ask::Answer(400, "Bad Request\n")),
        Ok(httparse::Status::Complete(_)) => {
            let path = request.path.unwrap_or("");
            let path = path.split_once('?').map_or(path, |(p, _)| p);
            let head = match request.method {
                Some("GET") => false,
                Some("HEAD") => true,
                _ => return Some(Ask::Answer(405, "Method Not Allowed: use GET\n")),
            };
            Some(match path {
                "/_drupe/status" => Ask::Status { head },
                "/_drupe/metrics" => Ask::Metrics { head },
                _ => Ask::Answer(404, "Not Found: try /_drupe/status or /_drupe/metrics\n"),
            })
        }
    }
}

fn response(status: u16, content_type: &str, body: &str, head: bool) -> Vec<u8> {
    let reason = crate::http::reason_phrase(status);
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

impl Master {
    /// Serves the status connections; `ready` holds the poll results of
    /// the sockets [`StatusServer::poll_fds`] added, in that order.
    pub(super) fn serve_status(&mut self, ready: &[PollFlags]) {
        let now = Instant::now();
        let mut report = None;
        let mut done = Vec::new();
        for index in 0..self.status.front.conns.len() {
            // ready[0] is the listener's; connections follow in order.
            let events = ready.get(1 + index).copied().unwrap_or(PollFlags::empty());
            let conn = &mut self.status.front.conns[index];
            let mut open = now < conn.deadline;
            if open && conn.output.is_none() && !events.is_empty() {
                open = conn.read();
                if let Some(ask) = parse(&conn.input) {
                    let report = report.get_or_insert_with(|| self.report());
                    self.status.front.conns[index].output = Some(match ask {
                        Ask::Status { head } => {
                            response(200, "application/json", &report.to_json(), head)
                        }
                        Ask::Metrics { head } => response(
                            200,
                            "text/plain; version=0.0.4; charset=utf-8",
                            &report.to_prometheus(),
                            head,
                        ),
                        Ask::Answer(status, text) => {
                            response(status, "text/plain; charset=utf-8", text, false)
                        }
                    });
                    open = true;
                }
            }
            let conn = &mut self.status.front.conns[index];
            if open && conn.output.is_some() {
                open = conn.write();
            }
            if !open {
                done.push(index);
            }
        }
        self.status.front.settle(done, ready, now);
    }

    /// A snapshot of the workers and the request counts.
    fn report(&self) -> Report {
        let now = Instant::now();
        let mut workers: Vec<WorkerRow> = self
            .pool
            .table
            .workers
            .iter()
            .map(|w| WorkerRow {
                pid: w.pid.as_raw(),
                generation: w.generation,
                state: match w.state() {
                    State::Starting => "starting",
                    State::Ready => "ready",
                    State::Stopping { .. } => "stopping",
                },
                requests: w
                    .board
                    .map_or(0, |slot| self.pool.board.requests_served(slot)),
                uptime: now.duration_since(w.started),
                restarts: w.restarts,
            })
            .collect();
        workers.sort_by_key(|w| w.pid);
        let mut unrouted = self.status.retired.clone();
        let mut plugins = self.status.retired_plugins.clone();
        for slot in self.pool.table.workers.iter().filter_map(|w| w.board) {
            if self.pool.board.state(slot) == scoreboard::STATE_FREE {
                continue;
            }
            let (u, p) = self.pool.board.stats().worker_totals(slot);
            unrouted.add(&u);
            for (name, totals) in p {
                plugins.entry(name).or_default().add(&totals);
            }
        }
        Report {
            master_pid: std::process::id(),
            uptime: now.duration_since(self.status.started),
            generation: self.generations.current.number,
            target: self.pool.target,
            workers,
            plugins: plugins.into_iter().collect(),
            unrouted,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_routes_and_refuses_the_rest() {
        assert_eq!(parse(b"GET /_drupe/status HTTP/1.1\r\n"), None);
        assert_eq!(
            parse(b"GET /_drupe/status HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Ask::Status { head: false })
        );
        assert_eq!(
            parse(b"HEAD /_drupe/metrics?x=1 HTTP/1.0\r\n\r\n"),
            Some(Ask::Metrics { head: true })
        );
        assert!(matches!(
            parse(b"POST /_drupe/status HTTP/1.1\r\n\r\n"),
            Some(Ask::Answer(405, _))
        ));
        assert!(matches!(
            parse(b"GET /hello HTTP/1.1\r\n\r\n"),
            Some(Ask::Answer(404, _))
        ));
        assert!(matches!(
            parse(b"\x01\x02 nonsense\r\n\r\n"),
            Some(Ask::Answer(400, _))
        ));
        let long = [b'a'; MAX_REQUEST];
        let mut head = b"GET /_drupe/status HTTP/1.1\r\nX: ".to_vec();
        head.extend_from_slice(&long[..MAX_REQUEST - head.len()]);
        assert!(matches!(parse(&head), Some(Ask::Answer(431, _))));
    }

    #[test]
    fn responses_close_and_head_has_no_body() {
        let full = String::from_utf8(response(200, "application/json", "{}", false)).unwrap();
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(full.contains("Content-Length: 2\r\n") && full.contains("Connection: close\r\n"));
        assert!(full.ends_with("\r\n\r\n{}"));
        let head = String::from_utf8(response(200, "application/json", "{}", true)).unwrap();
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 2\r\n"));
        let refused = String::from_utf8(response(405, "text/plain", "x", false)).unwrap();
        assert!(refused.contains("Allow: GET, HEAD\r\n"));
    }
}
