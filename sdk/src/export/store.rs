//! Store and session calls across the boundary: each [`Op`] goes to the
//! host's one generic entry, [`HostApi::store_call`], and its outcome and
//! answer come back as a [`Reply`] or a [`StoreError`]. How the operation
//! and the answer are encoded is defined in [`crate::store_op`].
//!
//! A host older than ABI 1.2 has no `store_call` (the field is `None`, see
//! [`super::start`]); a call then fails with a message that says to upgrade
//! drupe, instead of jumping through a pointer that is not there.

use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::abi::{Bytes, Call, HostApi, OutBuf};
use crate::store::op::{decode, Op, Reply};
use crate::store::StoreError;

/// Runs `op` through the host's table.
///
/// `call` must be the host's state for the `handle` call in progress, as
/// [`crate::context::Backend::Host`] guarantees for the backend that calls
/// this.
pub(crate) fn exec(host: &HostApi, call: *mut Call, op: Op<'_>) -> Result<Reply, StoreError> {
    let Some(store_call) = host.store_call else {
        return Err(StoreError::Other(format!(
            "this drupe host (plugin ABI {}.{}) has no `store_call`, which `{}` needs; \
             upgrade drupe to use the store and sessions",
            host.abi_major,
            host.abi_minor,
            op.name()
        )));
    };
    let raw = op.to_raw();
    let mut out: Vec<u8> = Vec::new();
    let buf = OutBuf {
        target: (&raw mut out).cast(),
        write: append,
    };
    let mut int: i64 = 0;
    // SAFETY: `store_call` comes from the host's checked table; `call` is
    // the host's state for the current call (this function's contract);
    // `raw` borrows `op`, and `buf` and `int` point at locals, all of which
    // outlive the call; `append` matches `buf.target`'s type.
    let outcome = unsafe { store_call(call, &raw, buf, &raw mut int) };
    decode(&op, outcome, out, int)
}

/// The SDK's receiver for answers: appends to a `Vec<u8>`.
unsafe extern "C" fn append(target: *mut c_void, data: Bytes) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `exec` passes a `*mut Vec<u8>` that outlives the call, and
        // the host passes bytes that are valid during this callback.
        unsafe { (*target.cast::<Vec<u8>>()).extend_from_slice(data.as_slice()) }
    }));
    // Unwinding into the host would be undefined behaviour; an allocation
    // failure is the only way here, and aborting is what it does anyway.
    if result.is_err() {
        std::process::abort();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::abi::{self, Outcome, StoreOp};
    use crate::context::Backend;
    use crate::store::Store;
    use crate::store_op::encode;

    unsafe extern "C" fn log(_: abi::LogLevel, _: Bytes, _: Bytes) {}
    unsafe extern "C" fn set_status(_: *mut Call, _: u16) {}
    unsafe extern "C" fn add_header(_: *mut Call, _: Bytes, _: Bytes) -> Outcome {
        abi::OUTCOME_OK
    }
    unsafe extern "C" fn append_body(_: *mut Call, _: Bytes) {}

    /// A host whose store: `get` finds `hit` only, `exists` is down,
    /// `delete` fails without saying why, `incr` adds to 40, `hget_all`
    /// has two fields, and nothing else is offered.
    fn serve(op: Op<'_>) -> Result<Reply, StoreError> {
        match op {
            Op::Get(b"hit") => Ok(Reply::Bytes(b"value".to_vec())),
            Op::Get(_) => Ok(Reply::NotFound),
            Op::Exists(_) => Err(StoreError::Unavailable(
                "redis at 127.0.0.1:1 refused the connection".into(),
            )),
            Op::Delete(_) => Err(StoreError::Other(String::new())),
            Op::Incr(_, by) => Ok(Reply::Int(40 + by)),
            Op::HGetAll(_) => Ok(Reply::Pairs(vec![
                (b"name".to_vec(), b"Ana".to_vec()),
                (b"age".to_vec(), b"7".to_vec()),
            ])),
            other => Err(StoreError::Other(format!("no `{}`", other.name()))),
        }
    }

    unsafe extern "C" fn store_call(
        _: *mut Call,
        op: *const StoreOp,
        out: OutBuf,
        int_out: *mut i64,
    ) -> Outcome {
        // SAFETY: `exec` passes its own op, valid during the call.
        let sent = encode(serve(unsafe { Op::from_raw(op) }.unwrap()));
        // SAFETY: `exec` passes its own `OutBuf` and integer.
        unsafe {
            (out.write)(out.target, Bytes::new(&sent.data));
            if let Some(n) = sent.int {
                int_out.write(n);
            }
        }
        sent.outcome
    }

    fn host() -> HostApi {
        HostApi {
            store_call: Some(store_call),
            ..HostApi::new(log, set_status, add_header, append_body)
        }
    }

    #[test]
    fn outcomes_become_values_and_errors() {
        let host = host();
        let backend = Backend::Host {
            host: &host,
            call: std::ptr::null_mut(),
        };
        let store = Store::new(&backend);
        assert_eq!(store.get_string("hit").unwrap().as_deref(), Some("value"));
        assert_eq!(store.get("miss").unwrap(), None);
        assert_eq!(store.incr("n", 2).unwrap(), 42);
        let all = store.hget_all("h").unwrap();
        assert_eq!(all["name"].as_str(), Some("Ana"));
        assert_eq!(all["age"].to_i64(), Some(7));

        let down = store.exists("x").unwrap_err();
        assert!(down.is_unavailable());
        assert!(down.message().contains("refused"), "{down}");
        let mute = store.delete("x").unwrap_err();
        assert_eq!(
            mute,
            StoreError::Other("`store_delete` failed (outcome 1)".into())
        );
        let missing = store.set("x", 1).unwrap_err();
        assert!(missing.message().contains("no `store_set`"), "{missing}");
    }

    #[test]
    fn a_1_0_host_has_no_store_and_says_to_upgrade() {
        let full = host();
        // SAFETY: `full` is a whole table; claiming the 1.0 size only makes
        // `copy_host` read less of it.
        let old = unsafe { super::super::copy_host(&full, abi::HOST_API_V1_0_SIZE) };
        assert!(old.store_get.is_none() && old.session_incr.is_none());
        let backend = Backend::Host {
            host: &old,
            call: std::ptr::null_mut(),
        };
        let e = Store::new(&backend).get("hit").unwrap_err();
        assert!(!e.is_unavailable());
        assert!(e.message().contains("upgrade drupe"), "{e}");
    }

    #[test]
    fn a_1_1_host_has_no_store_call_and_says_to_upgrade() {
        let full = host();
        // SAFETY: as above, for the 1.1 size.
        let old = unsafe { super::super::copy_host(&full, abi::HOST_API_V1_1_SIZE) };
        assert!(old.store_call.is_none());
        let backend = Backend::Host {
            host: &old,
            call: std::ptr::null_mut(),
        };
        let e = Store::new(&backend).incr("n", 1).unwrap_err();
        assert!(e.message().contains("`store_incr` needs"), "{e}");
        assert!(e.message().contains("upgrade drupe"), "{e}");
    }
}
