//! A real `redis-server` on a free loopback port, owned by one test and
//! killed when it is dropped. Nothing persists to disk, and the system's
//! Redis (if any, usually on 6379) is never touched.
//!
//! A missing `redis-server` is a test failure that says what to install,
//! never a skip: a suite that silently skipped its Redis tests would pass
//! while proving nothing about Redis.

use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A `redis-server` process. Dropping it kills it.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// More `redis-server` arguments (users, TLS), kept for restarts.
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    /// If `redis-server` is not installed or does not come up.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with more `redis-server` arguments
    /// (`--requirepass`, `--user`, `--tls-port` …).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        on_free_port("redis-server", |port| {
            let mut server = RedisServer {
                child: None,
                port,
                dir: tempfile::tempdir().expect("temp dir for redis-server"),
                extra: extra.iter().map(|a| a.to_string()).collect(),
            };
            server.spawn().then_some(server)
        })
    }

    /// A server that lets in only `user` with `password` (an ACL user; the
    /// default user is off).
    pub fn with_acl_user(user: &str, password: &str) -> RedisServer {
        let rule = format!(">{password}");
        Self::start_with(&[
            "--user", "default", "off", "--user", user, "on", &rule, "~*", "&*", "+@all",
        ])
    }

    /// A server that wants `password` (the old `requirepass`).
    pub fn with_password(password: &str) -> RedisServer {
        Self::start_with(&["--requirepass", password])
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh server (empty) on the same port after [`kill`](Self::kill).
    ///
    /// # Panics
    /// If it does not come up (for instance because the port was taken
    /// meanwhile).
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is
    /// answered, as with a hung or overloaded server.
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// Every key in the server (`KEYS *`), sorted; what drupe really wrote.
    pub fn keys(&self) -> Vec<String> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).expect("connect");
        stream.write_all(b"KEYS *\r\n").expect("send KEYS");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        let mut reply = String::new();
        // The server closes after answering a client that has shut down
        // its side; the reply is `*N` then `$len` / key line pairs.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        stream.read_to_string(&mut reply).expect("KEYS reply");
        let mut keys: Vec<String> = reply
            .split("\r\n")
            .skip(1)
            .filter(|line| !line.starts_with('$') && !line.is_empty())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid() {
            // One process, by its pid: never a group.
            kill(Pid::from_raw(pid as i32), signal).expect("signal redis-server");
        }
    }

    /// Starts the process on `self.port`; false if it exited before
    /// answering.
    fn spawn(&mut self) -> bool {
        let mut command = server_command(self.dir.path(), self.port);
        command
            .args(&self.extra)
            .args(["--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = launch(&mut command, self.port, "redis-server");
        self.child.is_some()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends even a paused (stopped) server.
        self.kill();
    }
}

/// A data node: no persistence, loopback only, files in `dir`.
pub(crate) fn server_command(dir: &Path, port: u16) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
    command
}

/// Calls `start` with free ports until it returns a server: the port is
/// free when we look, but another process may take it before redis-server
/// binds it, and then `start` sees the server exit and returns `None`.
///
/// # Panics
/// After five ports, naming `what`.
pub(crate) fn on_free_port<T>(what: &str, mut start: impl FnMut(u16) -> Option<T>) -> T {
    for _ in 0..5 {
        if let Some(server) = start(free_port()) {
            return server;
        }
    }
    panic!("{what} did not start on any of 5 free ports")
}

/// Runs `command`, a `redis-server` told to listen on `port`, and waits
/// until it answers `PING`; `None` if it exited first (most likely the
/// port was taken).
///
/// # Panics
/// If `redis-server` is not installed, or does not answer within 10 s.
pub(crate) fn launch(command: &mut Command, port: u16, what: &str) -> Option<Child> {
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "redis-server is not installed, and these tests need a real one: \
             install it (`apt-get install redis-server`) or run `cargo xtask test`, \
             which installs it"
        ),
        Err(e) => panic!("cannot run redis-server: {e}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if answers(port) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what} on port {port} did not answer PING within 10 s");
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The first line a Redis server on the port answers to `PING`, if any.
fn ping_reply(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    stream.write_all(b"PING\r\n").ok()?;
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line)
}

/// True if a Redis server answers anything to `PING` on the port (`+PONG`,
/// or `-NOAUTH` from one that wants a password).
fn answers(port: u16) -> bool {
    ping_reply(port).is_some_and(|line| line.starts_with(['+', '-']))
}

/// True if a Redis server answers `PING` on the port.
pub fn ping(port: u16) -> bool {
    ping_reply(port).as_deref() == Some("+PONG\r\n")
}
