//! HTTP/1.1 on the wire: keep-alive, pipelining, bodies, bad requests.

use crate::support::{Server, Site};

fn server() -> Server {
    Site::new(&["hello", "testkit"], "").start()
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = server();
    let mut client = server.connect();
    for i in 0..20 {
        let resp = client.roundtrip(&format!("GET /hello/n{i} HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(resp.text(), format!("Hello, n{i}!"));
        assert_eq!(resp.header("Connection"), None);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = server();
    let mut client = server.connect();
    client.send(
        b"GET /hello/one HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /testkit/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ntwo\
          HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /nope HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /hello/five HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(client.read_response(false).text(), "Hello, one!");
    assert_eq!(client.read_response(false).text(), "two");
    let head = client.read_response(true);
    assert_eq!(
        (head.status, head.header("Content-Length")),
        (200, Some("13"))
    );
    assert_eq!(client.read_response(false).status, 404);
    let last = client.read_response(false);
    assert_eq!(last.text(), "Hello, five!");
    assert_eq!(last.header("Connection"), Some("close"));
    assert!(client.closed());
}

#[test]
fn chunked_body_is_decoded_for_the_plugin() {
    let server = server();
    let mut client = server.connect();
    // Sent in pieces that split chunk sizes, data and the final CRLF.
    let pieces: [&[u8]; 6] = [
        b"POST /testkit/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhel",
        b"lo\r\n",
        b"7;ext=1\r\n, world\r\n",
        b"0\r\n",
        b"\r\n",
    ];
    for piece in pieces {
        client.send(piece);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let resp = client.read_response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello, world");
    assert_eq!(resp.header("Content-Length"), Some("12"));
}

#[test]
fn a_request_split_into_single_bytes_is_served() {
    let server = server();
    let mut client = server.connect();
    for byte in b"POST /testkit HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nping" {
        client.send(&[*byte]);
    }
    assert_eq!(client.read_response(false).text(), "ping");
}

#[test]
fn expect_100_continue_gets_100_before_the_body() {
    let server = server();
    let mut client = server.connect();
    client.send(b"POST /testkit/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(client.read_response(false).status, 100);
    client.send(b"body");
    assert_eq!(client.read_response(false).text(), "body");
}

#[test]
fn malformed_requests_get_400_and_the_server_keeps_serving() {
    let server = server();
    let cases: [(&str, u16); 5] = [
        ("GARBAGE\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\n\r\n", 400), // no Host
        ("POST /testkit HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST /testkit HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ];
    for (raw, status) in cases {
        let mut client = server.connect();
        let resp = client.roundtrip(raw);
        assert_eq!(resp.status, status, "{raw:?}");
        assert_eq!(resp.header("Connection"), Some("close"), "{raw:?}");
        assert!(
            client.closed(),
            "{raw:?}: connection should close after a framing error"
        );
    }
    assert_eq!(server.get("/hello").status, 200);
}

#[test]
fn a_body_over_the_limit_is_413_before_it_is_read() {
    let server = Site::new(&["testkit"], "[limits]\nmaxBodyBytes = 1000\n").start();
    let mut client = server.connect();
    let resp = client.roundtrip(
        "POST /testkit HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(
        resp.status, 413,
        "no 100 Continue for a request already rejected"
    );
}

#[test]
fn a_large_body_is_echoed_whole() {
    let server = server();
    let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let mut client = server.connect();
    client.send(
        format!(
            "POST /testkit/echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    client.send(&body);
    let resp = client.read_response(false);
    assert_eq!(resp.status, 200);
    assert!(resp.body == body, "echoed body differs");
}

#[test]
fn a_decoded_path_parameter_cannot_inject_a_response_header() {
    let server = server();
    // The parameter decodes to CR LF / NUL; the plugin puts it in a header
    // value, the host refuses the header, and the answer is a bare 500.
    for value in ["a%0D%0ASet-Cookie:%20pwned=1", "a%0Ab", "a%00b", "%0D"] {
        let resp = server.get(&format!("/testkit/header/{value}"));
        assert_eq!(resp.status, 500, "{value}");
        assert_eq!(resp.header("Set-Cookie"), None, "{value}");
        assert_eq!(resp.header("X-Echo"), None, "{value}");
        assert!(!resp.text().contains("header set"), "{value}");
    }
    let resp = server.get("/testkit/header/J%C3%BCrgen%20B");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("X-Echo"), Some("Jürgen B"));
    assert!(server.log().contains("invalid or host-managed header"));
}

#[test]
fn head_204_205_and_304_carry_no_body() {
    let server = server();
    let mut client = server.connect();
    // Send each, then read the raw bytes up to the next response: any body
    // byte would show up in front of the next status line.
    let cases: [(&str, u16, Option<&str>); 5] = [
        ("GET /testkit/status/204", 204, None),
        ("GET /testkit/status/205", 205, Some("0")),
        ("GET /testkit/status/304", 304, Some("11")), // the length the 200 would have
        ("HEAD /testkit/status/200", 200, Some("11")),
        ("HEAD /testkit/status/404", 404, Some("11")),
    ];
    for (line, status, length) in cases {
        let resp = client.roundtrip(&format!("{line} HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(resp.status, status, "{line}");
        assert_eq!(resp.header("Content-Length"), length, "{line}");
        // The next response must start right where the head ended.
        let next = client.roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(next.text(), "Hello, World!", "after {line}");
    }
}

#[test]
fn options_asterisk_lists_the_server_methods() {
    let server = server();
    let mut client = server.connect();
    let resp = client.roundtrip("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Length"), Some("0"));
    // testkit takes any method, so the common ones are all listed.
    assert_eq!(
        resp.header("Allow"),
        Some("DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT")
    );
    let resp = client.roundtrip("GET * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status, 400);
}

#[test]
fn dot_segments_never_reach_a_plugin() {
    let server = server();
    let resp = server.get("/testkit/path/a/./b/../c");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "path_info=/path/a/c\nrest=a/c\n");
    // Percent-encoded dots are dots (RFC 3986 §6.2.2.2).
    let resp = server.get("/testkit/path/a/%2E%2e/b");
    assert_eq!(resp.text(), "path_info=/path/b\nrest=b\n");
    // Out of the mount point into another plugin's: resolved before routing.
    assert_eq!(server.get("/testkit/../hello").text(), "Hello, World!");
    for path in [
        "/testkit/path/../../../etc/passwd",
        "/%2e%2e/testkit/path/x",
        "/testkit/path/..%2F..%2Fetc%2Fpasswd",
        "/testkit/path/a%2F..%2F..",
    ] {
        let resp = server.get(path);
        assert_eq!(resp.status, 400, "{path}: {}", resp.text());
    }
}

/// Regression: a connection whose client sent its next request as soon as
/// it read a response kept the thread in one event, request after request,
/// and the other connections of the worker waited until it paused.
#[test]
fn one_eager_keep_alive_client_cannot_starve_another() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let server = Site::new(
        &["hello", "testkit"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nthreadPool = 1\n",
    )
    .start();
    let addr = server.addr();
    let done = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let eager = {
        let (done, served) = (Arc::clone(&done), Arc::clone(&served));
        std::thread::spawn(move || {
            let mut client = crate::support::Client::connect(addr);
            // Two requests in flight, so the next one is always already
            // there when the server has answered one.
            client.send(b"GET /testkit/spin/2 HTTP/1.1\r\nHost: t\r\n\r\n");
            while !done.load(Ordering::SeqCst) && served.load(Ordering::SeqCst) < 3000 {
                client.send(b"GET /testkit/spin/2 HTTP/1.1\r\nHost: t\r\n\r\n");
                assert_eq!(client.read_response(false).status, 200);
                served.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let before = served.load(Ordering::SeqCst);
    assert_eq!(server.get("/hello").status, 200);
    let waited_for = served.load(Ordering::SeqCst) - before;
    done.store(true, Ordering::SeqCst);
    eager.join().expect("eager client");
    // Fair turns: the new connection is served after at most a few of the
    // eager client's requests, not after as many as it cares to send.
    assert!(
        waited_for <= 10,
        "GET /hello waited for {waited_for} requests of the eager client"
    );
}
