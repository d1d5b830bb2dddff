//! Redis Sentinel: which node is the primary now.
//!
//! With `[store] url = redis+sentinel://…` every handler thread asks the
//! Sentinels for the primary's address each time it (re)connects, so after
//! a failover its next connection goes to the new primary. The steps are
//! those of the Sentinel client guidelines (redis.io, "Sentinel clients"):
//! ask the Sentinels in turn with `SENTINEL GET-MASTER-ADDR-BY-NAME`,
//! connect to the address given, check with `ROLE` that the node really is
//! a primary (one demoted a moment ago may not know it yet), and ask the
//! Sentinel that answered first next time.
//!
//! Why not the `redis` crate's `sentinel` module: its synchronous API
//! connects with no timeout and reads with none, so one hung Sentinel (or
//! a primary frozen during the `ROLE` check) would hold a handler thread
//! for good. Here every connection and reply is bounded by the store call's
//! budget, as every other store call is.

use std::time::{Duration, Instant};

use redis::{Connection, Role};

use super::connect;
use crate::config::{Auth, SentinelUrl};

/// The Sentinels of one primary, in the order to ask them.
#[derive(Debug)]
pub struct Sentinels {
    url: SentinelUrl,
}

impl Sentinels {
    pub fn new(url: SentinelUrl) -> Sentinels {
        Sentinels { url }
    }

    /// The primary's name, for messages.
    pub fn primary(&self) -> &str {
        &self.url.primary
    }

    /// Connects to the current primary (database selected) within
    /// `deadline`, each connection attempt within `connect_timeout`.
    /// Returns the connection and the primary's `host:port`, or why no
    /// primary could be reached.
    pub fn connect_primary(
        &mut self,
        connect_timeout: Duration,
        deadline: Instant,
    ) -> Result<(Connection, String), String> {
        let name = self.url.primary.clone();
        let mut problems = Vec::new();
        let mut refused: Vec<(String, u16)> = Vec::new();
        for i in 0..self.url.sentinels.len() {
            let (host, port) = self.url.sentinels[i].clone();
            let addr = match ask(&host, port, &name, connect_timeout, deadline) {
                Ok(Some(addr)) => addr,
                Ok(None) => {
                    problems.push(format!("Sentinel {host}:{port} knows no primary '{name}'"));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("Sentinel {host}:{port}: {e}"));
                    continue;
                }
            };
            // Sentinels agree most of the time: one dead address is tried once.
            if refused.contains(&addr) {
                continue;
            }
            match connect_checked(
                &addr,
                self.url.db,
                &self.url.auth,
                connect_timeout,
                deadline,
            ) {
                Ok(conn) => {
                    self.url.sentinels[..=i].rotate_right(1);
                    return Ok((conn, format!("{}:{}", addr.0, addr.1)));
                }
                Err(e) => {
                    problems.push(format!(
                        "primary {}:{} (named by Sentinel {host}:{port}): {e}",
                        addr.0, addr.1
                    ));
                    refused.push(addr);
                }
            }
        }
        Err(format!(
            "cannot reach the Redis primary '{name}' through Sentinel ({})",
            problems.join("; ")
        ))
    }

    /// The primary's address as the first Sentinel that answers says.
    pub fn primary_address(
        &self,
        connect_timeout: Duration,
        deadline: Instant,
    ) -> Result<(String, u16), String> {
        let name = &self.url.primary;
        let mut problems = Vec::new();
        for (host, port) in &self.url.sentinels {
            match ask(host, *port, name, connect_timeout, deadline) {
                Ok(Some(addr)) => return Ok(addr),
                Ok(None) => {
                    problems.push(format!("Sentinel {host}:{port} knows no primary '{name}'"))
                }
                Err(e) => problems.push(format!("Sentinel {host}:{port}: {e}")),
            }
        }
        Err(problems.join("; "))
    }
}

/// A connection to `host:port` with database `db`, logged in as `auth`,
/// its reads and writes bounded by what is left until `deadline`.
fn open(
    host: &str,
    port: u16,
    db: i64,
    auth: &Auth,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<Connection, String> {
    let out_of_time = || "no time left in the store call".to_owned();
    let budget = connect_timeout.min(deadline.saturating_duration_since(Instant::now()));
    if budget.is_zero() {
        return Err(out_of_time());
    }
    // A Sentinel refuses `SELECT`, so `db` is 0 for those (which sends
    // none); they are asked without credentials.
    let client = connect::client(host, port, db, auth, None)?;
    let conn = client
        .get_connection_with_timeout(budget)
        .map_err(|e| e.to_string())?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(out_of_time());
    }
    conn.set_read_timeout(Some(remaining))
        .and_then(|()| conn.set_write_timeout(Some(remaining)))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// What one Sentinel says the primary's address is; `None` if it does not
/// monitor a primary of that name.
fn ask(
    host: &str,
    port: u16,
    name: &str,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<Option<(String, u16)>, String> {
    let mut conn = open(host, port, 0, &Auth::default(), connect_timeout, deadline)?;
    let reply: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(name)
        .query(&mut conn)
        .map_err(|e| e.to_string())?;
    match reply {
        None => Ok(None),
        Some((ip, port)) => match port.parse() {
            Ok(port) => Ok(Some((ip, port))),
            Err(_) => Err(format!("answered a bad port '{port}'")),
        },
    }
}

/// A connection to `addr`, if it is a primary.
fn connect_checked(
    addr: &(String, u16),
    db: i64,
    auth: &Auth,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<Connection, String> {
    let mut conn = open(&addr.0, addr.1, db, auth, connect_timeout, deadline)?;
    match redis::cmd("ROLE").query::<Role>(&mut conn) {
        Ok(Role::Primary { .. }) => Ok(conn),
        Ok(_) => Err("it is not a primary (a failover is under way)".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A Sentinel that accepts connections (the kernel does, into the
    /// backlog) but never answers, and one whose port is closed: the
    /// store call still ends within its budget and names both.
    #[test]
    fn a_hung_and_a_dead_sentinel_cost_no_more_than_the_budget() {
        let hung = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let ports = [
            hung.local_addr().unwrap().port(),
            dead.local_addr().unwrap().port(),
        ];
        drop(dead);
        let url = SentinelUrl::parse(&format!(
            "redis+sentinel://127.0.0.1:{},127.0.0.1:{}/drupe",
            ports[0], ports[1]
        ))
        .unwrap();
        let mut sentinels = Sentinels::new(url);
        let started = Instant::now();
        let budget = Duration::from_millis(300);
        let e = sentinels
            .connect_primary(Duration::from_millis(200), started + budget)
            .map(|_| ())
            .unwrap_err();
        let took = started.elapsed();
        assert!(took < budget + Duration::from_millis(200), "{took:?}");
        assert!(
            e.starts_with("cannot reach the Redis primary 'drupe' through Sentinel ("),
            "{e}"
        );
        for port in ports {
            assert!(e.contains(&format!("Sentinel 127.0.0.1:{port}: ")), "{e}");
        }
    }
}
