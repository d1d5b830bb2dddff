//! A Redis Cluster on loopback: three primaries and three replicas
//! (`redis-server --cluster-enabled yes` six times, joined by
//! `redis-cli --cluster create … --cluster-replicas 1`), all on free ports,
//! each in a process group of its own, all killed when it is dropped.
//!
//! `cluster-node-timeout` is 2 s (shorter ones made a loaded 2-core machine
//! flag live nodes as failed), so after [`RedisCluster::kill_primary_of`]
//! the dead primary's replica takes over within a few seconds.

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};

use crate::redis::server_command;
use crate::sentinel::{info, query, spawn, wait_for, Process};

/// Six nodes of one cluster.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Option<Process>>,
    dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts the nodes, creates the cluster and waits until every node
    /// sees it whole and every replica is in sync.
    ///
    /// # Panics
    /// If `redis-server` or `redis-cli` is missing, or the cluster does not
    /// form in time.
    pub fn start(extra: &[&str]) -> RedisCluster {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let nodes: Vec<Option<Process>> = (0..6)
            .map(|i| {
                Some(spawn(dir.path(), &format!("node{i}"), |port| {
                    let mut command = server_command(dir.path(), port);
                    command
                        .args(["--cluster-enabled", "yes"])
                        .arg("--cluster-config-file")
                        .arg(dir.path().join(format!("nodes-{port}.conf")))
                        .args(["--cluster-node-timeout", "2000"])
                        .args(extra);
                    command
                }))
            })
            .collect();
        let cluster = RedisCluster { nodes, dir };
        let addresses: Vec<String> = cluster
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let password = extra
            .windows(2)
            .find(|w| w[0] == "--requirepass")
            .map(|w| w[1]);
        let mut create = Command::new("redis-cli");
        if let Some(password) = password {
            create.args(["--no-auth-warning", "-a", password]);
        }
        let out = create
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create (apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if password.is_none() {
            wait_for(Duration::from_secs(30), "the cluster to be whole", || {
                cluster.ports().iter().all(|&p| {
                    let text = cluster_info(p);
                    text.contains("cluster_state:ok") && text.contains("cluster_known_nodes:6")
                }) && cluster.ports().iter().all(|&p| {
                    let text = info(p, "replication");
                    text.contains("role:master") && text.contains("connected_slaves:1")
                        || text.contains("master_link_status:up")
                })
            });
        } else {
            // The helpers here do not log in: give the nodes time instead.
            std::thread::sleep(Duration::from_secs(3));
        }
        eprintln!("redis cluster up in {}ms", started.elapsed().as_millis());
        cluster
    }

    /// The ports of the nodes still running.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().flatten().map(|n| n.port).collect()
    }

    /// `redis+cluster://[AUTH@]127.0.0.1:A,127.0.0.1:B,127.0.0.1:C`: three
    /// seeds.
    pub fn url(&self, auth: &str) -> String {
        let seeds: Vec<String> = self.ports()[..3]
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{auth}{}", seeds.join(","))
    }

    /// The port of the primary that serves `key` now.
    pub fn primary_of(&self, key: &str) -> Option<u16> {
        let port = *self.ports().first()?;
        let slot: i64 = query(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))?;
        let slots: Vec<redis::Value> = query(port, &redis::cmd("CLUSTER").arg("SLOTS").clone())?;
        slots.iter().find_map(|range| {
            let redis::Value::Array(items) = range else {
                return None;
            };
            let n = |v: &redis::Value| match v {
                redis::Value::Int(n) => Some(*n),
                _ => None,
            };
            let (first, last) = (n(items.first()?)?, n(items.get(1)?)?);
            let redis::Value::Array(primary) = items.get(2)? else {
                return None;
            };
            let port = n(primary.get(1)?)?;
            (first..=last).contains(&slot).then_some(port as u16)
        })
    }

    /// Kills (SIGKILL) the primary that serves `key`; its port.
    pub fn kill_primary_of(&mut self, key: &str) -> u16 {
        let port = self.primary_of(key).expect("the primary of the key");
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.as_ref().is_some_and(|n| n.port == port))
            .expect("the node");
        if let Some(process) = node.take() {
            // One process, by its pid.
            let _ = kill(process.pid(), Signal::SIGKILL);
        }
        port
    }

    /// Empties every primary (`FLUSHALL`; the replicas follow).
    pub fn flush(&self) {
        for port in self.ports() {
            // A replica refuses; its primary's flush reaches it.
            let _: Option<()> = query(port, &redis::cmd("FLUSHALL"));
        }
    }

    /// Whether every live node says the cluster is whole.
    pub fn is_ok(&self) -> bool {
        self.ports()
            .iter()
            .all(|&p| cluster_info(p).contains("cluster_state:ok"))
    }

    /// The log of node `i` (0–5), for a failure message.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{i}.log"))).unwrap_or_default()
    }
}

fn cluster_info(port: u16) -> String {
    query(port, redis::cmd("CLUSTER").arg("INFO")).unwrap_or_default()
}
