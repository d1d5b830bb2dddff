//! Opening Redis connections from a parsed store URL: credentials, the
//! database, TLS with the URL's CA, and [`Link`], the one connection type
//! the Redis backend runs its commands on — a plain connection to one node
//! or a Redis Cluster connection ([`super::cluster`]).

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{
    Client, ConnectionAddr, ConnectionInfo, ConnectionLike, IntoConnectionInfo, RedisError,
    RedisResult, TlsCertificates, Value,
};

use super::cluster::ClusterLink;
use crate::config::{Auth, ClusterUrl, Tls};

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
    /// Bounds reads on the connection (for a cluster: the whole command,
    /// redirects and reconnects included).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()> {
        match self {
            Link::Node(conn) => conn.set_read_timeout(timeout),
            Link::Cluster(cluster) => {
                cluster.set_budget(timeout);
                Ok(())
            }
        }
    }

    /// Bounds writes; for a cluster, the same budget as reads.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> RedisResult<()> {
        match self {
            Link::Node(conn) => conn.set_write_timeout(timeout),
            Link::Cluster(cluster) => {
                cluster.set_budget(timeout);
                Ok(())
            }
        }
    }
}

impl ConnectionLike for Link {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Link::Node(conn) => conn.req_packed_command(cmd),
            Link::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Link::Node(conn) => conn.req_packed_commands(cmd, offset, count),
            Link::Cluster(cluster) => cluster.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Node(conn) => conn.get_db(),
            Link::Cluster(_) => 0,
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Link::Node(conn) => conn.check_connection(),
            Link::Cluster(cluster) => cluster.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Link::Node(conn) => conn.is_open(),
            Link::Cluster(cluster) => cluster.is_open(),
        }
    }
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
