//! Store and session calls across the boundary: each [`Op`] becomes one
//! call of a `HostApi` store function, and its outcome and [`OutBuf`]
//! answer become a [`Reply`] or a [`StoreError`].
//!
//! A host of ABI 1.0 has no store functions (the `Option`s are `None`, see
//! [`super::start`]); calling one then fails with a message that says to
//! upgrade drupe, instead of jumping through a pointer that is not there.

use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::abi::{self, Bytes, Call, HostApi, OutBuf, Outcome};
use crate::store::{Op, Reply, StoreError};

/// What an `OUTCOME_OK` means for each kind of operation.
enum Answer {
    /// Nothing but success (or "found" for the yes/no operations).
    Done,
    /// The value is in the out buffer.
    Bytes,
    /// The value is in the integer.
    Int,
    /// Encoded field/value pairs are in the out buffer.
    Pairs,
}

/// Runs `op` through the host's table.
///
/// `call` must be the host's state for the `handle` call in progress, as
/// [`crate::context::Backend::Host`] guarantees for the backend that calls
/// this.
pub(crate) fn exec(host: &HostApi, call: *mut Call, op: Op<'_>) -> Result<Reply, StoreError> {
    let mut out: Vec<u8> = Vec::new();
    let buf = OutBuf {
        target: (&raw mut out).cast(),
        write: append,
    };
    let mut int: i64 = 0;
    let int_ptr: *mut i64 = &raw mut int;
    let b = |s: &str| Bytes::from_str(s);
    let name = name(&op);
    // SAFETY: every function comes from the host's checked table (a missing
    // one is `None` and not called); `call` is the host's state for the
    // current call (this function's contract); the `Bytes` borrow `op`,
    // and `buf` and `int_ptr` point at locals, all of which outlive the
    // call; `append` matches `buf.target`'s type.
    let result = unsafe {
        match op {
            Op::Get(key) => host
                .store_get
                .map(|f| (f(call, b(key), buf), Answer::Bytes)),
            Op::Set(key, value, ttl) => host
                .store_set
                .map(|f| (f(call, b(key), Bytes::new(value), ttl, buf), Answer::Done)),
            Op::Delete(key) => host
                .store_delete
                .map(|f| (f(call, b(key), buf), Answer::Done)),
            Op::Exists(key) => host
                .store_exists
                .map(|f| (f(call, b(key), buf), Answer::Done)),
            Op::Expire(key, ttl) => host
                .store_expire
                .map(|f| (f(call, b(key), ttl, buf), Answer::Done)),
            Op::Incr(key, by) => host
                .store_incr
                .map(|f| (f(call, b(key), by, int_ptr, buf), Answer::Int)),
            Op::HGet(key, field) => host
                .store_hget
                .map(|f| (f(call, b(key), b(field), buf), Answer::Bytes)),
            Op::HSet(key, field, value) => host.store_hset.map(|f| {
                (
                    f(call, b(key), b(field), Bytes::new(value), buf),
                    Answer::Done,
                )
            }),
            Op::HDel(key, field) => host
                .store_hdel
                .map(|f| (f(call, b(key), b(field), buf), Answer::Done)),
            Op::HGetAll(key) => host
                .store_hget_all
                .map(|f| (f(call, b(key), buf), Answer::Pairs)),
            Op::SessionGet(field) => host
                .session_get
                .map(|f| (f(call, b(field), buf), Answer::Bytes)),
            Op::SessionSet(field, value) => host
                .session_set
                .map(|f| (f(call, b(field), Bytes::new(value), buf), Answer::Done)),
            Op::SessionRemove(field) => host
                .session_remove
                .map(|f| (f(call, b(field), buf), Answer::Done)),
            Op::SessionIncr(field, by) => host
                .session_incr
                .map(|f| (f(call, b(field), by, int_ptr, buf), Answer::Int)),
        }
    };
    let Some((outcome, answer)) = result else {
        return Err(StoreError::Other(format!(
            "this drupe host (plugin ABI {}.{}) has no `{name}`; upgrade drupe to use the store and sessions",
            host.abi_major, host.abi_minor
        )));
    };
    reply(outcome, answer, out, int, name)
}

fn reply(
    outcome: Outcome,
    answer: Answer,
    out: Vec<u8>,
    int: i64,
    name: &str,
) -> Result<Reply, StoreError> {
    let message = |out: Vec<u8>| {
        if out.is_empty() {
            format!("`{name}` failed (outcome {outcome})")
        } else {
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    match outcome {
        abi::OUTCOME_OK => match answer {
            Answer::Done => Ok(Reply::Done),
            Answer::Bytes => Ok(Reply::Bytes(out)),
            Answer::Int => Ok(Reply::Int(int)),
            Answer::Pairs => decode_pairs(&out).map(Reply::Pairs).ok_or_else(|| {
                StoreError::Other(format!("`{name}`: the host sent malformed pairs"))
            }),
        },
        abi::OUTCOME_NOT_FOUND => Ok(Reply::NotFound),
        abi::OUTCOME_UNAVAILABLE => Err(StoreError::Unavailable(message(out))),
        _ => Err(StoreError::Other(message(out))),
    }
}

/// The `HostApi` field an operation goes through, for messages.
fn name(op: &Op<'_>) -> &'static str {
    match op {
        Op::Get(..) => "store_get",
        Op::Set(..) => "store_set",
        Op::Delete(..) => "store_delete",
        Op::Exists(..) => "store_exists",
        Op::Expire(..) => "store_expire",
        Op::Incr(..) => "store_incr",
        Op::HGet(..) => "store_hget",
        Op::HSet(..) => "store_hset",
        Op::HDel(..) => "store_hdel",
        Op::HGetAll(..) => "store_hget_all",
        Op::SessionGet(..) => "session_get",
        Op::SessionSet(..) => "session_set",
        Op::SessionRemove(..) => "session_remove",
        Op::SessionIncr(..) => "session_incr",
    }
}

/// Decodes [`abi::HostApi::store_hget_all`]'s answer; `None` if it is cut
/// short.
fn decode_pairs(mut data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    fn take<'d>(data: &mut &'d [u8]) -> Option<&'d [u8]> {
        let (len, rest) = data.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (item, rest) = rest.split_at(len);
        *data = rest;
        Some(item)
    }
    let mut pairs = Vec::new();
    while !data.is_empty() {
        let field = take(&mut data)?.to_vec();
        let value = take(&mut data)?.to_vec();
        pairs.push((field, value));
    }
    Some(pairs)
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
    use crate::context::Backend;
    use crate::store::Store;

    unsafe extern "C" fn log(_: abi::LogLevel, _: Bytes, _: Bytes) {}
    unsafe extern "C" fn set_status(_: *mut Call, _: u16) {}
    unsafe extern "C" fn add_header(_: *mut Call, _: Bytes, _: Bytes) -> Outcome {
        abi::OUTCOME_OK
    }
    unsafe extern "C" fn append_body(_: *mut Call, _: Bytes) {}

    fn key(key: Bytes) -> String {
        // SAFETY: `exec` passes bytes valid during the call.
        String::from_utf8_lossy(unsafe { key.as_slice() }).into_owned()
    }
    fn write(out: OutBuf, data: &[u8]) {
        // SAFETY: `exec` passes its own `OutBuf`, valid during the call.
        unsafe { (out.write)(out.target, Bytes::new(data)) }
    }

    /// `store_get`: `hit` has a value, anything else is missing.
    unsafe extern "C" fn get(_: *mut Call, k: Bytes, out: OutBuf) -> Outcome {
        if key(k) == "hit" {
            write(out, b"value");
            abi::OUTCOME_OK
        } else {
            abi::OUTCOME_NOT_FOUND
        }
    }
    /// `store_exists`: the store is down.
    unsafe extern "C" fn down(_: *mut Call, _: Bytes, out: OutBuf) -> Outcome {
        write(out, b"redis at 127.0.0.1:1 refused the connection");
        abi::OUTCOME_UNAVAILABLE
    }
    /// `store_delete`: fails without saying why.
    unsafe extern "C" fn mute(_: *mut Call, _: Bytes, _: OutBuf) -> Outcome {
        abi::OUTCOME_ERROR
    }
    unsafe extern "C" fn incr(_: *mut Call, _: Bytes, by: i64, v: *mut i64, _: OutBuf) -> Outcome {
        // SAFETY: `exec` passes a pointer to its local integer.
        unsafe { *v = 40 + by };
        abi::OUTCOME_OK
    }
    unsafe extern "C" fn get_all(_: *mut Call, _: Bytes, out: OutBuf) -> Outcome {
        write(out, &encode(&[(b"name", b"Ana"), (b"age", b"7")]));
        abi::OUTCOME_OK
    }

    fn host() -> HostApi {
        HostApi {
            size: std::mem::size_of::<HostApi>(),
            abi_major: abi::ABI_MAJOR,
            abi_minor: abi::ABI_MINOR,
            log,
            set_status,
            add_header,
            append_body,
            store_get: Some(get),
            store_set: None,
            store_delete: Some(mute),
            store_exists: Some(down),
            store_expire: None,
            store_incr: Some(incr),
            store_hget: None,
            store_hset: None,
            store_hdel: None,
            store_hget_all: Some(get_all),
            session_get: None,
            session_set: None,
            session_remove: None,
            session_incr: None,
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

    fn encode(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in pairs {
            for part in [k, v] {
                out.extend_from_slice(&(part.len() as u32).to_le_bytes());
                out.extend_from_slice(part);
            }
        }
        out
    }

    #[test]
    fn pairs_round_trip_and_truncation_is_refused() {
        let data = encode(&[(b"a", b"1"), (b"", b""), (b"name", b"Ana")]);
        let pairs = decode_pairs(&data).expect("well formed");
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[2], (b"name".to_vec(), b"Ana".to_vec()));
        assert_eq!(decode_pairs(&[]), Some(vec![]));
        assert_eq!(decode_pairs(&data[..data.len() - 1]), None);
        assert_eq!(decode_pairs(&data[..2]), None);
    }
}
