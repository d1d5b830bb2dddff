//! Test fixture: a library that exports `drupe_plugin_v1` with the right
//! magic but ABI major 2, as a plugin built against a future, incompatible
//! SDK would. The host must refuse it before calling anything in it, naming
//! the file and both versions. Its entry points must therefore never run.

#![allow(unsafe_code)] // a hand-written declaration is what this fixture is

use drupe_sdk::abi::{self, Bytes, Call, HostApi, KeyValue, OutBuf, Outcome, PluginDecl, Request};

unsafe extern "C" fn init(_: *const HostApi, _: *const KeyValue, _: usize, _: OutBuf) -> Outcome {
    std::process::abort() // never called: the host refuses the ABI first
}

unsafe extern "C" fn handle(_: usize, _: *const Request, _: *mut Call) -> Outcome {
    std::process::abort()
}

unsafe extern "C" fn shutdown() {
    std::process::abort()
}

static DECL: PluginDecl = PluginDecl {
    magic: abi::MAGIC,
    abi_major: 2,
    abi_minor: 0,
    size: std::mem::size_of::<PluginDecl>() as u32,
    name: Bytes::from_str("other_abi"),
    version: Bytes::from_str("0.0.0"),
    sdk_version: Bytes::from_str("2.0.0"),
    routes: std::ptr::null(),
    route_count: 0,
    init,
    handle,
    shutdown,
};

/// The entry point, as the SDK's `plugin!` macro would export it.
#[no_mangle]
pub extern "C" fn drupe_plugin_v1() -> *const PluginDecl {
    &DECL
}
