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
//! What a failure means depends on whether the command went out:
//! - Not sent (the connection could not be made, the write failed, or a
//!   check before it found the connection dead): nothing was done, the
//!   call is [`StoreError::Unavailable`] (503), and any command may be
//!   tried once more on a fresh connection.
//! - Sent, and the answer did not come (timeout, EOF, reset): the server
//!   may have applied it. An idempotent command (`GET`, `SET`, `HSET`, …)
//!   dropped this way is retried once, and otherwise reported unavailable,
//!   since repeating it does no harm. A command that must not run twice
//!   (`INCRBY`, `HINCRBY`, `RPUSH`) is never retried and fails with
//!   [`StoreError::OutcomeUnknown`] (504): reporting it "not done" would be
//!   a lie whenever Redis applied it, as a frozen Redis does when it wakes.
//!
//! Sending is therefore watched ([`Sending`]), and a dead connection is
//! caught before a command goes out:
//! - A Redis restart closes every connection, and the next command on one
//!   would be lost. Before each command we ask the kernel whether the peer
//!   has closed the socket (`sys::peer::closed`: one non-blocking peek, no
//!   round trip, so steady load pays nothing noticeable); a closed one is
//!   replaced first. The crate exposes no descriptor, so on connecting we
//!   find it by the two addresses Redis reports in `CLIENT INFO` (one round
//!   trip per connection, not per command).
//! - Where that finds nothing (Redis older than 6.2, a proxy or NAT in
//!   between), and against a Redis that vanished without closing anything,
//!   a connection idle for [`IDLE_CHECK`] gets a `PING` before it is
//!   trusted again. Idle means light load, where a round trip is cheap.
//! - A write that fails (the peer reset the connection) left the command
//!   incomplete on the server, which never runs a partial command: that is
//!   "not sent", and retried once.
//! - After a failed connection attempt or a timeout the thread fails fast
//!   for [`RECONNECT_BACKOFF`] instead of making every request wait out the
//!   timeout against a server that is down or hung; requests that do not
//!   use the store keep their threads.
//!
//! Any command that a node refused with `READONLY` (it was demoted to
//! replica by a failover; nothing was applied) drops the connection and is
//! retried once: with Sentinel ([`super::sentinel`]) the fresh connection
//! goes to the new primary, and with Redis Cluster ([`super::cluster`]) it
//! reads a fresh slot map.

use std::time::{Duration, Instant};

use std::os::fd::RawFd;

use redis::cluster::ClusterClient;
use redis::{
    Client, Cmd, ConnectionLike, ErrorKind, RedisError, RedisResult, ServerErrorKind, Value,
};

use super::cluster::ClusterLink;
use super::connect::{self, is_reply, Link};
use super::sentinel::Sentinels;
use super::{wrong_type, Fields, Store, StoreError};
use crate::config::{ClusterUrl, RedisUrl, SentinelUrl};
use crate::sys::peer;

/// A connection idle this long gets a `PING` before it is trusted again.
/// Short, because a restart of Redis can take less than a second and the
/// first command after it may be an increment; long enough that a thread
/// serving steady traffic never pays the round trip.
pub const IDLE_CHECK: Duration = Duration::from_millis(100);

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
    /// `conn`'s descriptor, if it was found: peeked before each command.
    /// Set and cleared with `conn`. (A cluster's nodes peek their own.)
    socket: Option<RawFd>,
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
    /// Worth one more try on a fresh connection: nothing was applied (the
    /// command never went out whole, or a demoted node refused it), or the
    /// command is idempotent and an established connection was dropped.
    retry: bool,
}

impl Failure {
    /// Failed before anything was sent, and not worth retrying at once.
    fn unavailable(why: String) -> Failure {
        Failure {
            error: StoreError::Unavailable(why),
            retry: false,
        }
    }
}

/// A connection that notes whether a command's bytes all went out, so that
/// a failure can tell "not sent" from "sent, answer lost". On a cluster,
/// "went out" means to any node, redirects included.
struct Sending<'c> {
    link: &'c mut Link,
    sent: bool,
}

impl Sending<'_> {
    /// Runs `step` once per primary: once on a single server, once per
    /// primary of a cluster on a connection to that primary alone.
    fn for_each_primary(
        &mut self,
        mut step: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<()>,
    ) -> RedisResult<()> {
        match self.link {
            Link::Node(_) => step(self),
            Link::Cluster(cluster) => cluster.for_each_primary(step),
        }
    }
}

impl ConnectionLike for Sending<'_> {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self.link {
            Link::Node(conn) => {
                connect::exchange(conn, cmd, 0, 1, &mut self.sent).map(connect::single)
            }
            Link::Cluster(cluster) => {
                let reply = cluster.req_packed_command(cmd);
                self.sent |= cluster.sent();
                reply
            }
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self.link {
            Link::Node(conn) => connect::exchange(conn, cmd, offset, count, &mut self.sent),
            Link::Cluster(cluster) => {
                let replies = cluster.req_packed_commands(cmd, offset, count);
                self.sent |= cluster.sent();
                replies
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &*self.link {
            Link::Node(conn) => conn.get_db(),
            Link::Cluster(_) => 0,
        }
    }

    fn check_connection(&mut self) -> bool {
        match self.link {
            Link::Node(conn) => conn.check_connection(),
            Link::Cluster(cluster) => cluster.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match &*self.link {
            Link::Node(conn) => conn.is_open(),
            Link::Cluster(cluster) => cluster.is_open(),
        }
    }
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
            socket: None,
            last_used: Instant::now(),
            down: None,
        }
    }

    /// Runs one command (or atomic pipeline) within the call's budget.
    /// `idempotent`: running it twice does what running it once does.
    fn run<T>(
        &mut self,
        idempotent: bool,
        command: impl Fn(&mut Sending<'_>) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let deadline = Instant::now() + self.timeout;
        if self.socket.is_some_and(peer::closed) {
            log::debug!("store: Redis at {} closed the connection", self.name);
            self.disconnect();
        }
        if self.conn.is_some() && self.last_used.elapsed() >= IDLE_CHECK {
            // A failed PING drops the connection; the command below then
            // connects anew (or reports why it cannot).
            let _ = self.attempt(deadline, true, |c| redis::cmd("PING").query::<()>(c));
        }
        let reused = self.conn.is_some();
        match self.attempt(deadline, idempotent, &command) {
            Err(f) if reused && f.retry => self.attempt(deadline, idempotent, &command),
            other => other,
        }
        .map_err(|f| f.error)
    }

    /// One try: connect if needed, then the command.
    fn attempt<T>(
        &mut self,
        deadline: Instant,
        idempotent: bool,
        command: impl Fn(&mut Sending<'_>) -> Result<T, RedisError>,
    ) -> Result<T, Failure> {
        self.connect(deadline)?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Some(conn) = self.conn.as_mut().filter(|_| !remaining.is_zero()) else {
            return Err(self.timed_out());
        };
        let mut sending = Sending {
            link: conn,
            sent: false,
        };
        let result = sending
            .link
            .set_budget(remaining)
            .and_then(|()| command(&mut sending));
        let sent = sending.sent;
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
                    self.disconnect();
                }
                let timed_out = e.is_timeout();
                if timed_out {
                    self.mark_down(format!("Redis at {} did not answer in time", self.name));
                }
                let lost = sent && !is_reply(&e);
                let error = if lost && !idempotent {
                    StoreError::OutcomeUnknown(format!(
                        "Redis at {}: the command was sent but no answer came ({e}); \
                         it may have been applied",
                        self.name
                    ))
                } else {
                    self.classify(&e)
                };
                let dropped = e.is_connection_dropped() && !timed_out;
                Err(Failure {
                    retry: demoted || (!sent && !timed_out) || (idempotent && dropped),
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
                return Err(Failure::unavailable(why.clone()));
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
        let found = opened.and_then(|mut link| {
            let socket = match &mut link {
                Link::Node(conn) => {
                    let left = (now + budget).saturating_duration_since(Instant::now());
                    connect::find_socket(conn, left)
                }
                Link::Cluster(_) => Ok(None),
            };
            socket.map(|socket| (link, socket)).map_err(|e| {
                format!(
                    "Redis at {} did not complete the connection: {e}",
                    self.name
                )
            })
        });
        match found {
            Ok((conn, socket)) => {
                if self.down.take().is_some() {
                    log::info!("store: connected to Redis at {} again", self.name);
                }
                self.conn = Some(conn);
                self.socket = socket;
                self.last_used = Instant::now();
                Ok(())
            }
            Err(why) => {
                self.mark_down(why.clone());
                Err(Failure::unavailable(why))
            }
        }
    }

    /// Forgets the connection (closing it) and its descriptor.
    fn disconnect(&mut self) {
        self.conn = None;
        self.socket = None;
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
        Failure::unavailable(format!(
            "Redis at {} did not answer within {:?}",
            self.name, self.timeout
        ))
    }

    /// `rename` on a cluster. The two keys may be in different slots (a
    /// session's new id is a new hash tag), which no command, transaction
    /// or script may touch together. So: three steps, each on one slot and
    /// each safe to repeat, so each is retried like a read:
    /// 1. copy `from` and its TTL (`DUMP` and `PTTL` in one `MULTI`);
    /// 2. write the copy at `to` (`RESTORE … REPLACE`);
    /// 3. delete `from` if it still holds what was copied (a script on its
    ///    slot).
    ///
    /// A failure after step 2 fails the call (503) and leaves `from` as it
    /// was, still working, beside a copy that expires with it: the caller
    /// learns that the move did not happen, never the reverse. `from`
    /// changed between the steps (a concurrent write) is also a failure,
    /// and the stale copy is removed.
    fn move_across_slots(&mut self, from: &[u8], to: &[u8]) -> Result<bool, StoreError> {
        let (dump, pttl): (Option<Vec<u8>>, i64) = self.run(true, |c| {
            redis::pipe()
                .atomic()
                .add_command(cmd("DUMP", from))
                .add_command(cmd("PTTL", from))
                .query(c)
        })?;
        let Some(dump) = dump else {
            return Ok(false);
        };
        // PTTL is -1 for a key without a TTL: RESTORE's 0.
        let ttl = pttl.max(0);
        self.run(true, |c| {
            cmd("RESTORE", to)
                .arg(ttl)
                .arg(&dump)
                .arg("REPLACE")
                .query::<()>(c)
        })?;
        let script = "if redis.call('DUMP', KEYS[1]) == ARGV[1] then \
                      redis.call('DEL', KEYS[1]) return 1 else return 0 end";
        let deleted = self.run(true, |c| {
            redis::cmd("EVAL")
                .arg(script)
                .arg(1)
                .arg(from)
                .arg(&dump)
                .query::<i64>(c)
        })?;
        if deleted == 1 {
            return Ok(true);
        }
        // Best effort: the copy would otherwise outlive the failed move
        // until its TTL.
        let _ = self.delete(to);
        Err(StoreError::Unavailable(format!(
            "Redis at {}: the key changed while it was being renamed; try again",
            self.name
        )))
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

/// Milliseconds for `PX`/`PEXPIRE`; a zero TTL on `SET` is refused by
/// Redis, so callers pass `None` for "no TTL" and at least 1 ms otherwise.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// `prefix` as a literal in a `SCAN MATCH` pattern: a backslash before
/// each glob character.
fn glob_escape(prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len());
    for &b in prefix {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
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

    fn keys(&mut self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let pattern = [glob_escape(prefix).as_slice(), b"*"].concat();
        self.run(true, |c| {
            // SCAN, never KEYS: it walks the keyspace in steps and never
            // blocks Redis. A cursor belongs to one node, so a cluster is
            // scanned primary by primary. The order is arbitrary and a key
            // may come twice, so keep the `limit` smallest in a sorted set.
            let mut found = std::collections::BTreeSet::new();
            c.for_each_primary(|node| {
                let mut cursor = 0u64;
                loop {
                    let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query(node)?;
                    for key in batch {
                        found.insert(key);
                        if found.len() > limit {
                            found.pop_last();
                        }
                    }
                    if next == 0 {
                        return Ok(());
                    }
                    cursor = next;
                }
            })?;
            Ok(found.into_iter().collect())
        })
    }

    fn push(&mut self, key: &[u8], value: &[u8]) -> Result<i64, StoreError> {
        self.run(false, |c| cmd("RPUSH", key).arg(value).query(c))
    }

    fn range(&mut self, key: &[u8], start: i64, stop: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(true, |c| cmd("LRANGE", key).arg(start).arg(stop).query(c))
    }

    fn len(&mut self, key: &[u8]) -> Result<i64, StoreError> {
        self.run(true, |c| cmd("LLEN", key).query(c))
    }

    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<bool, StoreError> {
        if matches!(self.target, Target::Cluster { .. }) {
            return self.move_across_slots(from, to);
        }
        // RENAME answers an error for a missing key; the script makes that
        // case an answer, atomically.
        let script = "if redis.call('EXISTS', KEYS[1]) == 1 then \
                      redis.call('RENAME', KEYS[1], KEYS[2]) return 1 else return 0 end";
        self.run(false, |c| {
            redis::cmd("EVAL")
                .arg(script)
                .arg(2)
                .arg(from)
                .arg(to)
                .query::<i64>(c)
        })
        .map(|n| n == 1)
    }
}
