//! The Redis backend: the `redis` crate's synchronous connection, one per
//! handler thread, opened on first use.
//!
//! Every call has a budget of `[store] timeout`, connecting included: a
//! connection attempt gets at most `connectTimeout` of it and each command
//! the rest, as socket read and write timeouts. A failure the connection
//! cannot survive (I/O error, timeout — a late reply would answer the next
//! command) drops it, and the next call connects anew, so nothing needs a
//! restart once Redis is back.
//!
//! Two cases get special care:
//! - A connection that sat idle may have been closed by a Redis restart
//!   without our noticing. Before using one idle for [`IDLE_CHECK`] we send a
//!   `PING`; a dead one is replaced before the real command goes out, so even
//!   `INCRBY` (never retried: it may have been applied) finds a live server.
//! - After a failed connection attempt or a timeout the thread fails fast
//!   for [`RECONNECT_BACKOFF`] instead of making every request wait out the
//!   timeout against a server that is down or hung; requests that do not
//!   use the store keep their threads.
//!
//! An idempotent command that fails because an established connection was
//! dropped (not on a timeout) is retried once on a fresh connection. Any
//! command that a node refused with `READONLY` (it was demoted to replica
//! by a failover; nothing was applied) drops the connection and is retried
//! once: with Sentinel ([`super::sentinel`]) the fresh connection goes to
//! the new primary.

use std::time::{Duration, Instant};

use redis::cluster::ClusterClient;
use redis::{Client, Cmd, ErrorKind, RedisError, ServerErrorKind};

use super::cluster::ClusterLink;
use super::connect::{self, Link};
use super::sentinel::Sentinels;
use super::{wrong_type, Fields, Store, StoreError};
use crate::config::{ClusterUrl, RedisUrl, SentinelUrl};

/// A connection idle this long gets a `PING` before it is trusted again.
pub const IDLE_CHECK: Duration = Duration::from_secs(1);

/// How long a thread answers "unavailable" without trying after a
/// connection attempt failed or Redis did not answer in time.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// Redis as a [`Store`].
pub struct RedisStore {
    target: Target,
    /// `host:port/db`, or the primary's name and address, for messages.
    name: String,
    connect_timeout: Duration,
    timeout: Duration,
    conn: Option<Link>,
    last_used: Instant,
    /// After a failed connect: until when to fail fast, and why.
    down: Option<(Instant, String)>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("name", &self.name)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

/// Where to connect.
enum Target {
    /// `redis://`: always the same address.
    Fixed(Client),
    /// `redis+sentinel://`: whichever node the Sentinels name as primary.
    Sentinel(Sentinels),
    /// `redis+cluster://`: one client per seed node to ask first; after a
    /// failed attempt the next one leads.
    Cluster {
        clients: Vec<ClusterClient>,
        next: usize,
    },
}

/// How a failed attempt ended.
struct Failure {
    error: StoreError,
    /// An established connection was dropped (EOF, reset): a fresh one may
    /// well succeed, so an idempotent command is worth one more try.
    dropped: bool,
    /// The node refused the command as a replica: nothing was applied, so
    /// any command is worth one more try on a fresh connection.
    demoted: bool,
}

impl RedisStore {
    /// A store for `url` (`redis://` or `rediss://`); connects on the first
    /// call.
    pub fn new(
        url: &str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let url = RedisUrl::parse(url)
            .map_err(|e| StoreError::Other(format!("{} {e}", crate::config::Redacted(url))))?;
        Self::with_url(&url, connect_timeout, timeout)
    }

    /// A store for a parsed `redis://` or `rediss://` URL.
    pub fn with_url(
        url: &RedisUrl,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = connect::client(&url.host, url.port, url.db, &url.auth, url.tls.as_ref())
            .map_err(|e| StoreError::Other(format!("Redis at {url}: {e}")))?;
        // Host, port and database only: never the credentials.
        let tls = if url.tls.is_some() { " (TLS)" } else { "" };
        let name = format!("{}:{}/{}{tls}", url.host, url.port, url.db);
        Ok(Self::with_target(
            Target::Fixed(client),
            name,
            connect_timeout,
            timeout,
        ))
    }

    /// A store on the Redis Cluster of `url`; reads the slot map on the
    /// first call and after any failure.
    pub fn with_cluster(
        url: &ClusterUrl,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let clients = (0..url.nodes.len())
            .map(|first| connect::cluster_client(url, first, connect_timeout))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Other(format!("Redis Cluster {url}: {e}")))?;
        let seeds: Vec<String> = url.nodes.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        let name = format!("cluster {}", seeds.join(","));
        let target = Target::Cluster { clients, next: 0 };
        Ok(Self::with_target(target, name, connect_timeout, timeout))
    }

    /// A store on the primary that the Sentinels of `url` name; asks them
    /// on the first call and on every reconnect.
    pub fn with_sentinels(url: SentinelUrl, connect_timeout: Duration, timeout: Duration) -> Self {
        let name = format!("primary '{}' (via Sentinel)", url.primary);
        let target = Target::Sentinel(Sentinels::new(url));
        Self::with_target(target, name, connect_timeout, timeout)
    }

    fn with_target(
        target: Target,
        name: String,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Self {
        RedisStore {
            target,
            name,
            connect_timeout,
            timeout,
            conn: None,
            last_used: Instant::now(),
            down: None,
        }
    }

    /// Runs one command (or atomic pipeline) within the call's budget.
    fn run<T>(
        &mut self,
        idempotent: bool,
        command: impl Fn(&mut Link) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let deadline = Instant::now() + self.timeout;
        if self.conn.is_some() && self.last_used.elapsed() >= IDLE_CHECK {
            // A failed PING drops the connection; the command below then
            // connects anew (or reports why it cannot).
            let _ = self.attempt(deadline, |c| redis::cmd("PING").query::<()>(c));
        }
        let reused = self.conn.is_some();
        match self.attempt(deadline, &command) {
            Err(f) if reused && (f.demoted || (f.dropped && idempotent)) => {
                self.attempt(deadline, &command)
            }
            other => other,
        }
        .map_err(|f| f.error)
    }

    /// One try: connect if needed, then the command.
    fn attempt<T>(
        &mut self,
        deadline: Instant,
        command: impl Fn(&mut Link) -> Result<T, RedisError>,
    ) -> Result<T, Failure> {
        self.connect(deadline)?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Some(conn) = self.conn.as_mut().filter(|_| !remaining.is_zero()) else {
            return Err(self.timed_out());
        };
        let result = conn
            .set_read_timeout(Some(remaining))
            .and_then(|()| conn.set_write_timeout(Some(remaining)))
            .and_then(|()| command(conn));
        match result {
            Ok(value) => {
                self.last_used = Instant::now();
                Ok(value)
            }
            Err(e) => {
                let demoted = e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly);
                if !is_reply(&e) || demoted {
                    // Out of step, dead, or no longer the primary: never
                    // reuse it.
                    self.conn = None;
                }
                let error = self.classify(&e);
                if e.is_timeout() {
                    self.mark_down(format!("Redis at {} did not answer in time", self.name));
                }
                Err(Failure {
                    dropped: e.is_connection_dropped() && !e.is_timeout(),
                    demoted,
                    error,
                })
            }
        }
    }

    /// Makes sure there is a connection, within `connectTimeout` and what
    /// is left of the call's budget.
    fn connect(&mut self, deadline: Instant) -> Result<(), Failure> {
        if self.conn.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if let Some((until, why)) = &self.down {
            if now < *until {
                return Err(Failure {
                    error: StoreError::Unavailable(why.clone()),
                    dropped: false,
                    demoted: false,
                });
            }
        }
        let budget = self
            .connect_timeout
            .min(deadline.saturating_duration_since(now));
        if budget.is_zero() {
            return Err(self.timed_out());
        }
        let opened = match &mut self.target {
            Target::Fixed(client) => client
                .get_connection_with_timeout(budget)
                .map(Link::Node)
                .map_err(|e| format!("cannot connect to Redis at {}: {e}", self.name)),
            Target::Sentinel(sentinels) => {
                sentinels
                    .connect_primary(budget, deadline)
                    .map(|(conn, at)| {
                        self.name = format!("primary '{}' at {at}", sentinels.primary());
                        Link::Node(conn)
                    })
            }
            Target::Cluster { clients, next } => {
                // The slot map is read within the call's budget, each node's
                // connection attempt within `connectTimeout`.
                let remaining = deadline.saturating_duration_since(now);
                ClusterLink::connect(&clients[*next], remaining)
                    .map(|link| Link::Cluster(Box::new(link)))
                    .map_err(|e| {
                        *next = (*next + 1) % clients.len();
                        format!("cannot connect to Redis at {}: {e}", self.name)
                    })
            }
        };
        match opened {
            Ok(conn) => {
                if self.down.take().is_some() {
                    log::info!("store: connected to Redis at {} again", self.name);
                }
                self.conn = Some(conn);
                self.last_used = Instant::now();
                Ok(())
            }
            Err(why) => {
                self.mark_down(why.clone());
                Err(Failure {
                    error: StoreError::Unavailable(why),
                    dropped: false,
                    demoted: false,
                })
            }
        }
    }

    /// Redis failed to connect or to answer in time: fail fast on this
    /// thread for a moment rather than make every request wait it out.
    fn mark_down(&mut self, why: String) {
        if self.down.is_none() {
            // Once per outage and thread, not once per request.
            log::warn!("store: {why}; answering 503 until it is back");
        }
        self.down = Some((Instant::now() + RECONNECT_BACKOFF, why));
    }

    fn timed_out(&self) -> Failure {
        Failure {
            error: StoreError::Unavailable(format!(
                "Redis at {} did not answer within {:?}",
                self.name, self.timeout
            )),
            dropped: false,
            demoted: false,
        }
    }

    fn classify(&self, e: &RedisError) -> StoreError {
        let transient = matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        );
        if e.code() == Some("WRONGTYPE") {
            wrong_type()
        } else if transient || !is_reply(e) {
            StoreError::Unavailable(format!("Redis at {}: {e}", self.name))
        } else {
            StoreError::Other(format!("Redis at {}: {e}", self.name))
        }
    }
}

/// An error the server answered with (or a reply we could not convert):
/// the connection is still in step and can be reused.
fn is_reply(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType
    )
}

/// Milliseconds for `PX`/`PEXPIRE`; a zero TTL on `SET` is refused by
/// Redis, so callers pass `None` for "no TTL" and at least 1 ms otherwise.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

fn cmd(name: &str, key: &[u8]) -> Cmd {
    let mut c = redis::cmd(name);
    c.arg(key);
    c
}

impl Store for RedisStore {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(true, |c| cmd("GET", key).query(c))
    }

    fn set(&mut self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        let mut c = cmd("SET", key);
        c.arg(value);
        if let Some(ttl) = ttl {
            c.arg("PX").arg(millis(ttl).max(1));
        }
        self.run(true, |conn| c.query(conn))
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        self.run(true, |c| cmd("DEL", key).query::<i64>(c))
            .map(|n| n > 0)
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        self.run(true, |c| cmd("EXISTS", key).query::<i64>(c))
            .map(|n| n > 0)
    }

    fn expire(&mut self, key: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        // Idempotent enough: a repeat sets the same TTL a moment later.
        self.run(true, |c| {
            cmd("PEXPIRE", key).arg(millis(ttl)).query::<i64>(c)
        })
        .map(|n| n == 1)
    }

    fn incr(&mut self, key: &[u8], by: i64) -> Result<i64, StoreError> {
        self.run(false, |c| cmd("INCRBY", key).arg(by).query(c))
    }

    fn hget(&mut self, key: &[u8], field: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(true, |c| cmd("HGET", key).arg(field).query(c))
    }

    fn hset(
        &mut self,
        key: &[u8],
        field: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.run(true, |c| match ttl {
            None => cmd("HSET", key).arg(field).arg(value).query(c),
            // MULTI/EXEC: the field and the TTL change together or not at all.
            Some(ttl) => redis::pipe()
                .atomic()
                .add_command(cmd("HSET", key).arg(field).arg(value).clone())
                .ignore()
                .add_command(cmd("PEXPIRE", key).arg(millis(ttl)).clone())
                .ignore()
                .query(c),
        })
    }

    fn hdel(&mut self, key: &[u8], field: &[u8]) -> Result<bool, StoreError> {
        self.run(true, |c| cmd("HDEL", key).arg(field).query::<i64>(c))
            .map(|n| n > 0)
    }

    fn hget_all(&mut self, key: &[u8]) -> Result<Fields, StoreError> {
        let mut pairs: Fields = self.run(true, |c| cmd("HGETALL", key).query(c))?;
        pairs.sort();
        Ok(pairs)
    }

    fn hincr(
        &mut self,
        key: &[u8],
        field: &[u8],
        by: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, StoreError> {
        self.run(false, |c| match ttl {
            None => cmd("HINCRBY", key).arg(field).arg(by).query(c),
            Some(ttl) => redis::pipe()
                .atomic()
                .add_command(cmd("HINCRBY", key).arg(field).arg(by).clone())
                .add_command(cmd("PEXPIRE", key).arg(millis(ttl)).clone())
                .ignore()
                .query::<(i64,)>(c)
                .map(|(n,)| n),
        })
    }
}
