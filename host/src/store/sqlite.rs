//! The SQLite backend: one file shared by every worker of one machine, one
//! connection per handler thread.
//!
//! The file, its WAL mode and its schema are made once, by
//! [`SqliteStore::create`] in the plugin probe, before any worker starts:
//! workers then only open it. When each worker's first connection switched
//! the mode and created the tables itself, concurrent first requests raced
//! for the write lock those need and some answered 503.
//!
//! WAL mode lets readers run beside the one writer; `synchronous=NORMAL`
//! (safe in WAL: a power cut may lose the last commits, never corrupt the
//! file) keeps commits cheap; the busy timeout is `[store] timeout`, after
//! which a call is "unavailable" (nothing was written: the lock comes
//! first, so an SQLite call's outcome is never unknown). Every read-modify-write (`incr`, hash
//! writes) runs in a `BEGIN IMMEDIATE` transaction, which takes the write
//! lock up front, so it is atomic across threads and processes and never
//! fails half-way on a lock it could not upgrade.
//!
//! Layout, modelled on Redis: table `kv` has one row per key, `value` NULL
//! marking a hash whose fields live in `hash_fields` or a list whose items
//! live in `list_items` (a key holds at most one of them: an empty hash or
//! list does not exist). `expires_at` is Unix
//! time in milliseconds (one clock for every process). An expired row is
//! treated as absent on every read, removed when its key is written, and
//! swept from the whole file at most once a minute per process.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{wrong_type, Fields, Store, StoreError};
use drupe_sdk::store_op::list_range;

/// How often, at most, one process sweeps expired keys out of the file.
const SWEEP_EVERY_MS: i64 = 60_000;

/// When this process last swept (Unix ms); 0: not yet.
static LAST_SWEEP: AtomicI64 = AtomicI64::new(0);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS kv (
        key BLOB PRIMARY KEY,
        value BLOB,
        expires_at INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE IF NOT EXISTS hash_fields (
        key BLOB NOT NULL,
        field BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (key, field)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS list_items (
        key BLOB NOT NULL,
        pos INTEGER NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (key, pos)
    ) WITHOUT ROWID;
";

/// An SQLite file as a [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

/// What a live key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bytes,
    Hash,
    List,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn expiry(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

/// Locked, busy or out of disk: worth trying again later (503). Anything
/// else is a bug or a broken file (500).
fn classify(e: rusqlite::Error) -> StoreError {
    let code = e.sqlite_error_code();
    let message = format!("SQLite: {e}");
    match code {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable(message),
        _ => StoreError::Other(message),
    }
}

fn not_integer() -> StoreError {
    StoreError::Other("ERR value is not an integer or out of range".into())
}

fn overflow() -> StoreError {
    StoreError::Other("ERR increment or decrement would overflow".into())
}

/// `current` (decimal text; missing is 0) plus `by`.
fn add(current: Option<&[u8]>, by: i64) -> Result<i64, StoreError> {
    let current = match current {
        None => 0,
        Some(text) => std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(not_integer)?,
    };
    current.checked_add(by).ok_or_else(overflow)
}

impl SqliteStore {
    /// Makes the store ready at `path`: the folder, the file, WAL mode and
    /// the schema, each only if missing. Run once before the workers start
    /// (in the probe, as the user they run as); the error names the file
    /// and says what to check.
    pub fn create(path: &Path, timeout: Duration) -> Result<(), StoreError> {
        let fail = |why: String| {
            StoreError::Unavailable(format!(
                "cannot prepare the SQLite store {}: {why}; check [store] url and that \
                 drupe's user may write there",
                path.display()
            ))
        };
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| {
                fail(format!(
                    "cannot create its folder {}: {e}",
                    folder.display()
                ))
            })?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
            return Err(fail("it can only be opened read-only".to_owned()));
        }
        conn.busy_timeout(timeout)
            .map_err(|e| fail(e.to_string()))?;
        // The mode is a property of the file: once set, it stays WAL.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| fail(e.to_string()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(format!(
                "it cannot use WAL mode (it stays in {mode} mode)"
            )));
        }
        conn.execute_batch(SCHEMA).map_err(|e| fail(e.to_string()))
    }

    /// Opens the store that [`SqliteStore::create`] made; creates nothing,
    /// so it takes no lock and cannot fail for another opening at once.
    pub fn open(path: &Path, timeout: Duration) -> Result<SqliteStore, StoreError> {
        let flags = OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot open the SQLite store {} ({e}); drupe creates it at start and on \
                 reload, so it was removed or made unreadable since",
                path.display()
            ))
        })?;
        conn.busy_timeout(timeout).map_err(classify)?;
        // Per connection, and takes no lock.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(classify)?;
        Ok(SqliteStore { conn })
    }

    /// Runs `f` in a transaction: `IMMEDIATE` for writes (the write lock up
    /// front), `DEFERRED` for reads (one consistent snapshot).
    fn tx<T>(
        &mut self,
        write: bool,
        f: impl FnOnce(&rusqlite::Transaction<'_>, i64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = now_ms();
        self.sweep_if_due(now);
        let behavior = if write {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let tx = self
            .conn
            .transaction_with_behavior(behavior)
            .map_err(classify)?;
        let value = f(&tx, now)?;
        tx.commit().map_err(classify)?;
        Ok(value)
    }

    /// Deletes every expired key, at most once a minute per process. Best
    /// effort: reads ignore expired rows anyway.
    fn sweep_if_due(&mut self, now: i64) {
        let last = LAST_SWEEP.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_MS
            || LAST_SWEEP
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let swept = self.conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;
             DELETE FROM hash_fields WHERE key IN (SELECT key FROM kv WHERE expires_at <= {now});
             DELETE FROM list_items WHERE key IN (SELECT key FROM kv WHERE expires_at <= {now});
             DELETE FROM kv WHERE expires_at <= {now};
             COMMIT;"
        ));
        if let Err(e) = swept {
            let _ = self.conn.execute_batch("ROLLBACK");
            log::debug!("store: sweeping expired keys failed (will retry): {e}");
        }
    }
}

/// The kind of the live key, if any.
fn kind(tx: &rusqlite::Transaction<'_>, key: &[u8], now: i64) -> Result<Option<Kind>, StoreError> {
    tx.prepare_cached(
        "SELECT value IS NULL, EXISTS (SELECT 1 FROM list_items WHERE key = ?1)
         FROM kv WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
    )
    .and_then(|mut s| {
        s.query_row(params![key, now], |r| {
            Ok(match (r.get::<_, bool>(0)?, r.get::<_, bool>(1)?) {
                (false, _) => Kind::Bytes,
                (true, true) => Kind::List,
                (true, false) => Kind::Hash,
            })
        })
        .optional()
    })
    .map_err(classify)
}

/// The live key's kind, which must be `want` or none; a type error
/// otherwise.
fn expect_kind(
    tx: &rusqlite::Transaction<'_>,
    key: &[u8],
    now: i64,
    want: Kind,
) -> Result<bool, StoreError> {
    match kind(tx, key, now)? {
        None => Ok(false),
        Some(k) if k == want => Ok(true),
        Some(_) => Err(wrong_type()),
    }
}

/// Removes `key` if it has expired, so a write starts from nothing (an
/// expired counter restarts at 0, with no TTL).
fn purge_expired(tx: &rusqlite::Transaction<'_>, key: &[u8], now: i64) -> Result<(), StoreError> {
    let removed = tx
        .prepare_cached("DELETE FROM kv WHERE key = ?1 AND expires_at <= ?2")
        .and_then(|mut s| s.execute(params![key, now]))
        .map_err(classify)?;
    if removed > 0 {
        delete_contents(tx, key)?;
    }
    Ok(())
}

/// Removes a hash's fields or a list's items (not its `kv` row).
fn delete_contents(tx: &rusqlite::Transaction<'_>, key: &[u8]) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM hash_fields WHERE key = ?1",
        "DELETE FROM list_items WHERE key = ?1",
    ] {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute(params![key]))
            .map_err(classify)?;
    }
    Ok(())
}

/// Removes `key` of any kind; true if it was live.
fn delete_key(tx: &rusqlite::Transaction<'_>, key: &[u8], now: i64) -> Result<bool, StoreError> {
    let existed = kind(tx, key, now)?.is_some();
    tx.prepare_cached("DELETE FROM kv WHERE key = ?1")
        .and_then(|mut s| s.execute(params![key]))
        .map_err(classify)?;
    delete_contents(tx, key)?;
    Ok(existed)
}

/// The number of items in the list at `key`.
fn list_len(tx: &rusqlite::Transaction<'_>, key: &[u8]) -> Result<i64, StoreError> {
    tx.prepare_cached("SELECT count(*) FROM list_items WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![key], |r| r.get(0)))
        .map_err(classify)
}

/// The first key after every key that starts with `prefix`; `None` if
/// there is none (the prefix is empty or all 0xFF).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Makes `key` a hash (it must be missing or one already); with `ttl`, sets
/// its expiry.
fn ensure_hash(
    tx: &rusqlite::Transaction<'_>,
    key: &[u8],
    now: i64,
    ttl: Option<Duration>,
) -> Result<(), StoreError> {
    purge_expired(tx, key, now)?;
    expect_kind(tx, key, now, Kind::Hash)?;
    let expires = ttl.map(|t| expiry(now, t));
    tx.prepare_cached(
        "INSERT INTO kv (key, value, expires_at) VALUES (?1, NULL, ?2)
         ON CONFLICT (key) DO UPDATE SET expires_at = coalesce(?2, expires_at)",
    )
    .and_then(|mut s| s.execute(params![key, expires]))
    .map(drop)
    .map_err(classify)
}

fn field_value(
    tx: &rusqlite::Transaction<'_>,
    key: &[u8],
    field: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    tx.prepare_cached("SELECT value FROM hash_fields WHERE key = ?1 AND field = ?2")
        .and_then(|mut s| s.query_row(params![key, field], |r| r.get(0)).optional())
        .map_err(classify)
}

fn set_field(
    tx: &rusqlite::Transaction<'_>,
    key: &[u8],
    field: &[u8],
    value: &[u8],
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO hash_fields (key, field, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (key, field) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute(params![key, field, value]))
    .map(drop)
    .map_err(classify)
}

impl Store for SqliteStore {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tx(false, |tx, now| {
            let row: Option<Option<Vec<u8>>> = tx
                .prepare_cached(
                    "SELECT value FROM kv WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                )
                .and_then(|mut s| s.query_row(params![key, now], |r| r.get(0)).optional())
                .map_err(classify)?;
            match row {
                None => Ok(None),
                Some(None) => Err(wrong_type()),
                Some(value) => Ok(value),
            }
        })
    }

    fn set(&mut self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.tx(true, |tx, now| {
            delete_contents(tx, key)?;
            let expires = ttl.map(|t| expiry(now, t));
            tx.prepare_cached(
                "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            )
            .and_then(|mut s| s.execute(params![key, value, expires]))
            .map(drop)
            .map_err(classify)
        })
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        self.tx(true, |tx, now| delete_key(tx, key, now))
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        self.tx(false, |tx, now| Ok(kind(tx, key, now)?.is_some()))
    }

    fn expire(&mut self, key: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        self.tx(true, |tx, now| {
            tx.prepare_cached(
                "UPDATE kv SET expires_at = ?3
                 WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
            )
            .and_then(|mut s| s.execute(params![key, now, expiry(now, ttl)]))
            .map(|n| n > 0)
            .map_err(classify)
        })
    }

    fn incr(&mut self, key: &[u8], by: i64) -> Result<i64, StoreError> {
        self.tx(true, |tx, now| {
            purge_expired(tx, key, now)?;
            let row: Option<Option<Vec<u8>>> = tx
                .prepare_cached("SELECT value FROM kv WHERE key = ?1")
                .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
                .map_err(classify)?;
            let new = match row {
                Some(None) => return Err(wrong_type()),
                Some(Some(text)) => add(Some(&text), by)?,
                None => add(None, by)?,
            };
            // The TTL stays as it was, as with Redis' INCRBY.
            tx.prepare_cached(
                "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, NULL)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![key, new.to_string().as_bytes()]))
            .map_err(classify)?;
            Ok(new)
        })
    }

    fn hget(&mut self, key: &[u8], field: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tx(false, |tx, now| {
            if !expect_kind(tx, key, now, Kind::Hash)? {
                return Ok(None);
            }
            field_value(tx, key, field)
        })
    }

    fn hset(
        &mut self,
        key: &[u8],
        field: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.tx(true, |tx, now| {
            ensure_hash(tx, key, now, ttl)?;
            set_field(tx, key, field, value)
        })
    }

    fn hdel(&mut self, key: &[u8], field: &[u8]) -> Result<bool, StoreError> {
        self.tx(true, |tx, now| {
            if !expect_kind(tx, key, now, Kind::Hash)? {
                return Ok(false);
            }
            let removed = tx
                .prepare_cached("DELETE FROM hash_fields WHERE key = ?1 AND field = ?2")
                .and_then(|mut s| s.execute(params![key, field]))
                .map_err(classify)?;
            // As in Redis, a hash without fields does not exist.
            tx.prepare_cached(
                "DELETE FROM kv WHERE key = ?1
                 AND NOT EXISTS (SELECT 1 FROM hash_fields WHERE key = ?1)",
            )
            .and_then(|mut s| s.execute(params![key]))
            .map_err(classify)?;
            Ok(removed > 0)
        })
    }

    fn hget_all(&mut self, key: &[u8]) -> Result<Fields, StoreError> {
        self.tx(false, |tx, now| {
            if !expect_kind(tx, key, now, Kind::Hash)? {
                return Ok(Vec::new());
            }
            tx.prepare_cached("SELECT field, value FROM hash_fields WHERE key = ?1 ORDER BY field")
                .and_then(|mut s| {
                    s.query_map(params![key], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .map_err(classify)
        })
    }

    fn hincr(
        &mut self,
        key: &[u8],
        field: &[u8],
        by: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, StoreError> {
        self.tx(true, |tx, now| {
            ensure_hash(tx, key, now, ttl)?;
            let new = add(field_value(tx, key, field)?.as_deref(), by)?;
            set_field(tx, key, field, new.to_string().as_bytes())?;
            Ok(new)
        })
    }

    fn keys(&mut self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // BLOBs compare bytewise (memcmp), so the prefix is a range of the
        // primary key, and the order is the one promised.
        let end = prefix_end(prefix);
        self.tx(false, |tx, now| {
            tx.prepare_cached(
                "SELECT key FROM kv WHERE key >= ?1 AND (?2 IS NULL OR key < ?2)
                 AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key LIMIT ?4",
            )
            .and_then(|mut s| {
                s.query_map(params![prefix, end, now, limit], |r| r.get(0))?
                    .collect()
            })
            .map_err(classify)
        })
    }

    fn push(&mut self, key: &[u8], value: &[u8]) -> Result<i64, StoreError> {
        self.tx(true, |tx, now| {
            purge_expired(tx, key, now)?;
            expect_kind(tx, key, now, Kind::List)?;
            tx.prepare_cached(
                "INSERT INTO kv (key, value, expires_at) VALUES (?1, NULL, NULL)
                 ON CONFLICT (key) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![key]))
            .map_err(classify)?;
            tx.prepare_cached(
                "INSERT INTO list_items (key, pos, value)
                 SELECT ?1, coalesce(max(pos) + 1, 0), ?2 FROM list_items WHERE key = ?1",
            )
            .and_then(|mut s| s.execute(params![key, value]))
            .map_err(classify)?;
            list_len(tx, key)
        })
    }

    fn range(&mut self, key: &[u8], start: i64, stop: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.tx(false, |tx, now| {
            if !expect_kind(tx, key, now, Kind::List)? {
                return Ok(Vec::new());
            }
            let len = usize::try_from(list_len(tx, key)?).unwrap_or(0);
            let Some(taken) = list_range(len, start, stop) else {
                return Ok(Vec::new());
            };
            let (offset, count) = (taken.start as i64, taken.len() as i64);
            tx.prepare_cached(
                "SELECT value FROM list_items WHERE key = ?1 ORDER BY pos LIMIT ?3 OFFSET ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![key, offset, count], |r| r.get(0))?
                    .collect()
            })
            .map_err(classify)
        })
    }

    fn len(&mut self, key: &[u8]) -> Result<i64, StoreError> {
        self.tx(false, |tx, now| {
            if !expect_kind(tx, key, now, Kind::List)? {
                return Ok(0);
            }
            list_len(tx, key)
        })
    }

    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<bool, StoreError> {
        self.tx(true, |tx, now| {
            let exists = kind(tx, from, now)?.is_some();
            if !exists || from == to {
                return Ok(exists);
            }
            delete_key(tx, to, now)?;
            for sql in [
                "UPDATE kv SET key = ?2 WHERE key = ?1",
                "UPDATE hash_fields SET key = ?2 WHERE key = ?1",
                "UPDATE list_items SET key = ?2 WHERE key = ?1",
            ] {
                tx.prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![from, to]))
                    .map_err(classify)?;
            }
            Ok(true)
        })
    }
}
