//! Loading plugin libraries and calling across the plugin ABI.
//!
//! [`open`] dlopens a `.so`, finds `drupe_plugin_v1`, and checks the magic,
//! the ABI major and the declaration's size *before* reading anything else
//! from it; only then is the declaration copied into an owned
//! [`Declaration`]. [`Entry`] is the safe handle through which the rest of
//! the host calls `init`, `handle` and `shutdown`. The callbacks the host
//! gives plugins ([`host_api`]) only turn raw pointers into references and
//! delegate to a [`CallSink`] implemented in safe code elsewhere.

use super::store_api;
use crate::store::{Op, Reply, StoreError};
use drupe_sdk::abi::{self, Bytes, Call, HostApi, KeyValue, OutBuf, Outcome, PluginDecl};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use std::ffi::c_void;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Why a file could not be loaded as a plugin. Every message names the file.
#[derive(Debug)]
pub enum LoadError {
    /// `dlopen` failed: not an ELF library, wrong architecture, missing
    /// dependency or unresolved symbol.
    Open { path: PathBuf, reason: String },
    /// A shared library, but it exports no `drupe_plugin_v1`.
    NotAPlugin { path: PathBuf },
    /// The symbol exists but the declaration lacks drupe's magic number.
    BadMagic { path: PathBuf },
    /// Built against an SDK with another ABI major.
    AbiMismatch {
        path: PathBuf,
        plugin: (u16, u16),
        host: (u16, u16),
    },
    /// The declaration is smaller than this ABI major requires.
    Truncated { path: PathBuf, size: u32 },
    /// A field holds something the ABI does not allow.
    Invalid { path: PathBuf, reason: String },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Open { path, reason } => {
                write!(f, "{}: cannot load shared library: {reason}", path.display())
            }
            LoadError::NotAPlugin { path } => write!(
                f,
                "{}: not a drupe plugin (no `drupe_plugin_v1` symbol); build it with the drupe_sdk::plugin! macro, or move it out of the plugin directory",
                path.display()
            ),
            LoadError::BadMagic { path } => write!(
                f,
                "{}: `drupe_plugin_v1` does not point to a drupe plugin declaration (bad magic number)",
                path.display()
            ),
            LoadError::AbiMismatch { path, plugin, host } => write!(
                f,
                "{}: built for plugin ABI {}.{}, but this drupe speaks ABI {}.{}; rebuild the plugin against a drupe-sdk with ABI {}.x",
                path.display(),
                plugin.0,
                plugin.1,
                host.0,
                host.1,
                host.0
            ),
            LoadError::Truncated { path, size } => write!(
                f,
                "{}: plugin declaration is {size} bytes, smaller than ABI {}.0 requires ({}); the plugin is corrupt or was built for another ABI",
                path.display(),
                abi::ABI_MAJOR,
                std::mem::size_of::<PluginDecl>()
            ),
            LoadError::Invalid { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for LoadError {}

/// What a plugin declares about itself, copied out of the library.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub name: String,
    pub version: String,
    pub sdk_version: String,
    pub abi: (u16, u16),
    /// `(method, pattern)` in the order the plugin's `handle` indexes them.
    pub routes: Vec<(String, String)>,
}

/// A loaded plugin's entry points. Plugins are never unloaded, so this is a
/// `'static` reference and freely shared between threads.
#[derive(Clone, Copy)]
pub struct Entry {
    decl: &'static PluginDecl,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").finish_non_exhaustive()
    }
}

/// Loads the plugin at `path` (errors name `shown`, the file as the
/// operator knows it) with `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE`
/// and validates its declaration.
///
/// Loading a library runs its initialisers, so this is only ever called in
/// a worker or probe process, never in the master.
pub fn open(path: &Path, shown: &Path) -> Result<(Entry, Declaration), LoadError> {
    // RTLD_NOW: unresolved symbols fail here, not in the middle of a request.
    // RTLD_LOCAL: two plugins' symbols never interpose on each other.
    // RTLD_NODELETE: the code stays mapped even if a handle were closed.
    let flags = RTLD_NOW | RTLD_LOCAL | nix::libc::RTLD_NODELETE;
    // SAFETY: loading a library runs its ELF initialisers. That is the
    // point of a plugin; the operator put it in the plugin directory, and we
    // are in a process that exists to run plugin code.
    let library = unsafe { Library::open(Some(path), flags) }.map_err(|e| LoadError::Open {
        path: shown.to_owned(),
        reason: e
            .to_string()
            .replace(&*path.to_string_lossy(), &shown.to_string_lossy()),
    })?;
    // SAFETY: the symbol is looked up by name and typed as the ABI's entry
    // function; we only call it after checking the library exports it.
    let entry = unsafe { library.get::<abi::EntryFn>(abi::ENTRY_SYMBOL) }.map_err(|_| {
        LoadError::NotAPlugin {
            path: shown.to_owned(),
        }
    })?;
    // SAFETY: the ABI requires the entry function to be a pure accessor
    // returning a pointer to a static declaration.
    let decl_ptr = unsafe { entry() };
    // Plugins are never unloaded: leak the handle so the code stays mapped
    // for the life of the process (RTLD_NODELETE makes that hold even if
    // something else closes it).
    std::mem::forget(library);
    if decl_ptr.is_null() {
        return Err(LoadError::Invalid {
            path: shown.to_owned(),
            reason: "`drupe_plugin_v1` returned a null declaration".into(),
        });
    }
    // Read the fixed prefix (magic, versions, size) before trusting the rest:
    // these first four fields are the same in every ABI major.
    // SAFETY: non-null and, per the ABI, points at a static declaration
    // whose first fields are laid out as in every version of `PluginDecl`.
    let (magic, major, minor, size) = unsafe {
        let p = decl_ptr;
        (
            std::ptr::addr_of!((*p).magic).read_unaligned(),
            std::ptr::addr_of!((*p).abi_major).read_unaligned(),
            std::ptr::addr_of!((*p).abi_minor).read_unaligned(),
            std::ptr::addr_of!((*p).size).read_unaligned(),
        )
    };
    if magic != abi::MAGIC {
        return Err(LoadError::BadMagic {
            path: shown.to_owned(),
        });
    }
    if major != abi::ABI_MAJOR {
        return Err(LoadError::AbiMismatch {
            path: shown.to_owned(),
            plugin: (major, minor),
            host: (abi::ABI_MAJOR, abi::ABI_MINOR),
        });
    }
    if (size as usize) < std::mem::size_of::<PluginDecl>() {
        return Err(LoadError::Truncated {
            path: shown.to_owned(),
            size,
        });
    }
    // SAFETY: magic, major and size checked: the whole struct is present
    // and `'static` (the library is never unloaded).
    let decl: &'static PluginDecl = unsafe { &*decl_ptr };
    let declaration = describe(shown, decl)?;
    Ok((Entry { decl }, declaration))
}

fn text(path: &Path, what: &str, bytes: Bytes) -> Result<String, LoadError> {
    if bytes.ptr.is_null() {
        return Err(LoadError::Invalid {
            path: path.to_owned(),
            reason: format!("{what} is a null pointer"),
        });
    }
    // SAFETY: declaration strings are `'static` data of the loaded library.
    let slice = unsafe { bytes.as_slice() };
    String::from_utf8(slice.to_vec()).map_err(|_| LoadError::Invalid {
        path: path.to_owned(),
        reason: format!("{what} is not UTF-8"),
    })
}

fn describe(path: &Path, decl: &PluginDecl) -> Result<Declaration, LoadError> {
    let mut routes = Vec::with_capacity(decl.route_count);
    if decl.route_count > 0 {
        if decl.routes.is_null() {
            return Err(LoadError::Invalid {
                path: path.to_owned(),
                reason: "route table is a null pointer".into(),
            });
        }
        // SAFETY: the declaration says `routes` points at `route_count`
        // static entries.
        let table = unsafe { std::slice::from_raw_parts(decl.routes, decl.route_count) };
        for route in table {
            routes.push((
                text(path, "a route method", route.method)?,
                text(path, "a route pattern", route.pattern)?,
            ));
        }
    }
    Ok(Declaration {
        name: text(path, "the plugin name", decl.name)?,
        version: text(path, "the plugin version", decl.version)?,
        sdk_version: text(path, "the SDK version", decl.sdk_version)?,
        abi: (decl.abi_major, decl.abi_minor),
        routes,
    })
}

/// Receives what a plugin builds during one `handle` call, and serves its
/// store and session calls.
pub trait CallSink {
    fn set_status(&mut self, status: u16);
    /// Returns false (and adds nothing) if the header is not allowed.
    fn add_header(&mut self, name: &[u8], value: &[u8]) -> bool;
    fn append_body(&mut self, data: &[u8]);
    /// One store or session call (`HostApi::store_call`, or a function of
    /// ABI 1.1).
    fn store(&mut self, op: Op<'_>) -> Result<Reply, StoreError>;
    /// The body is the file at `path` (`HostApi::respond_file`). Returns
    /// false if this sink cannot send files.
    fn respond_file(&mut self, _path: &[u8]) -> bool {
        false
    }
    /// The body is what `reader` yields (`HostApi::respond_stream`), `len`
    /// bytes if known. Returns false if this sink cannot stream.
    fn respond_stream(&mut self, _reader: super::bodies::PluginReader, _len: Option<u64>) -> bool {
        false
    }
}

impl Entry {
    /// Calls the plugin's `init` with its INI settings. On failure returns
    /// the plugin's message.
    pub fn init<S: CallSink>(&self, settings: &[(String, String)]) -> Result<(), String> {
        let pairs: Vec<KeyValue> = settings
            .iter()
            .map(|(k, v)| KeyValue {
                key: Bytes::from_str(k),
                value: Bytes::from_str(v),
            })
            .collect();
        let mut message = Vec::new();
        let error = OutBuf {
            target: (&mut message as *mut Vec<u8>).cast(),
            write: append_to_vec,
        };
        // SAFETY: `HOST_API` is a static; `pairs` and `message` outlive the
        // call; `error.write` matches `target`'s type. The SDK catches panics
        // inside `init`.
        let outcome =
            unsafe { (self.decl.init)(host_api::<S>(), pairs.as_ptr(), pairs.len(), error) };
        if outcome == abi::OUTCOME_OK {
            Ok(())
        } else if message.is_empty() {
            Err(format!("init failed (outcome {outcome})"))
        } else {
            Err(String::from_utf8_lossy(&message).into_owned())
        }
    }

    /// Calls route `route`'s handler. Whatever the plugin builds arrives in
    /// `sink` through the host callbacks.
    pub fn handle<S: CallSink>(
        &self,
        route: usize,
        request: &abi::Request,
        sink: &mut S,
    ) -> Outcome {
        let call = (sink as *mut S).cast::<Call>();
        // SAFETY: `request` and everything it points to live for the call;
        // `call` is a `&mut S` that the callbacks of `host_api::<S>()` cast
        // back to `S` (the plugin got exactly that table at init). The SDK
        // catches panics inside the handler.
        unsafe { (self.decl.handle)(route, request, call) }
    }

    /// Calls the plugin's `shutdown`.
    pub fn shutdown(&self) {
        // SAFETY: no arguments; the SDK catches panics.
        unsafe { (self.decl.shutdown)() }
    }
}

unsafe extern "C" fn append_to_vec(target: *mut c_void, data: Bytes) {
    // SAFETY: `target` is the `&mut Vec<u8>` we put in the OutBuf and the
    // plugin passes borrowed bytes valid for this call.
    let result = catch_unwind(AssertUnwindSafe(|| unsafe {
        (*target.cast::<Vec<u8>>()).extend_from_slice(data.as_slice())
    }));
    abort_on_panic(result);
}

/// A host callback must never unwind into plugin frames.
pub(super) fn abort_on_panic<T>(result: std::thread::Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(_) => std::process::abort(),
    }
}

struct Api<S>(std::marker::PhantomData<S>);

impl<S: CallSink> Api<S> {
    const TABLE: HostApi = super::bodies::with_bodies::<S>(store_api::with_store::<S>(
        HostApi::new(host_log, set_status::<S>, add_header::<S>, append_body::<S>),
    ));
}

/// The callback table for plugins whose calls are served by sink type `S`.
pub fn host_api<S: CallSink>() -> &'static HostApi {
    &Api::<S>::TABLE
}

unsafe extern "C" fn host_log(level: abi::LogLevel, plugin: Bytes, message: Bytes) {
    let result = catch_unwind(|| {
        // SAFETY: borrowed bytes valid for this call.
        let (plugin, message) = unsafe { (plugin.as_slice(), message.as_slice()) };
        let level = match level {
            abi::LOG_ERROR => log::Level::Error,
            abi::LOG_WARN => log::Level::Warn,
            abi::LOG_INFO => log::Level::Info,
            abi::LOG_DEBUG => log::Level::Debug,
            _ => log::Level::Trace,
        };
        let plugin = String::from_utf8_lossy(plugin);
        log::log!(target: "plugin", level, "[{plugin}] {}", String::from_utf8_lossy(message));
    });
    abort_on_panic(result);
}

/// # Safety
/// `call` must be the `*mut S` that [`Entry::handle`] passed to the plugin,
/// during that call.
pub(super) unsafe fn sink<'a, S>(call: *mut Call) -> &'a mut S {
    // SAFETY: guaranteed by the caller.
    unsafe { &mut *call.cast::<S>() }
}

unsafe extern "C" fn set_status<S: CallSink>(call: *mut Call, status: u16) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `call` comes from `Entry::handle` (see `sink`).
        unsafe { sink::<S>(call) }.set_status(status)
    }));
    abort_on_panic(result);
}

unsafe extern "C" fn add_header<S: CallSink>(
    call: *mut Call,
    name: Bytes,
    value: Bytes,
) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `call` comes from `Entry::handle`; the bytes are borrowed
        // for this call.
        let ok = unsafe { sink::<S>(call).add_header(name.as_slice(), value.as_slice()) };
        if ok {
            abi::OUTCOME_OK
        } else {
            abi::OUTCOME_ERROR
        }
    }));
    abort_on_panic(result)
}

unsafe extern "C" fn append_body<S: CallSink>(call: *mut Call, data: Bytes) {
    // SAFETY: `call` comes from `Entry::handle`; the bytes are borrowed.
    let result = catch_unwind(AssertUnwindSafe(|| unsafe {
        sink::<S>(call).append_body(data.as_slice())
    }));
    abort_on_panic(result);
}
