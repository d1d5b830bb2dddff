//! The shared store: one [`Store`] trait, a Redis and an SQLite backend with
//! one behaviour, and the per-request layer ([`call`]) that namespaces keys
//! and keeps sessions.
//!
//! Connections belong to handler threads: each thread opens its own on its
//! first store call ([`with_store`]) and keeps it. Worker threads start
//! after fork, and the master never calls in here, so no connection is ever
//! shared across a fork or between threads. [`configure`] only records the
//! settings; it opens nothing.
//!
//! Errors come in the kinds that plugins see: [`StoreError::Unavailable`]
//! (the store could not be reached within `[store] timeout` and nothing was
//! done; the request answers 503 and the next call tries again),
//! [`StoreError::OutcomeUnknown`] (a command that must not run twice was
//! sent and its answer lost: it may have been applied; 504), and
//! [`StoreError::Other`] (a wrong type, an overflow: retrying will not
//! help).

pub mod call;
pub mod cluster;
pub mod connect;
pub mod handshake;
pub mod redis;
pub mod sentinel;
pub mod session;
pub mod sqlite;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::config;

pub use call::CallStore;
/// The operations, their answers and their errors are the SDK's, so that
/// plugin and host share one definition of each.
pub use drupe_sdk::store_op::{Fields, Op, Reply};
pub use drupe_sdk::StoreError;

/// The message for a value of the other kind (a hash where a string was
/// expected or the reverse), worded as Redis words it.
pub(crate) fn wrong_type() -> StoreError {
    StoreError::Other(
        "WRONGTYPE Operation against a key holding the wrong kind of value".to_owned(),
    )
}

/// Key/value operations with TTLs, on full (already namespaced) keys.
///
/// Both backends implement exactly this behaviour, which the conformance
/// suite in `tests.rs` checks for each: Redis semantics (`GET` on a hash or
/// a list is a type error, `INCRBY` on a missing key starts at 0 and keeps an
/// existing TTL, removing a hash's last field removes the hash, …).
pub trait Store {
    /// The value of `key`; `None` if missing or expired; an error for a hash.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key`, replacing any value (of either kind) and TTL.
    fn set(&mut self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError>;
    /// Deletes `key` of either kind; true if it existed.
    fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError>;
    /// Whether `key` exists (either kind).
    fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError>;
    /// Sets the TTL of an existing `key`; false if it does not exist. A zero
    /// TTL expires it at once.
    fn expire(&mut self, key: &[u8], ttl: Duration) -> Result<bool, StoreError>;
    /// Atomically adds `by` to the decimal integer at `key` (missing = 0),
    /// keeping its TTL; returns the new value.
    fn incr(&mut self, key: &[u8], by: i64) -> Result<i64, StoreError>;
    /// One field of the hash at `key`.
    fn hget(&mut self, key: &[u8], field: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets one field of the hash at `key`; with `ttl`, also (atomically)
    /// sets the key's TTL, otherwise leaves it as it is.
    fn hset(
        &mut self,
        key: &[u8],
        field: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError>;
    /// Removes one field; true if it existed. The last field takes the key
    /// with it.
    fn hdel(&mut self, key: &[u8], field: &[u8]) -> Result<bool, StoreError>;
    /// Every field of the hash at `key`, sorted by field (empty if missing).
    fn hget_all(&mut self, key: &[u8]) -> Result<Fields, StoreError>;
    /// Atomically adds `by` to one integer field (missing = 0); with `ttl`,
    /// also sets the key's TTL in the same step. Returns the new value.
    fn hincr(
        &mut self,
        key: &[u8],
        field: &[u8],
        by: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, StoreError>;
    /// The live keys that start with `prefix`, of every kind, sorted
    /// bytewise, at most `limit` of them (the first in that order).
    fn keys(&mut self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Appends `value` to the list at `key` (missing = empty), keeping its
    /// TTL; returns the new length.
    fn push(&mut self, key: &[u8], value: &[u8]) -> Result<i64, StoreError>;
    /// The list's items by `LRANGE` rules (see `store_op::list_range`);
    /// empty if missing.
    fn range(&mut self, key: &[u8], start: i64, stop: i64) -> Result<Vec<Vec<u8>>, StoreError>;
    /// The list's length; 0 if missing.
    fn len(&mut self, key: &[u8]) -> Result<i64, StoreError>;
    /// Moves `from` (of any kind, with its TTL) to `to`, replacing what was
    /// there; false, changing nothing, if `from` does not exist.
    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<bool, StoreError>;
}

/// Where the store lives: `[store] url`, parsed. Its `Display` hides any
/// password; show it only that way.
pub type Location = config::StoreUrl;

/// What a worker needs to know to open and use the store.
#[derive(Debug, Clone)]
pub struct Settings {
    pub location: Location,
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub session_timeout: Duration,
}

impl Settings {
    /// From the validated `[store]` section.
    pub fn from_config(store: &config::Store) -> Settings {
        // Checked when the config was read, so this parses; a URL that
        // fails anyway names itself (redacted) when the store is opened.
        let location = Location::parse(&store.url).unwrap_or_else(|why| {
            log::error!(
                "store: [store] url = {} {why}",
                config::Redacted(&store.url)
            );
            Location::Sqlite(PathBuf::new())
        });
        Settings {
            location,
            key_prefix: store.key_prefix.clone(),
            connect_timeout: store.connect_timeout,
            timeout: store.timeout,
            session_timeout: store.session_timeout,
        }
    }

    /// Where the store is, for log lines: the URL without its password.
    pub fn describe(&self) -> String {
        self.location.to_string()
    }
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Records the store settings for this worker process. Opens nothing:
/// every handler thread connects on its first store call.
pub fn configure(store: &config::Store) {
    let _ = SETTINGS.set(Settings::from_config(store));
}

/// This process's settings, if [`configure`] was called.
pub fn settings() -> Option<&'static Settings> {
    SETTINGS.get()
}

/// Makes the store ready before any worker opens it: for SQLite, the file,
/// WAL mode and schema (see [`sqlite::SqliteStore::create`]); for Redis, a
/// login that catches wrong credentials or TLS settings at once (see
/// [`handshake`]; a Redis that is merely down is only a warning, since
/// pages that do not use it keep working). Run by the plugin probe, never
/// by the master, which opens no store connection. The error names the
/// file or the server, never a password.
pub fn prepare(store: &config::Store) -> Result<(), StoreError> {
    let settings = Settings::from_config(store);
    match &settings.location {
        Location::Sqlite(path) => sqlite::SqliteStore::create(path, settings.timeout),
        Location::Redis(_) | Location::Sentinel(_) | Location::Cluster(_) => {
            handshake::check(&settings).map_err(StoreError::Other)
        }
    }
}

/// Opens a backend (Redis connects lazily; SQLite opens its file now).
pub fn open(settings: &Settings) -> Result<Box<dyn Store>, StoreError> {
    Ok(match &settings.location {
        Location::Redis(url) => Box::new(redis::RedisStore::with_url(
            url,
            settings.connect_timeout,
            settings.timeout,
        )?),
        Location::Cluster(url) => Box::new(redis::RedisStore::with_cluster(
            url,
            settings.connect_timeout,
            settings.timeout,
        )?),
        Location::Sentinel(url) => Box::new(redis::RedisStore::with_sentinels(
            url.clone(),
            settings.connect_timeout,
            settings.timeout,
        )),
        Location::Sqlite(path) => Box::new(sqlite::SqliteStore::open(path, settings.timeout)?),
    })
}

thread_local! {
    /// This thread's backend, opened on first use.
    static THREAD_STORE: RefCell<Option<Box<dyn Store>>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's backend, opening it first if needed. A
/// backend that fails to open is not kept, so the next call tries again.
pub fn with_store<T>(
    f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let settings = settings()
        .ok_or_else(|| StoreError::Other("the store is not configured in this process".into()))?;
    THREAD_STORE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let store = match &mut *slot {
            Some(store) => store,
            empty => empty.insert(open(settings)?),
        };
        f(store.as_mut())
    })
}
