//! Redis past one node, on loopback: a primary, one replica
//! (`--replicaof`) and three Sentinels (`redis-server FILE --sentinel`),
//! all on free ports, owned by one test and killed when it is dropped.
//!
//! The Sentinels watch the primary as [`PRIMARY`] with short timeouts
//! (`down-after-milliseconds 500`, `failover-timeout 2000`), so after
//! [`SentinelGroup::kill_primary`] they promote the replica within a few
//! seconds. [`SentinelGroup::start`] returns only once a failover can
//! happen: the replica is in sync and every Sentinel knows it and the two
//! other Sentinels. Every process runs in its own process group, so a test
//! that kills them can never reach anything else.
//!
//! As with [`crate::redis`], a missing `redis-server` fails the test and
//! says what to install.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;

use crate::redis::{launch, on_free_port, server_command};

/// The name the Sentinels monitor the primary under.
pub const PRIMARY: &str = "drupe";

/// One `redis-server` process (data node or Sentinel).
#[derive(Debug)]
pub(crate) struct Process {
    child: Child,
    pub(crate) port: u16,
}

impl Process {
    pub(crate) fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Its own group (see `spawn`), which holds nothing else.
        let _ = killpg(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A primary, its replica and three Sentinels.
#[derive(Debug)]
pub struct SentinelGroup {
    // Dropped first: the Sentinels, so no failover starts while the data
    // nodes go away.
    sentinels: Vec<Process>,
    primary: Option<Process>,
    replica: Process,
    dir: tempfile::TempDir,
}

impl SentinelGroup {
    /// Starts every process and waits until a failover is possible.
    ///
    /// # Panics
    /// If `redis-server` is missing or the group does not come up in time.
    pub fn start() -> SentinelGroup {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir for the Sentinel group");
        let primary = spawn(dir.path(), "primary", |port| {
            server_command(dir.path(), port)
        });
        let replica = spawn(dir.path(), "replica", |port| {
            let mut command = server_command(dir.path(), port);
            command.args(["--replicaof", "127.0.0.1", &primary.port.to_string()]);
            command
        });
        // Sentinels learn of replicas from the primary's INFO, which they
        // ask at once and then only every 10 s: start them once it shows.
        wait_for(Duration::from_secs(15), "the replica to be in sync", || {
            info(replica.port, "replication").contains("master_link_status:up")
                && info(primary.port, "replication").contains("connected_slaves:1")
        });
        let sentinels = (0..3)
            .map(|i| {
                spawn(dir.path(), &format!("sentinel{i}"), |port| {
                    sentinel(dir.path(), i, port, primary.port)
                })
            })
            .collect();
        let group = SentinelGroup {
            sentinels,
            primary: Some(primary),
            replica,
            dir,
        };
        // Sentinels find each other through the primary every 2 s.
        wait_for(
            Duration::from_secs(20),
            "every Sentinel to know the replica and the two other Sentinels",
            || group.sentinels.iter().all(|s| group.ready(s.port)),
        );
        eprintln!("sentinel group up in {}ms", started.elapsed().as_millis());
        group
    }

    /// `redis+sentinel://127.0.0.1:A,127.0.0.1:B,127.0.0.1:C/drupe/0`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{PRIMARY}/0", hosts.join(","))
    }

    /// The ports of the Sentinels.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The port of the node that started as primary.
    pub fn first_primary_port(&self) -> Option<u16> {
        self.primary.as_ref().map(|p| p.port)
    }

    /// The port of the node that started as replica.
    pub fn replica_port(&self) -> u16 {
        self.replica.port
    }

    /// The primary's port as the first Sentinel that answers says.
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let reply: Option<(String, String)> = query(
                s.port,
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(PRIMARY),
            )?;
            reply?.1.parse().ok()
        })
    }

    /// Kills the primary (SIGKILL), as a crash of its machine would.
    pub fn kill_primary(&mut self) {
        if let Some(primary) = self.primary.take() {
            // One process, by its pid.
            let _ = kill(primary.pid(), Signal::SIGKILL);
            drop(primary);
        }
    }

    /// The log of one process (`primary`, `replica`, `sentinel0`…), for a
    /// failure message.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Whether Sentinel `port` could run a failover now.
    fn ready(&self, port: u16) -> bool {
        let replicas: Vec<std::collections::HashMap<String, String>> =
            query(port, redis::cmd("SENTINEL").arg("REPLICAS").arg(PRIMARY)).unwrap_or_default();
        let sentinels: Vec<redis::Value> =
            query(port, redis::cmd("SENTINEL").arg("SENTINELS").arg(PRIMARY)).unwrap_or_default();
        replicas.iter().any(|r| {
            r.get("port") == Some(&self.replica.port.to_string())
                && r.get("flags").is_some_and(|f| f == "slave")
        }) && sentinels.len() == 2
    }
}

/// A Sentinel; it needs a config file of its own, which it rewrites.
fn sentinel(dir: &Path, index: usize, port: u16, primary: u16) -> Command {
    let file = dir.join(format!("sentinel{index}.conf"));
    let text = format!(
        "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\n\
         sentinel monitor {PRIMARY} 127.0.0.1 {primary} 2\n\
         sentinel down-after-milliseconds {PRIMARY} 500\n\
         sentinel failover-timeout {PRIMARY} 2000\n\
         sentinel parallel-syncs {PRIMARY} 1\n",
        dir = dir.display()
    );
    std::fs::write(&file, text).expect("write the Sentinel's config");
    let mut command = Command::new("redis-server");
    command.arg(&file).arg("--sentinel");
    command
}

/// Starts `make(port)` on a free port, logging to `NAME.log`, in a process
/// group of its own, and waits for it to answer `PING`.
pub(crate) fn spawn(dir: &Path, name: &str, make: impl Fn(u16) -> Command) -> Process {
    let what = format!("redis-server ({name})");
    on_free_port(&what, |port| {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
        let mut command = make(port);
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0);
        launch(&mut command, port, &what).map(|child| Process { child, port })
    })
}

/// One command to the server on `port`, with short timeouts; `None` on any
/// error.
pub(crate) fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Option<T> {
    use redis::IntoConnectionInfo;
    let info = ("127.0.0.1", port).into_connection_info().ok()?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let client = redis::Client::open(info.set_redis_settings(settings)).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    cmd.query(&mut conn).ok()
}

/// `INFO section` of the server on `port` (empty on error).
pub(crate) fn info(port: u16, section: &str) -> String {
    query(port, redis::cmd("INFO").arg(section)).unwrap_or_default()
}

pub(crate) fn wait_for(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
