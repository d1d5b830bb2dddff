//! The load balancers in front of several drupe hosts, as real processes:
//! HAProxy and nginx, each running the committed config file
//! (`config/haproxy.cfg`, `config/nginx.conf`) with the test's ports put
//! in, in the foreground, in its own process group, killed on drop.
//!
//! A missing `haproxy` or `nginx` fails the test and says how to install
//! it: a test that skipped would pass while proving nothing.

#![allow(dead_code)] // each test uses a different part

use crate::support::root;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `program`: on PATH, or in the sbin folders where Debian
/// puts haproxy and nginx. Panics saying how to install it.
pub fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed, and the tests of several hosts behind a load balancer \
                 need a real one: install it (`apt-get install {name}`) or run \
                 `cargo xtask test`, which installs it"
            )
        })
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The committed config file `config/NAME` with every `from` replaced by
/// its `to`; each `from` must occur exactly once, so the file and the
/// tests cannot drift apart unnoticed.
pub fn committed_config(name: &str, replace: &[(String, String)]) -> String {
    let path = root().join("config").join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (from, to) in replace {
        assert_eq!(
            text.matches(from.as_str()).count(),
            1,
            "config/{name} should mention {from} exactly once"
        );
        text = text.replace(from.as_str(), to);
    }
    text
}

/// A balancer process. Dropping it kills it.
pub struct Balancer {
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Balancer {
    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn spawn(mut command: Command, addr: SocketAddr, dir: tempfile::TempDir, what: &str) -> Self {
        let log = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            // Own process group: dropping it kills all it started.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        let mut balancer = Balancer { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = balancer.child.try_wait() {
                panic!("{what} exited ({status}):\n{}", balancer.log());
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not listen on {addr} within 10 s:\n{}",
                balancer.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        balancer
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// `config/haproxy.cfg`, with clients on a free port and the two hosts at
/// `hosts` instead of 8001 and 8002.
pub struct Haproxy {
    pub balancer: Balancer,
    stats: SocketAddr,
}

impl Haproxy {
    pub fn start(hosts: [SocketAddr; 2]) -> Haproxy {
        let haproxy = program("haproxy");
        let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let stats = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let text = committed_config(
            "haproxy.cfg",
            &[
                ("bind 127.0.0.1:8000".into(), format!("bind {front}")),
                ("bind 127.0.0.1:8404".into(), format!("bind {stats}")),
                ("127.0.0.1:8001 check".into(), format!("{} check", hosts[0])),
                ("127.0.0.1:8002 check".into(), format!("{} check", hosts[1])),
            ],
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, text).expect("write haproxy.cfg");
        let mut command = Command::new(haproxy);
        command.arg("-db").arg("-f").arg(&file);
        Haproxy {
            balancer: Balancer::spawn(command, front, dir, "haproxy"),
            stats,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.balancer.addr
    }

    /// HAProxy's view of the hosts: `host8001`/`host8002` → `UP`, `DOWN`,
    /// `UP 1/2` (going down), `DOWN 1/2` (coming up), … from the stats CSV.
    pub fn status(&self) -> BTreeMap<String, String> {
        let mut statuses = BTreeMap::new();
        let text = stats_csv(self.stats).unwrap_or_default();
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = |name: &str| header.iter().position(|h| *h == name);
        let (Some(px), Some(sv), Some(st)) = (column("pxname"), column("svname"), column("status"))
        else {
            return statuses;
        };
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.get(px) == Some(&"drupe")
                && fields.get(sv).is_some_and(|s| s.starts_with("host"))
            {
                statuses.insert(fields[sv].to_owned(), fields[st].to_owned());
            }
        }
        statuses
    }

    /// Waits until HAProxy reports `host` (`host8001` or `host8002`) as
    /// exactly `status`; returns how long that took.
    pub fn wait_for(&self, host: &str, status: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let now = self.status();
            if now.get(host).map(String::as_str) == Some(status) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "HAProxy did not see {host} {status} within {within:?}: {now:?}\n{}",
                self.balancer.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The body of HAProxy's stats page as CSV (`GET /;csv`), which HAProxy
/// sends in chunks whatever the request's version.
fn stats_csv(stats: SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(stats).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /;csv HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (head, mut body) = raw.split_once("\r\n\r\n")?;
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(body.to_owned());
    }
    let mut text = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(text);
        }
        text.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// `config/nginx.conf`, with clients on a free port and the two hosts at
/// `hosts` instead of 8001 and 8002.
pub struct Nginx {
    pub balancer: Balancer,
}

/// `config/nginx.conf` with the given ports put in; returns the text.
pub fn nginx_config(front: SocketAddr, hosts: [SocketAddr; 2]) -> String {
    committed_config(
        "nginx.conf",
        &[
            ("listen 127.0.0.1:8090".into(), format!("listen {front}")),
            (
                "server 127.0.0.1:8001".into(),
                format!("server {}", hosts[0]),
            ),
            (
                "server 127.0.0.1:8002".into(),
                format!("server {}", hosts[1]),
            ),
        ],
    )
}

impl Nginx {
    pub fn start(hosts: [SocketAddr; 2]) -> Nginx {
        let nginx = program("nginx");
        let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, nginx_config(front, hosts)).expect("write nginx.conf");
        let mut command = Command::new(nginx);
        command
            .arg("-p")
            .arg(dir.path())
            .args(["-e", "stderr", "-g", "daemon off;", "-c"])
            .arg(&file);
        Nginx {
            balancer: Balancer::spawn(command, front, dir, "nginx"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.balancer.addr
    }
}
