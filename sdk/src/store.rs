//! Shared data: the store every worker and every host sees, and the
//! visitor's session kept in it.
//!
//! [`Store`] and [`Session`] are handles that a handler gets from its
//! [`Context`](crate::Context) with `ctx.store()` and `ctx.session()`. Both
//! are thin: each method becomes one [`Op`] sent across the plugin boundary
//! (or, under [`crate::testing`], into an in-memory map), so they cost
//! nothing to create and hold no connection of their own. The host owns the
//! connections (Redis or SQLite, chosen in the INI file) and decides the
//! namespace: a plugin's keys are stored as `keyPrefix + plugin name + ":" +
//! key`, so one plugin cannot read or write another's, unless the operator
//! gives several plugins one namespace (`[plugin.NAME] storeNamespace`):
//! then they share keys and session fields.
//!
//! Every method returns a [`StoreError`] on failure, which converts into the
//! handler's [`Error`](crate::Error): `?` answers 503 when the store could
//! not be reached in time (nothing was done), 504 when an increment or a
//! push was sent but its answer never came (it may have been applied), and
//! 500 for anything else.
//!
//! The operations themselves, and how they cross the boundary, are defined
//! once in [`op`], which the host uses too.

mod error;
pub mod op;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::context::Backend;
pub use error::StoreError;
use op::{Op, Reply};
pub use value::Value;

impl Reply {
    fn found(self) -> Result<bool, StoreError> {
        match self {
            Reply::NotFound => Ok(false),
            Reply::Done => Ok(true),
            other => Err(unexpected(&other)),
        }
    }

    fn value(self) -> Result<Option<Value>, StoreError> {
        match self {
            Reply::Bytes(bytes) => Ok(Some(Value::from(bytes))),
            Reply::NotFound => Ok(None),
            other => Err(unexpected(&other)),
        }
    }

    fn int(self) -> Result<i64, StoreError> {
        match self {
            Reply::Int(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    fn done(self) -> Result<(), StoreError> {
        match self {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn list(self) -> Result<Vec<Vec<u8>>, StoreError> {
        match self {
            Reply::List(items) => Ok(items),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(reply: &Reply) -> StoreError {
    StoreError::Other(format!("the host answered a store call with {reply:?}"))
}

/// TTLs cross the boundary in whole milliseconds, rounded up, so that a
/// short TTL never becomes 0 (which `set` would read as "forever").
fn ttl_ms(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

/// `ttl` as every backend sees it: [`ttl_ms`] milliseconds.
fn whole_ms(ttl: Duration) -> Duration {
    Duration::from_millis(ttl_ms(ttl))
}

fn text(key: &str, value: Option<Value>) -> Result<Option<String>, StoreError> {
    value
        .map(|v| {
            String::from_utf8(v.into_bytes())
                .map_err(|_| StoreError::Other(format!("the value of `{key}` is not UTF-8")))
        })
        .transpose()
}

fn int(key: &str, value: Option<Value>) -> Result<Option<i64>, StoreError> {
    value
        .map(|v| {
            v.to_i64().ok_or_else(|| {
                StoreError::Other(format!("the value of `{key}` is not a decimal integer"))
            })
        })
        .transpose()
}

/// This plugin's keys in the shared store; get it with
/// [`Context::store`](crate::Context::store).
///
/// Values live until deleted or until their TTL runs out. Keys are this
/// plugin's own: `ctx.store().get("hits")` in plugin `counter` reads
/// `keyPrefix + "counter:hits"`, and no other plugin can reach it.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::{TestRequest, TestStore};
/// use std::time::Duration;
///
/// fn remember(req: &Request, ctx: &mut Context) -> Result<Response> {
///     let store = ctx.store();
///     store.set_with_ttl("last-visitor", req.remote_addr(), Duration::from_secs(60))?;
///     let visits = store.incr("visits", 1)?;
///     store.hset("profile", "name", "Ana")?;
///     let name = store.hget("profile", "name")?.and_then(|v| v.as_str().map(String::from));
///     Ok(Response::text(format!("{visits} {}", name.unwrap_or_default())))
/// }
///
/// let store = TestStore::new();
/// TestRequest::get("/").store(&store).call(remember);
/// let resp = TestRequest::get("/").store(&store).call(remember);
/// assert_eq!(resp.body_text(), "2 Ana");
/// ```
pub struct Store<'c> {
    backend: &'c Backend<'c>,
}

impl fmt::Debug for Store<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl<'c> Store<'c> {
    pub(crate) fn new(backend: &'c Backend<'c>) -> Store<'c> {
        Store { backend }
    }

    /// The value of `key`, or `None` if it is not set (or has expired).
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().set("k", "v")?;
    ///     let v = ctx.store().get("k")?.unwrap_or_default();
    ///     Ok(Response::bytes(v.into_bytes()))
    /// });
    /// assert_eq!(resp.body_text(), "v");
    /// ```
    pub fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        self.backend.exec(Op::Get(key.as_bytes()))?.value()
    }

    /// The value of `key` as text; an error if it is not UTF-8.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().set("k", "v")?;
    ///     Ok(Response::text(ctx.store().get_string("k")?.unwrap_or_default()))
    /// });
    /// assert_eq!(resp.body_text(), "v");
    /// ```
    pub fn get_string(&self, key: &str) -> Result<Option<String>, StoreError> {
        text(key, self.get(key)?)
    }

    /// The value of `key` as a decimal `i64`; an error if it is not one.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().set("n", 41)?;
    ///     Ok(Response::text((ctx.store().get_i64("n")?.unwrap_or(0) + 1).to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "42");
    /// ```
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, StoreError> {
        int(key, self.get(key)?)
    }

    /// Sets `key` to `value`, replacing any value and any TTL.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().set("greeting", "hi")?;
    ///     Ok(Response::text(ctx.store().get_string("greeting")?.unwrap_or_default()))
    /// });
    /// assert_eq!(resp.body_text(), "hi");
    /// ```
    pub fn set(&self, key: &str, value: impl Into<Value>) -> Result<(), StoreError> {
        let value = value.into();
        self.backend
            .exec(Op::Set(key.as_bytes(), value.as_bytes(), None))?
            .done()
    }

    /// Sets `key` to `value`; it disappears `ttl` from now (rounded up to a
    /// millisecond).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().set_with_ttl("token", "t1", Duration::from_secs(60))?;
    ///     Ok(Response::text(ctx.store().exists("token")?.to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "true");
    /// ```
    pub fn set_with_ttl(
        &self,
        key: &str,
        value: impl Into<Value>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let value = value.into();
        self.backend
            .exec(Op::Set(
                key.as_bytes(),
                value.as_bytes(),
                Some(whole_ms(ttl)),
            ))?
            .done()
    }

    /// Deletes `key` (a value or a whole hash); true if it existed.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().set("k", "v")?;
    ///     let existed = ctx.store().delete("k")?;
    ///     Ok(Response::text(format!("{existed} {}", ctx.store().delete("k")?)))
    /// });
    /// assert_eq!(resp.body_text(), "true false");
    /// ```
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.backend.exec(Op::Delete(key.as_bytes()))?.found()
    }

    /// Whether `key` is set.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     Ok(Response::text(ctx.store().exists("nothing")?.to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "false");
    /// ```
    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.backend.exec(Op::Exists(key.as_bytes()))?.found()
    }

    /// Makes `key` disappear `ttl` from now; false if it does not exist.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().set("k", "v")?;
    ///     Ok(Response::text(ctx.store().expire("k", Duration::from_secs(30))?.to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "true");
    /// ```
    pub fn expire(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.backend
            .exec(Op::Expire(key.as_bytes(), whole_ms(ttl)))?
            .found()
    }

    /// Adds `by` (which may be negative) to the integer at `key` and returns
    /// the new value; a missing key counts as 0. Atomic across every thread,
    /// worker and host: no increment is ever lost. An error if the value is
    /// not a decimal `i64` or the sum would overflow.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().incr("hits", 1)?;
    ///     Ok(Response::text(ctx.store().incr("hits", 10)?.to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "11");
    /// ```
    pub fn incr(&self, key: &str, by: i64) -> Result<i64, StoreError> {
        self.backend.exec(Op::Incr(key.as_bytes(), by))?.int()
    }

    /// One field of the hash at `key`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().hset("user:1", "name", "ann")?;
    ///     let name = ctx.store().hget("user:1", "name")?.unwrap_or_default();
    ///     Ok(Response::bytes(name.into_bytes()))
    /// });
    /// assert_eq!(resp.body_text(), "ann");
    /// ```
    pub fn hget(&self, key: &str, field: &str) -> Result<Option<Value>, StoreError> {
        self.backend
            .exec(Op::HGet(key.as_bytes(), field.as_bytes()))?
            .value()
    }

    /// Sets one field of the hash at `key`, creating the hash if needed.
    /// Hashes suit small records (a profile, a cart): one key, a few fields.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().hset("user:1", "age", 30)?;
    ///     Ok(Response::text(ctx.store().hget_all("user:1")?.len().to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "1");
    /// ```
    pub fn hset(&self, key: &str, field: &str, value: impl Into<Value>) -> Result<(), StoreError> {
        let value = value.into();
        self.backend
            .exec(Op::HSet(key.as_bytes(), field.as_bytes(), value.as_bytes()))?
            .done()
    }

    /// Removes one field of the hash at `key`; true if it existed.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().hset("user:1", "age", 30)?;
    ///     Ok(Response::text(ctx.store().hdel("user:1", "age")?.to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "true");
    /// ```
    pub fn hdel(&self, key: &str, field: &str) -> Result<bool, StoreError> {
        self.backend
            .exec(Op::HDel(key.as_bytes(), field.as_bytes()))?
            .found()
    }

    /// Every field of the hash at `key`, by name (empty if the key is not
    /// set). A field name that is not UTF-8 is shown lossily.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().hset("u", "a", "1")?;
    ///     ctx.store().hset("u", "b", "2")?;
    ///     let all = ctx.store().hget_all("u")?;
    ///     Ok(Response::text(all.keys().cloned().collect::<String>()))
    /// });
    /// assert_eq!(resp.body_text(), "ab");
    /// ```
    pub fn hget_all(&self, key: &str) -> Result<BTreeMap<String, Value>, StoreError> {
        match self.backend.exec(Op::HGetAll(key.as_bytes()))? {
            Reply::Pairs(pairs) => Ok(pairs
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), Value::from(v)))
                .collect()),
            other => Err(unexpected(&other)),
        }
    }

    /// This plugin's keys that start with `prefix` (`""` for all), of every
    /// kind, sorted bytewise, at most `limit` of them: the first in that
    /// order. Names are the plugin's own, without the namespace the host
    /// adds. On Redis this walks the keyspace with `SCAN` (never `KEYS`),
    /// so it costs time in proportion to the whole store: fine for an
    /// admin page, not for every request.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     for key in ["user:2", "user:10", "post:1"] {
    ///         ctx.store().set(key, "x")?;
    ///     }
    ///     Ok(Response::text(ctx.store().keys("user:", 100)?.join(" ")))
    /// });
    /// assert_eq!(resp.body_text(), "user:10 user:2");
    /// ```
    pub fn keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let keys = self
            .backend
            .exec(Op::Keys(prefix.as_bytes(), limit))?
            .list()?;
        Ok(keys
            .into_iter()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    /// The value of `key` read as JSON into `T`; `None` if it is not set.
    /// An error (500 with `?`) if the value is not JSON that fits `T`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Profile { name: String, age: u32 }
    ///
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().set_json("profile", &Profile { name: "Ana".into(), age: 30 })?;
    ///     let p: Profile = ctx.store().get_json("profile")?.expect("just set");
    ///     Ok(Response::text(format!("{} {}", p.name, p.age)))
    /// });
    /// assert_eq!(resp.body_text(), "Ana 30");
    /// ```
    #[cfg(feature = "serde")]
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get(key)?
            .map(|v| {
                serde_json::from_slice(v.as_bytes()).map_err(|e| {
                    StoreError::Other(format!(
                        "the value of `{key}` is not the JSON expected: {e}"
                    ))
                })
            })
            .transpose()
    }

    /// Sets `key` to `value` as JSON, replacing any value and any TTL.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().set_json("tags", &vec!["a", "b"])?;
    ///     Ok(Response::text(ctx.store().get_string("tags")?.unwrap_or_default()))
    /// });
    /// assert_eq!(resp.body_text(), r#"["a","b"]"#);
    /// ```
    #[cfg(feature = "serde")]
    pub fn set_json<T: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(value)
            .map_err(|e| StoreError::Other(format!("cannot store `{key}` as JSON: {e}")))?;
        self.set(key, json)
    }

    /// Appends `value` to the list at `key` (a missing key is an empty
    /// list) and returns the list's new length, as Redis' `RPUSH`. Atomic
    /// across every worker and host. An error if `key` holds a value or a
    /// hash.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.store().push("log", "started")?;
    ///     Ok(Response::text(ctx.store().push("log", "stopped")?.to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "2");
    /// ```
    pub fn push(&self, key: &str, value: impl Into<Value>) -> Result<i64, StoreError> {
        let value = value.into();
        self.backend
            .exec(Op::Push(key.as_bytes(), value.as_bytes()))?
            .int()
    }

    /// Items `start` to `stop` of the list at `key`, both included, as
    /// Redis' `LRANGE`: 0 is the first item, -1 the last, bounds past the
    /// ends are clamped; `(0, -1)` is the whole list. Empty if the key is
    /// not set; an error if it holds a value or a hash.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     for note in ["a", "b", "c", "d"] {
    ///         ctx.store().push("notes", note)?;
    ///     }
    ///     let last_two = ctx.store().range("notes", -2, -1)?;
    ///     let text: Vec<&str> = last_two.iter().filter_map(Value::as_str).collect();
    ///     Ok(Response::text(text.join(",")))
    /// });
    /// assert_eq!(resp.body_text(), "c,d");
    /// ```
    pub fn range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<Value>, StoreError> {
        let items = self
            .backend
            .exec(Op::Range(key.as_bytes(), start, stop))?
            .list()?;
        Ok(items.into_iter().map(Value::from).collect())
    }

    /// The length of the list at `key`: 0 if it is not set; an error if it
    /// holds a value or a hash.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     let before = ctx.store().len("queue")?;
    ///     ctx.store().push("queue", "job")?;
    ///     Ok(Response::text(format!("{before} {}", ctx.store().len("queue")?)))
    /// });
    /// assert_eq!(resp.body_text(), "0 1");
    /// ```
    pub fn len(&self, key: &str) -> Result<i64, StoreError> {
        self.backend.exec(Op::Len(key.as_bytes()))?.int()
    }
}

/// The visitor's session: a small map of fields kept in the store, shared
/// by every worker and every host; get it with
/// [`Context::session`](crate::Context::session).
///
/// The host identifies the visitor by the cookie `drupe_session` (a random
/// 128-bit id, `HttpOnly`, `SameSite=Lax`) and sets it on the first write
/// to a session, so reading never creates one. A session disappears after
/// `[store] sessionTimeout` seconds without use. Each plugin sees only its
/// own fields of the shared session.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::{TestRequest, TestStore};
///
/// fn visit(_req: &Request, ctx: &mut Context) -> Result<Response> {
///     let visits = ctx.session().incr("visits", 1)?;
///     Ok(Response::text(visits.to_string()))
/// }
///
/// let store = TestStore::new();
/// let first = TestRequest::get("/").store(&store).call(visit);
/// assert_eq!(first.body_text(), "1");
/// assert!(first.header("set-cookie").unwrap().starts_with("drupe_session="));
/// let again = TestRequest::get("/").store(&store).cookies_from(&first).call(visit);
/// assert_eq!(again.body_text(), "2");
/// ```
pub struct Session<'c> {
    backend: &'c Backend<'c>,
}

impl fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl<'c> Session<'c> {
    pub(crate) fn new(backend: &'c Backend<'c>) -> Session<'c> {
        Session { backend }
    }

    /// One field; `None` if it is not set or the visitor has no session.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.session().set("cart", "tea")?;
    ///     let cart = ctx.session().get("cart")?.unwrap_or_default();
    ///     Ok(Response::bytes(cart.into_bytes()))
    /// });
    /// assert_eq!(resp.body_text(), "tea");
    /// ```
    pub fn get(&self, field: &str) -> Result<Option<Value>, StoreError> {
        self.backend.exec(Op::SessionGet(field.as_bytes()))?.value()
    }

    /// One field as text; an error if it is not UTF-8.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.session().set("user", "ann")?;
    ///     Ok(Response::text(ctx.session().get_string("user")?.unwrap_or_default()))
    /// });
    /// assert_eq!(resp.body_text(), "ann");
    /// ```
    pub fn get_string(&self, field: &str) -> Result<Option<String>, StoreError> {
        text(field, self.get(field)?)
    }

    /// One field as a decimal `i64`; an error if it is not one.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.session().set("step", 2)?;
    ///     Ok(Response::text(ctx.session().get_i64("step")?.unwrap_or(0).to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "2");
    /// ```
    pub fn get_i64(&self, field: &str) -> Result<Option<i64>, StoreError> {
        int(field, self.get(field)?)
    }

    /// Sets one field, starting a session if the visitor has none.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.session().set("lang", "de")?; // the first write starts the session
    ///     Ok(Response::text("ok"))
    /// });
    /// assert!(resp.header("set-cookie").is_some_and(|c| c.starts_with("drupe_session=")));
    /// ```
    pub fn set(&self, field: &str, value: impl Into<Value>) -> Result<(), StoreError> {
        let value = value.into();
        self.backend
            .exec(Op::SessionSet(field.as_bytes(), value.as_bytes()))?
            .done()
    }

    /// Removes one field; true if it was set.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     ctx.session().set("lang", "de")?;
    ///     Ok(Response::text(ctx.session().remove("lang")?.to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "true");
    /// ```
    pub fn remove(&self, field: &str) -> Result<bool, StoreError> {
        self.backend
            .exec(Op::SessionRemove(field.as_bytes()))?
            .found()
    }

    /// Adds `by` to the integer field (missing counts as 0), atomically,
    /// starting a session if the visitor has none; returns the new value.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// # use drupe_sdk::testing::TestStore;
    /// # let store = TestStore::new();
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| {
    ///     Ok(Response::text(ctx.session().incr("visits", 1)?.to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "1");
    /// ```
    pub fn incr(&self, field: &str, by: i64) -> Result<i64, StoreError> {
        self.backend
            .exec(Op::SessionIncr(field.as_bytes(), by))?
            .int()
    }

    /// Gives the session a new id, keeping its data; the old id no longer
    /// works, and the response carries the new cookie. Call it when the
    /// visitor logs in, so that an id someone learned before (a session
    /// fixation) is worthless afterwards. Does nothing if the visitor has
    /// no session.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::{TestRequest, TestStore};
    ///
    /// fn login(_req: &Request, ctx: &mut Context) -> Result<Response> {
    ///     ctx.session().set("user", "ana")?;
    ///     ctx.session().regenerate()?;
    ///     Ok(Response::text("welcome"))
    /// }
    ///
    /// let store = TestStore::new();
    /// let before = TestRequest::get("/").store(&store)
    ///     .call(|_, ctx| { ctx.session().set("cart", "tea")?; Ok(Response::text("")) });
    /// let after = TestRequest::post("/login", "").store(&store).cookies_from(&before).call(login);
    /// let (old, new) = (before.header("set-cookie").unwrap(), after.header("set-cookie").unwrap());
    /// assert_ne!(old, new, "a new id");
    /// let user = |from| TestRequest::get("/").store(&store).cookies_from(from)
    ///     .call(|_, ctx| Ok(Response::text(ctx.session().get_string("user")?.unwrap_or_default())));
    /// assert_eq!(user(&after).body_text(), "ana");
    /// assert_eq!(user(&before).body_text(), "", "the old id no longer works");
    /// ```
    pub fn regenerate(&self) -> Result<(), StoreError> {
        self.backend.exec(Op::SessionRegenerate)?.done()
    }

    /// Deletes the session and all its data, and expires the visitor's
    /// cookie (`Max-Age=0`). Call it when the visitor logs out. A write to
    /// the session afterwards starts a new one.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::{TestRequest, TestStore};
    ///
    /// fn logout(_req: &Request, ctx: &mut Context) -> Result<Response> {
    ///     ctx.session().destroy()?;
    ///     Ok(Response::text("bye"))
    /// }
    ///
    /// let store = TestStore::new();
    /// let login = TestRequest::get("/").store(&store)
    ///     .call(|_, ctx| { ctx.session().set("user", "ana")?; Ok(Response::text("")) });
    /// let out = TestRequest::post("/logout", "").store(&store).cookies_from(&login).call(logout);
    /// assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    /// let user = TestRequest::get("/").store(&store).cookies_from(&login)
    ///     .call(|_, ctx| Ok(Response::text(ctx.session().get_string("user")?.unwrap_or_default())));
    /// assert_eq!(user.body_text(), "", "the data is gone");
    /// ```
    pub fn destroy(&self) -> Result<(), StoreError> {
        self.backend.exec(Op::SessionDestroy)?.done()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_and_is_never_zero() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::from_secs(3)), 3000);
        assert_eq!(ttl_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn helpers_refuse_values_of_the_wrong_kind() {
        assert_eq!(int("k", Some(Value::from("12"))), Ok(Some(12)));
        assert!(int("k", Some(Value::from("twelve")))
            .unwrap_err()
            .message()
            .contains("`k` is not a decimal integer"));
        assert_eq!(text("k", None), Ok(None));
        assert!(text("k", Some(Value::from(vec![0xff]))).is_err());
    }
}
