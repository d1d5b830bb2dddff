//! The servers under test, each started fresh in a temp folder on a free
//! loopback port and killed (with its whole process group) when dropped.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process group.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its access log file, when it writes one.
    pub access_log: Option<PathBuf>,
    /// It speaks HTTPS.
    pub https: bool,
    /// Config, logs and plugins; removed when the server is dropped.
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Worker pids: children of the master.
    pub fn workers(&self) -> Vec<i32> {
        crate::probe::children_of(self.child.id() as i32)
    }

    /// Every process of the server: the one started, and its children
    /// (a pre-forking server's workers; none for a threaded one).
    pub fn processes(&self) -> Vec<i32> {
        let mut pids = vec![self.child.id() as i32];
        pids.extend(self.workers());
        pids
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The master leads its own process group (see `spawn`).
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn spawn(command: &mut Command, log: &Path) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
}

/// A free loopback port (bound and released; fine for a benchmark).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_until_listening(addr: SocketAddr, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "server did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The server once it accepts connections on `port`.
fn listening(
    mut child: Child,
    port: u16,
    dir: tempfile::TempDir,
    log: &Path,
    access_log: Option<PathBuf>,
) -> Server {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until_listening(addr, &mut child, log);
    Server {
        child,
        addr,
        access_log,
        https: false,
        _dir: dir,
    }
}

/// nginx with `workers` worker processes answering `GET /hello` with
/// `Hello, World!` and `GET /hello/{name}` with `Hello, {name}!` from its
/// config; with `access_log`, a plain `access_log FILE;` (the default
/// `combined` format, one `write(2)` per request).
pub fn nginx(workers: usize, access_log: bool) -> Server {
    nginx_with(workers, access_log, None, None)
}

/// [`nginx`], also serving `/files/` from `files` with `sendfile on`, and
/// with `tls` speaking HTTPS (nginx's OpenSSL) instead of HTTP.
pub fn nginx_with(
    workers: usize,
    access_log: bool,
    files: Option<&Path>,
    tls: Option<&Certificate>,
) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let log_path = access_log.then(|| dir.path().join("access.log"));
    let access = log_path
        .as_ref()
        .map_or("off".to_owned(), |p| p.display().to_string());
    let conf = format!(
        "worker_processes {workers};\n\
         daemon off;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log;\n\
         events {{ worker_connections 10240; }}\n\
         http {{\n\
           access_log {access};\n\
           client_body_temp_path {dir};\n\
           server {{\n\
             listen 127.0.0.1:{port}{ssl} backlog=1024;\n\
             {certificate}\n\
             default_type \"text/plain; charset=utf-8\";\n\
             location = /hello {{ return 200 \"Hello, World!\"; }}\n\
             location ~ ^/hello/(?<name>[^/]+)$ {{ return 200 \"Hello, $name!\"; }}\n\
             {files}\n\
           }}\n\
         }}\n",
        dir = dir.path().display(),
        ssl = if tls.is_some() { " ssl" } else { "" },
        certificate = tls.map_or(String::new(), |t| format!(
            "ssl_certificate {}; ssl_certificate_key {}; ssl_session_tickets on;",
            t.cert.display(),
            t.key.display()
        )),
        files = files.map_or(String::new(), |f| format!(
            "location /files/ {{ alias {}/; sendfile on; tcp_nopush on; }}",
            f.display()
        )),
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("nginx.conf");
    let log = dir.path().join("stderr.log");
    let child = spawn(
        Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path()),
        &log,
    );
    let mut server = listening(child, port, dir, &log, log_path);
    server.https = tls.is_some();
    server
}

/// The peers: the same routes on other Rust frameworks (`bench/peers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Axum,
    Actix,
}

impl Peer {
    /// Starts the peer's release binary from `peers_release`, with one
    /// Combined Log Format line per request to a file if `access_log`.
    pub fn start(self, peers_release: &Path, access_log: bool) -> Server {
        let binary = peers_release.join(match self {
            Peer::Axum => "peer-axum",
            Peer::Actix => "peer-actix",
        });
        assert!(
            binary.is_file(),
            "{}: missing (build with cargo xtask bench)",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log_path = access_log.then(|| dir.path().join("access.log"));
        let mut command = Command::new(&binary);
        command.arg("--port").arg(port.to_string());
        if let Some(path) = &log_path {
            command.arg("--access-log").arg(path);
        }
        let log = dir.path().join("stderr.log");
        let child = spawn(&mut command, &log);
        let server = listening(child, port, dir, &log, log_path);
        // actix-web listens before its workers run: wait for an answer.
        let deadline = Instant::now() + Duration::from_secs(20);
        while crate::http_get(server.addr, "/hello") != Some(200) {
            assert!(Instant::now() < deadline, "{self:?} does not answer /hello");
            std::thread::sleep(Duration::from_millis(5));
        }
        server
    }
}

/// A drupe site to start.
pub struct Drupe<'a> {
    pub release: &'a Path,
    pub plugins: &'a [&'a str],
    pub processes: usize,
    /// `None`: the default threadPool.
    pub threads: Option<usize>,
    pub store: Option<String>,
    pub access_log: bool,
    /// `[static] /files = FOLDER`: the large-file rows.
    pub files: Option<&'a Path>,
    /// `[tls]` certificate and key: the HTTPS rows.
    pub tls: Option<&'a Certificate>,
}

/// A throwaway certificate and key (PEM files) for `127.0.0.1`.
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl Certificate {
    /// A self-signed P-256 certificate made by the `openssl` command.
    pub fn new() -> Certificate {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl could not make a certificate");
        Certificate {
            cert,
            key,
            _dir: dir,
        }
    }
}

impl Drupe<'_> {
    pub fn start(&self) -> Server {
        let (mut child, addr, dir) = self.launch();
        let log = dir.path().join("stderr.log");
        wait_until_listening(addr, &mut child, &log);
        let server = Server {
            child,
            addr,
            access_log: self.access_log.then(|| dir.path().join("access.log")),
            https: self.tls.is_some(),
            _dir: dir,
        };
        // The socket listens before the workers exist: wait until every
        // worker is there and one answers, so measurements see them all.
        let deadline = Instant::now() + Duration::from_secs(20);
        let answers = || self.tls.is_some() || crate::http_get(addr, "/hello") == Some(200);
        while server.workers().len() < self.processes || !answers() {
            assert!(
                Instant::now() < deadline,
                "drupe's workers did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        server
    }

    /// Starts drupe and returns at once (for start-up timing).
    pub fn launch(&self) -> (Child, SocketAddr, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugin_dir = dir.path().join("plugins.d");
        std::fs::create_dir(&plugin_dir).expect("plugins.d");
        for name in self.plugins {
            let built = self.release.join(format!("lib{name}.so"));
            std::fs::copy(&built, plugin_dir.join(format!("{name}.so"))).unwrap_or_else(|e| {
                panic!("{}: {e} (build with cargo xtask bench)", built.display())
            });
        }
        let port = free_port();
        let mut ini = format!(
            "[server]\nsocketPort = {port}\nfixedNumberOfProcesses = {}\n[plugins]\ndirectory = plugins.d\nwatch = false\n[log]\nlevel = warn\n",
            self.processes
        );
        if let Some(threads) = self.threads {
            ini = ini.replace("[plugins]", &format!("threadPool = {threads}\n[plugins]"));
        }
        if self.access_log {
            ini.push_str("accessLog = access.log\n");
        }
        if let Some(url) = &self.store {
            ini.push_str(&format!("[store]\nurl = {url}\n"));
        }
        if self.plugins.contains(&"benchjson") {
            // The peers answer the JSON route at /json/{name}.
            ini.push_str("[plugin.benchjson]\nmount = /json\n");
        }
        if let Some(tls) = self.tls {
            ini.push_str(&format!(
                "[tls]\ncertificate = {}\nkey = {}\n",
                tls.cert.display(),
                tls.key.display()
            ));
        }
        if let Some(folder) = self.files {
            ini.push_str(&format!("[static]\n/files = {}\n", folder.display()));
        }
        let ini_path = dir.path().join("drupe.ini");
        std::fs::write(&ini_path, ini).expect("drupe.ini");
        let log = dir.path().join("stderr.log");
        let child = spawn(
            Command::new(self.release.join("drupe"))
                .arg("--config")
                .arg(&ini_path),
            &log,
        );
        (child, ([127, 0, 0, 1], port).into(), dir)
    }
}

/// A private redis-server on a free port.
pub fn redis() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let log = dir.path().join("stderr.log");
    let child = spawn(
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path()),
        &log,
    );
    listening(child, port, dir, &log, None)
}

/// `target/release`, where `cargo xtask bench` built everything.
pub fn release_dir() -> PathBuf {
    std::env::var_os("DRUPE_RELEASE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"))
}

/// `bench/peers/target/release`, where `cargo xtask bench` built the peers.
pub fn peers_release_dir() -> PathBuf {
    std::env::var_os("DRUPE_PEERS_RELEASE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/target/release"))
}
