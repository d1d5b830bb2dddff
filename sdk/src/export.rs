//! The shims behind a plugin's C entry points.
//!
//! `plugin!` (in the submodule `macros`) generates only thin `extern "C"`
//! functions and the `static` declaration the host reads; everything they
//! do is here, written once:
//! check what the host passed, catch every panic before it reaches the
//! boundary, and turn a handler's [`Response`] or [`Error`](crate::Error) into `HostApi`
//! callbacks. Nothing in this module is meant to be called by hand.
//!
//! State lives in one `static` per plugin (each plugin `.so` links its own
//! copy of the SDK): the copied `HostApi`, the plugin name and its settings,
//! set by `init` and read by every request afterwards. Store and session
//! calls go through the submodule `store`.

#![allow(unsafe_code)] // the C entry points: raw pointers by definition

mod bodies;
mod macros;
mod panic;
pub(crate) mod store;

use std::borrow::Cow;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::abi::{self, Bytes, Call, HostApi, KeyValue, LogLevel, OutBuf, Outcome};
use crate::context::{Backend, Context, Settings, State};
use crate::error::{Error, Result};
use crate::layer::Next;
pub use crate::layer::{Handler, Layer};
use crate::request::Request;
use crate::response::Response;
pub use macros::{pattern_problem, plugin_name, route_handler, route_method, route_pattern};
use panic::{panic_location, panic_message, quiet_panics};

/// Builds the plugin's state from its settings: the user's `init`, if
/// any, with what it returns boxed (`()` or the `state:` type).
pub type InitFn = fn(&Settings) -> std::result::Result<Box<State>, String>;

/// Everything one `plugin!` declares, in Rust types: what the shims serve
/// and what [`TestApp`](crate::testing::TestApp) runs in a unit test.
pub struct Plugin {
    /// The checked name.
    pub name: &'static str,
    /// The routes, in the order of `handlers`.
    pub routes: &'static [abi::RouteDecl],
    /// One (wrapped) handler per route.
    pub handlers: &'static [Handler],
    /// Outermost first.
    pub layers: &'static [Layer],
    /// Builds the state.
    pub init: InitFn,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("routes", &self.routes.len())
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Method and pattern of every route, in order.
    pub(crate) fn route_strs(&self) -> Vec<(&'static str, &'static str)> {
        let text = |b: Bytes| {
            // SAFETY: `plugin!` builds every `RouteDecl` of a `Plugin` with
            // `Bytes::from_str` of a `&'static str` (the fields are public
            // only for the macro), so the bytes are static UTF-8.
            let bytes: &'static [u8] = unsafe { b.as_slice() };
            std::str::from_utf8(bytes).unwrap_or("")
        };
        self.routes
            .iter()
            .map(|r| (text(r.method), text(r.pattern)))
            .collect()
    }

    /// Runs `handler` inside this plugin's layers.
    pub(crate) fn run(
        &self,
        handler: Handler,
        req: &Request<'_>,
        ctx: &mut Context<'_>,
    ) -> Result<Response> {
        Next::new(self.layers, handler).run(req, ctx)
    }
}

/// Runs a handler and turns its `Err` into the response the client gets
/// (`log` receives a server error), then writes its cookies for the
/// request's scheme. The one path from handler to response, for worker
/// and tests.
pub(crate) fn respond(
    req: &Request<'_>,
    ctx: &mut Context<'_>,
    handler: impl FnOnce(&Request<'_>, &mut Context<'_>) -> Result<Response>,
    log: impl FnOnce(&Error),
) -> Response {
    let response = match handler(req, ctx) {
        Ok(response) => response,
        Err(e) => {
            if e.is_server_error() {
                log(&e);
            }
            e.into_response_for(req)
        }
    };
    response.finish(req.scheme() == "https")
}

/// The SDK's own version, recorded in every [`abi::PluginDecl`].
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything `init` learned, for the life of the worker process.
struct Runtime {
    name: &'static str,
    /// A copy, so nothing depends on how long the host keeps its table.
    host: HostApi,
    settings: Settings,
}

/// Set once by [`init_shim`]; per plugin, since every `.so` has its own SDK.
static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// What the plugin's `init` built; set once `init` succeeded.
static STATE: OnceLock<Box<State>> = OnceLock::new();

impl Runtime {
    /// Writes one record to the host's error log.
    fn log(&self, level: LogLevel, message: &str) {
        // SAFETY: `log` comes from a `HostApi` that `init_shim` checked; host
        // functions live as long as the process. Both `Bytes` borrow data
        // that outlives the call.
        unsafe {
            (self.host.log)(level, Bytes::from_str(self.name), Bytes::from_str(message));
        }
    }
}

/// Forwards `log::info!` and friends in plugin code to the host's log. The
/// host filters by level; the ABI does not tell the plugin its level.
impl log::Log for Runtime {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Error => abi::LOG_ERROR,
            log::Level::Warn => abi::LOG_WARN,
            log::Level::Info => abi::LOG_INFO,
            log::Level::Debug => abi::LOG_DEBUG,
            log::Level::Trace => abi::LOG_TRACE,
        };
        let message = match record.args().as_str() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(record.args().to_string()),
        };
        Runtime::log(self, level, &message);
    }

    fn flush(&self) {}
}

/// Body of the generated `init`.
///
/// # Safety
/// `host` must be null or point to a `HostApi` whose `size` and
/// `abi_major` can be read; `settings` must be null or point to
/// `settings_len` [`KeyValue`]s valid for this call; `error.write` must
/// accept `error.target`. [`abi::PluginDecl::init`] promises all of that.
#[doc(hidden)]
pub unsafe fn init_shim(
    plugin: &'static Plugin,
    host: *const HostApi,
    settings: *const KeyValue,
    settings_len: usize,
    error: OutBuf,
) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded from this function's own contract.
        let runtime = unsafe { start(plugin.name, host, settings, settings_len) }?;
        let state = (plugin.init)(&runtime.settings)?;
        // `start` refuses a second `init`, so this is the first state.
        let _ = STATE.set(state);
        Ok(())
    }));
    let message = match result {
        Ok(Ok(())) => return abi::OUTCOME_OK,
        Ok(Err(message)) => message,
        Err(payload) => format!(
            "init panicked{}: {}",
            panic_location(),
            panic_message(&*payload)
        ),
    };
    // SAFETY: the host provides `error` for this call; the bytes borrow
    // `message`, which outlives it.
    unsafe { (error.write)(error.target, Bytes::from_str(&message)) };
    abi::OUTCOME_ERROR
}

/// Checks and copies what the host passed to `init`, fills [`RUNTIME`] and
/// installs the logger.
///
/// # Safety
/// As for [`init_shim`].
unsafe fn start(
    name: &'static str,
    host: *const HostApi,
    settings: *const KeyValue,
    settings_len: usize,
) -> std::result::Result<&'static Runtime, String> {
    if host.is_null() {
        return Err("the host passed no HostApi".to_owned());
    }
    // SAFETY: not null; `size` and `abi_major` exist in every version of
    // the table, so reading them is valid whatever the host's minor.
    let (size, major, minor) = unsafe { ((*host).size, (*host).abi_major, (*host).abi_minor) };
    if major != abi::ABI_MAJOR {
        return Err(format!(
            "plugin `{name}` needs host ABI {}.x but the host has {major}.{minor}; \
             rebuild the plugin against the host's drupe-sdk",
            abi::ABI_MAJOR
        ));
    }
    if size < abi::HOST_API_V1_0_SIZE {
        return Err(format!(
            "plugin `{name}` needs host ABI {}.0 but the host's table has only {size} bytes \
             (ABI {major}.{minor}); upgrade drupe",
            abi::ABI_MAJOR
        ));
    }
    // SAFETY: the table holds at least `size` bytes, and `size` covers ABI
    // 1.0 (checked above); see `copy_host`.
    let host = unsafe { copy_host(host, size) };

    if settings.is_null() && settings_len > 0 {
        return Err("the host passed a null settings array".to_owned());
    }
    let mut owned = Settings::default();
    if settings_len > 0 {
        // SAFETY: non-null (checked) and valid for `settings_len` entries
        // during this call, whose `Bytes` are valid too, by the contract;
        // everything is copied before returning.
        let pairs = unsafe { std::slice::from_raw_parts(settings, settings_len) };
        for kv in pairs {
            // SAFETY: as above.
            let (key, value) = unsafe { (kv.key.as_slice(), kv.value.as_slice()) };
            owned.push(
                String::from_utf8_lossy(key).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            );
        }
    }

    let mut fresh = false;
    let runtime = RUNTIME.get_or_init(|| {
        fresh = true;
        Runtime {
            name,
            host,
            settings: owned,
        }
    });
    if !fresh {
        return Err(format!(
            "plugin `{name}`: init was called twice in one process"
        ));
    }
    // A plugin that installed its own logger keeps it.
    if log::set_logger(runtime).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    quiet_panics();
    Ok(runtime)
}

/// Copies the host's table. A table from an older minor is shorter: the
/// fields it lacks become `None`, so calling them fails with a message
/// instead of reading past the host's table.
///
/// # Safety
/// `host` must point to a `HostApi` of at least `size` readable bytes, and
/// `size` must be at least [`abi::HOST_API_V1_0_SIZE`].
unsafe fn copy_host(host: *const HostApi, size: usize) -> HostApi {
    if size >= std::mem::size_of::<HostApi>() {
        // SAFETY: the whole table is there (caller); a plain read of
        // integers and function pointers.
        return unsafe { std::ptr::read(host) };
    }
    // SAFETY: the ABI 1.0 functions lie in the prefix that the caller
    // guarantees is readable; reading through `addr_of!` creates no
    // reference to the (shorter) whole struct.
    let mut copy = unsafe {
        HostApi::new(
            std::ptr::addr_of!((*host).log).read(),
            std::ptr::addr_of!((*host).set_status).read(),
            std::ptr::addr_of!((*host).add_header).read(),
            std::ptr::addr_of!((*host).append_body).read(),
        )
    };
    // Whole versions only: a size between two is read as the older one.
    let prefix = if size >= abi::HOST_API_V1_3_SIZE {
        abi::HOST_API_V1_3_SIZE
    } else if size >= abi::HOST_API_V1_1_SIZE {
        abi::HOST_API_V1_1_SIZE
    } else {
        abi::HOST_API_V1_0_SIZE
    };
    // SAFETY: `prefix` bytes are readable (at most `size`, caller) and hold
    // the fields of one whole version, laid out as in `copy`, which has
    // room for them; `copy` stays a valid table (its `size` and versions
    // are the host's, its later fields `None`).
    unsafe {
        std::ptr::copy_nonoverlapping(host.cast::<u8>(), (&raw mut copy).cast::<u8>(), prefix);
    }
    copy.size = size;
    copy
}

/// Body of the generated `handle`.
///
/// # Safety
/// `request` must be null or point to an [`abi::Request`] whose pointers
/// are valid for this call, and `call` must be the host's state for this
/// call, as [`abi::PluginDecl::handle`] promises.
#[doc(hidden)]
pub unsafe fn handle_shim(
    plugin: &Plugin,
    route: usize,
    request: *const abi::Request,
    call: *mut Call,
) -> Outcome {
    // Without `init` there is no host table, so not even a log line.
    let Some(runtime) = RUNTIME.get() else {
        return abi::OUTCOME_ERROR;
    };
    let Some(&handler) = plugin.handlers.get(route) else {
        runtime.log(
            abi::LOG_ERROR,
            &format!(
                "route {route} does not exist (the plugin declares {})",
                plugin.handlers.len()
            ),
        );
        return abi::OUTCOME_ERROR;
    };
    if request.is_null() || call.is_null() {
        runtime.log(abi::LOG_ERROR, "the host passed a null request or call");
        return abi::OUTCOME_ERROR;
    }
    // SAFETY: not null; `size` is the first field of every version.
    let size = unsafe { (*request).size };
    if size < abi::REQUEST_V1_0_SIZE {
        runtime.log(
            abi::LOG_ERROR,
            &format!(
                "the host's request has {size} bytes, fewer than ABI 1.0's {}",
                abi::REQUEST_V1_0_SIZE
            ),
        );
        return abi::OUTCOME_ERROR;
    }
    let mut whole = None;
    let raw = if size >= std::mem::size_of::<abi::Request>() {
        // SAFETY: not null and the whole struct is there (checked).
        unsafe { &*request }
    } else {
        // SAFETY: not null, and the ABI 1.0 prefix is there (checked).
        whole.insert(unsafe { older_request(request) })
    };
    // SAFETY: `raw` is a whole request whose pointers are valid for this
    // call by this function's contract.
    let req = unsafe { Request::from_raw(raw) };
    let state: &State = STATE.get().map_or(&(), |state| &**state);

    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut ctx = Context::new(
            runtime.name,
            &runtime.settings,
            state,
            Backend::Host {
                host: &runtime.host,
                call,
            },
        );
        let serve = |req: &Request<'_>, ctx: &mut Context<'_>| plugin.run(handler, req, ctx);
        let response = respond(&req, &mut ctx, serve, |e| {
            runtime.log(
                abi::LOG_ERROR,
                &format!("{} {}: {e}", req.method(), req.target()),
            );
        });
        // SAFETY: `call` is the host's state for this call (contract).
        unsafe { send(runtime, call, &req, &response) }
    }));
    result.unwrap_or_else(|payload| {
        runtime.log(
            abi::LOG_ERROR,
            &format!(
                "{} {}: handler panicked{}: {}",
                req.method(),
                req.target(),
                panic_location(),
                panic_message(&*payload)
            ),
        );
        abi::OUTCOME_PANICKED
    })
}

/// A request from a host of ABI 1.0–1.3, shorter than this SDK's: its
/// fields copied, the later ones empty (so the scheme reads `http`, and
/// the body is in memory).
///
/// # Safety
/// `request` must point to a request of at least
/// [`abi::REQUEST_V1_0_SIZE`] readable bytes, as many as its `size` says.
unsafe fn older_request(request: *const abi::Request) -> abi::Request {
    let mut whole = abi::Request {
        size: std::mem::size_of::<abi::Request>(),
        method: Bytes::EMPTY,
        target: Bytes::EMPTY,
        script_name: Bytes::EMPTY,
        path_info: Bytes::EMPTY,
        query: Bytes::EMPTY,
        http_minor: 0,
        headers: std::ptr::null(),
        header_count: 0,
        params: std::ptr::null(),
        param_count: 0,
        body: Bytes::EMPTY,
        remote_addr: Bytes::EMPTY,
        scheme: Bytes::EMPTY,
        body_fd: -1,
    };
    // Whole versions only, as for the host's table.
    // SAFETY: reading `size`, the first field of every version.
    let prefix = if unsafe { (*request).size } >= abi::REQUEST_V1_3_SIZE {
        abi::REQUEST_V1_3_SIZE
    } else {
        abi::REQUEST_V1_0_SIZE
    };
    // SAFETY: the prefix is readable (caller) and has the same layout as
    // the start of `whole`, which has room for it; every field it
    // overwrites is plain data, valid for any bytes the host put there
    // (pointers are checked for null where read).
    unsafe {
        std::ptr::copy_nonoverlapping(request.cast::<u8>(), (&raw mut whole).cast::<u8>(), prefix);
    }
    whole
}

/// Hands a response to the host through its callbacks (the host copies).
///
/// # Safety
/// `call` must be the host's state for the current `handle` call.
unsafe fn send(
    runtime: &Runtime,
    call: *mut Call,
    req: &Request<'_>,
    response: &Response,
) -> Outcome {
    let host = &runtime.host;
    // SAFETY: here and below, the callbacks come from the checked
    // `HostApi`, `call` is valid for this call (contract), and the `Bytes`
    // borrow `response`, which outlives each callback.
    unsafe { (host.set_status)(call, response.status()) };
    for (name, value) in response.headers() {
        // SAFETY: see above.
        let outcome =
            unsafe { (host.add_header)(call, Bytes::from_str(name), Bytes::from_str(value)) };
        if outcome != abi::OUTCOME_OK {
            // The value is not logged: it may be a cookie or a token.
            runtime.log(
                abi::LOG_ERROR,
                &format!(
                    "{} {}: the host refused response header {name:?} (bad name, CR/LF/NUL in the \
                     value, or a header the host sets itself)",
                    req.method(),
                    req.target()
                ),
            );
            return abi::OUTCOME_ERROR;
        }
    }
    if let Some(source) = response.source() {
        // SAFETY: see above.
        match unsafe { bodies::hand_over(runtime, call, source) } {
            bodies::Handed::Done(outcome) => return outcome,
            bodies::Handed::Fallback(status, body) => {
                // SAFETY: see above.
                unsafe {
                    (host.set_status)(call, status);
                    (host.append_body)(call, Bytes::new(&body));
                }
                return abi::OUTCOME_OK;
            }
        }
    }
    if !response.body().is_empty() {
        // SAFETY: see above.
        unsafe { (host.append_body)(call, Bytes::new(response.body())) };
    }
    abi::OUTCOME_OK
}

/// Body of the generated `shutdown`: flushes the log.
#[doc(hidden)]
pub fn shutdown_shim() {
    let _ = catch_unwind(|| log::logger().flush());
}

/// The shims as the host sees them: through the entry point `plugin!`
/// generates, with a fake `HostApi` that records what it is told.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use core::ffi::c_void;
    use std::mem::size_of;
    use std::sync::{Mutex, Once};

    static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

    #[derive(Default)]
    struct FakeCall {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn text(b: Bytes) -> String {
        // SAFETY: the shims pass `Bytes` that are valid during the callback.
        String::from_utf8_lossy(unsafe { b.as_slice() }).into_owned()
    }

    fn fake(call: *mut Call) -> &'static mut FakeCall {
        // SAFETY: `run` passes a `*mut FakeCall` that outlives the call, and
        // the shim calls back on one thread, one callback at a time.
        unsafe { &mut *call.cast::<FakeCall>() }
    }

    unsafe extern "C" fn log(level: LogLevel, plugin: Bytes, message: Bytes) {
        let line = format!("{level} {}: {}", text(plugin), text(message));
        LOG.lock().unwrap().push(line);
    }
    unsafe extern "C" fn set_status(call: *mut Call, status: u16) {
        fake(call).status = status;
    }
    unsafe extern "C" fn add_header(call: *mut Call, name: Bytes, value: Bytes) -> Outcome {
        let value = text(value);
        if value.contains(['\r', '\n', '\0']) {
            return abi::OUTCOME_ERROR;
        }
        fake(call).headers.push((text(name), value));
        abi::OUTCOME_OK
    }
    unsafe extern "C" fn append_body(call: *mut Call, data: Bytes) {
        // SAFETY: valid during the callback.
        fake(call)
            .body
            .extend_from_slice(unsafe { data.as_slice() });
    }
    unsafe extern "C" fn write_string(target: *mut c_void, data: Bytes) {
        // SAFETY: `init` passes a `*mut String` that outlives the call.
        unsafe { &mut *target.cast::<String>() }.push_str(&text(data));
    }

    // No store: `export::store` tests the store calls with its own table.
    const HOST: HostApi = HostApi::new(log, set_status, add_header, append_body);

    struct Who(String);

    fn hello(req: &Request, ctx: &mut Context) -> Result<Response> {
        log::info!("serving {}", req.path_info());
        let who = &ctx.state::<Who>().0;
        Ok(Response::text(format!("hi {who}")).with_header("X-Route", "hello"))
    }
    fn cookie(_: &Request, _: &mut Context) -> (u16, Response) {
        (202, Response::new(200).with_cookie(Cookie::new("a", "1")))
    }
    fn tag(req: &Request, ctx: &mut Context, next: Next) -> Result<Response> {
        Ok(next.run(req, ctx)?.with_header("X-Layer", "1"))
    }
    fn fail(_: &Request, _: &mut Context) -> Result<Response> {
        Err(Error::internal("secret detail"))
    }
    fn refuse(_: &Request, _: &mut Context) -> Result<Response> {
        Err(Error::bad_request("bad input"))
    }
    fn boom(_: &Request, _: &mut Context) -> Result<Response> {
        panic!("boom in handler")
    }
    fn bad_header(_: &Request, _: &mut Context) -> Result<Response> {
        Ok(Response::text("x").with_header("X-Bad", "a\r\nInjected: 1"))
    }
    fn file(req: &Request, _: &mut Context) -> Response {
        Response::file(format!(
            "{}/{}",
            env!("CARGO_MANIFEST_DIR"),
            req.path_info()
        ))
    }
    fn init(settings: &Settings) -> std::result::Result<Who, String> {
        match settings.get("who") {
            Some(who) => Ok(Who(who.to_owned())),
            None => Err("`who` is required".to_owned()),
        }
    }

    crate::plugin! {
        name: "shimtest",
        init: init,
        state: Who,
        layers: [tag],
        routes: [
            GET "/" => hello,
            GET "/fail" => fail,
            GET "/refuse" => refuse,
            GET "/boom" => boom,
            ANY "/{*rest}" => bad_header,
            GET "/cookie" => cookie,
            GET "/file" => file,
        ],
    }

    // The entry point by its symbol, as the host finds it with `dlsym`.
    unsafe extern "C" {
        fn drupe_plugin_v1() -> *const abi::PluginDecl;
    }

    fn decl() -> &'static abi::PluginDecl {
        // SAFETY: `plugin!` above defines the symbol with this signature; it
        // returns a pointer to a static.
        unsafe { &*drupe_plugin_v1() }
    }

    fn run_init(host: *const HostApi, settings: &[(&str, &str)]) -> (Outcome, String) {
        let kv: Vec<KeyValue> = settings
            .iter()
            .map(|(k, v)| KeyValue {
                key: Bytes::from_str(k),
                value: Bytes::from_str(v),
            })
            .collect();
        let mut error = String::new();
        let out = OutBuf {
            target: (&raw mut error).cast(),
            write: write_string,
        };
        // SAFETY: every pointer is live for the call.
        let outcome = unsafe { (decl().init)(host, kv.as_ptr(), kv.len(), out) };
        (outcome, error)
    }

    /// Initialises the plugin once for the whole test binary, as a worker
    /// does once per process.
    fn ready() {
        static INIT: Once = Once::new();
        INIT.call_once(|| assert_eq!(run_init(&HOST, &[("who", "tester")]).0, abi::OUTCOME_OK));
    }

    fn handle(route: usize, path: &str) -> (Outcome, FakeCall) {
        handle_with(route, path, size_of::<abi::Request>(), "http", &[])
    }

    /// Calls `handle` as a host of request size `size` would.
    fn handle_with(
        route: usize,
        path: &str,
        size: usize,
        scheme: &str,
        headers: &[(&str, &str)],
    ) -> (Outcome, FakeCall) {
        ready();
        let headers: Vec<KeyValue> = headers
            .iter()
            .map(|(k, v)| KeyValue {
                key: Bytes::from_str(k),
                value: Bytes::from_str(v),
            })
            .collect();
        let raw = abi::Request {
            size,
            method: Bytes::from_str("GET"),
            target: Bytes::from_str(path),
            script_name: Bytes::EMPTY,
            path_info: Bytes::from_str(path),
            query: Bytes::EMPTY,
            http_minor: 1,
            headers: headers.as_ptr(),
            header_count: headers.len(),
            params: std::ptr::null(),
            param_count: 0,
            body: Bytes::EMPTY,
            remote_addr: Bytes::from_str("127.0.0.1:9"),
            scheme: Bytes::from_str(scheme),
            body_fd: -1,
        };
        let mut call = FakeCall::default();
        // SAFETY: `raw` and `call` are live for the call.
        let outcome = unsafe { (decl().handle)(route, &raw, (&raw mut call).cast()) };
        (outcome, call)
    }

    fn logged(needle: &str) -> bool {
        LOG.lock().unwrap().iter().any(|line| line.contains(needle))
    }

    #[test]
    fn declaration_describes_the_plugin() {
        let d = decl();
        assert_eq!(
            (d.magic, d.abi_major, d.abi_minor),
            (abi::MAGIC, abi::ABI_MAJOR, abi::ABI_MINOR)
        );
        assert_eq!(d.size as usize, std::mem::size_of::<abi::PluginDecl>());
        assert_eq!(text(d.name), "shimtest");
        assert_eq!(text(d.sdk_version), SDK_VERSION);
        // SAFETY: `routes`/`route_count` describe a static array.
        let routes = unsafe { std::slice::from_raw_parts(d.routes, d.route_count) };
        let routes: Vec<_> = routes
            .iter()
            .map(|r| (text(r.method), text(r.pattern)))
            .collect();
        assert_eq!(routes[0], ("GET".to_owned(), "/".to_owned()));
        assert_eq!(routes[4], ("*".to_owned(), "/{*rest}".to_owned()));
    }

    #[test]
    fn state_layers_and_any_return_type() {
        let (outcome, call) = handle(5, "/cookie");
        assert_eq!(outcome, abi::OUTCOME_OK);
        assert_eq!(call.status, 202);
        let header = |name: &str| {
            call.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("X-Layer"), Some("1"));
        assert_eq!(
            header("Set-Cookie"),
            Some("a=1; HttpOnly; SameSite=Lax; Path=/")
        );
    }

    #[test]
    fn the_scheme_reaches_cookies_and_an_older_host_means_http() {
        let secure = |size, scheme| {
            let (_, call) = handle_with(5, "/cookie", size, scheme, &[]);
            call.headers
                .iter()
                .any(|(n, v)| n == "Set-Cookie" && v.contains("; Secure"))
        };
        assert!(secure(size_of::<abi::Request>(), "https"));
        assert!(!secure(size_of::<abi::Request>(), "http"));
        // A host of ABI 1.2 passes a shorter request: no scheme field, so
        // whatever follows it in memory is not read.
        assert!(!secure(abi::REQUEST_V1_0_SIZE, "https"));
    }

    #[test]
    fn an_error_is_json_when_the_client_prefers_it() {
        let (_, call) = handle_with(
            2,
            "/refuse",
            size_of::<abi::Request>(),
            "http",
            &[("Accept", "application/json")],
        );
        assert_eq!(call.status, 400);
        assert_eq!(
            String::from_utf8_lossy(&call.body),
            r#"{"error":"bad input","status":400}"#
        );
        assert!(call
            .headers
            .contains(&("Content-Type".to_owned(), "application/json".to_owned())));
    }

    #[test]
    fn ok_response_goes_through_the_callbacks_and_log_is_forwarded() {
        let (outcome, call) = handle(0, "/");
        assert_eq!(outcome, abi::OUTCOME_OK);
        assert_eq!(call.status, 200);
        assert_eq!(call.body, b"hi tester");
        assert!(call
            .headers
            .contains(&("X-Route".to_owned(), "hello".to_owned())));
        assert!(logged(&format!("{} shimtest: serving /", abi::LOG_INFO)));
    }

    #[test]
    fn server_error_is_logged_not_sent() {
        let (outcome, call) = handle(1, "/fail");
        assert_eq!(outcome, abi::OUTCOME_OK);
        assert_eq!(
            (call.status, call.body.as_slice()),
            (500, &b"Internal Server Error"[..])
        );
        assert!(logged("GET /fail: 500 secret detail"));
    }

    #[test]
    fn client_error_message_is_sent() {
        let (_, call) = handle(2, "/refuse");
        assert_eq!(
            (call.status, call.body.as_slice()),
            (400, &b"bad input"[..])
        );
    }

    #[test]
    fn panic_is_caught_and_reported() {
        let (outcome, _) = handle(3, "/boom");
        assert_eq!(outcome, abi::OUTCOME_PANICKED);
        // The hook recorded where it happened; the shim logs both.
        assert!(logged("GET /boom: handler panicked at sdk/src/export.rs:"));
        assert!(logged(": boom in handler"));
    }

    #[test]
    fn refused_header_is_an_error() {
        let (outcome, call) = handle(4, "/bad");
        assert_eq!(outcome, abi::OUTCOME_ERROR);
        assert!(call.body.is_empty());
        assert!(logged("refused response header \"X-Bad\""));
    }

    #[test]
    fn a_host_without_respond_file_gets_the_file_read_into_the_body() {
        // `HOST` is a table without the ABI 1.4 functions.
        let (outcome, call) = handle(6, "Cargo.toml");
        assert_eq!((outcome, call.status), (abi::OUTCOME_OK, 200));
        assert!(String::from_utf8_lossy(&call.body).contains("drupe-sdk"));
        let (outcome, call) = handle(6, "no-such-file");
        assert_eq!((outcome, call.status), (abi::OUTCOME_OK, 404));
    }

    #[test]
    fn route_out_of_range_is_an_error() {
        assert_eq!(handle(9, "/").0, abi::OUTCOME_ERROR);
        assert!(logged("route 9 does not exist"));
    }

    #[test]
    fn init_rejects_bad_hosts_and_a_second_call() {
        let (outcome, error) = run_init(std::ptr::null(), &[]);
        assert_eq!(outcome, abi::OUTCOME_ERROR);
        assert!(error.contains("no HostApi"), "{error}");

        let old = HostApi {
            abi_major: abi::ABI_MAJOR + 1,
            ..HOST
        };
        let (_, error) = run_init(&old, &[]);
        assert!(error.contains("needs host ABI 1.x"), "{error}");

        let short = HostApi { size: 8, ..HOST };
        let (_, error) = run_init(&short, &[]);
        assert!(error.contains("upgrade drupe"), "{error}");

        ready();
        let (outcome, error) = run_init(&HOST, &[("who", "again")]);
        assert_eq!(outcome, abi::OUTCOME_ERROR);
        assert!(error.contains("twice"), "{error}");
    }
}
