//! The C boundary between the drupe host and a plugin `.so`.
//!
//! This module is the single definition of that boundary: the host crate
//! imports these types, the SDK's `plugin!` macro fills them in. Only
//! `#[repr(C)]` data and `extern "C"` function pointers cross, so a plugin
//! built by another rustc (or another language) works with any host of the
//! same ABI major.
//!
//! Ownership rule: whoever allocates frees. Data handed *into* a call
//! ([`Bytes`], [`Request`], [`KeyValue`]) is borrowed for the duration of
//! that call only. Data handed *out* is copied by the receiver: the response
//! through [`HostApi`] callbacks, variable-length answers (an error message,
//! a stored value) through an [`OutBuf`] that the receiver provides.
//!
//! Compatibility rule: [`PluginDecl`], [`HostApi`] and [`Request`] carry
//! their own `size`. Fields are only ever appended (bumping [`ABI_MINOR`]);
//! a reader checks `size` before it touches a field that a peer of an older
//! minor may not have. A change that is not an append bumps [`ABI_MAJOR`],
//! and the host refuses a plugin whose major differs from its own.

#![allow(unsafe_code)] // the boundary itself: raw pointers by definition

use core::ffi::c_void;
use core::marker::PhantomData;

/// First field of every [`PluginDecl`]: `b"DRUPEPLG"` as a little-endian
/// `u64`. A shared library that exports the entry symbol but not this magic
/// was not built with the drupe SDK.
pub const MAGIC: u64 = u64::from_le_bytes(*b"DRUPEPLG");

/// Incompatible changes bump this; host and plugin must agree on it.
pub const ABI_MAJOR: u16 = 1;

/// Appended fields bump this; a newer host runs an older plugin.
///
/// - 1.0: logging and response building.
/// - 1.1: the store and session functions at the end of [`HostApi`].
/// - 1.2: [`HostApi::store_call`], one entry for every store and session
///   operation, described by a [`StoreOp`]; the SDK uses only that one.
/// - 1.3: [`Request::scheme`] at the end of [`Request`].
/// - 1.4: large bodies: [`HostApi::respond_file`] and
///   [`HostApi::respond_stream`] (with [`StreamBody`]) at the end of
///   [`HostApi`]; [`Request::body_fd`] at the end of [`Request`].
pub const ABI_MINOR: u16 = 4;

/// The one symbol a plugin exports (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"drupe_plugin_v1\0";

/// The type of [`ENTRY_SYMBOL`]: returns a pointer to a `'static`
/// declaration. It must not panic, allocate or have side effects.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDecl;

/// Result of a call across the boundary.
///
/// A plain integer rather than a Rust `enum`, because an unknown
/// discriminant arriving from the other side must not be undefined
/// behaviour.
pub type Outcome = u32;
/// The call did what was asked.
pub const OUTCOME_OK: Outcome = 0;
/// The call failed; details went to the error [`OutBuf`] or the log.
pub const OUTCOME_ERROR: Outcome = 1;
/// The plugin panicked; the SDK caught it before it reached the boundary.
pub const OUTCOME_PANICKED: Outcome = 2;
/// A store call failed because the store could not be reached in time.
pub const OUTCOME_UNAVAILABLE: Outcome = 3;
/// A store or session call found nothing: no such key or field (or, for
/// delete, expire, hdel and session remove, nothing to act on). Not an
/// error.
pub const OUTCOME_NOT_FOUND: Outcome = 4;
/// A store call was sent but its answer never came (the store timed out
/// or dropped the connection after the command went out): it may or may
/// not have been applied. Hosts send it only for operations that must not
/// be repeated (an increment); a plugin built before it existed reads it,
/// like any outcome it does not know, as a generic error. Added in ABI 1.2
/// without a minor bump for that reason: no plugin can misread it.
pub const OUTCOME_UNKNOWN: Outcome = 5;

/// Log levels for [`HostApi::log`], numbered as the `log` crate numbers them.
pub type LogLevel = u32;
/// `log::Level::Error`.
pub const LOG_ERROR: LogLevel = 1;
/// `log::Level::Warn`.
pub const LOG_WARN: LogLevel = 2;
/// `log::Level::Info`.
pub const LOG_INFO: LogLevel = 3;
/// `log::Level::Debug`.
pub const LOG_DEBUG: LogLevel = 4;
/// `log::Level::Trace`.
pub const LOG_TRACE: LogLevel = 5;

/// A borrowed byte string: pointer and length, not NUL-terminated.
///
/// Valid only for the duration of the call it is passed to (or `'static`
/// when it comes from a [`PluginDecl`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Bytes {
    /// First byte; may dangle when `len` is 0, never null.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl Bytes {
    /// The empty byte string.
    pub const EMPTY: Bytes = Bytes::new(b"");

    /// Borrows a slice. The caller keeps the slice alive while the `Bytes`
    /// is in use.
    pub const fn new(slice: &[u8]) -> Bytes {
        Bytes {
            ptr: slice.as_ptr(),
            len: slice.len(),
        }
    }

    /// Borrows a string's bytes.
    pub const fn from_str(s: &str) -> Bytes {
        Bytes::new(s.as_bytes())
    }

    /// Views the bytes as a slice.
    ///
    /// # Safety
    /// `ptr` must point to `len` initialised bytes that stay valid and
    /// unmodified for `'a`, as the boundary guarantees for the duration of
    /// a call.
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller guarantees `ptr`/`len` describe live bytes.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A borrowed name/value pair: a header, a path parameter or a setting.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KeyValue {
    /// The name (for headers, as the client sent it; compare ignoring case).
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
}

/// A receiver for a variable-length answer.
///
/// The side that wants the bytes provides `write` and an opaque `target`;
/// the side that has them calls `write` (possibly several times, appending)
/// and the receiver copies. Nobody frees memory that the other side
/// allocated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OutBuf {
    /// The receiver's own state, passed back to `write`.
    pub target: *mut c_void,
    /// Appends `data` to the receiver's buffer.
    pub write: unsafe extern "C" fn(target: *mut c_void, data: Bytes),
}

/// One route a plugin serves, relative to its mount point.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RouteDecl {
    /// `GET`, `POST`, … or `*` for any method.
    pub method: Bytes,
    /// `/`, `/literal`, `/{name}`, `/{*rest}` (last segment only), combined
    /// freely: `/items/{id}/edit`.
    pub pattern: Bytes,
}

/// What [`ENTRY_SYMBOL`] returns: everything the host needs to know about a
/// plugin before it calls into it.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDecl {
    /// Always [`MAGIC`].
    pub magic: u64,
    /// The [`ABI_MAJOR`] the plugin was built with.
    pub abi_major: u16,
    /// The [`ABI_MINOR`] the plugin was built with.
    pub abi_minor: u16,
    /// `size_of::<PluginDecl>()` as the plugin saw it.
    pub size: u32,
    /// The plugin's name: `[a-z0-9_-]+`; the default mount is `/<name>`.
    pub name: Bytes,
    /// The plugin crate's version, for logs and `--check`.
    pub version: Bytes,
    /// The version of `drupe-sdk` the plugin was built with.
    pub sdk_version: Bytes,
    /// The routes, indexed by the `route` argument of `handle`.
    pub routes: *const RouteDecl,
    /// Number of routes.
    pub route_count: usize,
    /// Called once per worker process, after fork and before any request,
    /// with the `[plugin.NAME]` settings. On failure the plugin writes a
    /// message to `error` and returns [`OUTCOME_ERROR`]; the worker then
    /// refuses to start.
    pub init: unsafe extern "C" fn(
        host: *const HostApi,
        settings: *const KeyValue,
        settings_len: usize,
        error: OutBuf,
    ) -> Outcome,
    /// Serves one request on route index `route`. Called from several
    /// threads at once. The response is built through `HostApi` callbacks
    /// on `call`. Returns [`OUTCOME_PANICKED`] if the handler panicked
    /// (the host then answers 500 and discards what was built).
    pub handle:
        unsafe extern "C" fn(route: usize, request: *const Request, call: *mut Call) -> Outcome,
    /// Called once when the worker stops gracefully, after the last request.
    pub shutdown: unsafe extern "C" fn(),
}

// SAFETY: a declaration is immutable `'static` data; its raw pointers point
// at other immutable statics, so sharing it between threads is sound.
unsafe impl Sync for PluginDecl {}
// SAFETY: as above.
unsafe impl Sync for RouteDecl {}

/// A request as the host hands it to [`PluginDecl::handle`]; every field is
/// borrowed for the duration of the call.
#[repr(C)]
#[derive(Debug)]
pub struct Request {
    /// `size_of::<Request>()` as the host saw it.
    pub size: usize,
    /// The method token, e.g. `GET`.
    pub method: Bytes,
    /// The request target exactly as received (`/hello/x?y=1`).
    pub target: Bytes,
    /// The plugin's mount point (`/hello`); empty when mounted at `/`.
    pub script_name: Bytes,
    /// The path below the mount point, starting with `/` (`/x`).
    pub path_info: Bytes,
    /// The query string without `?`; empty if none.
    pub query: Bytes,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub http_minor: u8,
    /// Request headers in the order received.
    pub headers: *const KeyValue,
    /// Number of headers.
    pub header_count: usize,
    /// Path parameters (`{name}` and `{*rest}`), percent-decoded.
    pub params: *const KeyValue,
    /// Number of path parameters.
    pub param_count: usize,
    /// The whole request body, de-chunked.
    pub body: Bytes,
    /// The peer address as text (`127.0.0.1:50312`).
    pub remote_addr: Bytes,

    // ---- ABI 1.3 ----
    /// `http` or `https`: how the client reached the server (TLS, or a
    /// trusted proxy's word). A plugin reading a request of an older host
    /// (a `size` that ends before this field) takes `http`.
    pub scheme: Bytes,

    // ---- ABI 1.4 ----
    /// A descriptor of the file that holds the body when it was too large
    /// to keep in memory (`[limits] bodyMemory`), else -1. `body` then
    /// maps that file; reading the descriptor with `pread` (never moving
    /// its offset) is the way to read a large body without making the
    /// whole of it resident. Borrowed for the call, like every field.
    pub body_fd: i32,
}

/// The size of an ABI 1.3 [`Request`]: everything before
/// [`Request::body_fd`]. A host of ABI 1.3 passes requests this large.
pub const REQUEST_V1_3_SIZE: usize = core::mem::offset_of!(Request, body_fd);

/// The size of an ABI 1.0 [`Request`]: everything before
/// [`Request::scheme`]. A host of ABI 1.0–1.2 passes requests this large.
pub const REQUEST_V1_0_SIZE: usize = core::mem::offset_of!(Request, scheme);

/// The host's per-request state. Opaque to plugins: they only pass the
/// pointer back to [`HostApi`] functions during the same `handle` call.
#[repr(C)]
#[derive(Debug)]
pub struct Call {
    _opaque: [u8; 0],
    _not_send_sync: PhantomData<*mut u8>,
}

/// Functions the host offers to plugins, passed to `init`.
///
/// Append-only: a plugin built against a newer minor checks `size` before
/// calling a function an older host may lack.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    /// `size_of::<HostApi>()` as the host saw it.
    pub size: usize,
    /// The host's [`ABI_MAJOR`].
    pub abi_major: u16,
    /// The host's [`ABI_MINOR`].
    pub abi_minor: u16,
    /// Writes a record to the host's error log, tagged with the plugin.
    pub log: LogFn,
    /// Sets the response status (100–999; the host answers 500 for others).
    pub set_status: SetStatusFn,
    /// Adds a response header. Returns [`OUTCOME_ERROR`] and adds nothing
    /// if the name is not an RFC 9110 token or the value holds CR, LF or
    /// NUL, or if the host manages that header itself (`Content-Length`,
    /// `Transfer-Encoding`, `Connection`, `Date`).
    pub add_header: AddHeaderFn,
    /// Appends to the response body.
    pub append_body: AppendBodyFn,

    // ---- ABI 1.1: the store and sessions ----
    //
    // Plugins of ABI 1.2 and later use `store_call` instead; a host keeps
    // these for plugins built against ABI 1.1, and adds no more of them.
    //
    // Every function below takes the `call` of the current `handle`: the
    // host decides from it which plugin is asking (keys are namespaced
    // `keyPrefix + plugin name + ":" + key`, so one plugin never reaches
    // another's keys) and which visitor (the session cookie). Each returns
    // OK, NOT_FOUND (see each function), UNAVAILABLE (the store could not
    // be reached in time) or ERROR. On OK a value, if any, is written to
    // `out`; on UNAVAILABLE or ERROR `out` receives the message instead.
    // TTLs are milliseconds; a host treats 0 as "no TTL" in `store_set` and
    // as "expire now" in `store_expire`.
    //
    // The fields are `Option`s: a host that does not offer a function
    // leaves it null, and a plugin reading a 1.0 table (shorter `size`)
    // treats them all as null.
    /// `GET`: OK with the value in `out`, or NOT_FOUND.
    pub store_get: Option<StoreKeyFn>,
    /// `SET`, replacing any value and TTL; `ttl_ms` 0 keeps the key forever.
    pub store_set: Option<StoreSetFn>,
    /// `DEL`: OK if the key existed, NOT_FOUND otherwise.
    pub store_delete: Option<StoreKeyFn>,
    /// `EXISTS`: OK or NOT_FOUND.
    pub store_exists: Option<StoreKeyFn>,
    /// `PEXPIRE`: OK if the key exists (its TTL is now `ttl_ms`), NOT_FOUND
    /// otherwise.
    pub store_expire: Option<StoreExpireFn>,
    /// `INCRBY`, atomic across every worker and host: adds `by` (a missing
    /// key counts as 0) and writes the new value to `*value`. ERROR if the
    /// stored value is not a decimal `i64` or the sum overflows.
    pub store_incr: Option<StoreIncrFn>,
    /// `HGET`: OK with the field's value in `out`, or NOT_FOUND.
    pub store_hget: Option<StoreFieldFn>,
    /// `HSET` of one field; the key's TTL is left as it is.
    pub store_hset: Option<StoreFieldSetFn>,
    /// `HDEL` of one field: OK if it existed, NOT_FOUND otherwise.
    pub store_hdel: Option<StoreFieldFn>,
    /// `HGETALL`: OK with every field in `out`, encoded as pairs of
    /// length-prefixed byte strings: `u32` little-endian length of the
    /// field name, the name, `u32` little-endian length of the value, the
    /// value; repeated. A missing key is OK with nothing written.
    pub store_hget_all: Option<StoreKeyFn>,
    /// One field of the visitor's session: OK with the value in `out`, or
    /// NOT_FOUND (also when the request has no live session).
    pub session_get: Option<SessionFieldFn>,
    /// Sets a session field, creating the session (and sending its cookie)
    /// if the request has none.
    pub session_set: Option<SessionSetFn>,
    /// Removes a session field: OK if it existed, NOT_FOUND otherwise.
    pub session_remove: Option<SessionFieldFn>,
    /// Adds `by` to a session field (missing counts as 0), atomically,
    /// creating the session if needed; the new value goes to `*value`.
    pub session_incr: Option<SessionIncrFn>,

    // ---- ABI 1.2: one entry for every store and session operation ----
    /// Runs the operation `op` describes, with the rules above: OK,
    /// NOT_FOUND, UNAVAILABLE or ERROR; on OK a value goes to `out` (bytes,
    /// or pairs encoded as for `store_hget_all`) or to `*int_out` (an
    /// integer), as the same operation's 1.1 function would answer. An
    /// operation this host does not know is ERROR, with a message in `out`.
    pub store_call: Option<StoreCallFn>,

    // ---- ABI 1.4: bodies that do not go through memory ----
    /// Makes the response body the file at `path` (bytes of a path, not
    /// NUL-terminated). The host opens and stats it itself once the
    /// handler returns, so nothing but the path crosses; it then answers
    /// 404 if it does not exist (or is not a regular file), 403 if it
    /// cannot be read, 304 / 206 / 416 as the request's conditional and
    /// `Range` headers say, and sends the bytes with `sendfile(2)`. It
    /// adds `Content-Type` (from the extension, unless the plugin set
    /// one), `Last-Modified`, `ETag` and `Accept-Ranges`. Replaces any
    /// body appended so far; the status set must be 200.
    pub respond_file: Option<RespondFileFn>,
    /// Makes the response body whatever `reader` yields, sent as the
    /// client takes it: with `Content-Length: len` if `len` is at least 0
    /// (a reader that ends early or yields more closes the connection), or
    /// chunked if `len` is -1. The host owns `reader` from this call on,
    /// whatever it returns, and calls its `drop` exactly once. `read` is
    /// called later, on a worker thread, outside the `handle` call.
    pub respond_stream: Option<RespondStreamFn>,
}

impl HostApi {
    /// A table of this ABI version with the response and logging functions
    /// and no store; a host adds what it offers with struct update syntax:
    /// `HostApi { store_call: Some(f), ..HostApi::new(..) }`.
    pub const fn new(
        log: LogFn,
        set_status: SetStatusFn,
        add_header: AddHeaderFn,
        append_body: AppendBodyFn,
    ) -> HostApi {
        HostApi {
            size: core::mem::size_of::<HostApi>(),
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            log,
            set_status,
            add_header,
            append_body,
            store_get: None,
            store_set: None,
            store_delete: None,
            store_exists: None,
            store_expire: None,
            store_incr: None,
            store_hget: None,
            store_hset: None,
            store_hdel: None,
            store_hget_all: None,
            session_get: None,
            session_set: None,
            session_remove: None,
            session_incr: None,
            store_call: None,
            respond_file: None,
            respond_stream: None,
        }
    }
}

/// [`HostApi::log`].
pub type LogFn = unsafe extern "C" fn(level: LogLevel, plugin: Bytes, message: Bytes);
/// [`HostApi::set_status`].
pub type SetStatusFn = unsafe extern "C" fn(call: *mut Call, status: u16);
/// [`HostApi::add_header`].
pub type AddHeaderFn = unsafe extern "C" fn(call: *mut Call, name: Bytes, value: Bytes) -> Outcome;
/// [`HostApi::append_body`].
pub type AppendBodyFn = unsafe extern "C" fn(call: *mut Call, data: Bytes);

/// [`HostApi::respond_file`].
pub type RespondFileFn = unsafe extern "C" fn(call: *mut Call, path: Bytes) -> Outcome;
/// [`HostApi::respond_stream`].
pub type RespondStreamFn =
    unsafe extern "C" fn(call: *mut Call, reader: StreamBody, len: i64) -> Outcome;

/// A response body the plugin produces piece by piece, handed to the host
/// with [`HostApi::respond_stream`]. The host calls `read` whenever the
/// client can take more, from any one thread at a time, and `drop` once.
#[repr(C)]
#[derive(Debug)]
pub struct StreamBody {
    /// `size_of::<StreamBody>()` as the plugin saw it.
    pub size: usize,
    /// The plugin's reader, opaque to the host.
    pub state: *mut c_void,
    /// Fills up to `len` bytes at `buf`; returns how many (0 at the end),
    /// or -1 on an error (the host then closes the connection).
    pub read: unsafe extern "C" fn(state: *mut c_void, buf: *mut u8, len: usize) -> isize,
    /// Frees `state`. Called exactly once; `read` is never called after.
    pub drop: unsafe extern "C" fn(state: *mut c_void),
}

/// [`HostApi::store_call`]. `op` is borrowed for the call; `int_out` may
/// be null for an operation that answers no integer.
pub type StoreCallFn = unsafe extern "C" fn(
    call: *mut Call,
    op: *const StoreOp,
    out: OutBuf,
    int_out: *mut i64,
) -> Outcome;

/// One store or session operation, as a plugin hands it to
/// [`HostApi::store_call`]: which one (`code`) and its arguments, each in
/// the field of its kind; arguments an operation does not take are left
/// empty or 0. Keys and fields are the plugin's own (the host adds the
/// namespace); a session operation's field is in `field`.
///
/// The codes and which fields each operation reads are defined once, in
/// the SDK's `store_op` module, which both the SDK and the host use.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StoreOp {
    /// `size_of::<StoreOp>()` as the plugin saw it; fields are only ever
    /// appended, as in [`HostApi`].
    pub size: usize,
    /// Which operation; never 0.
    pub code: u32,
    /// The key.
    pub key: Bytes,
    /// A hash field, or a session field.
    pub field: Bytes,
    /// A value to store.
    pub value: Bytes,
    /// Integer arguments, in the order the operation takes them (`by` of
    /// an increment).
    pub ints: [i64; 2],
    /// A TTL in milliseconds: for a set, 0 keeps the key forever; for an
    /// expire, 0 expires it now.
    pub ttl_ms: u64,
}

impl StoreOp {
    /// Operation `code` with every argument empty; fill in the ones it
    /// takes with struct update syntax.
    pub const fn new(code: u32) -> StoreOp {
        StoreOp {
            size: core::mem::size_of::<StoreOp>(),
            code,
            key: Bytes::EMPTY,
            field: Bytes::EMPTY,
            value: Bytes::EMPTY,
            ints: [0; 2],
            ttl_ms: 0,
        }
    }
}

/// [`HostApi::store_get`], `store_delete`, `store_exists`, `store_hget_all`.
pub type StoreKeyFn = unsafe extern "C" fn(call: *mut Call, key: Bytes, out: OutBuf) -> Outcome;
/// [`HostApi::store_set`].
pub type StoreSetFn = unsafe extern "C" fn(
    call: *mut Call,
    key: Bytes,
    value: Bytes,
    ttl_ms: u64,
    out: OutBuf,
) -> Outcome;
/// [`HostApi::store_expire`].
pub type StoreExpireFn =
    unsafe extern "C" fn(call: *mut Call, key: Bytes, ttl_ms: u64, out: OutBuf) -> Outcome;
/// [`HostApi::store_incr`].
pub type StoreIncrFn = unsafe extern "C" fn(
    call: *mut Call,
    key: Bytes,
    by: i64,
    value: *mut i64,
    out: OutBuf,
) -> Outcome;
/// [`HostApi::store_hget`], `store_hdel`.
pub type StoreFieldFn =
    unsafe extern "C" fn(call: *mut Call, key: Bytes, field: Bytes, out: OutBuf) -> Outcome;
/// [`HostApi::store_hset`].
pub type StoreFieldSetFn = unsafe extern "C" fn(
    call: *mut Call,
    key: Bytes,
    field: Bytes,
    value: Bytes,
    out: OutBuf,
) -> Outcome;
/// [`HostApi::session_get`], `session_remove`.
pub type SessionFieldFn =
    unsafe extern "C" fn(call: *mut Call, field: Bytes, out: OutBuf) -> Outcome;
/// [`HostApi::session_set`].
pub type SessionSetFn =
    unsafe extern "C" fn(call: *mut Call, field: Bytes, value: Bytes, out: OutBuf) -> Outcome;
/// [`HostApi::session_incr`].
pub type SessionIncrFn = unsafe extern "C" fn(
    call: *mut Call,
    field: Bytes,
    by: i64,
    value: *mut i64,
    out: OutBuf,
) -> Outcome;

/// The size of an ABI 1.0 [`HostApi`]: everything before
/// [`HostApi::store_get`]. A table at least this large has the logging and
/// response functions.
pub const HOST_API_V1_0_SIZE: usize = core::mem::offset_of!(HostApi, store_get);

/// The size of an ABI 1.3 [`HostApi`]: everything before
/// [`HostApi::respond_file`]. Only a table of at least
/// `size_of::<HostApi>()` has the 1.4 functions.
pub const HOST_API_V1_3_SIZE: usize = core::mem::offset_of!(HostApi, respond_file);

/// The size of an ABI 1.1 [`HostApi`]: everything before
/// [`HostApi::store_call`]. Only a table of at least
/// `size_of::<HostApi>()` has `store_call`.
pub const HOST_API_V1_1_SIZE: usize = core::mem::offset_of!(HostApi, store_call);
