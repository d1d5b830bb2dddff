//! The store and session functions of the host's table (ABI 1.1): thin
//! shims that turn the raw arguments into a [`store::Op`], hand it to the
//! call's [`CallSink`], and write the answer back through the plugin's
//! [`OutBuf`] (the plugin copies; the host frees nothing of the plugin's).
//!
//! Each shim only borrows its `Bytes` for the call and never unwinds into
//! the plugin; all the logic is in safe code ([`crate::store::call`]).

use drupe_sdk::abi::{self, Bytes, Call, OutBuf, Outcome};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::dl::{abort_on_panic, sink, CallSink};
use crate::store::{Op, Reply, StoreError};

/// Serves `op` for the call and reports it the ABI's way.
///
/// # Safety
/// `call` must be the `*mut S` that `Entry::handle` passed to the plugin,
/// during that call; `out` must be the plugin's receiver for this call;
/// `value` must be null or valid for one `i64` write.
unsafe fn serve<S: CallSink>(call: *mut Call, out: OutBuf, value: *mut i64, op: Op<'_>) -> Outcome {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `call` comes from `Entry::handle` (this function's contract).
        let reply = unsafe { sink::<S>(call) }.store(op);
        let write = |data: &[u8]| {
            // SAFETY: the plugin gave `out` for this call; `data` outlives it.
            unsafe { (out.write)(out.target, Bytes::new(data)) }
        };
        match reply {
            Ok(Reply::Done) => abi::OUTCOME_OK,
            Ok(Reply::NotFound) => abi::OUTCOME_NOT_FOUND,
            Ok(Reply::Bytes(bytes)) => {
                write(&bytes);
                abi::OUTCOME_OK
            }
            Ok(Reply::Int(n)) if !value.is_null() => {
                // SAFETY: not null, and valid for a write (contract).
                unsafe { value.write(n) };
                abi::OUTCOME_OK
            }
            Ok(Reply::Int(_)) => {
                write(b"the plugin passed no place for the integer result");
                abi::OUTCOME_ERROR
            }
            Ok(Reply::Pairs(pairs)) => match encode_pairs(&pairs) {
                Some(encoded) => {
                    write(&encoded);
                    abi::OUTCOME_OK
                }
                None => {
                    write(b"a hash field or value is larger than 4 GiB");
                    abi::OUTCOME_ERROR
                }
            },
            Err(StoreError::Unavailable(message)) => {
                write(message.as_bytes());
                abi::OUTCOME_UNAVAILABLE
            }
            Err(StoreError::Other(message)) => {
                write(message.as_bytes());
                abi::OUTCOME_ERROR
            }
        }
    }));
    abort_on_panic(result)
}

/// `HostApi::store_hget_all`'s encoding: `u32` LE length, bytes; field then
/// value, repeated.
fn encode_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Option<Vec<u8>> {
    let size = pairs.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(size);
    for part in pairs.iter().flat_map(|(k, v)| [k, v]) {
        out.extend_from_slice(&u32::try_from(part.len()).ok()?.to_le_bytes());
        out.extend_from_slice(part);
    }
    Some(out)
}

/// TTLs arrive in milliseconds; for `store_set`, 0 means none.
fn ttl(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}

// Each shim: SAFETY — `call` and `out` come from the plugin's `handle` call
// as the ABI requires, and the `Bytes` are borrowed for this call, so the
// slices made from them live as long as `serve` needs them.

pub(super) unsafe extern "C" fn store_get<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe { serve::<S>(call, out, std::ptr::null_mut(), Op::Get(key.as_slice())) }
}

pub(super) unsafe extern "C" fn store_set<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    value: Bytes,
    ttl_ms: u64,
    out: OutBuf,
) -> Outcome {
    let ttl = (ttl_ms > 0).then(|| ttl(ttl_ms));
    // SAFETY: see above.
    unsafe {
        serve::<S>(
            call,
            out,
            std::ptr::null_mut(),
            Op::Set(key.as_slice(), value.as_slice(), ttl),
        )
    }
}

pub(super) unsafe extern "C" fn store_delete<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe { serve::<S>(call, out, std::ptr::null_mut(), Op::Delete(key.as_slice())) }
}

pub(super) unsafe extern "C" fn store_exists<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe { serve::<S>(call, out, std::ptr::null_mut(), Op::Exists(key.as_slice())) }
}

pub(super) unsafe extern "C" fn store_expire<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    ttl_ms: u64,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe {
        serve::<S>(
            call,
            out,
            std::ptr::null_mut(),
            Op::Expire(key.as_slice(), ttl(ttl_ms)),
        )
    }
}

pub(super) unsafe extern "C" fn store_incr<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    by: i64,
    value: *mut i64,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above; `value` is the plugin's result slot for this call.
    unsafe { serve::<S>(call, out, value, Op::Incr(key.as_slice(), by)) }
}

pub(super) unsafe extern "C" fn store_hget<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    field: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe {
        serve::<S>(
            call,
            out,
            std::ptr::null_mut(),
            Op::HGet(key.as_slice(), field.as_slice()),
        )
    }
}

pub(super) unsafe extern "C" fn store_hset<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    field: Bytes,
    value: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    let op = unsafe { Op::HSet(key.as_slice(), field.as_slice(), value.as_slice()) };
    // SAFETY: see above.
    unsafe { serve::<S>(call, out, std::ptr::null_mut(), op) }
}

pub(super) unsafe extern "C" fn store_hdel<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    field: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe {
        serve::<S>(
            call,
            out,
            std::ptr::null_mut(),
            Op::HDel(key.as_slice(), field.as_slice()),
        )
    }
}

pub(super) unsafe extern "C" fn store_hget_all<S: CallSink>(
    call: *mut Call,
    key: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe { serve::<S>(call, out, std::ptr::null_mut(), Op::HGetAll(key.as_slice())) }
}

pub(super) unsafe extern "C" fn session_get<S: CallSink>(
    call: *mut Call,
    field: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe {
        serve::<S>(
            call,
            out,
            std::ptr::null_mut(),
            Op::SessionGet(field.as_slice()),
        )
    }
}

pub(super) unsafe extern "C" fn session_set<S: CallSink>(
    call: *mut Call,
    field: Bytes,
    value: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe {
        serve::<S>(
            call,
            out,
            std::ptr::null_mut(),
            Op::SessionSet(field.as_slice(), value.as_slice()),
        )
    }
}

pub(super) unsafe extern "C" fn session_remove<S: CallSink>(
    call: *mut Call,
    field: Bytes,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above.
    unsafe {
        serve::<S>(
            call,
            out,
            std::ptr::null_mut(),
            Op::SessionRemove(field.as_slice()),
        )
    }
}

pub(super) unsafe extern "C" fn session_incr<S: CallSink>(
    call: *mut Call,
    field: Bytes,
    by: i64,
    value: *mut i64,
    out: OutBuf,
) -> Outcome {
    // SAFETY: see above; `value` is the plugin's result slot for this call.
    unsafe { serve::<S>(call, out, value, Op::SessionIncr(field.as_slice(), by)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_length_prefixed() {
        let pairs = vec![
            (b"ab".to_vec(), b"".to_vec()),
            (b"c".to_vec(), b"xyz".to_vec()),
        ];
        assert_eq!(
            encode_pairs(&pairs).unwrap_or_default(),
            b"\x02\0\0\0ab\0\0\0\0\x01\0\0\0c\x03\0\0\0xyz"
        );
    }
}
