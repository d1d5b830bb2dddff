//! Opening Redis connections from a parsed store URL: credentials, the
//! database, TLS with the URL's CA, and [`Link`], the one connection type
//! the Redis backend runs its commands on — a plain connection to one node
//! or a Redis Cluster connection ([`super::cluster`]).

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{
    Client, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisError, RedisResult,
    TlsCertificates, Value,
};

use super::cluster::ClusterLink;
use crate::config::{Auth, ClusterUrl, Tls};
use crate::sys::peer;

/// A connection the Redis backend can run commands on.
pub enum Link {
    /// One node: a server, or the primary that Sentinel named.
    Node(redis::Connection),
    /// A Redis Cluster: a connection per node, commands routed by slot.
    Cluster(Box<ClusterLink>),
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Link::Node(_) => "Link::Node",
            Link::Cluster(_) => "Link::Cluster",
        })
    }
}

impl Link {
    /// Bounds what the next command may take: for one node, its socket's
    /// reads and writes; for a cluster, the whole command, redirects and
    /// reconnects included.
    pub fn set_budget(&mut self, budget: Duration) -> RedisResult<()> {
        match self {
            Link::Node(conn) => conn
                .set_read_timeout(Some(budget))
                .and_then(|()| conn.set_write_timeout(Some(budget))),
            Link::Cluster(cluster) => {
                cluster.set_budget(budget);
                Ok(())
            }
        }
    }
}

/// Sends `cmd` (one command, or a pipeline or `MULTI` block) and reads
/// `offset + count` replies, returning the last `count`, as the crate's
/// `req_packed_commands` does: every reply is read (keeping the connection
/// in step), and a command refused while a transaction was queued fails
/// the whole call. Unlike the crate's, it says in `sent` whether all the
/// bytes went out, so that a failure can tell "not sent" from "sent,
/// answer lost".
pub fn exchange(
    conn: &mut redis::Connection,
    cmd: &[u8],
    offset: usize,
    count: usize,
    sent: &mut bool,
) -> RedisResult<Vec<Value>> {
    conn.send_packed_command(cmd)?;
    *sent = true;
    let mut replies = Vec::with_capacity(count);
    let mut refused = None;
    for i in 0..offset + count {
        match conn.recv_response()? {
            Value::ServerError(e) if i < offset => {
                refused.get_or_insert(e);
            }
            reply if i >= offset => replies.push(reply),
            _ => {}
        }
    }
    match refused {
        Some(e) => Err(e.into()),
        None => Ok(replies),
    }
}

/// The one reply to a single command sent with [`exchange`].
pub fn single(mut replies: Vec<Value>) -> Value {
    replies.pop().unwrap_or(Value::Nil)
}

/// The descriptor of a fresh connection, found by the client and server
/// addresses that Redis reports for it (`CLIENT INFO`, Redis 6.2+), within
/// `budget`; it is then peeked before each command ([`peer::closed`]).
/// `Ok(None)` when Redis does not say or the addresses are not ours (a
/// proxy or NAT in between); an error if the connection failed.
pub fn find_socket(
    conn: &mut redis::Connection,
    budget: Duration,
) -> Result<Option<RawFd>, RedisError> {
    if budget.is_zero() {
        return Ok(None);
    }
    // Also leaves the fresh connection with a deadline: the crate clears
    // its timeouts once the connection is set up.
    conn.set_read_timeout(Some(budget))?;
    conn.set_write_timeout(Some(budget))?;
    let info: String = match redis::cmd("CLIENT").arg("INFO").query(conn) {
        Ok(info) => info,
        Err(e) if is_reply(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let field = |name: &str| -> Option<SocketAddr> {
        info.split_ascii_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    Ok(field("addr")
        .zip(field("laddr"))
        .and_then(|(ours, theirs)| peer::find_tcp(ours, theirs)))
}

/// An error the server answered with (or a reply we could not convert):
/// the connection is still in step and can be reused.
pub fn is_reply(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType
    )
}

/// rustls needs one crypto provider per process; drupe uses `ring`, which
/// builds with a C compiler alone.
fn crypto_provider() {
    // Deprecated only for lacking post-quantum key exchange, which
    // aws-lc-rs has but which needs cmake to build; rustls itself falls
    // back to this provider the same way. Err only if one is installed
    // already, which is as good.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The I/O error under a Redis error, if that is what it is.
pub fn io_error(e: &RedisError) -> Option<&std::io::Error> {
    std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>())
}

/// The CA of `tls`, as the redis crate takes it (`None`: the system's CAs).
fn certificates(tls: &Tls) -> Result<TlsCertificates, String> {
    crypto_provider();
    let root_cert = match &tls.ca {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    Ok(TlsCertificates {
        client_tls: None,
        root_cert,
    })
}

/// Where and how to connect to one node.
fn node_info(
    host: &str,
    port: u16,
    db: i64,
    auth: &Auth,
    tls: bool,
) -> RedisResult<ConnectionInfo> {
    let addr = if tls {
        ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.to_owned(), port)
    };
    let info = addr.into_connection_info()?;
    // Connecting sends nothing but what the URL asks for (AUTH, SELECT):
    // no `CLIENT SETINFO`, whose two replies the crate waits for one
    // socket timeout each, which would stretch a connection attempt to a
    // hung server past its budget.
    let mut settings = info
        .redis_settings()
        .clone()
        .set_db(db)
        .set_skip_set_lib_name();
    if let Some(user) = &auth.user {
        settings = settings.set_username(user);
    }
    if let Some(password) = &auth.password {
        settings = settings.set_password(password.reveal());
    }
    Ok(info.set_redis_settings(settings))
}

/// A client for one node. Reads the CA file, so call it once per
/// backend, not per connection.
pub fn client(
    host: &str,
    port: u16,
    db: i64,
    auth: &Auth,
    tls: Option<&Tls>,
) -> Result<Client, String> {
    let info = node_info(host, port, db, auth, tls.is_some()).map_err(|e| e.to_string())?;
    match tls {
        None => Client::open(info),
        Some(tls) => Client::build_with_tls(info, certificates(tls)?),
    }
    .map_err(|e| e.to_string())
}

/// A cluster client: the seed nodes of `url`, its credentials and TLS,
/// connection attempts of at most `connect_timeout`. `first` is the seed
/// to try first (the others follow in order), so that a seed that is down
/// does not cost every reconnect its timeout.
pub fn cluster_client(
    url: &ClusterUrl,
    first: usize,
    connect_timeout: Duration,
) -> Result<ClusterClient, String> {
    let seeds = url.nodes.len();
    let infos = (0..seeds)
        .map(|i| {
            let (host, port) = &url.nodes[(first + i) % seeds];
            node_info(host, *port, 0, &url.auth, url.tls.is_some())
        })
        .collect::<RedisResult<Vec<_>>>()
        .map_err(|e| e.to_string())?;
    let mut builder = ClusterClientBuilder::new(infos)
        .connection_timeout(connect_timeout)
        // MOVED and ASK need one retry each (a slot can move while a
        // command is redirected); TRYAGAIN and CLUSTERDOWN wait a little
        // between tries. Every try is bounded by the store call's budget
        // (see `cluster`), so more retries cannot make a call slower.
        .retries(3)
        .min_retry_wait(10)
        .max_retry_wait(100);
    if let Some(tls) = &url.tls {
        builder = builder.certs(certificates(tls)?);
    }
    builder.build().map_err(|e: RedisError| e.to_string())
}
