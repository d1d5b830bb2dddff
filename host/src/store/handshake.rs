//! The store, contacted once before any worker starts: in the probe, for
//! `--check`, at start and on reload (the master itself never connects).
//!
//! What this catches is what no retry would fix: Redis refusing the login
//! (wrong user or password, or a password it wants and the URL does not
//! give) and a TLS handshake that fails (a certificate the CA did not sign,
//! a name that does not match, TLS to a port that speaks none). Those stop
//! the start, or the reload, with a message that names the server and
//! never the password. A Redis that is merely unreachable now is not an
//! error: drupe starts, store pages answer 503 until it is back, as they
//! would if it went away later.

use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError};

use super::sentinel::Sentinels;
use super::{connect, Location, Settings};
use crate::config::{Auth, Tls};

/// Why a node could not be used.
enum Problem {
    /// Refused us for good: the configuration must change.
    Refused(String),
    /// Down, or not answering: may well be fine later.
    Unreachable(String),
}

/// One node to log in to.
struct Node<'a> {
    host: String,
    port: u16,
    db: i64,
    auth: &'a Auth,
    tls: Option<&'a Tls>,
}

/// Logs in to the store of `store` if it is Redis: an error if a node
/// refused the credentials or the TLS handshake, a warning if none could
/// be reached now.
pub fn check(settings: &Settings) -> Result<(), String> {
    let deadline = Instant::now() + settings.connect_timeout + settings.timeout;
    let shown = settings.location.to_string();
    let nodes = match &settings.location {
        Location::Sqlite(_) => return Ok(()),
        Location::Redis(url) => vec![Node {
            host: url.host.clone(),
            port: url.port,
            db: url.db,
            auth: &url.auth,
            tls: url.tls.as_ref(),
        }],
        // Any node of a cluster checks the credentials: they are the same
        // on all of them.
        Location::Cluster(url) => url
            .nodes
            .iter()
            .map(|(host, port)| Node {
                host: host.clone(),
                port: *port,
                db: 0,
                auth: &url.auth,
                tls: url.tls.as_ref(),
            })
            .collect(),
        Location::Sentinel(url) => {
            let sentinels = Sentinels::new(url.clone());
            match sentinels.primary_address(settings.connect_timeout, deadline) {
                Ok((host, port)) => vec![Node {
                    host,
                    port,
                    db: url.db,
                    auth: &url.auth,
                    tls: None,
                }],
                Err(why) => {
                    unreachable(&shown, &why);
                    return Ok(());
                }
            }
        }
    };
    let mut problems = Vec::new();
    for node in nodes {
        match log_in(&node, settings.connect_timeout, deadline) {
            Ok(()) => return Ok(()),
            Err(Problem::Refused(why)) => {
                return Err(format!(
                    "store {shown}: Redis at {}:{} {why}",
                    node.host, node.port
                ))
            }
            Err(Problem::Unreachable(why)) => {
                problems.push(format!("{}:{}: {why}", node.host, node.port));
            }
        }
    }
    unreachable(&shown, &problems.join("; "));
    Ok(())
}

fn unreachable(shown: &str, why: &str) {
    log::warn!(
        "store {shown} cannot be reached now ({why}); starting anyway: \
         store pages answer 503 until it can"
    );
}

/// Connects to `node`, logging in as the URL says, and sends `PING`.
fn log_in(node: &Node<'_>, connect_timeout: Duration, deadline: Instant) -> Result<(), Problem> {
    let client = connect::client(&node.host, node.port, node.db, node.auth, node.tls)
        .map_err(Problem::Refused)?;
    let left = || deadline.saturating_duration_since(Instant::now());
    let budget = connect_timeout.min(left());
    if budget.is_zero() {
        return Err(Problem::Unreachable("no time left".to_owned()));
    }
    let mut conn = client
        .get_connection_with_timeout(budget)
        .map_err(|e| classify(&e, node.auth))?;
    let left = Some(left().max(Duration::from_millis(1)));
    conn.set_read_timeout(left)
        .and_then(|()| conn.set_write_timeout(left))
        .and_then(|()| redis::cmd("PING").query::<()>(&mut conn))
        .map_err(|e| classify(&e, node.auth))
}

fn classify(e: &RedisError, auth: &Auth) -> Problem {
    let login = match &auth.user {
        Some(user) => format!("the login as user '{user}'"),
        None => "the password of [store] url".to_owned(),
    };
    match e.code() {
        _ if e.kind() == ErrorKind::AuthenticationFailed => {
            Problem::Refused(format!("refused {login}: wrong user name or password"))
        }
        Some("WRONGPASS") => {
            Problem::Refused(format!("refused {login}: wrong user name or password"))
        }
        Some("NOAUTH") => Problem::Refused(
            "asks for a password and [store] url gives none: \
             write redis://:PASSWORD@… or redis://USER:PASSWORD@…"
                .to_owned(),
        ),
        Some("NOPERM") => Problem::Refused(format!(
            "accepted {login} but lets it run too little ({e}); \
             allow the user +@read +@write +@keyspace +@transaction +ping"
        )),
        _ if is_tls(e) => Problem::Refused(format!(
            "failed the TLS handshake ({e}): check that the server speaks TLS on \
             this port, that ?ca= names the CA that signed its certificate, \
             and that the certificate names the host as written in the URL"
        )),
        _ => Problem::Unreachable(e.to_string()),
    }
}

/// A failure of TLS itself (as opposed to the network under it).
fn is_tls(e: &RedisError) -> bool {
    let rustls = |error: &(dyn std::error::Error + 'static)| error.is::<rustls::Error>();
    e.kind() == ErrorKind::InvalidClientConfig
        || std::error::Error::source(e).is_some_and(rustls)
        || connect::io_error(e).is_some_and(|io| {
            // rustls reports a failed handshake as `InvalidData` around
            // its own error; the network under it never does.
            io.kind() == std::io::ErrorKind::InvalidData || io.get_ref().is_some_and(|i| rustls(i))
        })
        || e.to_string().contains("peer certificate")
}
