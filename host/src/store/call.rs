//! One plugin call's view of the store: the namespace of the plugin being
//! called and the visitor's session.
//!
//! The worker fills a [`CallStore`] before each `handle` ([`CallStore::begin`])
//! with the plugin's store namespace and the request's `Cookie` headers;
//! every store or session call the plugin makes during that `handle`
//! arrives here as an [`Op`], the operation type the SDK defines. The
//! namespace comes from which plugin the host is calling (its name, or its
//! `[plugin.NAME] storeNamespace`), never from plugin input, so a key is
//! always `keyPrefix + namespace + ":" + key` and a plugin reaches only the
//! keys of its namespace.
//!
//! Sessions: one hash per visitor at `keyPrefix + "@session:{" + id + "}"` (`@`
//! cannot start a plugin name, so it never collides with a plugin's keys),
//! one field per plugin field (`namespace + ":" + field`), and an idle TTL of
//! `sessionTimeout` that every use refreshes. A session is created only by
//! a write that succeeded, and a cookie is trusted only if its session is
//! live. What the visitor's cookie must become (a new session's id, a
//! regenerated id, or removal after a destroy) is decided over the whole
//! call and sent once, after it ([`CallStore::take_set_cookie`]).

use super::session::SessionId;
use super::{with_store, Op, Reply, Store, StoreError};
use drupe_sdk::store_op::{session_cookie_over, session_cookie_removal};
use std::time::Duration;

fn found(yes: bool) -> Reply {
    if yes {
        Reply::Done
    } else {
        Reply::NotFound
    }
}

fn value(v: Option<Vec<u8>>) -> Reply {
    v.map_or(Reply::NotFound, Reply::Bytes)
}

/// Per-call store state; one per handler thread, reused from request to
/// request (its buffers allocate only while warming up).
#[derive(Debug, Default)]
pub struct CallStore {
    /// `keyPrefix + namespace + ":"`.
    namespace: Vec<u8>,
    /// Where the plugin's namespace starts in `namespace`.
    plugin_at: usize,
    /// The id in the request's `drupe_session` cookie.
    cookie: Option<SessionId>,
    /// The request's live session: `None` until looked up.
    session: Option<Option<SessionId>>,
    /// A session id this call minted that no write has stored yet.
    minted: Option<SessionId>,
    /// The `Set-Cookie` value the response must carry, if any.
    set_cookie: Option<String>,
    /// The request came over https (TLS, or a trusted proxy says so): the
    /// session cookie is `Secure`, so a browser never sends it in clear.
    secure: bool,
    /// Scratch for one full key or field.
    key: Vec<u8>,
    field: Vec<u8>,
}

impl CallStore {
    /// Prepares for a call of a plugin whose store namespace is `namespace`
    /// on a request with these headers, over https if `secure`. Cheap:
    /// copies a few bytes, parses only `Cookie` headers.
    pub fn begin<'h>(
        &mut self,
        namespace: &str,
        headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
        secure: bool,
    ) {
        self.secure = secure;
        let prefix = super::settings().map_or("", |s| s.key_prefix.as_str());
        self.namespace.clear();
        self.namespace.extend_from_slice(prefix.as_bytes());
        self.plugin_at = self.namespace.len();
        self.namespace.extend_from_slice(namespace.as_bytes());
        self.namespace.push(b':');
        self.cookie = headers
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"cookie"))
            .find_map(|(_, value)| super::session::from_cookie_header(value));
        self.session = None;
        self.minted = None;
        self.set_cookie = None;
    }

    /// The `Set-Cookie` value for the response, once: a session this call
    /// created or regenerated, or the removal of one it destroyed.
    pub fn take_set_cookie(&mut self) -> Option<String> {
        let cookie = self.set_cookie.take()?;
        Some(session_cookie_over(cookie, self.secure))
    }

    /// Runs `op` on this thread's backend.
    pub fn execute(&mut self, op: Op<'_>) -> Result<Reply, StoreError> {
        let timeout = super::settings().map_or(Duration::from_secs(1800), |s| s.session_timeout);
        with_store(|store| self.run(store, op, timeout))
    }

    /// Runs `op` on `store`; `session_timeout` is the sessions' idle TTL.
    pub fn run(
        &mut self,
        store: &mut dyn Store,
        op: Op<'_>,
        session_timeout: Duration,
    ) -> Result<Reply, StoreError> {
        let ttl = Some(session_timeout);
        Ok(match op {
            Op::Get(k) => value(store.get(self.key(k))?),
            Op::Set(k, v, ttl) => {
                store.set(self.key(k), v, ttl)?;
                Reply::Done
            }
            Op::Delete(k) => found(store.delete(self.key(k))?),
            Op::Exists(k) => found(store.exists(self.key(k))?),
            Op::Expire(k, ttl) => found(store.expire(self.key(k), ttl)?),
            Op::Incr(k, by) => Reply::Int(store.incr(self.key(k), by)?),
            Op::HGet(k, f) => value(store.hget(self.key(k), f)?),
            Op::HSet(k, f, v) => {
                store.hset(self.key(k), f, v, None)?;
                Reply::Done
            }
            Op::HDel(k, f) => found(store.hdel(self.key(k), f)?),
            Op::HGetAll(k) => Reply::Pairs(store.hget_all(self.key(k))?),
            Op::SessionGet(f) => match self.session(store, false, session_timeout)? {
                Some(id) => {
                    let (key, field) = self.session_field(id, f);
                    value(store.hget(key, field)?)
                }
                None => Reply::NotFound,
            },
            Op::SessionRemove(f) => match self.session(store, false, session_timeout)? {
                Some(id) => {
                    let (key, field) = self.session_field(id, f);
                    found(store.hdel(key, field)?)
                }
                None => Reply::NotFound,
            },
            Op::SessionSet(f, v) => {
                let id = self
                    .session(store, true, session_timeout)?
                    .ok_or_else(no_session)?;
                let (key, field) = self.session_field(id, f);
                store.hset(key, field, v, ttl)?;
                self.stored(id);
                Reply::Done
            }
            Op::SessionIncr(f, by) => {
                let id = self
                    .session(store, true, session_timeout)?
                    .ok_or_else(no_session)?;
                let (key, field) = self.session_field(id, f);
                let n = store.hincr(key, field, by, ttl)?;
                self.stored(id);
                Reply::Int(n)
            }
            Op::SessionRegenerate => {
                if let Some(old) = self.session(store, false, session_timeout)? {
                    let new = SessionId::generate()?;
                    let from = self.session_key(old).to_vec();
                    let moved = store.rename(&from, self.session_key(new))?;
                    self.session = Some(moved.then_some(new));
                    if moved {
                        self.set_cookie = Some(new.set_cookie());
                    }
                }
                Reply::Done
            }
            Op::SessionDestroy => {
                if let Some(id) = self.session(store, false, session_timeout)? {
                    store.delete(self.session_key(id))?;
                }
                self.session = Some(None);
                self.minted = None;
                // Tell a browser that sent a cookie to drop it.
                self.set_cookie = self.cookie.map(|_| session_cookie_removal());
                Reply::Done
            }
            Op::Keys(prefix, limit) => {
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                let keys = store.keys(self.key(prefix), limit)?;
                let own = self.namespace.len();
                Reply::List(keys.into_iter().map(|k| k[own..].to_vec()).collect())
            }
            Op::Push(k, v) => Reply::Int(store.push(self.key(k), v)?),
            Op::Range(k, start, stop) => Reply::List(store.range(self.key(k), start, stop)?),
            Op::Len(k) => Reply::Int(store.len(self.key(k))?),
        })
    }

    /// A write to session `id` succeeded: if this call minted it, it now
    /// exists, and the visitor learns its id from this response.
    fn stored(&mut self, id: SessionId) {
        if self.minted == Some(id) {
            self.minted = None;
            self.set_cookie = Some(id.set_cookie());
        }
    }

    /// `keyPrefix + namespace + ":" + key`.
    fn key(&mut self, key: &[u8]) -> &[u8] {
        self.key.clear();
        self.key.extend_from_slice(&self.namespace);
        self.key.extend_from_slice(key);
        &self.key
    }

    /// `keyPrefix + "@session:{" + id + "}"`. The braces are a Redis
    /// Cluster hash tag: only the id picks the slot, so whatever a session
    /// ever keeps beside its hash (under the same tag) can be changed in
    /// one command or `MULTI` with it.
    fn session_key(&mut self, id: SessionId) -> &[u8] {
        self.key.clear();
        self.key
            .extend_from_slice(&self.namespace[..self.plugin_at]);
        self.key.extend_from_slice(b"@session:{");
        self.key.extend_from_slice(id.hex().as_bytes());
        self.key.push(b'}');
        &self.key
    }

    /// The session's key and `namespace + ":" + field`, the namespace's
    /// part of the shared session.
    fn session_field(&mut self, id: SessionId, field: &[u8]) -> (&[u8], &[u8]) {
        self.session_key(id);
        self.field.clear();
        self.field
            .extend_from_slice(&self.namespace[self.plugin_at..]);
        self.field.extend_from_slice(field);
        (&self.key, &self.field)
    }

    /// The request's live session, looked up once per call (refreshing its
    /// idle TTL: a use keeps it alive); with `create`, a new one if there is
    /// none. The new one exists in the store only once the caller writes to
    /// it, which it does at once (see [`CallStore::stored`]).
    fn session(
        &mut self,
        store: &mut dyn Store,
        create: bool,
        timeout: Duration,
    ) -> Result<Option<SessionId>, StoreError> {
        if self.session.is_none() {
            let live = match self.cookie {
                Some(id) => store.expire(self.session_key(id), timeout)?.then_some(id),
                None => None,
            };
            self.session = Some(live);
        }
        match self.session {
            Some(Some(id)) => Ok(Some(id)),
            _ if create => {
                let id = SessionId::generate()?;
                self.session = Some(Some(id));
                self.minted = Some(id);
                Ok(Some(id))
            }
            _ => Ok(None),
        }
    }
}

fn no_session() -> StoreError {
    StoreError::Other("no session after creating one".into())
}
