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
//! method on `Store` or `Session`. An answer of a new shape adds a
//! [`Reply`] variant and its case in `encode` and `decode`.
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
    pub const KEYS: u32 = 15;
    pub const PUSH: u32 = 16;
    pub const RANGE: u32 = 17;
    pub const LEN: u32 = 18;
    pub const SESSION_REGENERATE: u32 = 19;
    pub const SESSION_DESTROY: u32 = 20;
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
    /// The plugin's key names that start with the prefix, of any kind,
    /// sorted bytewise, at most the limit.
    Keys(&'a [u8], u64),
    /// Appends a value to the list at key (`RPUSH`); the new length.
    Push(&'a [u8], &'a [u8]),
    /// The list's items from start to stop, both included, negative
    /// counting from the end (`LRANGE`).
    Range(&'a [u8], i64, i64),
    /// The list's length (`LLEN`); 0 if missing.
    Len(&'a [u8]),
    /// Gives the visitor's session a new id, keeping its data.
    SessionRegenerate,
    /// Deletes the visitor's session and expires its cookie.
    SessionDestroy,
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
    /// Byte strings in order: key names, list items.
    List(Vec<Vec<u8>>),
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
    /// Encoded byte strings in the out buffer.
    List,
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
            Op::Keys(..) => "store_keys",
            Op::Push(..) => "store_push",
            Op::Range(..) => "store_range",
            Op::Len(..) => "store_len",
            Op::SessionRegenerate => "session_regenerate",
            Op::SessionDestroy => "session_destroy",
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
            | Op::HGetAll(key)
            | Op::Push(key, _)
            | Op::Range(key, ..)
            | Op::Len(key) => Some(key),
            Op::Keys(..)
            | Op::SessionGet(_)
            | Op::SessionSet(..)
            | Op::SessionRemove(_)
            | Op::SessionIncr(..)
            | Op::SessionRegenerate
            | Op::SessionDestroy => None,
        }
    }

    fn answer(&self) -> Answer {
        match self {
            Op::Get(..) | Op::HGet(..) | Op::SessionGet(..) => Answer::Bytes,
            Op::Incr(..) | Op::SessionIncr(..) | Op::Push(..) | Op::Len(..) => Answer::Int,
            Op::HGetAll(..) => Answer::Pairs,
            Op::Keys(..) | Op::Range(..) => Answer::List,
            Op::Set(..)
            | Op::Delete(..)
            | Op::Exists(..)
            | Op::Expire(..)
            | Op::HSet(..)
            | Op::HDel(..)
            | Op::SessionSet(..)
            | Op::SessionRemove(..)
            | Op::SessionRegenerate
            | Op::SessionDestroy => Answer::Done,
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
            Op::Keys(prefix, limit) => StoreOp {
                key: b(prefix),
                ints: [i64::try_from(limit).unwrap_or(i64::MAX), 0],
                ..StoreOp::new(code::KEYS)
            },
            Op::Push(key, value) => StoreOp {
                key: b(key),
                value: b(value),
                ..StoreOp::new(code::PUSH)
            },
            Op::Range(key, start, stop) => StoreOp {
                key: b(key),
                ints: [start, stop],
                ..StoreOp::new(code::RANGE)
            },
            Op::Len(key) => StoreOp {
                key: b(key),
                ..StoreOp::new(code::LEN)
            },
            Op::SessionRegenerate => StoreOp::new(code::SESSION_REGENERATE),
            Op::SessionDestroy => StoreOp::new(code::SESSION_DESTROY),
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
        let [n, m] = raw.ints;
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
            code::KEYS => Op::Keys(key, u64::try_from(n).unwrap_or(0)),
            code::PUSH => Op::Push(key, value),
            code::RANGE => Op::Range(key, n, m),
            code::LEN => Op::Len(key),
            code::SESSION_REGENERATE => Op::SessionRegenerate,
            code::SESSION_DESTROY => Op::SessionDestroy,
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
        Ok(Reply::List(items)) => match encode_items(items.iter().map(Vec::as_slice)) {
            Some(data) => ok(data),
            None => encode(Err(StoreError::Other(
                "a key or list item is larger than 4 GiB".to_owned(),
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
            Answer::List => decode_items(&data).map(Reply::List).ok_or_else(|| {
                StoreError::Other(format!("`{name}`: the host sent a malformed list"))
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

/// Which items `LRANGE start stop` takes from a list of `len` items, as
/// Redis decides: negative indexes count from the end, `stop` is included,
/// out-of-range bounds are clamped. `None` when it takes nothing. The
/// backends without a native `LRANGE` (SQLite, the test store) use this.
///
/// ```
/// use drupe_sdk::store_op::list_range;
/// assert_eq!(list_range(5, 0, -1), Some(0..5));
/// assert_eq!(list_range(5, -2, 100), Some(3..5));
/// assert_eq!(list_range(5, 3, 1), None);
/// assert_eq!(list_range(0, 0, -1), None);
/// ```
pub fn list_range(len: usize, start: i64, stop: i64) -> Option<std::ops::Range<usize>> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let from_end = |i: i64| if i < 0 { len.saturating_add(i) } else { i };
    let start = from_end(start).max(0);
    let stop = from_end(stop).min(len - 1);
    if start > stop {
        return None;
    }
    Some(usize::try_from(start).ok()?..usize::try_from(stop).ok()? + 1)
}

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "drupe_session";

/// The `Set-Cookie` value that hands session `id` (its hex) to the browser:
/// the whole site (`Path=/`), out of reach of scripts (`HttpOnly`), and not
/// sent on cross-site subrequests (`SameSite=Lax`). No `Max-Age`: the
/// store's idle timeout decides how long the session lives.
///
/// ```
/// use drupe_sdk::store_op::session_cookie;
/// assert_eq!(session_cookie("ab"), "drupe_session=ab; Path=/; HttpOnly; SameSite=Lax");
/// ```
pub fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax")
}

/// A session `Set-Cookie` value ([`session_cookie`],
/// [`session_cookie_removal`]) as it goes out on a response to a request
/// that came over https when `secure`: with `Secure`, so the browser never
/// sends the id in clear.
///
/// ```
/// use drupe_sdk::store_op::{session_cookie, session_cookie_over};
/// assert!(session_cookie_over(session_cookie("ab"), true).ends_with("; Secure"));
/// assert_eq!(session_cookie_over(session_cookie("ab"), false), session_cookie("ab"));
/// ```
pub fn session_cookie_over(cookie: String, secure: bool) -> String {
    if secure {
        cookie + "; Secure"
    } else {
        cookie
    }
}

/// The `Set-Cookie` value that makes the browser drop its session cookie
/// (after [`Op::SessionDestroy`]).
///
/// ```
/// use drupe_sdk::store_op::session_cookie_removal;
/// assert!(session_cookie_removal().contains("; Max-Age=0"));
/// ```
pub fn session_cookie_removal() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
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
            Op::Keys(b"user:", 50),
            Op::Push(b"k", b"v"),
            Op::Range(b"k", -3, -1),
            Op::Len(b"k"),
            Op::SessionRegenerate,
            Op::SessionDestroy,
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
            (Op::Keys(b"", 10), Reply::List(vec![b"a".to_vec(), vec![]])),
            (Op::Range(b"k", 0, -1), Reply::List(vec![])),
            (Op::Push(b"k", b"v"), Reply::Int(3)),
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
