//! The store and session entries of the host's table: [`store_call`]
//! (ABI 1.2), which serves every operation, and the fourteen functions of
//! ABI 1.1, kept for plugins built against that version. Each of those is
//! a thin adapter: it describes its operation as a [`StoreOp`] and calls
//! `store_call`, so old and new plugins take one path.
//!
//! Reading the operation and encoding the answer are the SDK's
//! (`drupe_sdk::store_op`); the answer goes back through the plugin's
//! [`OutBuf`] (the plugin copies; the host frees nothing of the plugin's).
//! Nothing here unwinds into the plugin; the logic is in safe code
//! ([`crate::store::call`]). A new operation needs nothing here.

use drupe_sdk::abi::{self, Bytes, Call, HostApi, OutBuf, Outcome, StoreOp};
use drupe_sdk::store_op::{code, encode, Encoded, Op};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;

use super::dl::{abort_on_panic, sink, CallSink};
use crate::store::StoreError;

/// `table` with the store and session entries for sink type `S`.
pub(super) const fn with_store<S: CallSink>(table: HostApi) -> HostApi {
    HostApi {
        store_get: Some(store_get::<S>),
        store_set: Some(store_set::<S>),
        store_delete: Some(store_delete::<S>),
        store_exists: Some(store_exists::<S>),
        store_expire: Some(store_expire::<S>),
        store_incr: Some(store_incr::<S>),
        store_hget: Some(store_hget::<S>),
        store_hset: Some(store_hset::<S>),
        store_hdel: Some(store_hdel::<S>),
        store_hget_all: Some(store_hget_all::<S>),
        session_get: Some(session_get::<S>),
        session_set: Some(session_set::<S>),
        session_remove: Some(session_remove::<S>),
        session_incr: Some(session_incr::<S>),
        store_call: Some(store_call::<S>),
        ..table
    }
}

/// `HostApi::store_call`: serves `op` for the call and reports it the
/// ABI's way.
///
/// # Safety
/// `call` must be the `*mut S` that `Entry::handle` passed to the plugin,
/// during that call; `op` must be null or the plugin's operation for this
/// call; `out` must be the plugin's receiver for this call; `int_out` must
/// be null or valid for one `i64` write.
unsafe extern "C" fn store_call<S: CallSink>(
    call: *mut Call,
    op: *const StoreOp,
    out: OutBuf,
    int_out: *mut i64,
) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `op` is null or the plugin's, borrowed for this call.
        let Encoded { outcome, data, int } = match unsafe { Op::from_raw(op) } {
            // SAFETY: `call` comes from `Entry::handle` (contract).
            Ok(op) => encode(unsafe { sink::<S>(call) }.store(op)),
            Err(message) => encode(Err(StoreError::Other(message))),
        };
        let write = |data: &[u8]| {
            // SAFETY: the plugin gave `out` for this call; `data` outlives it.
            unsafe { (out.write)(out.target, Bytes::new(data)) }
        };
        match int {
            Some(_) if int_out.is_null() => {
                write(b"the plugin passed no place for the integer result");
                return abi::OUTCOME_ERROR;
            }
            // SAFETY: not null, and valid for a write (contract).
            Some(n) => unsafe { int_out.write(n) },
            None => {}
        }
        if !data.is_empty() {
            write(&data);
        }
        outcome
    }));
    abort_on_panic(result)
}

// The ABI 1.1 functions. Each: SAFETY — `call` and `out` (and `value`)
// come from the plugin's `handle` call as the ABI requires, and the
// `Bytes` are borrowed for this call, as `store_call` needs; the
// `StoreOp` lives on this stack frame until it returns.

unsafe extern "C" fn store_get<S: CallSink>(call: *mut Call, key: Bytes, out: OutBuf) -> Outcome {
    let op = StoreOp {
        key,
        ..StoreOp::new(code::GET)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn store_set<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    value: Bytes,
    ttl_ms: u64,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        key,
        value,
        ttl_ms,
        ..StoreOp::new(code::SET)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn store_delete<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        key,
        ..StoreOp::new(code::DELETE)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn store_exists<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        key,
        ..StoreOp::new(code::EXISTS)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn store_expire<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    ttl_ms: u64,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        key,
        ttl_ms,
        ..StoreOp::new(code::EXPIRE)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn store_incr<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    by: i64,
    value: *mut i64,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        key,
        ints: [by, 0],
        ..StoreOp::new(code::INCR)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, value) }
}

unsafe extern "C" fn store_hget<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    field: Bytes,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        key,
        field,
        ..StoreOp::new(code::HGET)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn store_hset<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    field: Bytes,
    value: Bytes,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        key,
        field,
        value,
        ..StoreOp::new(code::HSET)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn store_hdel<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    field: Bytes,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        key,
        field,
        ..StoreOp::new(code::HDEL)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn store_hget_all<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        key,
        ..StoreOp::new(code::HGET_ALL)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn session_get<S: CallSink>(
    call: *mut Call,
    field: Bytes,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        field,
        ..StoreOp::new(code::SESSION_GET)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn session_set<S: CallSink>(
    call: *mut Call,
    field: Bytes,
    value: Bytes,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        field,
        value,
        ..StoreOp::new(code::SESSION_SET)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn session_remove<S: CallSink>(
    call: *mut Call,
    field: Bytes,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        field,
        ..StoreOp::new(code::SESSION_REMOVE)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, null_mut()) }
}

unsafe extern "C" fn session_incr<S: CallSink>(
    call: *mut Call,
    field: Bytes,
    by: i64,
    value: *mut i64,
    out: OutBuf,
) -> Outcome {
    let op = StoreOp {
        field,
        ints: [by, 0],
        ..StoreOp::new(code::SESSION_INCR)
    };
    // SAFETY: see above.
    unsafe { store_call::<S>(call, &op, out, value) }
}

/// The table as plugins see it, over a real (SQLite) store: a plugin of
/// ABI 1.1 calling the old functions and one of 1.2 calling `store_call`
/// get the same answers.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::call::CallStore;
    use crate::store::sqlite::SqliteStore;
    use crate::store::Reply;
    use crate::sys::dl::host_api;
    use std::ffi::c_void;
    use std::time::Duration;

    /// One handler call, served by SQLite in a temp folder.
    struct Sink {
        calls: CallStore,
        store: SqliteStore,
        _dir: tempfile::TempDir,
    }

    impl CallSink for Sink {
        fn set_status(&mut self, _: u16) {}
        fn add_header(&mut self, _: &[u8], _: &[u8]) -> bool {
            true
        }
        fn append_body(&mut self, _: &[u8]) {}
        fn store(&mut self, op: Op<'_>) -> Result<Reply, StoreError> {
            self.calls.run(&mut self.store, op, Duration::from_secs(60))
        }
    }

    fn sink() -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let (path, timeout) = (dir.path().join("s.db"), Duration::from_secs(2));
        SqliteStore::create(&path, timeout).unwrap();
        let store = SqliteStore::open(&path, timeout).unwrap();
        let mut calls = CallStore::default();
        calls.begin("old", std::iter::empty(), false);
        Sink {
            calls,
            store,
            _dir: dir,
        }
    }

    unsafe extern "C" fn collect(target: *mut c_void, data: Bytes) {
        // SAFETY: `Answer::out` passes its own `Vec<u8>`; the host passes
        // bytes valid for this callback.
        unsafe { (*target.cast::<Vec<u8>>()).extend_from_slice(data.as_slice()) }
    }

    /// What one call wrote to its out buffer and integer.
    #[derive(Default)]
    struct Answer {
        data: Vec<u8>,
        int: i64,
    }

    impl Answer {
        fn out(&mut self) -> OutBuf {
            self.data.clear();
            OutBuf {
                target: (&raw mut self.data).cast(),
                write: collect,
            }
        }
        fn int(&mut self) -> *mut i64 {
            &raw mut self.int
        }
    }

    #[test]
    fn a_plugin_of_abi_1_1_gets_store_answers_through_the_old_functions() {
        let mut sink = sink();
        let call: *mut Call = (&raw mut sink).cast();
        let api = host_api::<Sink>();
        let b = Bytes::from_str;
        let mut a = Answer::default();
        let (ok, none, error) = (abi::OUTCOME_OK, abi::OUTCOME_NOT_FOUND, abi::OUTCOME_ERROR);
        // SAFETY: as a 1.1 plugin calls them: `call` is the live `Sink` the
        // table was made for, and every buffer outlives its call.
        unsafe {
            assert_eq!(api.store_set.unwrap()(call, b("k"), b("v"), 0, a.out()), ok);
            assert_eq!(api.store_get.unwrap()(call, b("k"), a.out()), ok);
            assert_eq!(a.data, b"v");
            assert_eq!(api.store_get.unwrap()(call, b("gone"), a.out()), none);
            assert_eq!(
                api.store_incr.unwrap()(call, b("n"), 5, a.int(), a.out()),
                ok
            );
            assert_eq!(a.int, 5);
            assert_eq!(
                api.store_incr.unwrap()(call, b("k"), 1, a.int(), a.out()),
                error
            );
            assert!(String::from_utf8_lossy(&a.data).contains("not an integer"));
            let f = b("f");
            assert_eq!(
                api.store_hset.unwrap()(call, b("h"), f, b("1"), a.out()),
                ok
            );
            assert_eq!(api.store_hget.unwrap()(call, b("h"), f, a.out()), ok);
            assert_eq!(a.data, b"1");
            assert_eq!(api.store_hget_all.unwrap()(call, b("h"), a.out()), ok);
            assert_eq!(a.data, b"\x01\0\0\0f\x01\0\0\0\x31", "f = 1");
            assert_eq!(api.store_hdel.unwrap()(call, b("h"), f, a.out()), ok);
            assert_eq!(api.store_hdel.unwrap()(call, b("h"), f, a.out()), none);
            assert_eq!(api.store_exists.unwrap()(call, b("k"), a.out()), ok);
            assert_eq!(api.store_expire.unwrap()(call, b("k"), 0, a.out()), ok);
            assert_eq!(api.store_exists.unwrap()(call, b("k"), a.out()), none);
            assert_eq!(api.store_delete.unwrap()(call, b("n"), a.out()), ok);
            assert_eq!(api.store_delete.unwrap()(call, b("n"), a.out()), none);
            assert_eq!(api.session_get.unwrap()(call, b("v"), a.out()), none);
            assert_eq!(
                api.session_incr.unwrap()(call, b("v"), 2, a.int(), a.out()),
                ok
            );
            assert_eq!(a.int, 2);
            assert_eq!(api.session_set.unwrap()(call, b("w"), b("x"), a.out()), ok);
            assert_eq!(api.session_get.unwrap()(call, b("w"), a.out()), ok);
            assert_eq!(a.data, b"x");
            assert_eq!(api.session_remove.unwrap()(call, b("w"), a.out()), ok);
            assert_eq!(api.session_remove.unwrap()(call, b("w"), a.out()), none);
        }
    }

    #[test]
    fn store_call_answers_as_the_old_functions_do() {
        let mut sink = sink();
        let call: *mut Call = (&raw mut sink).cast();
        let api = host_api::<Sink>();
        let store_call = api.store_call.unwrap();
        let mut a = Answer::default();
        // SAFETY: as a 1.2 plugin calls it; the ops borrow statics.
        unsafe {
            let set = Op::Set(b"k", b"v", None).to_raw();
            assert_eq!(store_call(call, &set, a.out(), null_mut()), abi::OUTCOME_OK);
            let old = api.store_get.unwrap()(call, Bytes::from_str("k"), a.out());
            let old_answer = std::mem::take(&mut a.data);
            let new = store_call(call, &Op::Get(b"k").to_raw(), a.out(), null_mut());
            assert_eq!((old, old_answer), (new, a.data.clone()));

            let incr = Op::Incr(b"n", 1).to_raw();
            assert_eq!(
                store_call(call, &incr, a.out(), null_mut()),
                abi::OUTCOME_ERROR
            );
            assert!(String::from_utf8_lossy(&a.data).contains("no place for the integer"));
            assert_eq!(store_call(call, &incr, a.out(), a.int()), abi::OUTCOME_OK);
            // The slot is looked at only when the answer is written: the
            // refused call above still counted (as with ABI 1.1).
            assert_eq!(a.int, 2);

            let unknown = StoreOp::new(999);
            assert_eq!(
                store_call(call, &unknown, a.out(), null_mut()),
                abi::OUTCOME_ERROR
            );
            assert!(String::from_utf8_lossy(&a.data).contains("upgrade drupe"));
        }
    }
}
