//! Who a request comes from behind a load balancer (issue 16): the PROXY
//! protocol header (`[server] proxyProtocol`) and the forwarding headers of
//! trusted proxies (`trustedProxies`), as `testkit`'s `/remote`
//! (`remote_addr scheme`), the access log and the session cookie see them.
//! The test is its own balancer here, writing headers by hand; HAProxy's
//! real `send-proxy-v2` and nginx's `X-Forwarded-For` are in `hosts`.
//!
//! Loopback accepts the whole of 127/8, so a client bound to
//! [`CLIENT`] before it connects is a second machine as far as the server
//! can tell.

use crate::support::{eventually, Client, Site};
use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// The address the tests' "other machine" connects from.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

/// A keep-alive client whose socket is bound to `from` (any port) before
/// it connects to `to`.
pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> Client {
    let SocketAddr::V4(to) = to else {
        panic!("{to} is not IPv4");
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(from, 0)),
    )
    .expect("bind");
    connect(fd.as_raw_fd(), &SockaddrIn::from(to)).expect("connect");
    let stream = TcpStream::from(fd);
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    Client::from_stream(stream)
}

const REMOTE: &str = "GET /testkit/remote HTTP/1.1\r\nHost: t\r\n\r\n";

fn with_headers(headers: &str) -> String {
    format!("GET /testkit/remote HTTP/1.1\r\nHost: t\r\n{headers}\r\n")
}

/// The `Set-Cookie` of a new session (`GET /session` without a cookie,
/// with `headers`).
fn new_session_cookie(client: &mut Client, headers: &str) -> String {
    let resp = client.roundtrip(&format!(
        "GET /session HTTP/1.1\r\nHost: t\r\n{headers}\r\n"
    ));
    resp.header("Set-Cookie").expect("a new session").to_owned()
}

/// A v2 header for TCP over IPv4 from `src`, as HAProxy's send-proxy-v2
/// writes it (haproxy's doc/proxy-protocol.txt §2.2).
fn proxy_v2(src: SocketAddrV4) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    out.extend_from_slice(&src.ip().octets());
    out.extend_from_slice(&[127, 0, 0, 1]);
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&80u16.to_be_bytes());
    out
}

#[test]
fn a_proxy_header_names_the_client_for_every_request_of_the_connection() {
    let server = Site::new(
        &["testkit"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nthreadPool = 2\n\
         proxyProtocol = true\n[log]\naccessLog = access.log\n",
    )
    .start();
    // v1, cut in two writes (a partial header waits), then two requests
    // on the same connection, the second after the first was answered.
    let mut client = Client::connect(server.addr());
    client.send(b"PROXY TCP4 198.51.100.7 127.0.0");
    std::thread::sleep(Duration::from_millis(100));
    client.send(b".1 4711 80\r\n");
    assert_eq!(client.roundtrip(REMOTE).text(), "198.51.100.7:4711 http");
    assert_eq!(client.roundtrip(REMOTE).text(), "198.51.100.7:4711 http");
    // v2, with the request in the same write.
    let mut client = Client::connect(server.addr());
    let mut raw = proxy_v2("203.0.113.9:50000".parse().expect("addr"));
    raw.extend_from_slice(REMOTE.as_bytes());
    client.send(&raw);
    assert_eq!(client.read_response(false).text(), "203.0.113.9:50000 http");
    assert_eq!(client.roundtrip(REMOTE).text(), "203.0.113.9:50000 http");
    // UNKNOWN (and v2 LOCAL, HAProxy's health checks) keep the socket's peer.
    let mut client = connect_from(CLIENT, server.addr());
    client.send(b"PROXY UNKNOWN\r\n");
    let text = client.roundtrip(REMOTE).text();
    assert!(text.starts_with("127.0.0.5:"), "{text}");
    let log = server.site.path("access.log");
    eventually(Duration::from_secs(5), "5 access log lines", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
            == 5
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let clients: Vec<&str> = text
        .lines()
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(
        clients,
        [
            "198.51.100.7",
            "198.51.100.7",
            "203.0.113.9",
            "203.0.113.9",
            "127.0.0.5"
        ],
        "{text}"
    );
}

#[test]
fn with_proxy_protocol_on_a_connection_without_the_header_is_closed_unanswered() {
    let server = Site::new(
        &["testkit"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nthreadPool = 2\n\
         proxyProtocol = true\n",
    )
    .with_error_log("error.log")
    .start();
    for raw in [
        REMOTE.as_bytes(),
        b"PROXY TCP4 nonsense\r\nGET / HTTP/1.1\r\n\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x00",
    ] {
        let mut client = Client::connect(server.addr());
        client.send(raw);
        assert!(
            client.try_read_response(false).is_none(),
            "{:?} was answered",
            String::from_utf8_lossy(raw)
        );
    }
    // Logged (the first at info) and counted.
    eventually(Duration::from_secs(5), "the refusal logged", || {
        server
            .log()
            .contains("closed without an answer: no PROXY protocol header")
    });
    // The listener still serves clients that send the header.
    let mut client = Client::connect(server.addr());
    client.send(b"PROXY TCP4 198.51.100.7 127.0.0.1 4711 80\r\n");
    assert_eq!(client.roundtrip(REMOTE).text(), "198.51.100.7:4711 http");
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // By default nobody is trusted; here 10/8 is, and loopback is not.
    for extra in ["", "trustedProxies = 10.0.0.0/8\n"] {
        let server = Site::new(
            &["testkit"],
            &format!(
                "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nthreadPool = 2\n{extra}"
            ),
        )
        .start();
        let mut client = connect_from(CLIENT, server.addr());
        for spoof in [
            "X-Forwarded-For: 203.0.113.66\r\nX-Forwarded-Proto: https\r\n",
            "Forwarded: for=203.0.113.66;proto=https\r\n",
        ] {
            let text = client.roundtrip(&with_headers(spoof)).text();
            assert!(
                text.starts_with("127.0.0.5:") && text.ends_with(" http"),
                "{extra}: {text}"
            );
        }
    }
}

#[test]
fn from_a_trusted_peer_the_right_most_untrusted_address_and_its_scheme_count_per_request() {
    let server = Site::new(
        &["testkit", "session"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nthreadPool = 2\n\
         trustedProxies = 127.0.0.1/32, 10.0.0.0/8\n[log]\naccessLog = access.log\n",
    )
    .start();
    let mut proxy = connect_from(Ipv4Addr::LOCALHOST, server.addr());
    // The client wrote 6.6.6.6 itself; 203.0.113.9 is what the first
    // proxy saw; 10.1.2.3 is a trusted proxy in between.
    let chain = "X-Forwarded-For: 6.6.6.6, 203.0.113.9, 10.1.2.3\r\nX-Forwarded-Proto: https\r\n";
    assert_eq!(
        proxy.roundtrip(&with_headers(chain)).text(),
        "203.0.113.9:0 https"
    );
    // Per request: the next one on the connection says nothing.
    let text = proxy.roundtrip(REMOTE).text();
    assert!(
        text.starts_with("127.0.0.1:") && text.ends_with(" http"),
        "{text}"
    );
    // Forwarded wins over X-Forwarded-*, and may give a port.
    let both = "X-Forwarded-For: 198.51.100.1\r\n\
                Forwarded: for=\"[2001:db8::7]:4711\";proto=https\r\n";
    assert_eq!(
        proxy.roundtrip(&with_headers(both)).text(),
        "[2001:db8::7]:4711 https"
    );
    // Malformed values are ignored, never an error.
    for junk in [
        "X-Forwarded-For: not-an-address\r\nX-Forwarded-Proto: gopher\r\n",
        "Forwarded: for=\"[::1\r\n",
        "Forwarded: ;;,=,\"\r\n",
    ] {
        let resp = proxy.roundtrip(&with_headers(junk));
        assert_eq!(resp.status, 200, "{junk:?}");
        assert!(
            resp.text().starts_with("127.0.0.1:"),
            "{junk:?}: {}",
            resp.text()
        );
    }
    // A session started over https (as the trusted proxy says) gets a
    // Secure cookie; over http it does not.
    let https = "X-Forwarded-Proto: https\r\n";
    assert!(new_session_cookie(&mut proxy, https).ends_with("; Secure"));
    assert!(!new_session_cookie(&mut proxy, "").contains("Secure"));
    // The same headers from a peer outside trustedProxies count for nothing.
    let mut other = connect_from(CLIENT, server.addr());
    let text = other.roundtrip(&with_headers(chain)).text();
    assert!(
        text.starts_with("127.0.0.5:") && text.ends_with(" http"),
        "{text}"
    );
    assert!(!new_session_cookie(&mut other, https).contains("Secure"));
    // The access log shows the forwarded client.
    let log = server.site.path("access.log");
    eventually(Duration::from_secs(5), "the access log", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .starts_with("203.0.113.9 - - [")
    });
}
