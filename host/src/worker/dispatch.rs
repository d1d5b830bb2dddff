//! From a parsed request to response bytes: the routing decision, then
//! either an answer the host gives itself ([`answer`]: 400, `OPTIONS *`,
//! 404 or the index page, 405; [`reserved`]: paths under `/_drupe/`, which
//! never reach a plugin) or the plugin call.
//!
//! [`answer`]: super::answer
//! [`reserved`]: super::reserved
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

use super::answer::{self, Sent};
use super::body_out::{self, BodyOut};
use super::reserved;
use super::static_files::{self, Statics};
use crate::board::scoreboard::{self, Ended};
use crate::board::stats;
use crate::http::{self, Head, WriteOpts};
use crate::plugin::routes::{self, Endpoint, Lookup};
use crate::plugin::PluginSet;
use crate::store::{CallStore, Op, Reply, StoreError};
use crate::sys::bodies::PluginReader;
use crate::sys::dl::CallSink;
use crate::worker::link::Tracker;
use crate::worker::origin::Client;
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
    /// A body that is not `body`: a file or a stream (ABI 1.4).
    source: Option<Source>,
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
        self.source = None;
    }
}

/// Where a plugin's body comes from when it is not in memory.
#[derive(Debug)]
enum Source {
    /// `Response::file`: the path, opened once the handler returned.
    File(std::path::PathBuf),
    /// `Response::stream`: the reader and the length, if known.
    Stream(PluginReader, Option<u64>),
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
        self.store.execute(op)
    }

    fn respond_file(&mut self, path: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        self.body.clear();
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        self.source = Some(Source::File(path.to_owned()));
        true
    }

    fn respond_stream(&mut self, reader: PluginReader, len: Option<u64>) -> bool {
        self.body.clear();
        self.source = Some(Source::Stream(reader, len));
        true
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
    count_unrouted(sent.status);
    sent
}

/// Counts an answer no plugin was asked for: the host's own pages, and
/// requests the HTTP layer refused (400, 408, 413, …).
pub fn count_unrouted(status: u16) {
    track(|t| t.stats().record(stats::UNROUTED, status, None));
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
    /// Who sent it: address and scheme (see `origin`).
    pub client: &'a Client<'a>,
    /// Whether the connection stays open after this response.
    pub keep_alive: bool,
    /// The connection is TLS (see `expiry`: no plaintext into it).
    pub tls: bool,
    /// The connection's descriptor, published for the duration of the
    /// plugin call (see `expiry`).
    pub fd: i32,
    /// The spool file holding `body` when it was larger than
    /// `bodyMemory`, else -1.
    pub body_fd: i32,
}

/// Serves one request and appends the complete response to `out`: a page
/// the host answers itself ([`answer`], [`reserved`]) or the plugin call.
///
/// [`answer`]: super::answer
/// [`reserved`]: super::reserved
///
/// A body that does not fit the output buffer (a file, a stream) goes to
/// `tail`, which the connection sends after `out`.
pub fn respond(
    plugins: &PluginSet,
    statics: &Statics,
    ex: &Exchange<'_>,
    out: &mut Vec<u8>,
    tail: &mut Option<BodyOut>,
) -> Sent {
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
        return unrouted(answer::bad_encoding(out, opts));
    };
    if reserved::claims(path) {
        return unrouted(reserved::answer(method, path, host_draining(), out, opts));
    }
    if let Some(page) = &plugins.dev_error_page {
        if let Some(sent) = answer::dev_error_page(page, out, opts) {
            return unrouted(sent);
        }
    }
    if statics.claims(path) {
        return unrouted(statics.serve(method, path, ex, opts, out, tail));
    }
    if path == "*" {
        return unrouted(answer::server_options(
            &plugins.router.server_allow(),
            out,
            opts,
        ));
    }
    match plugins.router.lookup(method, path) {
        Lookup::Found { endpoint, values } => {
            let routed = Routed {
                ex,
                method,
                path,
                opts,
            };
            call_plugin(plugins, endpoint, &values, &routed, out, tail)
        }
        Lookup::NotFound => unrouted(answer::not_found(
            plugins.index_page.as_deref(),
            method,
            path,
            out,
            opts,
        )),
        Lookup::Refused(why) => {
            log::debug!("{}: 400 {why}", ex.client.addr);
            unrouted(answer::refused(out, opts))
        }
        Lookup::MethodNotAllowed(allow) => unrouted(answer::method_not_allowed(&allow, out, opts)),
    }
}

/// A request on its way to a plugin: method and path are UTF-8.
struct Routed<'a> {
    ex: &'a Exchange<'a>,
    method: &'a str,
    path: &'a str,
    opts: WriteOpts,
}

/// Calls the plugin behind `endpoint` and writes its response (or a 500 if
/// it failed), counting the call for the scoreboard and the statistics.
// Inlined: one call site, on every request a plugin answers.
#[inline]
fn call_plugin(
    plugins: &PluginSet,
    endpoint: &Endpoint,
    values: &[String],
    req: &Routed<'_>,
    out: &mut Vec<u8>,
    tail: &mut Option<BodyOut>,
) -> Sent {
    let ex = req.ex;
    let plugin = &plugins.plugins[endpoint.target.plugin];
    SCRATCH.with(|scratch| {
        let scratch = &mut *scratch.borrow_mut();
        let request = scratch.request(endpoint, values, req);
        scratch.call.store.begin(
            &plugin.store_namespace,
            ex.head.headers(ex.buf),
            ex.client.secure,
        );
        // A TLS connection is published as `!fd` (negative): `expiry` must
        // not write a plaintext 504 into it.
        let fd = if ex.tls { !ex.fd } else { ex.fd };
        let began = track(|t| {
            t.slot()
                .begin(req.method.as_bytes(), req.path.as_bytes(), fd)
        });
        let outcome = plugin
            .entry
            .handle(endpoint.target.route, &request, &mut scratch.call);
        // The session cookie, as the call left it (created, regenerated,
        // destroyed): one header, whatever the plugin did in between.
        if let Some(cookie) = scratch.call.store.take_set_cookie() {
            scratch.call.add_header(b"Set-Cookie", cookie.as_bytes());
        }
        let (ended, handler_us) = track(|t| {
            let ended = t.slot().end();
            (
                ended,
                scoreboard::now_us().saturating_sub(began.unwrap_or(0)),
            )
        })
        .unzip();
        let sent = match (ended, failure(outcome, &scratch.call)) {
            // Past requestTimeout: the client was promised a 504 and gets
            // nothing else (see `expiry`).
            (Some(Ended::Expired), _) => answer::timed_out(out),
            (Some(Ended::Answered), _) => Sent {
                closes: true,
                ..Sent::new(504, 0)
            },
            (_, None) => write_call(&mut scratch.call, req, out, tail),
            (_, Some(why)) => {
                log::error!(
                    "plugin `{}` (route {} {}) {why} on {} {}; answered 500",
                    plugin.decl.name,
                    endpoint.shown_method(),
                    routes::shown_path(&endpoint.pattern),
                    req.method,
                    String::from_utf8_lossy(ex.head.target(ex.buf))
                );
                answer::plugin_failed(out, req.opts)
            }
        };
        // A file or stream the answer did not use (a 500, a 504) is
        // closed now, not at the next call.
        scratch.call.source = None;
        let entry = 1 + endpoint.target.plugin;
        track(|t| t.stats().record(entry, sent.status, handler_us));
        sent
    })
}

impl Scratch {
    /// Resets the call state and lays out the request the plugin reads:
    /// its header and parameter tables live in `self` until the next call.
    fn request(
        &mut self,
        endpoint: &Endpoint,
        values: &[String],
        req: &Routed<'_>,
    ) -> abi::Request {
        let Routed {
            ex, method, path, ..
        } = *req;
        self.call.reset();
        self.headers.clear();
        self.headers
            .extend(ex.head.headers(ex.buf).map(|(k, v)| KeyValue {
                key: Bytes::new(k),
                value: Bytes::new(v),
            }));
        self.params.clear();
        self.params
            .extend(endpoint.params.iter().zip(values).map(|(k, v)| KeyValue {
                key: Bytes::from_str(k),
                value: Bytes::from_str(v),
            }));
        abi::Request {
            size: std::mem::size_of::<abi::Request>(),
            method: Bytes::from_str(method),
            target: Bytes::new(ex.head.target(ex.buf)),
            script_name: Bytes::from_str(&endpoint.mount),
            path_info: Bytes::from_str(&path[endpoint.mount.len().min(path.len())..]),
            query: Bytes::new(ex.head.query(ex.buf)),
            http_minor: ex.head.http_minor,
            headers: self.headers.as_ptr(),
            header_count: self.headers.len(),
            params: self.params.as_ptr(),
            param_count: self.params.len(),
            body: Bytes::new(ex.body),
            remote_addr: Bytes::from_str(&ex.client.addr),
            scheme: Bytes::from_str(ex.client.scheme()),
            body_fd: ex.body_fd,
        }
    }
}

/// Writes the response a plugin built: status, headers and a body in
/// memory, a file or a stream.
fn write_call(
    call: &mut CallState,
    req: &Routed<'_>,
    out: &mut Vec<u8>,
    tail: &mut Option<BodyOut>,
) -> Sent {
    let opts = req.opts;
    match call.source.take() {
        Some(Source::File(path)) => {
            static_files::respond_file(&path, call.status, &call.headers, req.ex, opts, out, tail)
        }
        Some(Source::Stream(reader, len)) => {
            body_out::start_stream(reader, len, call.status, &call.headers, opts, out, tail)
        }
        None => {
            http::write_head(out, call.status, &call.headers, call.body.len(), opts);
            if http::body_allowed(call.status, opts.head_request) {
                out.extend_from_slice(&call.body);
            }
            Sent::new(call.status, call.body.len())
        }
    }
}

/// Why a plugin call's result cannot be sent, if it cannot: the plugin
/// failed or panicked, refused a header, or set a status that is not a
/// final one (1xx, or anything outside 100–599).
fn failure(outcome: abi::Outcome, call: &CallState) -> Option<String> {
    match outcome {
        abi::OUTCOME_OK if (200..=599).contains(&call.status) => None,
        // RFC 9110 §15: a status code is three digits, and the first one
        // (1–5) is its class; a client cannot know what to make of any
        // other, and 1xx is never the final answer.
        abi::OUTCOME_OK if (100..=199).contains(&call.status) => Some(format!(
            "answered with status {}, which is not a final status",
            call.status
        )),
        abi::OUTCOME_OK => Some(format!(
            "answered with status {}, which is outside 100-599",
            call.status
        )),
        abi::OUTCOME_PANICKED => Some("panicked".to_owned()),
        _ => Some(match &call.refused {
            Some(header) => format!("tried to send an invalid or host-managed header {header}"),
            None => format!("failed (outcome {outcome})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(status: u16, refused: Option<&str>) -> CallState {
        CallState {
            status,
            refused: refused.map(str::to_owned),
            ..CallState::default()
        }
    }

    #[test]
    fn a_call_is_sent_only_with_a_final_status_from_100_to_599() {
        assert_eq!(failure(abi::OUTCOME_OK, &call(200, None)), None);
        assert_eq!(failure(abi::OUTCOME_OK, &call(599, None)), None);
        let why = failure(abi::OUTCOME_OK, &call(101, None)).unwrap_or_default();
        assert!(why.contains("status 101"), "{why}");
        for status in [0, 99, 600, 999] {
            let why = failure(abi::OUTCOME_OK, &call(status, None)).unwrap_or_default();
            assert!(
                why.contains(&format!("status {status}, which is outside")),
                "{why}"
            );
        }
        assert_eq!(
            failure(abi::OUTCOME_PANICKED, &call(200, None)).as_deref(),
            Some("panicked")
        );
        let why = failure(abi::OUTCOME_ERROR, &call(200, Some("\"X\": \"y\""))).unwrap_or_default();
        assert!(why.contains("host-managed header \"X\""), "{why}");
        let why = failure(abi::OUTCOME_ERROR, &call(200, None)).unwrap_or_default();
        assert!(why.starts_with("failed (outcome"), "{why}");
    }
}
