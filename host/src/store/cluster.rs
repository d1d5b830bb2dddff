//! Redis Cluster: the `redis` crate's synchronous cluster client, made to
//! keep the store's two promises — every call ends within its budget, and
//! a command that may have been applied is never sent twice.
//!
//! The crate routes each command to the primary of its key's slot, follows
//! `MOVED` and `ASK`, and refreshes its slot map when told to. Left alone
//! it would also re-send a command after a timeout or a dropped connection
//! (an `INCRBY` could count twice) and wait for each node on its own
//! timeout, however many nodes a call touches. So each node's connection
//! here is a [`Node`] that
//! - bounds every connect, write and read by what is left of the store
//!   call's budget (a deadline per handler thread, set through
//!   [`ClusterLink::set_budget`] before each command), and
//! - hands I/O failures back to the crate as errors it does not retry,
//!   remembering what they were, so that [`ClusterLink`] can give the Redis
//!   backend the same I/O error a single connection would have: the backend
//!   then decides, as for one server, whether to retry, to answer 503, or
//!   to report an unknown outcome; and on any such failure it drops the
//!   whole cluster connection, so the next call starts from a fresh slot
//!   map (which is how a failover is picked up).
//!
//! "Sent" is judged per node as for one server (`connect::exchange`): a
//! command counts as sent once any node received all of it, redirects
//! included; and each node's socket is found when it connects and peeked
//! before each command, so a node that closed the connection (restarted,
//! or killed in a failover) fails the command before it goes out.
//!
//! Keys: nearly every store command touches one key, so it runs on one
//! node. A session is one hash whose key carries its id as a hash tag
//! (`{id}`, see `call`), so anything added to a session later lands in the
//! same slot. The exceptions are `keys`, which scans every primary
//! ([`ClusterLink::for_each_primary`]), and `rename`, whose two keys may
//! be in two slots (see `RedisStore::move_across_slots`).

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection, Connect};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{
    Client, Cmd, ConnectionLike, ErrorKind, IntoConnectionInfo, RedisError, RedisResult,
    ServerErrorKind, Value,
};

use super::connect;
use crate::sys::peer;

thread_local! {
    /// When the current store call on this thread must be over.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The last I/O failure a node met during the current command.
    static FAILURE: Cell<Option<io::ErrorKind>> = const { Cell::new(None) };
    /// Whether any node received the whole of the current command.
    static SENT: Cell<bool> = const { Cell::new(false) };
}

/// A connection to a Redis Cluster, for [`super::connect::Link`].
pub struct ClusterLink(ClusterConnection<Node>);

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterLink")
    }
}

impl ClusterLink {
    /// Connects to the first seed node of `client` that answers and reads
    /// the slot map, all within `budget`.
    pub fn connect(client: &ClusterClient, budget: Duration) -> RedisResult<ClusterLink> {
        DEADLINE.set(Some(Instant::now() + budget));
        FAILURE.set(None);
        client
            .get_generic_connection::<Node>()
            .map(ClusterLink)
            .map_err(restore)
    }

    /// The budget of the next command, redirects and reconnects included.
    pub fn set_budget(&self, budget: Duration) {
        DEADLINE.set(Some(Instant::now() + budget));
    }

    /// Whether a node received the whole of the last command (so that it
    /// may have been applied).
    pub fn sent(&self) -> bool {
        SENT.get()
    }

    pub fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        FAILURE.set(None);
        SENT.set(false);
        self.0.req_packed_command(cmd).map_err(restore)
    }

    /// A `MULTI`/`EXEC` block (all its keys in one slot). The crate follows
    /// a redirect of the block as a whole only when the node says so before
    /// queueing; a `MOVED` for a queued command aborts the transaction
    /// instead (nothing was applied), which the backend must see as "this
    /// connection's slot map is stale": a dropped connection.
    pub fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        FAILURE.set(None);
        SENT.set(false);
        self.0
            .req_packed_commands(cmd, offset, count)
            .map_err(|e| match moved_in_transaction(&e) {
                true => io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()).into(),
                false => restore(e),
            })
    }

    /// Runs `step` once per primary, on a connection that sends every
    /// command to that primary alone (for `SCAN`, whose cursor belongs to
    /// one node and which the crate does not route). The primaries are
    /// those of `CLUSTER SLOTS`; each is addressed by the first slot it
    /// serves, through the crate's own slot map, so no address is parsed.
    pub fn for_each_primary(
        &mut self,
        mut step: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<()>,
    ) -> RedisResult<()> {
        let ranges: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut Routed {
            link: self,
            slot: None,
        })?;
        let mut primaries: Vec<(u16, Value)> = Vec::new();
        for range in ranges {
            // [first slot, last slot, primary, replica, …]; each node is
            // [ip, port, id, …].
            let bad = || RedisError::from((ErrorKind::Parse, "CLUSTER SLOTS: an odd range"));
            let slot = match range.first() {
                Some(Value::Int(first)) => u16::try_from(*first).map_err(|_| bad())?,
                _ => return Err(bad()),
            };
            let id = match range.get(2) {
                Some(Value::Array(node)) => node.get(2).cloned().ok_or_else(bad)?,
                _ => return Err(bad()),
            };
            if !primaries.iter().any(|(_, seen)| *seen == id) {
                primaries.push((slot, id));
            }
        }
        for (slot, _) in primaries {
            step(&mut Routed {
                link: self,
                slot: Some(slot),
            })?;
        }
        Ok(())
    }

    pub fn check_connection(&mut self) -> bool {
        self.0.check_connection()
    }

    pub fn is_open(&self) -> bool {
        self.0.is_open()
    }
}

/// A cluster connection whose commands go to the primary of `slot` (any
/// node when `None`), for [`ClusterLink::for_each_primary`]. Only
/// `req_command` routes: a packed command has lost the `Cmd` to route.
struct Routed<'l> {
    link: &'l mut ClusterLink,
    slot: Option<u16>,
}

impl ConnectionLike for Routed<'_> {
    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let route = match self.slot {
            Some(slot) => SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master)),
            None => SingleNodeRoutingInfo::Random,
        };
        FAILURE.set(None);
        self.link
            .0
            .route_command(cmd, RoutingInfo::SingleNode(route))
            .map_err(restore)
    }

    fn req_packed_command(&mut self, _: &[u8]) -> RedisResult<Value> {
        Err(unroutable())
    }

    fn req_packed_commands(&mut self, _: &[u8], _: usize, _: usize) -> RedisResult<Vec<Value>> {
        Err(unroutable())
    }

    fn get_db(&self) -> i64 {
        0
    }

    fn check_connection(&mut self) -> bool {
        self.link.check_connection()
    }

    fn is_open(&self) -> bool {
        self.link.is_open()
    }
}

fn unroutable() -> RedisError {
    RedisError::from((
        ErrorKind::Client,
        "a routed cluster command must be sent with req_command",
    ))
}

/// A transaction the cluster aborted because a key's slot is elsewhere
/// or moving.
fn moved_in_transaction(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::ExecAbort)
        && e.clone().into_server_errors().is_some_and(|errors| {
            errors.iter().any(|(_, error)| {
                matches!(
                    error.kind(),
                    Some(
                        ServerErrorKind::Moved
                            | ServerErrorKind::Ask
                            | ServerErrorKind::TryAgain
                            | ServerErrorKind::ClusterDown
                    )
                )
            })
        })
}

/// What is left of the budget; an error when there is none. Never
/// "unbounded": a node operation outside a store call (there should be
/// none) gets no time at all rather than a socket without a timeout.
fn remaining() -> RedisResult<Duration> {
    let left = DEADLINE.get().map_or(Duration::ZERO, |d| {
        d.saturating_duration_since(Instant::now())
    });
    if left.is_zero() {
        Err(shelter(
            io::Error::new(io::ErrorKind::TimedOut, "no time left in the store call").into(),
        ))
    } else {
        Ok(left)
    }
}

/// An I/O failure becomes an error the crate does not retry; what it was
/// is kept for [`restore`].
fn shelter(e: RedisError) -> RedisError {
    if !matches!(e.kind(), ErrorKind::Io | ErrorKind::Parse) {
        return e;
    }
    let kind =
        super::connect::io_error(&e).map_or(io::ErrorKind::ConnectionAborted, io::Error::kind);
    FAILURE.set(Some(kind));
    RedisError::from((ErrorKind::Client, "cluster node I/O", e.to_string()))
}

/// Undoes [`shelter`] for the error the crate returned.
fn restore(e: RedisError) -> RedisError {
    match FAILURE.take() {
        Some(kind) if e.kind() == ErrorKind::Client || e.kind() == ErrorKind::Io => {
            let detail = e.detail().map_or_else(|| e.to_string(), str::to_owned);
            io::Error::new(kind, detail).into()
        }
        _ => e,
    }
}

/// One cluster node's connection, every operation within the budget, and
/// its descriptor (if found) peeked before each command as for one server
/// (`store::redis`): a node that closed the connection (it was restarted,
/// or killed in a failover) fails the command before it is sent.
pub struct Node {
    conn: redis::Connection,
    socket: Option<RawFd>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Node")
    }
}

impl Node {
    /// Sets the socket timeouts to what is left of the budget, and checks
    /// that the node has not closed the connection.
    fn arm(&self) -> RedisResult<()> {
        let left = Some(remaining()?);
        self.conn
            .set_read_timeout(left)
            .and_then(|()| self.conn.set_write_timeout(left))
            .map_err(shelter)?;
        if self.socket.is_some_and(peer::closed) {
            return Err(shelter(
                io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "the node closed the connection (nothing was sent)",
                )
                .into(),
            ));
        }
        Ok(())
    }

    fn exchange(&mut self, cmd: &[u8], offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        self.arm()?;
        let mut sent = false;
        let replies = connect::exchange(&mut self.conn, cmd, offset, count, &mut sent);
        if sent {
            SENT.set(true);
        }
        replies.map_err(shelter)
    }
}

impl Connect for Node {
    fn connect<T>(info: T, timeout: Option<Duration>) -> RedisResult<Self>
    where
        T: IntoConnectionInfo,
    {
        let info = info.into_connection_info()?;
        // No `CLIENT SETINFO` (see `connect::node_info`).
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let info = info.set_redis_settings(settings);
        let left = remaining()?;
        let budget = timeout.map_or(left, |t| t.min(left));
        let mut conn = Client::open(info)
            .and_then(|client| client.get_connection_with_timeout(budget))
            .map_err(shelter)?;
        let socket = connect::find_socket(&mut conn, remaining()?).map_err(shelter)?;
        Ok(Node { conn, socket })
    }

    fn send_packed_command(&mut self, cmd: &[u8]) -> RedisResult<()> {
        self.arm()?;
        self.conn.send_packed_command(cmd).map_err(shelter)?;
        SENT.set(true);
        Ok(())
    }

    // Timeouts come from the budget, before each operation.
    fn set_write_timeout(&self, _: Option<Duration>) -> RedisResult<()> {
        Ok(())
    }

    fn set_read_timeout(&self, _: Option<Duration>) -> RedisResult<()> {
        Ok(())
    }

    fn recv_response(&mut self) -> RedisResult<Value> {
        let left = Some(remaining()?);
        self.conn
            .set_read_timeout(left)
            .and_then(|()| self.conn.recv_response())
            .map_err(shelter)
    }
}

impl ConnectionLike for Node {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.exchange(cmd, 0, 1).map(connect::single)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.exchange(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.arm().is_ok() && self.conn.check_connection()
    }

    fn is_open(&self) -> bool {
        self.conn.is_open()
    }
}
