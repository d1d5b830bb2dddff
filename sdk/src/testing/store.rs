//! The in-memory store behind [`TestRequest::store`](super::TestRequest::store):
//! the same operations, namespaces, TTLs and session rules as the host's
//! backends, in a map, so plugin unit tests need neither Redis nor a host.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::store::op::{list_range, session_cookie, session_cookie_removal, Op, Reply};
use crate::store::StoreError;

pub(crate) use crate::store::op::SESSION_COOKIE;

/// How long an unused session lives: the host's default `sessionTimeout`.
const SESSION_TIMEOUT: Duration = Duration::from_secs(1800);

/// The key of session `id`'s hash, as on the host.
fn session_key(id: &str) -> Vec<u8> {
    format!("@session:{id}").into_bytes()
}

/// A store for unit tests: an in-memory map shared by every request that
/// is given it, so a test can make several requests and see what the
/// earlier ones stored.
///
/// Keys are namespaced by plugin name (see
/// [`TestRequest::plugin_name`](super::TestRequest::plugin_name)) as the
/// host does, TTLs are honoured, and sessions follow the host's rules: the
/// first write creates one and the response carries its `Set-Cookie`, which
/// [`TestRequest::cookies_from`](super::TestRequest::cookies_from) sends
/// back. Unlike the host, session ids count up instead of being random.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::{TestRequest, TestStore};
///
/// fn bump(_req: &Request, ctx: &mut Context) -> Result<Response> {
///     Ok(Response::text(ctx.store().incr("n", 1)?.to_string()))
/// }
///
/// let store = TestStore::new();
/// assert_eq!(TestRequest::post("/", "").store(&store).call(bump).body_text(), "1");
/// assert_eq!(TestRequest::post("/", "").store(&store).call(bump).body_text(), "2");
/// // Another plugin has its own keys.
/// let other = TestRequest::post("/", "").plugin_name("other").store(&store).call(bump);
/// assert_eq!(other.body_text(), "1");
/// ```
#[derive(Clone, Default)]
pub struct TestStore {
    inner: Arc<Mutex<Memory>>,
}

impl fmt::Debug for TestStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStore").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Memory {
    entries: HashMap<Vec<u8>, Entry>,
    unavailable: bool,
    sessions_created: u64,
}

struct Entry {
    data: Data,
    expires: Option<Instant>,
}

enum Data {
    Bytes(Vec<u8>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    List(Vec<Vec<u8>>),
}

impl TestStore {
    /// An empty store.
    ///
    /// ```
    /// use drupe_sdk::testing::TestStore;
    /// let store = TestStore::new();
    /// let _shared = store.clone(); // clones share the data
    /// ```
    pub fn new() -> TestStore {
        TestStore::default()
    }

    /// While `true`, every call fails with
    /// [`StoreError::Unavailable`], as when the host cannot reach Redis; a
    /// handler that returns it with `?` answers 503.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// use drupe_sdk::testing::TestStore;
    /// let store = TestStore::new();
    /// store.set_unavailable(true);
    /// let resp = TestRequest::get("/").store(&store).call(|_req, ctx| Ok(Response::text(ctx.store().incr("n", 1)?.to_string())));
    /// assert_eq!(resp.status(), 503);
    /// ```
    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }

    fn lock(&self) -> MutexGuard<'_, Memory> {
        // A test that panicked while holding the lock left a usable map.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn wrong_type(key: &[u8]) -> StoreError {
    StoreError::Other(format!(
        "WRONGTYPE `{}` holds another kind of value (a hash or a string)",
        String::from_utf8_lossy(key)
    ))
}

/// `current` (decimal text; missing is 0) plus `by`, as Redis' `INCRBY`.
fn add(key: &[u8], current: Option<&[u8]>, by: i64) -> Result<i64, StoreError> {
    let key = String::from_utf8_lossy(key);
    let current = match current {
        None => 0,
        Some(text) => std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| StoreError::Other(format!("`{key}` is not an integer")))?,
    };
    current
        .checked_add(by)
        .ok_or_else(|| StoreError::Other(format!("incrementing `{key}` would overflow")))
}

fn expiry(ttl: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(ttl)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400))
}

impl Memory {
    /// The live entry at `key`, dropping it if it has expired.
    fn live(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let now = Instant::now();
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.expires.is_some_and(|at| at <= now))
        {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn hash(&mut self, key: &[u8]) -> Result<&mut BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        if self.live(key).is_none() {
            self.entries.insert(
                key.to_vec(),
                Entry {
                    data: Data::Hash(BTreeMap::new()),
                    expires: None,
                },
            );
        }
        match self.entries.get_mut(key).map(|e| &mut e.data) {
            Some(Data::Hash(map)) => Ok(map),
            _ => Err(wrong_type(key)),
        }
    }

    fn incr(&mut self, key: &[u8], by: i64) -> Result<i64, StoreError> {
        let (current, expires) = match self.live(key) {
            None => (None, None),
            Some(Entry {
                data: Data::Bytes(b),
                expires,
            }) => (Some(b.as_slice()), *expires),
            Some(_) => return Err(wrong_type(key)),
        };
        let new = add(key, current, by)?;
        let data = Data::Bytes(new.to_string().into_bytes());
        self.entries.insert(key.to_vec(), Entry { data, expires });
        Ok(new)
    }

    /// The live keys that start with `prefix`, sorted, at most `limit`.
    fn keys(&mut self, prefix: &[u8], limit: u64) -> Vec<Vec<u8>> {
        let now = Instant::now();
        self.entries
            .retain(|_, e| e.expires.is_none_or(|at| at > now));
        let mut keys: Vec<Vec<u8>> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        keys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        keys
    }

    fn push(&mut self, key: &[u8], value: &[u8]) -> Result<i64, StoreError> {
        if self.live(key).is_none() {
            let data = Data::List(Vec::new());
            self.entries.insert(
                key.to_vec(),
                Entry {
                    data,
                    expires: None,
                },
            );
        }
        match self.entries.get_mut(key).map(|e| &mut e.data) {
            Some(Data::List(items)) => {
                items.push(value.to_vec());
                Ok(i64::try_from(items.len()).unwrap_or(i64::MAX))
            }
            _ => Err(wrong_type(key)),
        }
    }

    fn hincr(&mut self, key: &[u8], field: Vec<u8>, by: i64) -> Result<i64, StoreError> {
        let map = self.hash(key)?;
        let new = add(&field, map.get(&field).map(Vec::as_slice), by)?;
        map.insert(field, new.to_string().into_bytes());
        Ok(new)
    }

    /// One plugin-level operation on fully namespaced keys.
    fn exec(&mut self, key: &[u8], op: &Op<'_>) -> Result<Reply, StoreError> {
        let found = |yes: bool| if yes { Reply::Done } else { Reply::NotFound };
        Ok(match *op {
            Op::Get(_) => match self.live(key).map(|e| &e.data) {
                None => Reply::NotFound,
                Some(Data::Bytes(b)) => Reply::Bytes(b.clone()),
                Some(_) => return Err(wrong_type(key)),
            },
            Op::Set(_, value, ttl) => {
                let expires = ttl.map(expiry);
                let data = Data::Bytes(value.to_vec());
                self.entries.insert(key.to_vec(), Entry { data, expires });
                Reply::Done
            }
            Op::Delete(_) => found(self.live(key).is_some() && self.entries.remove(key).is_some()),
            Op::Exists(_) => found(self.live(key).is_some()),
            Op::Expire(_, ttl) => match self.live(key) {
                Some(entry) => {
                    entry.expires = Some(expiry(ttl));
                    Reply::Done
                }
                None => Reply::NotFound,
            },
            Op::Incr(_, by) => Reply::Int(self.incr(key, by)?),
            Op::HGet(_, field) => match self.live(key).map(|e| &e.data) {
                None => Reply::NotFound,
                Some(Data::Hash(map)) => map
                    .get(field)
                    .cloned()
                    .map_or(Reply::NotFound, Reply::Bytes),
                Some(_) => return Err(wrong_type(key)),
            },
            Op::HSet(_, field, value) => {
                self.hash(key)?.insert(field.to_vec(), value.to_vec());
                Reply::Done
            }
            Op::HDel(_, field) => match self.live(key).map(|e| &mut e.data) {
                None => Reply::NotFound,
                Some(Data::Hash(map)) => {
                    let existed = map.remove(field).is_some();
                    if map.is_empty() {
                        self.entries.remove(key);
                    }
                    found(existed)
                }
                Some(_) => return Err(wrong_type(key)),
            },
            Op::HGetAll(_) => match self.live(key).map(|e| &e.data) {
                None => Reply::Pairs(Vec::new()),
                Some(Data::Hash(map)) => {
                    Reply::Pairs(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                }
                Some(_) => return Err(wrong_type(key)),
            },
            Op::Push(_, value) => Reply::Int(self.push(key, value)?),
            Op::Range(_, start, stop) => match self.live(key).map(|e| &e.data) {
                None => Reply::List(Vec::new()),
                Some(Data::List(items)) => Reply::List(
                    list_range(items.len(), start, stop)
                        .map_or_else(Vec::new, |taken| items[taken].to_vec()),
                ),
                Some(_) => return Err(wrong_type(key)),
            },
            Op::Len(_) => match self.live(key).map(|e| &e.data) {
                None => Reply::Int(0),
                Some(Data::List(items)) => Reply::Int(i64::try_from(items.len()).unwrap_or(0)),
                Some(_) => return Err(wrong_type(key)),
            },
            // Key listings and sessions are handled by `TestCall`, which
            // knows the namespace and maps sessions onto the hash
            // operations above.
            Op::Keys(..)
            | Op::SessionGet(..)
            | Op::SessionSet(..)
            | Op::SessionRemove(..)
            | Op::SessionIncr(..)
            | Op::SessionRegenerate
            | Op::SessionDestroy => {
                return Err(StoreError::Other(format!("`{}` on a plain key", op.name())))
            }
        })
    }
}

/// One request's view of a [`TestStore`]: the plugin's namespace, the
/// session cookie it came with, and the cookie to send back, if any.
#[derive(Debug)]
pub(crate) struct TestCall {
    store: TestStore,
    /// `plugin name + ":"`.
    namespace: Vec<u8>,
    /// The id from the request's `drupe_session` cookie.
    cookie: Option<String>,
    /// The live session of this request, once looked up or created.
    session: RefCell<Option<Option<String>>>,
    /// The `Set-Cookie` value for the response: the id of a session this
    /// request created or regenerated, or the removal of one it destroyed.
    set_cookie: RefCell<Option<String>>,
}

impl TestCall {
    pub(crate) fn new(store: TestStore, plugin: &str, cookie: Option<String>) -> TestCall {
        TestCall {
            store,
            namespace: format!("{plugin}:").into_bytes(),
            cookie,
            session: RefCell::new(None),
            set_cookie: RefCell::new(None),
        }
    }

    /// The `Set-Cookie` value to add to the response, if this request
    /// started, regenerated or destroyed a session.
    pub(crate) fn set_cookie(&self) -> Option<String> {
        self.set_cookie.borrow().clone()
    }

    pub(crate) fn exec(&self, op: Op<'_>) -> Result<Reply, StoreError> {
        let mut memory = self.store.lock();
        if memory.unavailable {
            return Err(StoreError::Unavailable(
                "the test store is set unavailable".into(),
            ));
        }
        let (field, writes) = match op {
            Op::SessionGet(f) | Op::SessionRemove(f) => (f, false),
            Op::SessionSet(f, _) | Op::SessionIncr(f, _) => (f, true),
            Op::SessionRegenerate => return Ok(self.regenerate(&mut memory)),
            Op::SessionDestroy => return Ok(self.destroy(&mut memory)),
            Op::Keys(prefix, limit) => {
                let prefix = [&self.namespace, prefix].concat();
                let keys = memory.keys(&prefix, limit);
                let own = |k: Vec<u8>| k[self.namespace.len()..].to_vec();
                return Ok(Reply::List(keys.into_iter().map(own).collect()));
            }
            _ => {
                let key = [&self.namespace, op.key().unwrap_or_default()].concat();
                return memory.exec(&key, &op);
            }
        };
        let Some(id) = self.session_id(&mut memory, writes) else {
            return Ok(Reply::NotFound);
        };
        // As on the host: one hash per session, one field per plugin field.
        let key = session_key(&id);
        let field = [&self.namespace, field].concat();
        let reply = match op {
            Op::SessionGet(_) => memory.exec(&key, &Op::HGet(b"", &field))?,
            Op::SessionSet(_, value) => memory.exec(&key, &Op::HSet(b"", &field, value))?,
            Op::SessionRemove(_) => memory.exec(&key, &Op::HDel(b"", &field))?,
            Op::SessionIncr(_, by) => Reply::Int(memory.hincr(&key, field, by)?),
            _ => Reply::NotFound,
        };
        // Use keeps a session alive, as on the host.
        if let Some(entry) = memory.live(&key) {
            entry.expires = Some(expiry(SESSION_TIMEOUT));
        }
        Ok(reply)
    }

    /// A fresh session id, which the response hands to the visitor.
    fn new_id(&self, memory: &mut Memory) -> String {
        memory.sessions_created += 1;
        let id = format!("{:032x}", memory.sessions_created);
        *self.set_cookie.borrow_mut() = Some(session_cookie(&id));
        id
    }

    /// Moves the live session's data to a new id; nothing without one.
    fn regenerate(&self, memory: &mut Memory) -> Reply {
        let Some(old) = self.session_id(memory, false) else {
            return Reply::Done;
        };
        let id = self.new_id(memory);
        if let Some(entry) = memory.entries.remove(&session_key(&old)) {
            memory.entries.insert(session_key(&id), entry);
        }
        *self.session.borrow_mut() = Some(Some(id));
        Reply::Done
    }

    /// Deletes the live session, and tells the browser to drop a cookie it
    /// sent.
    fn destroy(&self, memory: &mut Memory) -> Reply {
        if let Some(id) = self.session_id(memory, false) {
            memory.entries.remove(&session_key(&id));
        }
        *self.session.borrow_mut() = Some(None);
        *self.set_cookie.borrow_mut() = self.cookie.as_ref().map(|_| session_cookie_removal());
        Reply::Done
    }

    /// The request's live session id; with `create`, a new one if it has
    /// none. A cookie naming a session that does not exist is ignored, as
    /// the host ignores it (so nobody can pick a visitor's session id).
    fn session_id(&self, memory: &mut Memory, create: bool) -> Option<String> {
        let mut session = self.session.borrow_mut();
        if session.is_none() {
            let live = self
                .cookie
                .clone()
                .filter(|id| memory.live(&session_key(id)).is_some());
            *session = Some(live);
        }
        if let Some(Some(id)) = session.as_ref() {
            return Some(id.clone());
        }
        if !create {
            return None;
        }
        let id = self.new_id(memory);
        *session = Some(Some(id.clone()));
        Some(id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{TestRequest, TestStore};
    use std::time::Duration;

    /// Runs `f` as a handler of plugin `plugin` on `store`, returning what
    /// it returned.
    fn with<T>(
        store: &TestStore,
        plugin: &str,
        f: impl FnOnce(&Context) -> std::result::Result<T, StoreError>,
    ) -> std::result::Result<T, StoreError> {
        let mut out = None;
        TestRequest::get("/")
            .plugin_name(plugin)
            .store(store)
            .call(|_, ctx| {
                out = Some(f(ctx));
                Ok(Response::new(204))
            });
        out.unwrap()
    }

    #[test]
    fn values_ttls_and_kinds_behave_like_the_host() {
        let store = TestStore::new();
        with(&store, "p", |ctx| {
            let s = ctx.store();
            assert_eq!(s.get("k")?, None);
            s.set("k", "v")?;
            assert!(s.exists("k")?);
            assert_eq!(s.get_string("k")?.as_deref(), Some("v"));
            assert!(s.incr("k", 1).is_err(), "not an integer");
            s.set_with_ttl("short", 1, Duration::from_millis(20))?;
            assert_eq!(s.get_i64("short")?, Some(1));
            assert!(s.expire("k", Duration::from_millis(20))?);
            assert!(!s.expire("nothing", Duration::from_secs(1))?);
            s.hset("h", "a", "1")?;
            assert!(s.get("h").is_err(), "a hash is not a string");
            assert!(s.hset("k", "a", "1").is_err(), "a string is not a hash");
            assert!(s.hdel("h", "a")?);
            assert!(!s.exists("h")?, "the last field's removal drops the hash");
            s.set("gone", "x")?;
            assert!(s.delete("gone")? && !s.delete("gone")?);
            Ok(())
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(30));
        with(&store, "p", |ctx| {
            assert_eq!(ctx.store().get("short")?, None, "expired");
            assert_eq!(
                ctx.store().incr("short", 5)?,
                5,
                "an expired counter restarts"
            );
            assert!(!ctx.store().exists("k")?, "expired too");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn plugins_do_not_share_keys_or_session_fields() {
        let store = TestStore::new();
        with(&store, "a", |ctx| ctx.store().set("k", "from a")).unwrap();
        assert_eq!(with(&store, "b", |ctx| ctx.store().get("k")).unwrap(), None);
        let first = TestRequest::get("/")
            .plugin_name("a")
            .store(&store)
            .call(|_, ctx| {
                ctx.session().set("user", "ana")?;
                Ok(Response::new(204))
            });
        let seen = |plugin: &str| {
            TestRequest::get("/")
                .plugin_name(plugin)
                .store(&store)
                .cookies_from(&first)
                .call(|_, ctx| {
                    let user = ctx.session().get_string("user")?;
                    Ok(Response::text(user.unwrap_or_default()))
                })
                .body_text()
                .into_owned()
        };
        assert_eq!(seen("a"), "ana");
        assert_eq!(seen("b"), "");
    }

    #[test]
    fn an_unknown_session_cookie_is_replaced_not_adopted() {
        let store = TestStore::new();
        let resp = TestRequest::get("/")
            .store(&store)
            .header("Cookie", "drupe_session=00000000000000000000000000000bad")
            .call(|_, ctx| Ok(Response::text(ctx.session().incr("n", 1)?.to_string())));
        assert_eq!(resp.body_text(), "1");
        let cookie = resp.header("set-cookie").unwrap();
        assert!(!cookie.contains("bad"), "{cookie}");
        assert!(
            cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
            "{cookie}"
        );
    }

    #[test]
    fn lists_and_keys_behave_like_the_host() {
        let store = TestStore::new();
        with(&store, "p", |ctx| {
            let s = ctx.store();
            assert_eq!(s.push("l", "a")?, 1);
            assert_eq!(s.push("l", "b")?, 2);
            assert_eq!(s.len("l")?, 2);
            assert_eq!(s.range("l", -1, 5)?, vec![Value::from("b")]);
            assert!(s.get("l").is_err(), "a list is not a string");
            s.set("k", "v")?;
            assert!(s.push("k", "x").is_err() && s.len("k").is_err());
            assert_eq!(s.keys("", 10)?, ["k", "l"]);
            assert_eq!(s.keys("", 1)?, ["k"]);
            Ok(())
        })
        .unwrap();
        with(&store, "q", |ctx| {
            assert_eq!(ctx.store().keys("", 10)?, Vec::<String>::new(), "p's keys");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn reading_a_session_never_creates_one() {
        let resp = TestRequest::get("/").call(|_, ctx| {
            assert_eq!(ctx.session().get("x")?, None);
            assert!(!ctx.session().remove("x")?);
            Ok(Response::new(204))
        });
        assert_eq!(resp.header("set-cookie"), None);
    }
}
