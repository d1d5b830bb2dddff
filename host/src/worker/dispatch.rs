//! From a parsed request to response bytes: route lookup, the plugin call,
//! and the 404 / 405 / 500 answers the host gives itself. Paths under
//! `/_drupe/` are the host's own and never reach a plugin ([`reserved`]).
//!
//! [`reserved`]: super::reserved
//!
//! When no route matches `GET /` and `[server] showIndex` is on, the
//! answer is the index page (`plugin::index`), built at load time.
//!
//! The response a plugin builds arrives through the host callbacks into a
//! per-thread [`CallState`], whose buffers are reused from request to
//! request; the bytes then go straight into the connection's output buffer.
//! Store and session calls go to the `CallState`'s [`CallStore`], which
//! knows which plugin is being called and which session cookie came along.
//!
//! Around each plugin call the thread marks itself busy in its scoreboard
//! slot ([`attach`]), so the master can kill a worker whose handler runs
//! past `requestTimeout`, and it counts every request for `maxRequests`
//! and, by plugin, status class and handler time, for the status listener
//! (`board::stats`: plain stores to this thread's own counters).

use crate::board::scoreboard;
use crate::board::stats;
use crate::http::{self, Head, WriteOpts};
use crate::plugin::routes::Lookup;
use crate::plugin::PluginSet;
use crate::store::{CallStore, Op, Reply, StoreError};
use crate::sys::dl::CallSink;
use crate::worker::link::Tracker;
use drupe_sdk::abi::{self, Bytes, KeyValue};
use std::cell::{OnceCell, RefCell};

/// What a plugin builds during one call; reused across calls on a thread.
#[derive(Debug, Default)]
pub struct CallState {
    status: u16,
    /// Serialised `Name: value\r\n` lines, validated on the way in.
    headers: Vec<u8>,
    body: Vec<u8>,
    /// The first header the plugin tried that the host refused, for the log.
    refused: Option<String>,
    /// The plugin's namespace and the request's session.
    store: CallStore,
}

impl CallState {
    fn reset(&mut self) {
        self.status = 200;
        self.headers.clear();
        self.body.clear();
        if self.body.capacity() > 64 * 1024 {
            self.body = Vec::new(); // one large response is no reason to keep its memory
        }
        self.refused = None;
    }
}

impl CallSink for CallState {
    fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    fn add_header(&mut self, name: &[u8], value: &[u8]) -> bool {
        // A plugin can never inject a header line or take over framing,
        // whatever it was fed (RFC 9110 §5.1 token, §5.5 field value).
        if !http::valid_header_name(name)
            || !http::valid_header_value(value)
            || http::host_managed_header(name)
        {
            if self.refused.is_none() {
                self.refused = Some(format!(
                    "{:?}: {:?}",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(value)
                ));
            }
            return false;
        }
        self.headers.extend_from_slice(name);
        self.headers.extend_from_slice(b": ");
        self.headers.extend_from_slice(value);
        self.headers.extend_from_slice(b"\r\n");
        true
    }

    fn append_body(&mut self, data: &[u8]) {
        self.body.extend_from_slice(data);
    }

    fn store(&mut self, op: Op<'_>) -> Result<Reply, StoreError> {
        let reply = self.store.execute(op);
        // A write that created the session succeeded: it exists in the
        // store from now on, and the visitor learns its id from this
        // response. (After a failed write the id waits for one that works.)
        if reply.is_ok() {
            if let Some(id) = self.store.take_created() {
                self.add_header(b"Set-Cookie", id.set_cookie().as_bytes());
            }
        }
        reply
    }
}

/// Per-thread scratch space, so the hot path allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    call: CallState,
    headers: Vec<KeyValue>,
    params: Vec<KeyValue>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    static TRACKER: OnceCell<Tracker> = const { OnceCell::new() };
}

/// Gives the calling handler thread its scoreboard slot (once, before it
/// serves).
pub fn attach(tracker: Option<Tracker>) {
    if let Some(tracker) = tracker {
        TRACKER.with(|t| {
            let _ = t.set(tracker);
        });
    }
}

fn track<R>(f: impl FnOnce(&Tracker) -> R) -> Option<R> {
    TRACKER.with(|t| t.get().map(f))
}

/// Counts an answer the host gave without a plugin.
fn unrouted(sent: Sent) -> Sent {
    track(|t| t.stats().record(stats::UNROUTED, sent.status, None));
    sent
}

/// Whether the master is stopping this host (see `reserved`).
fn host_draining() -> bool {
    TRACKER.with(|t| t.get().is_some_and(Tracker::host_draining))
}

/// One request, parsed and with its body complete.
#[derive(Debug)]
pub struct Exchange<'a> {
    pub buf: &'a [u8],
    pub head: &'a Head,
    pub body: &'a [u8],
    pub peer: &'a str,
    /// Whether the connection stays open after this response.
    pub keep_alive: bool,
}

/// What was answered, for the access log.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub status: u16,
    pub body_bytes: usize,
}

/// Serves one request and appends the complete response to `out`.
pub fn respond(plugins: &PluginSet, ex: &Exchange<'_>, out: &mut Vec<u8>) -> Sent {
    track(|t| t.slot().count());
    let opts = WriteOpts {
        http_minor: ex.head.http_minor,
        keep_alive: ex.keep_alive,
        head_request: ex.head.is_head,
    };
    let (Ok(method), Ok(path)) = (
        std::str::from_utf8(ex.head.method(ex.buf)),
        std::str::from_utf8(ex.head.path(ex.buf)),
    ) else {
        let sent = simple(out, 400, b"", b"Bad Request: the path is not UTF-8\n", opts);
        return unrouted(sent);
    };
    if super::reserved::claims(path) {
        return unrouted(super::reserved::answer(
            method,
            path,
            host_draining(),
            out,
            opts,
        ));
    }
    // asterisk-form: the parser allows it only for OPTIONS (RFC 9112
    // §3.2.4). Asking about the server as a whole is answered by the host:
    // the methods some route takes (RFC 9110 §9.3.7).
    if path == "*" {
        let allow = plugins.router.server_allow();
        let mut header = Vec::with_capacity(allow.len() + 9);
        header.extend_from_slice(b"Allow: ");
        header.extend_from_slice(allow.as_bytes());
        header.extend_from_slice(b"\r\n");
        http::write_head(out, 200, &header, 0, opts);
        return unrouted(Sent {
            status: 200,
            body_bytes: 0,
        });
    }
    match plugins.router.lookup(method, path) {
        Lookup::NotFound => unrouted(match &plugins.index_page {
            Some(page) if path == "/" && matches!(method, "GET" | "HEAD") => {
                http::write_head(
                    out,
                    200,
                    b"Content-Type: text/html; charset=utf-8\r\n",
                    page.len(),
                    opts,
                );
                if !opts.head_request {
                    out.extend_from_slice(page);
                }
                Sent {
                    status: 200,
                    body_bytes: page.len(),
                }
            }
            _ => simple(out, 404, b"", b"Not Found\n", opts),
        }),
        Lookup::Refused(why) => {
            log::debug!("{}: 400 {why}", ex.peer);
            unrouted(simple(
                out,
                400,
                b"",
                b"Bad Request: invalid path parameter\n",
                opts,
            ))
        }
        Lookup::MethodNotAllowed(allow) => {
            let mut header = Vec::with_capacity(allow.len() + 9);
            header.extend_from_slice(b"Allow: ");
            header.extend_from_slice(allow.as_bytes());
            header.extend_from_slice(b"\r\n");
            unrouted(simple(out, 405, &header, b"Method Not Allowed\n", opts))
        }
        Lookup::Found { endpoint, values } => {
            let plugin = &plugins.plugins[endpoint.target.plugin];
            let path_info = &path[endpoint.mount.len().min(path.len())..];
            SCRATCH.with(|scratch| {
                let scratch = &mut *scratch.borrow_mut();
                scratch.call.reset();
                scratch.headers.clear();
                scratch
                    .headers
                    .extend(ex.head.headers(ex.buf).map(|(k, v)| KeyValue {
                        key: Bytes::new(k),
                        value: Bytes::new(v),
                    }));
                scratch.params.clear();
                scratch
                    .params
                    .extend(endpoint.params.iter().zip(&values).map(|(k, v)| KeyValue {
                        key: Bytes::from_str(k),
                        value: Bytes::from_str(v),
                    }));
                let request = abi::Request {
                    size: std::mem::size_of::<abi::Request>(),
                    method: Bytes::from_str(method),
                    target: Bytes::new(ex.head.target(ex.buf)),
                    script_name: Bytes::from_str(&endpoint.mount),
                    path_info: Bytes::from_str(path_info),
                    query: Bytes::new(ex.head.query(ex.buf)),
                    http_minor: ex.head.http_minor,
                    headers: scratch.headers.as_ptr(),
                    header_count: scratch.headers.len(),
                    params: scratch.params.as_ptr(),
                    param_count: scratch.params.len(),
                    body: Bytes::new(ex.body),
                    remote_addr: Bytes::from_str(ex.peer),
                };
                scratch
                    .call
                    .store
                    .begin(&plugin.decl.name, ex.head.headers(ex.buf));
                let began = track(|t| t.slot().begin(method.as_bytes(), path.as_bytes()));
                let outcome =
                    plugin
                        .entry
                        .handle(endpoint.target.route, &request, &mut scratch.call);
                let handler_us = track(|t| {
                    t.slot().end();
                    scoreboard::now_us().saturating_sub(began.unwrap_or(0))
                });
                let call = &scratch.call;
                let failure = match outcome {
                    abi::OUTCOME_OK if (200..=999).contains(&call.status) => None,
                    abi::OUTCOME_OK => Some(format!(
                        "answered with status {}, which is not a final status",
                        call.status
                    )),
                    abi::OUTCOME_PANICKED => Some("panicked".to_owned()),
                    _ => Some(match &call.refused {
                        Some(header) => {
                            format!("tried to send an invalid or host-managed header {header}")
                        }
                        None => format!("failed (outcome {outcome})"),
                    }),
                };
                let sent = match failure {
                    None => {
                        http::write_head(out, call.status, &call.headers, call.body.len(), opts);
                        if http::body_allowed(call.status, opts.head_request) {
                            out.extend_from_slice(&call.body);
                        }
                        Sent {
                            status: call.status,
                            body_bytes: call.body.len(),
                        }
                    }
                    Some(why) => {
                        log::error!(
                            "plugin `{}` {why} on {method} {}; answered 500",
                            plugin.decl.name,
                            String::from_utf8_lossy(ex.head.target(ex.buf))
                        );
                        simple(out, 500, b"", b"Internal Server Error\n", opts)
                    }
                };
                let entry = 1 + endpoint.target.plugin;
                track(|t| t.stats().record(entry, sent.status, handler_us));
                sent
            })
        }
    }
}

/// A response the host makes itself, `text/plain`.
pub(super) fn simple(
    out: &mut Vec<u8>,
    status: u16,
    extra_headers: &[u8],
    body: &[u8],
    opts: WriteOpts,
) -> Sent {
    let mut headers = Vec::with_capacity(extra_headers.len() + 48);
    headers.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    headers.extend_from_slice(extra_headers);
    http::write_head(out, status, &headers, body.len(), opts);
    if http::body_allowed(status, opts.head_request) {
        out.extend_from_slice(body);
    }
    Sent {
        status,
        body_bytes: body.len(),
    }
}
