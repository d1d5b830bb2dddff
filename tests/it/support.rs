//! What every integration test needs: the real `drupe` binary and plugin
//! libraries, a throwaway site (INI file and plugin directory) in a temp
//! folder, a running server on a free port, and a small HTTP client that
//! speaks raw bytes so tests see exactly what went over the wire.
//!
//! Nothing here is mocked: the server is the real binary, the plugins are
//! the real `.so` files, requests cross a real loopback socket.

#![allow(dead_code)] // each test module uses a different part

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds the binary and every plugin once per test run, so a plain
/// `cargo test` never runs against stale artifacts.
fn built() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .current_dir(root())
            .args(["build", "--workspace", "--quiet"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --workspace failed");
        target_dir().join("debug")
    })
}

/// The `drupe` binary.
pub fn drupe() -> PathBuf {
    built().join("drupe")
}

/// A plugin library by crate name (`hello`, `testkit`, …).
pub fn plugin(name: &str) -> PathBuf {
    let path = built().join(format!("lib{name}.so"));
    assert!(
        path.is_file(),
        "{} is missing after cargo build",
        path.display()
    );
    path
}

/// A site: a temp folder holding `drupe.ini` and `plugins.d/`.
pub struct Site {
    pub dir: tempfile::TempDir,
    ini: String,
    /// `[log] errorLog`, if the site logs to a file instead of stderr.
    error_log: Option<String>,
    /// Extra environment of the server process.
    env: Vec<(String, String)>,
}

impl Site {
    /// A site with the given plugins and `[server]` on a free port with two
    /// workers of two threads. `extra` is appended to the INI file.
    pub fn new(plugins: &[&str], extra: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugin_dir = dir.path().join("plugins.d");
        std::fs::create_dir(&plugin_dir).expect("plugins.d");
        for name in plugins {
            std::fs::copy(plugin(name), plugin_dir.join(format!("{name}.so")))
                .expect("copy plugin");
        }
        let mut ini = String::from("[plugins]\ndirectory = plugins.d\n");
        if !extra.contains("[server]") {
            ini.push_str("[server]\nsocketPort = 0\nfixedNumberOfProcesses = 2\nthreadPool = 2\n");
        }
        ini.push_str(extra);
        Site {
            dir,
            ini,
            error_log: None,
            env: Vec::new(),
        }
    }

    /// Sends the error log to the file `name` in the site folder (instead
    /// of stderr), which `Server::log` then reads.
    pub fn with_error_log(mut self, name: &str) -> Site {
        // Into the `[log]` section `extra` may already have (a section may
        // appear only once).
        let line = format!("errorLog = {name}\n");
        match self.ini.find("[log]\n") {
            Some(at) => self.ini.insert_str(at + "[log]\n".len(), &line),
            None => self.ini.push_str(&format!("[log]\n{line}")),
        }
        self.error_log = Some(name.to_owned());
        self
    }

    /// Appends `text` to the INI file.
    pub fn with_ini(mut self, text: &str) -> Site {
        self.ini.push_str(text);
        self
    }

    /// Adds `[plugin.testkit] startedFile = started.txt` (in the site
    /// folder): testkit's sleeping handlers announce themselves there, for
    /// [`wait_started`].
    pub fn with_started_file(mut self) -> Site {
        let line = format!("startedFile = {}\n", self.path("started.txt").display());
        // Into the section if `extra` has it already (a section may appear
        // only once).
        let section = "[plugin.testkit]\n";
        match self.ini.find(section) {
            Some(at) => self.ini.insert_str(at + section.len(), &line),
            None => self.ini.push_str(&format!("{section}{line}")),
        }
        self
    }

    /// Waits until `n` testkit handlers have announced themselves (see
    /// [`Site::with_started_file`]).
    pub fn wait_started(&self, n: usize) -> Vec<String> {
        wait_started(&self.path("started.txt"), n)
    }

    /// Sets an environment variable for the server (`Site::start`).
    pub fn with_env(mut self, key: &str, value: &str) -> Site {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The INI text as written at start.
    pub fn ini(&self) -> &str {
        &self.ini
    }

    /// Replaces drupe.ini (for a reload).
    pub fn rewrite_ini(&self, text: &str) {
        std::fs::write(self.ini_path(), text).expect("rewrite drupe.ini");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ini_path(&self) -> PathBuf {
        self.path("drupe.ini")
    }

    fn write_ini(&self) {
        std::fs::write(self.ini_path(), &self.ini).expect("write drupe.ini");
    }

    /// Runs `drupe ARGS… --config drupe.ini` to completion.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.write_ini();
        Command::new(drupe())
            .args(args)
            .arg("--config")
            .arg(self.ini_path())
            .env("TMPDIR", self.dir.path())
            .output()
            .expect("run drupe")
    }

    /// Starts the server and waits until it listens.
    pub fn start(self) -> Server {
        self.write_ini();
        let (child, log) = self.spawn();
        let mut server = Server {
            child,
            addr: None,
            site: self,
            log,
        };
        server.addr = Some(server.wait_for_listening());
        server
    }

    /// Starts `drupe` on the INI file as it is; returns the child and its
    /// log file.
    fn spawn(&self) -> (Child, PathBuf) {
        let stderr = self.path("stderr.log");
        let log = match &self.error_log {
            Some(name) => self.path(name),
            None => stderr.clone(),
        };
        let child = Command::new(drupe())
            .arg("--config")
            .arg(self.ini_path())
            // Plugin snapshots go into the site folder, which is removed
            // even when the test ends the server with SIGKILL.
            .env("TMPDIR", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("log file"))
            // Own process group: cleanup can kill everything it started.
            .process_group(0)
            .spawn()
            .expect("start drupe");
        (child, log)
    }
}

/// A running drupe master and its workers. Dropping it kills them all.
pub struct Server {
    pub child: Child,
    addr: Option<SocketAddr>,
    pub site: Site,
    pub log: PathBuf,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("server is listening")
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            // `http://`, or `https://` with `[tls]`.
            let rest = log.split("listening on http://").nth(1);
            if let Some(rest) = rest.or_else(|| log.split("listening on https://").nth(1)) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                return addr
                    .parse()
                    .unwrap_or_else(|_| panic!("bad address in log: {log}"));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("drupe exited ({status}) before listening:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "drupe did not start listening in 20s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server again, from its site's INI file as it is now,
    /// once the master has exited; waits until it listens. The log so far
    /// moves to `stderr.log.1`.
    pub fn restart(&mut self) {
        assert!(
            self.child.try_wait().expect("try_wait").is_some(),
            "restart: drupe is still running"
        );
        let _ = std::fs::rename(&self.log, self.site.path("stderr.log.1"));
        let (child, log) = self.site.spawn();
        self.child = child;
        self.log = log;
        self.addr = Some(self.wait_for_listening());
    }

    /// Sends a signal to the master.
    pub fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(Pid::from_raw(self.pid()), signal).expect("kill");
    }

    /// Waits for the master to exit, returning its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if Instant::now() >= deadline {
                panic!("drupe did not exit within {within:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Pids of the master's children (its workers), from /proc.
    pub fn worker_pids(&self) -> Vec<i32> {
        children_of(self.pid())
    }

    pub fn get(&self, path: &str) -> Response {
        request(
            self.addr(),
            &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
        )
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Kill the whole process group; workers also die with the master.
        // The group id is the master's pid (see `start`).
        let _ = nix::sys::signal::killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Pids whose parent is `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if parent_of(child) == Some(pid) {
            pids.push(child);
        }
    }
    pids.sort_unstable();
    pids
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields after the last ')' are fixed.
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// True if a process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// One HTTP response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive connection that sends raw bytes and reads responses.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).expect("connect")
    }

    /// Connects, or says why not (for load tests, which count failures).
    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Client::from_stream(stream))
    }

    /// A client on a stream the caller set up (timeouts, options).
    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.try_send(raw).expect("send");
    }

    pub fn try_send(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(raw)
    }

    /// Reads one response; `head_request` says whether it answers a HEAD.
    pub fn read_response(&mut self, head_request: bool) -> Response {
        self.try_read_response(head_request).expect("a response")
    }

    /// Reads one response, or `None` if the server closed the connection
    /// before sending all of it.
    pub fn try_read_response(&mut self, head_request: bool) -> Option<Response> {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line).ok()?;
            if n == 0 {
                return None;
            }
            let blank = line == b"\r\n";
            head.extend_from_slice(&line);
            if blank {
                break;
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        assert!(parsed
            .parse(&head)
            .expect("valid response head")
            .is_complete());
        let status = parsed.code.expect("status");
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            return Some(response);
        }
        let no_body = head_request || status == 204 || status == 304;
        if !no_body {
            if let Some(len) = response.header("Content-Length") {
                let len: usize = len.parse().expect("numeric Content-Length");
                response.body.resize(len, 0);
                self.reader.read_exact(&mut response.body).ok()?;
            } else {
                self.reader.read_to_end(&mut response.body).ok()?;
            }
        }
        Some(response)
    }

    /// Sends a request and reads its response.
    pub fn roundtrip(&mut self, raw: &str) -> Response {
        self.send(raw.as_bytes());
        self.read_response(raw.starts_with("HEAD "))
    }

    /// True once the server has closed the connection (reads EOF).
    pub fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// Sends one request on a fresh connection and reads the response.
pub fn request(addr: SocketAddr, raw: &str) -> Response {
    let mut client = Client::connect(addr);
    client.roundtrip(raw)
}

/// Held by the tests that load both cores for seconds (thousands of
/// requests, failovers) and by those that time something, so that the one
/// never skews the clock of the other on the 2-core machine.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `condition` every 20 ms until it holds or `within` passes.
pub fn eventually(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines of a testkit `startedFile` once it holds at least `n`: each is
/// `LABEL PID` from a handler that has started running. Tests wait on this
/// event rather than sleeping.
pub fn wait_started(file: &Path, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    eventually(
        Duration::from_secs(10),
        &format!("{n} handlers to announce themselves in {}", file.display()),
        || {
            lines = std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            lines.len() >= n
        },
    );
    lines
}
