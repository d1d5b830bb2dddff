//! One plugin call's view of the store: the namespace of the plugin being
//! called and the visitor's session.
//!
//! The worker fills a [`CallStore`] before each `handle` ([`CallStore::begin`])
//! with the plugin's name and the request's `Cookie` headers; every store or
//! session call the plugin makes during that `handle` arrives here as an
//! [`Op`], the operation type the SDK defines. The namespace comes from which plugin the host is calling, never
//! from plugin input, so a key is always `keyPrefix + plugin + ":" + key`
//! and one plugin cannot reach another's keys.
//!
//! Sessions: one hash per visitor at `keyPrefix + "@session:{" + id + "}"` (`@`
//! cannot start a plugin name, so it never collides with a plugin's keys),
//! one field per plugin field (`plugin + ":" + field`), and an idle TTL of
//! `sessionTimeout` that every use refreshes. A session is created only by
//! a write, and a cookie is trusted only if its session is live.

use super::session::SessionId;
use super::{with_store, Op, Reply, Store, StoreError};
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
    /// `keyPrefix + plugin + ":"`.
    namespace: Vec<u8>,
    /// Where the plugin's name starts in `namespace`.
    plugin_at: usize,
    /// The id in the request's `drupe_session` cookie.
    cookie: Option<SessionId>,
    /// The request's live session: `None` until looked up.
    session: Option<Option<SessionId>>,
    /// A session this request created, for the `Set-Cookie` header.
    created: Option<SessionId>,
    /// Scratch for one full key or field.
    key: Vec<u8>,
    field: Vec<u8>,
}

impl CallStore {
    /// Prepares for a call of plugin `plugin` on a request with these
    /// headers. Cheap: copies a few bytes, parses only `Cookie` headers.
    pub fn begin<'h>(&mut self, plugin: &str, headers: impl Iterator<Item = (&'h [u8], &'h [u8])>) {
        let prefix = super::settings().map_or("", |s| s.key_prefix.as_str());
        self.namespace.clear();
        self.namespace.extend_from_slice(prefix.as_bytes());
        self.plugin_at = self.namespace.len();
        self.namespace.extend_from_slice(plugin.as_bytes());
        self.namespace.push(b':');
        self.cookie = headers
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"cookie"))
            .find_map(|(_, value)| super::session::from_cookie_header(value));
        self.session = None;
        self.created = None;
    }

    /// The session this call created, once: the caller sends its cookie.
    pub fn take_created(&mut self) -> Option<SessionId> {
        self.created.take()
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
                Reply::Done
            }
            Op::SessionIncr(f, by) => {
                let id = self
                    .session(store, true, session_timeout)?
                    .ok_or_else(no_session)?;
                let (key, field) = self.session_field(id, f);
                Reply::Int(store.hincr(key, field, by, ttl)?)
            }
        })
    }

    /// `keyPrefix + plugin + ":" + key`.
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

    /// The session's key and `plugin + ":" + field`, the plugin's part of
    /// the shared session.
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
    /// it, which it does at once.
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
                self.created = Some(id);
                Ok(Some(id))
            }
            _ => Ok(None),
        }
    }
}

fn no_session() -> StoreError {
    StoreError::Other("no session after creating one".into())
}
