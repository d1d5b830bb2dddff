//! One store or session operation, defined once for the SDK and the host.
//!
//! [`Op`] is what a plugin asks for; [`Reply`] is what a backend answers.
//! The SDK's [`Store`](crate::Store) and [`Session`](crate::Session) build
//! `Op`s, the test store and the host's backends serve them, and this
//! module alone turns them into the bytes that cross the plugin boundary
//! and back: [`Op::to_raw`] and [`Op::from_raw`] for the request
//! ([`abi::StoreOp`]), [`encode`] and [`decode`] for the answer.
//!
//! Adding an operation means: a variant and its arms below (name, wire
//! code, arguments, kind of answer), its case in each backend, and a
//! method on `Store` or `Session`. An answer of a new shape (a list of
//! values) adds a [`Reply`] variant and its case in `encode` and `decode`.
//!
//! Plugin authors never need this module; it is public for the host.

#![allow(unsafe_code)] // `Op::from_raw` reads the plugin's borrowed bytes

use std::time::Duration;

use super::error::StoreError;
use crate::abi::{self, Bytes, Outcome, StoreOp};

/// A hash's fields and values, as pairs.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The wire codes of the operations ([`abi::StoreOp::code`]). A code is
/// never reused or renumbered: plugins built long ago send it.
pub mod code {
    #![allow(missing_docs)] // each is the operation of the same name
    pub const GET: u32 = 1;
    pub const SET: u32 = 2;
    pub const DELETE: u32 = 3;
    pub const EXISTS: u32 = 4;
    pub const EXPIRE: u32 = 5;
    pub const INCR: u32 = 6;
    pub const HGET: u32 = 7;
    pub const HSET: u32 = 8;
    pub const HDEL: u32 = 9;
    pub const HGET_ALL: u32 = 10;
    pub const SESSION_GET: u32 = 11;
    pub const SESSION_SET: u32 = 12;
    pub const SESSION_REMOVE: u32 = 13;
    pub const SESSION_INCR: u32 = 14;
}

/// A store or session call from a plugin. Keys and fields are the
/// plugin's own (the host adds the namespace); every slice is borrowed for
/// the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// The value of a key.
    Get(&'a [u8]),
    /// Sets key to value, replacing any TTL; `None`: no TTL.
    Set(&'a [u8], &'a [u8], Option<Duration>),
    /// Deletes a key; Done if it existed.
    Delete(&'a [u8]),
    /// Done if the key exists.
    Exists(&'a [u8]),
    /// Sets the TTL of an existing key; zero expires it now.
    Expire(&'a [u8], Duration),
    /// Adds to the integer at key.
    Incr(&'a [u8], i64),
    /// One field of a hash.
    HGet(&'a [u8], &'a [u8]),
    /// Sets one field of a hash.
    HSet(&'a [u8], &'a [u8], &'a [u8]),
    /// Removes one field of a hash; Done if it existed.
    HDel(&'a [u8], &'a [u8]),
    /// Every field of a hash.
    HGetAll(&'a [u8]),
    /// One field of the visitor's session.
    SessionGet(&'a [u8]),
    /// Sets a session field, starting a session if needed.
    SessionSet(&'a [u8], &'a [u8]),
    /// Removes a session field; Done if it existed.
    SessionRemove(&'a [u8]),
    /// Adds to an integer session field, starting a session if needed.
    SessionIncr(&'a [u8], i64),
}

/// The answer to an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done; or "yes" for delete, exists, expire, hdel, session remove.
    Done,
    /// No such key or field; or "no" for those.
    NotFound,
    /// A value.
    Bytes(Vec<u8>),
    /// An integer.
    Int(i64),
    /// A hash's fields.
    Pairs(Fields),
}

/// The kind of [`Reply`] an operation answers when it succeeds, which
/// tells the SDK how to read an `OUTCOME_OK`.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Done or NotFound, nothing else.
    Done,
    /// A value in the out buffer, or NotFound.
    Bytes,
    /// The integer in `int_out`.
    Int,
    /// Encoded pairs in the out buffer.
    Pairs,
}

impl<'a> Op<'a> {
    /// The operation's name, for messages (its ABI 1.1 function's name).
    pub fn name(&self) -> &'static str {
        match self {
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

    /// The plugin's key, for the operations on keys (not sessions).
    pub fn key(&self) -> Option<&'a [u8]> {
        match *self {
            Op::Get(key)
            | Op::Set(key, ..)
            | Op::Delete(key)
            | Op::Exists(key)
            | Op::Expire(key, _)
            | Op::Incr(key, _)
            | Op::HGet(key, _)
            | Op::HSet(key, ..)
            | Op::HDel(key, _)
            | Op::HGetAll(key) => Some(key),
            Op::SessionGet(_) | Op::SessionSet(..) | Op::SessionRemove(_) | Op::SessionIncr(..) => {
                None
            }
        }
    }

    fn answer(&self) -> Answer {
        match self {
            Op::Get(..) | Op::HGet(..) | Op::SessionGet(..) => Answer::Bytes,
            Op::Incr(..) | Op::SessionIncr(..) => Answer::Int,
            Op::HGetAll(..) => Answer::Pairs,
            Op::Set(..)
            | Op::Delete(..)
            | Op::Exists(..)
            | Op::Expire(..)
            | Op::HSet(..)
            | Op::HDel(..)
            | Op::SessionSet(..)
            | Op::SessionRemove(..) => Answer::Done,
        }
    }

    /// The operation as it crosses the boundary, borrowing its slices.
    /// TTLs become whole milliseconds, rounded up; a set's TTL is never 0,
    /// which would mean "no TTL".
    pub fn to_raw(&self) -> StoreOp {
        let b = Bytes::new;
        match *self {
            Op::Get(key) => StoreOp {
                key: b(key),
                ..StoreOp::new(code::GET)
            },
            Op::Set(key, value, ttl) => StoreOp {
                key: b(key),
                value: b(value),
                ttl_ms: ttl.map_or(0, |ttl| millis(ttl).max(1)),
                ..StoreOp::new(code::SET)
            },
            Op::Delete(key) => StoreOp {
                key: b(key),
                ..StoreOp::new(code::DELETE)
            },
            Op::Exists(key) => StoreOp {
                key: b(key),
                ..StoreOp::new(code::EXISTS)
            },
            Op::Expire(key, ttl) => StoreOp {
                key: b(key),
                ttl_ms: millis(ttl),
                ..StoreOp::new(code::EXPIRE)
            },
            Op::Incr(key, by) => StoreOp {
                key: b(key),
                ints: [by, 0],
                ..StoreOp::new(code::INCR)
            },
            Op::HGet(key, field) => StoreOp {
                key: b(key),
                field: b(field),
                ..StoreOp::new(code::HGET)
            },
            Op::HSet(key, field, value) => StoreOp {
                key: b(key),
                field: b(field),
                value: b(value),
                ..StoreOp::new(code::HSET)
            },
            Op::HDel(key, field) => StoreOp {
                key: b(key),
                field: b(field),
                ..StoreOp::new(code::HDEL)
            },
            Op::HGetAll(key) => StoreOp {
                key: b(key),
                ..StoreOp::new(code::HGET_ALL)
            },
            Op::SessionGet(field) => StoreOp {
                field: b(field),
                ..StoreOp::new(code::SESSION_GET)
            },
            Op::SessionSet(field, value) => StoreOp {
                field: b(field),
                value: b(value),
                ..StoreOp::new(code::SESSION_SET)
            },
            Op::SessionRemove(field) => StoreOp {
                field: b(field),
                ..StoreOp::new(code::SESSION_REMOVE)
            },
            Op::SessionIncr(field, by) => StoreOp {
                field: b(field),
                ints: [by, 0],
                ..StoreOp::new(code::SESSION_INCR)
            },
        }
    }

    /// Reads an operation a plugin passed to `store_call`. The error says
    /// why it cannot be served (a code this host does not know, a struct
    /// too small), for the plugin.
    ///
    /// # Safety
    /// `raw` must be null or point to a [`StoreOp`] of at least its `size`
    /// readable bytes, whose `Bytes` are valid for `'a`, as
    /// [`abi::HostApi::store_call`] promises for the duration of the call.
    pub unsafe fn from_raw(raw: *const StoreOp) -> Result<Op<'a>, String> {
        if raw.is_null() {
            return Err("the plugin passed a null store operation".to_owned());
        }
        // SAFETY: not null; `size` is the first field of every version.
        let size = unsafe { (*raw).size };
        if size < std::mem::size_of::<StoreOp>() {
            return Err(format!(
                "the plugin's store operation has {size} bytes, fewer than ABI 1.2's {}",
                std::mem::size_of::<StoreOp>()
            ));
        }
        // SAFETY: large enough (checked), and its bytes are valid for 'a
        // (contract).
        let (raw, key, field, value) = unsafe {
            let raw = &*raw;
            (
                raw,
                raw.key.as_slice(),
                raw.field.as_slice(),
                raw.value.as_slice(),
            )
        };
        let ttl = Duration::from_millis(raw.ttl_ms);
        let [n, _] = raw.ints;
        Ok(match raw.code {
            code::GET => Op::Get(key),
            code::SET => Op::Set(key, value, (raw.ttl_ms > 0).then_some(ttl)),
            code::DELETE => Op::Delete(key),
            code::EXISTS => Op::Exists(key),
            code::EXPIRE => Op::Expire(key, ttl),
            code::INCR => Op::Incr(key, n),
            code::HGET => Op::HGet(key, field),
            code::HSET => Op::HSet(key, field, value),
            code::HDEL => Op::HDel(key, field),
            code::HGET_ALL => Op::HGetAll(key),
            code::SESSION_GET => Op::SessionGet(field),
            code::SESSION_SET => Op::SessionSet(field, value),
            code::SESSION_REMOVE => Op::SessionRemove(field),
            code::SESSION_INCR => Op::SessionIncr(field, n),
            other => {
                return Err(format!(
                    "store operation {other} is unknown to this drupe (plugin ABI {}.{}); \
                     upgrade drupe to the version the plugin's drupe-sdk expects",
                    abi::ABI_MAJOR,
                    abi::ABI_MINOR
                ))
            }
        })
    }
}

/// Whole milliseconds, rounded up, at most `u64::MAX`.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// A result as the host sends it back: the outcome `store_call` returns,
/// the bytes it writes to the plugin's out buffer (a value, encoded pairs,
/// or an error message), and the integer it stores in `*int_out`.
#[derive(Debug, PartialEq, Eq)]
pub struct Encoded {
    /// OK, NOT_FOUND, or the error's outcome.
    pub outcome: Outcome,
    /// For the out buffer; empty: write nothing.
    pub data: Vec<u8>,
    /// For `*int_out`, when the answer is an integer.
    pub int: Option<i64>,
}

/// Encodes a backend's answer for the plugin (the host's side).
pub fn encode(result: Result<Reply, StoreError>) -> Encoded {
    let ok = |data: Vec<u8>| Encoded {
        outcome: abi::OUTCOME_OK,
        data,
        int: None,
    };
    match result {
        Ok(Reply::Done) => ok(Vec::new()),
        Ok(Reply::NotFound) => Encoded {
            outcome: abi::OUTCOME_NOT_FOUND,
            ..ok(Vec::new())
        },
        Ok(Reply::Bytes(bytes)) => ok(bytes),
        Ok(Reply::Int(n)) => Encoded {
            int: Some(n),
            ..ok(Vec::new())
        },
        Ok(Reply::Pairs(pairs)) => match encode_pairs(&pairs) {
            Some(data) => ok(data),
            None => encode(Err(StoreError::Other(
                "a hash field or value is larger than 4 GiB".to_owned(),
            ))),
        },
        Err(e) => Encoded {
            outcome: e.outcome(),
            data: e.message().as_bytes().to_vec(),
            int: None,
        },
    }
}

/// Decodes the host's answer to `op` (the SDK's side): the outcome, what
/// it wrote to the out buffer, and the integer.
pub fn decode(op: &Op<'_>, outcome: Outcome, data: Vec<u8>, int: i64) -> Result<Reply, StoreError> {
    let name = op.name();
    match outcome {
        abi::OUTCOME_OK => match op.answer() {
            Answer::Done => Ok(Reply::Done),
            Answer::Bytes => Ok(Reply::Bytes(data)),
            Answer::Int => Ok(Reply::Int(int)),
            Answer::Pairs => decode_pairs(&data).map(Reply::Pairs).ok_or_else(|| {
                StoreError::Other(format!("`{name}`: the host sent malformed pairs"))
            }),
        },
        abi::OUTCOME_NOT_FOUND => Ok(Reply::NotFound),
        _ => {
            let message = if data.is_empty() {
                format!("`{name}` failed (outcome {outcome})")
            } else {
                String::from_utf8_lossy(&data).into_owned()
            };
            Err(StoreError::from_outcome(outcome, message))
        }
    }
}

/// The encoding of a list of byte strings: each as a `u32` little-endian
/// length and the bytes; `None` if one is larger than 4 GiB.
fn encode_items<'i>(items: impl IntoIterator<Item = &'i [u8]>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(&u32::try_from(item.len()).ok()?.to_le_bytes());
        out.extend_from_slice(item);
    }
    Some(out)
}

/// Reads what [`encode_items`] wrote; `None` if it is cut short.
fn decode_items(mut data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut items = Vec::new();
    while !data.is_empty() {
        let (len, rest) = data.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (item, rest) = rest.split_at(len);
        items.push(item.to_vec());
        data = rest;
    }
    Some(items)
}

/// `HostApi::store_hget_all`'s encoding: field, value, field, value, …
fn encode_pairs(pairs: &Fields) -> Option<Vec<u8>> {
    encode_items(pairs.iter().flat_map(|(k, v)| [k.as_slice(), v.as_slice()]))
}

/// Reads [`encode_pairs`]' encoding; `None` if it is cut short or odd.
fn decode_pairs(data: &[u8]) -> Option<Fields> {
    let items = decode_items(data)?;
    if items.len() % 2 != 0 {
        return None;
    }
    let mut items = items.into_iter();
    let mut pairs = Vec::with_capacity(items.len() / 2);
    while let (Some(field), Some(value)) = (items.next(), items.next()) {
        pairs.push((field, value));
    }
    Some(pairs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn encode_test(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
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
        let data = encode_test(&[(b"a", b"1"), (b"", b""), (b"name", b"Ana")]);
        let pairs = decode_pairs(&data).expect("well formed");
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[2], (b"name".to_vec(), b"Ana".to_vec()));
        assert_eq!(decode_pairs(&[]), Some(vec![]));
        assert_eq!(decode_pairs(&data[..data.len() - 1]), None);
        assert_eq!(decode_pairs(&data[..2]), None);
    }

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

    /// Every operation, with arguments that tell its fields apart.
    fn every_op() -> Vec<Op<'static>> {
        let ms = Duration::from_millis;
        vec![
            Op::Get(b"k"),
            Op::Set(b"k", b"v", None),
            Op::Set(b"k", b"v", Some(ms(1500))),
            Op::Delete(b"k"),
            Op::Exists(b"k"),
            Op::Expire(b"k", ms(30)),
            Op::Expire(b"k", Duration::ZERO),
            Op::Incr(b"k", -7),
            Op::HGet(b"k", b"f"),
            Op::HSet(b"k", b"f", b"v"),
            Op::HDel(b"k", b"f"),
            Op::HGetAll(b"k"),
            Op::SessionGet(b"f"),
            Op::SessionSet(b"f", b"v"),
            Op::SessionRemove(b"f"),
            Op::SessionIncr(b"f", 3),
        ]
    }

    #[test]
    fn every_op_crosses_the_boundary_unchanged() {
        for op in every_op() {
            let raw = op.to_raw();
            // SAFETY: `raw` borrows the op's static slices.
            assert_eq!(unsafe { Op::from_raw(&raw) }, Ok(op));
        }
    }

    #[test]
    fn a_short_ttl_is_never_no_ttl() {
        let raw = Op::Set(b"k", b"v", Some(Duration::from_nanos(1))).to_raw();
        assert_eq!(raw.ttl_ms, 1);
    }

    #[test]
    fn unknown_codes_and_short_structs_are_refused() {
        let unknown = StoreOp::new(999);
        // SAFETY: a whole `StoreOp` with empty bytes.
        let e = unsafe { Op::from_raw(&unknown) }.unwrap_err();
        assert!(e.contains("store operation 999 is unknown"), "{e}");
        let short = StoreOp {
            size: 8,
            ..Op::Get(b"k").to_raw()
        };
        // SAFETY: as above; only `size` is read.
        assert!(unsafe { Op::from_raw(&short) }.is_err());
        // SAFETY: null is allowed.
        assert!(unsafe { Op::from_raw(std::ptr::null()) }.is_err());
    }

    #[test]
    fn every_reply_survives_the_boundary() {
        let cases = [
            (Op::Set(b"k", b"v", None), Reply::Done),
            (Op::Get(b"k"), Reply::NotFound),
            (Op::Get(b"k"), Reply::Bytes(b"v".to_vec())),
            (Op::Incr(b"k", 1), Reply::Int(-3)),
            (
                Op::HGetAll(b"k"),
                Reply::Pairs(vec![(b"f".to_vec(), b"v".to_vec())]),
            ),
        ];
        for (op, reply) in cases {
            let sent = encode(Ok(reply.clone()));
            let back = decode(&op, sent.outcome, sent.data, sent.int.unwrap_or(0));
            assert_eq!(back, Ok(reply));
        }
        let e = StoreError::Unavailable("down".into());
        let sent = encode(Err(e.clone()));
        assert_eq!(decode(&Op::Get(b"k"), sent.outcome, sent.data, 0), Err(e));
    }
}
