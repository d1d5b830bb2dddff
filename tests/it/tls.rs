//! `[tls]`: HTTPS on the public port, end to end. Certificates are made per
//! test with the `openssl` command: a test CA and a server certificate it
//! signed for `localhost` and 127.0.0.1, so clients verify for real
//! (`curl --cacert`, `openssl s_client -CAfile`, and a rustls client that
//! controls how a request is cut into TLS records).

use crate::balancer::free_port;
use crate::support::{eventually, Server, Site};
use nix::sys::signal::Signal;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How `read_reply` says the server kept silent past the read timeout.
const TIMED_OUT: &str = "no answer within the read timeout";

const TLS_INI: &str = "[tls]\ncertificate = cert.pem\nkey = key.pem\n";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` arguments for a new P-256 key, unencrypted, in `key`.
fn new_key(key: &str) -> [&str; 7] {
    let curve = "ec_paramgen_curve:P-256";
    ["-newkey", "ec", "-pkeyopt", curve, "-nodes", "-keyout", key]
}

/// A test CA in `dir` (ca.pem, ca.key).
fn make_ca(dir: &Path) {
    let subject = ["-out", "ca.pem", "-subj", "/CN=drupe test CA"];
    openssl(
        dir,
        &[
            &["req", "-x509", "-days", "2"][..],
            &new_key("ca.key"),
            &subject,
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("leaf.ext");
}

/// A server certificate signed by the test CA, with `serial`, written to
/// `cert` and `key` in `dir`.
fn issue(dir: &Path, serial: u32, cert: &str, key: &str) {
    let subject = ["-out", "leaf.csr", "-subj", "/CN=localhost"];
    openssl(
        dir,
        &[&["req", "-new"][..], &new_key(key), &subject].concat(),
    );
    let serial = serial.to_string();
    let sign = [
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
    ];
    let rest = [
        "-set_serial",
        &serial,
        "-days",
        "2",
        "-out",
        cert,
        "-extfile",
        "leaf.ext",
    ];
    openssl(dir, &[&sign[..], &rest].concat());
}

/// A site with `plugins`, HTTPS on its port, and `extra` INI text.
fn tls_site(plugins: &[&str], extra: &str) -> Site {
    let site = Site::new(plugins, extra).with_ini(TLS_INI);
    make_ca(site.dir.path());
    issue(site.dir.path(), 1, "cert.pem", "key.pem");
    site
}

fn client_config(ca: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca.pem") {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    // ring, as the server uses (no post-quantum groups, hence deprecated).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn tls_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(Arc::clone(config), name).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// A response read from a TLS stream: status, headers, body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response (Content-Length framed); `Err` with the bytes read
/// so far counted if the stream ends first.
fn read_reply(stream: &mut impl Read) -> Result<Reply, (usize, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(len)) = resp.parse(&buf) {
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_owned(), value)
                })
                .collect();
            let status = resp.code.unwrap_or(0);
            let want: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < len + want {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return Err((buf.len(), "cut in the body".into())),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            return Ok(Reply {
                status,
                headers,
                body: buf[len..len + want].to_vec(),
            });
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err((buf.len(), "end of stream".into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err((buf.len(), format!("{TIMED_OUT}: {e}")))
            }
            Err(e) => return Err((buf.len(), e.to_string())),
        }
    }
}

fn https_get(addr: SocketAddr, config: &Arc<ClientConfig>, path: &str) -> Reply {
    let mut stream = tls_connect(addr, config).expect("TLS connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    read_reply(&mut stream).expect("a response")
}

#[test]
fn curl_with_the_test_ca_gets_200_over_https() {
    let server = tls_site(&["hello"], "").start();
    let port = server.addr().port();
    let out = Command::new("curl")
        .args(["-sS", "--cacert", "ca.pem", "-w", " %{http_code}"])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/hello"))
        .current_dir(server.site.dir.path())
        .output()
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello, World! 200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alpn_is_http_1_1_the_scheme_is_https_and_the_session_cookie_secure() {
    let server = tls_site(&["testkit", "session"], "").start();
    let config = client_config(&server.site.path("ca.pem"));
    let mut stream = tls_connect(server.addr(), &config).expect("TLS connect");
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    // Keep-alive: two requests on the one connection.
    stream
        .write_all(b"GET /testkit/scheme HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    assert_eq!(read_reply(&mut stream).expect("reply").text(), "https");
    stream
        .write_all(b"GET /session HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let reply = read_reply(&mut stream).expect("reply");
    assert_eq!(reply.status, 200);
    let cookie = reply.header("Set-Cookie").expect("a session cookie");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[test]
fn a_request_split_over_many_tls_records_is_served() {
    let server = tls_site(&["testkit"], "").start();
    let config = client_config(&server.site.path("ca.pem"));
    let mut stream = tls_connect(server.addr(), &config).expect("TLS connect");
    let body = "0123456789".repeat(300);
    let request = format!(
        "POST /testkit/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // Seven bytes per record, each sent on its own: the head and the
    // body reach the server in hundreds of pieces.
    for piece in request.as_bytes().chunks(7) {
        stream.conn.writer().write_all(piece).expect("buffer");
        while stream.conn.wants_write() {
            stream
                .conn
                .write_tls(&mut stream.sock)
                .expect("send a record");
        }
    }
    let reply = read_reply(&mut stream).expect("reply");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), body);
}

/// `openssl s_client` for one request to /testkit/pid: its output, and the
/// pid of the worker that answered.
fn s_client(server: &Server, args: &[&str]) -> (String, Option<i32>) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &server.addr().to_string()])
        .args(["-CAfile", "ca.pem", "-servername", "localhost", "-ign_eof"])
        .args(args)
        .current_dir(server.site.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"GET /testkit/pid HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let out = child.wait_with_output().expect("s_client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let pid = text
        .split_once("HTTP/1.1 200")
        .and_then(|(_, rest)| rest.split_once("\r\n\r\n"))
        .map(|(_, body)| {
            body.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok());
    (text, pid)
}

#[test]
fn a_session_ticket_from_one_worker_resumes_on_every_worker() {
    let server = tls_site(&["testkit"], "").start();
    let workers = server.worker_pids();
    assert_eq!(workers.len(), 2);
    for version in ["-tls1_3", "-tls1_2"] {
        let (first, _) = s_client(&server, &[version, "-sess_out", "session.pem"]);
        assert!(first.contains("\nNew, TLSv1."), "{version}: {first}");
        let mut seen = Vec::new();
        for _ in 0..40 {
            let (out, pid) = s_client(&server, &[version, "-sess_in", "session.pem"]);
            assert!(
                out.contains("\nReused, TLSv1."),
                "{version}: not resumed:\n{out}"
            );
            let pid = pid.unwrap_or_else(|| panic!("{version}: no pid in\n{out}"));
            if !seen.contains(&pid) {
                seen.push(pid);
            }
            if seen.len() == 2 {
                break;
            }
        }
        seen.sort_unstable();
        let mut expected = workers.clone();
        expected.sort_unstable();
        assert_eq!(seen, expected, "{version}: resumed on both workers");
    }
}

/// One keep-alive client, looping over `/hello` until `stop`; like
/// `load`'s, it retries once on a new connection when its *reused* one
/// was closed before any response (RFC 9112 §9.3.1).
fn keep_alive_client(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut failures = Vec::new();
        let mut stream: Option<TlsStream> = None;
        while !stop.load(Ordering::Relaxed) {
            let reused = stream.is_some();
            let mut conn = match stream.take() {
                Some(s) => s,
                None => match tls_connect(addr, &config) {
                    Ok(s) => s,
                    Err(e) => {
                        failures.push(format!("connect: {e}"));
                        continue;
                    }
                },
            };
            let sent = conn.write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n");
            match sent
                .map_err(|e| (0, e.to_string()))
                .and_then(|()| read_reply(&mut conn))
            {
                Ok(reply) if reply.status == 200 => {
                    answered.fetch_add(1, Ordering::Relaxed);
                    if reply.header("Connection") != Some("close") {
                        stream = Some(conn);
                    }
                }
                Ok(reply) => failures.push(format!("status {}", reply.status)),
                // Closed while idle: retry on a new one. (A hang is not that.)
                Err((0, why)) if reused && !why.starts_with(TIMED_OUT) => {}
                Err((n, why)) => failures.push(format!("{why} after {n} bytes")),
            }
        }
        failures
    })
}

#[test]
fn a_certificate_rotated_by_hup_under_keep_alive_load_drops_nothing() {
    // HUP alone reloads: no watch of the files (it would reload too).
    let server = tls_site(
        &["hello"],
        "watch = false\n[server]\nsocketPort = 0\nfixedNumberOfProcesses = 2\nthreadPool = 2\n",
    )
    .start();
    let config = client_config(&server.site.path("ca.pem"));
    let old = CertificateDer::from_pem_file(server.site.path("cert.pem")).expect("cert");
    assert_eq!(
        tls_connect(server.addr(), &config)
            .expect("connect")
            .conn
            .peer_certificates()
            .map(|c| c[0].clone()),
        Some(old.clone())
    );
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            keep_alive_client(
                server.addr(),
                Arc::clone(&config),
                Arc::clone(&stop),
                Arc::clone(&answered),
            )
        })
        .collect();
    eventually(Duration::from_secs(10), "the load to get going", || {
        answered.load(Ordering::Relaxed) > 50
    });
    // The renewal: a new certificate (serial 2) and key, renamed into place.
    let dir = server.site.dir.path();
    issue(dir, 2, "cert.new", "key.new");
    std::fs::rename(dir.join("key.new"), dir.join("key.pem")).expect("rename key");
    std::fs::rename(dir.join("cert.new"), dir.join("cert.pem")).expect("rename cert");
    let new = CertificateDer::from_pem_file(dir.join("cert.pem")).expect("new cert");
    let before_hup = answered.load(Ordering::Relaxed);
    server.signal(Signal::SIGHUP);
    eventually(Duration::from_secs(20), "the reload to roll out", || {
        server.log().contains("generation 2 serves on all")
    });
    let after = answered.load(Ordering::Relaxed);
    eventually(Duration::from_secs(10), "requests after the reload", || {
        answered.load(Ordering::Relaxed) > after + 50
    });
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(answered.load(Ordering::Relaxed) > before_hup + 50);
    // A client without the sessions of before (a resumed session keeps
    // the certificate it was made with: the previous ticket key opens it).
    let fresh = client_config(&server.site.path("ca.pem"));
    for _ in 0..4 {
        let stream = tls_connect(server.addr(), &fresh).expect("connect");
        let seen = stream.conn.peer_certificates().map(|c| c[0].clone());
        assert_eq!(seen, Some(new.clone()), "new connections get serial 2");
    }
}

#[test]
fn check_refuses_a_key_that_does_not_belong_to_the_certificate_naming_both() {
    let site = tls_site(&["hello"], "");
    let dir = site.dir.path();
    issue(dir, 3, "other.pem", "other.key");
    std::fs::copy(dir.join("other.key"), dir.join("key.pem")).expect("swap the key");
    let out = site.run(&["--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cert.pem") && stderr.contains("key.pem"),
        "{stderr}"
    );
    assert!(stderr.contains("does not belong"), "{stderr}");
    std::fs::remove_file(dir.join("key.pem")).expect("remove the key");
    let out = site.run(&["--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("key.pem") && stderr.contains("cannot read"),
        "{stderr}"
    );
}

#[test]
fn plain_http_on_the_tls_port_is_answered_400_and_closed_at_once() {
    let server = tls_site(&["hello"], "").start();
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let start = Instant::now();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("https://"), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "closed after {:?}",
        start.elapsed()
    );
}

#[test]
fn stalled_handshakes_are_cut_at_header_timeout_and_delay_no_one() {
    // One worker, one thread: a handshake that held it would stall
    // everybody.
    let site = Site::new(
        &["hello"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nthreadPool = 1\n[limits]\nheaderTimeout = 1\n",
    )
    .with_ini(TLS_INI);
    make_ca(site.dir.path());
    issue(site.dir.path(), 1, "cert.pem", "key.pem");
    let server = site.start();
    let config = client_config(&server.site.path("ca.pem"));
    // Fifty clients that send the first byte of a ClientHello, and no more.
    let started = Instant::now();
    let stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr()).expect("connect");
            s.write_all(&[0x16]).expect("one byte");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            s
        })
        .collect();
    for i in 0..5 {
        let start = Instant::now();
        assert_eq!(
            https_get(server.addr(), &config, &format!("/hello/c{i}")).text(),
            format!("Hello, c{i}!")
        );
        assert!(
            start.elapsed() < Duration::from_millis(800),
            "request {i} waited {:?} behind stalled handshakes",
            start.elapsed()
        );
    }
    for mut s in stalled {
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("a stalled handshake was not closed: {other:?}"),
        }
    }
    let cut = started.elapsed();
    assert!(
        cut < Duration::from_millis(3000),
        "stalled handshakes cut after {cut:?}, want headerTimeout (1 s)"
    );
}

#[test]
fn the_redirect_port_answers_308_to_the_same_url_on_https() {
    let redirect = free_port();
    let server = tls_site(&["hello"], "").with_ini(&format!("redirectPort = {redirect}\n"));
    let server = server.start();
    let port = server.addr().port();
    let mut stream = TcpStream::connect(("127.0.0.1", redirect)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(
            format!("GET /hello/you?x=1 HTTP/1.1\r\nHost: localhost:{redirect}\r\n\r\n").as_bytes(),
        )
        .expect("send");
    let reply = read_reply(&mut stream).expect("reply");
    assert_eq!(reply.status, 308);
    let location = format!("https://localhost:{port}/hello/you?x=1");
    assert_eq!(reply.header("Location"), Some(location.as_str()));
    // And there it is.
    let config = client_config(&server.site.path("ca.pem"));
    let reply = https_get(server.addr(), &config, "/hello/you?x=1");
    assert_eq!(reply.text(), "Hello, you!");
}

#[test]
fn a_file_and_a_stream_arrive_whole_over_tls_without_sendfile() {
    let site = tls_site(&["testkit"], "");
    let files = site.path("files");
    std::fs::create_dir(&files).expect("files/");
    // Not a multiple of the 16 KiB pieces, and larger than rustls's buffer.
    let big: Vec<u8> = (0..3_000_017u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(files.join("big.bin"), &big).expect("big.bin");
    let ini = format!("[plugin.testkit]\nfileRoot = {}\n", files.display());
    let server = site.with_ini(&ini).start();
    let config = client_config(&server.site.path("ca.pem"));
    let mut stream = tls_connect(server.addr(), &config).expect("TLS connect");
    // Keep-alive: the file, then a stream, on one connection; the last
    // response closes it, so its tail must be out before the close.
    for (path, last) in [
        ("/testkit/file/big.bin", false),
        ("/testkit/stream-sized/100000", false),
        ("/testkit/file/big.bin", true),
    ] {
        let close = if last { "Connection: close\r\n" } else { "" };
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{close}\r\n");
        stream.write_all(request.as_bytes()).expect("send");
        let reply = read_reply(&mut stream).expect("a whole response");
        assert_eq!(reply.status, 200, "{path}");
        if path.contains("file") {
            assert!(reply.body == big, "{path}: the bytes differ");
        } else {
            assert_eq!(reply.body.len(), 100_000);
        }
    }
}
