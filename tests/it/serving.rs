//! The example routes and the answers the host gives itself.

use crate::support::{Server, Site};

fn hello_site(extra: &str) -> Server {
    Site::new(&["hello", "testkit"], extra).start()
}

#[test]
fn hello_answers_hello_world_with_framing_headers() {
    let server = hello_site("");
    let resp = server.get("/hello");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "Hello, World!");
    assert_eq!(
        resp.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.header("Content-Length"), Some("13"));
    assert_eq!(resp.header("Connection"), Some("close"));
    assert!(
        resp.header("Date").is_some_and(|d| d.ends_with(" GMT")),
        "{:?}",
        resp.headers
    );
}

#[test]
fn path_parameters_and_plugin_settings_reach_the_handler() {
    let server = hello_site("[plugin.hello]\ngreeting = Howdy\n");
    assert_eq!(server.get("/hello/bob").text(), "Howdy, bob!");
    assert_eq!(server.get("/hello/J%C3%BCrgen").text(), "Howdy, Jürgen!");
}

#[test]
fn mount_setting_moves_a_plugin() {
    let server = hello_site("[plugin.hello]\nmount = /greet\n");
    assert_eq!(server.get("/greet").text(), "Hello, World!");
    assert_eq!(server.get("/greet/ann").text(), "Hello, ann!");
    assert_eq!(server.get("/hello").status, 404);
}

#[test]
fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
    let server = hello_site("");
    assert_eq!(server.get("/nope").status, 404);
    assert_eq!(server.get("/hello/a/b").status, 404);
    let mut client = server.connect();
    let resp = client.roundtrip("DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("Allow"), Some("GET, HEAD"));
    // The connection survives a 405.
    assert_eq!(
        client
            .roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        200
    );
}

#[test]
fn head_gets_the_length_but_no_body() {
    let server = hello_site("");
    let mut client = server.connect();
    let resp = client.roundtrip("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Length"), Some("13"));
    assert!(resp.body.is_empty());
    // Had a body been sent, this response would be garbled.
    assert_eq!(
        client
            .roundtrip("GET /hello/x HTTP/1.1\r\nHost: t\r\n\r\n")
            .text(),
        "Hello, x!"
    );
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let server = hello_site("");
    let mut client = server.connect();
    let resp = client.roundtrip("GET /hello HTTP/1.0\r\n\r\n");
    assert_eq!(resp.text(), "Hello, World!");
    assert_eq!(resp.header("Connection"), Some("close"));
    assert!(client.closed());

    let mut client = server.connect();
    let resp = client.roundtrip("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(resp.header("Connection"), Some("keep-alive"));
    assert_eq!(
        client.roundtrip("GET /hello/y HTTP/1.0\r\n\r\n").text(),
        "Hello, y!"
    );
}

#[test]
fn request_details_reach_the_plugin() {
    let server = hello_site("");
    let resp = server.get("/testkit/headers");
    assert_eq!(resp.status, 200);
    let text = resp.text();
    assert!(text.contains("Host: test"), "{text}");
}

#[test]
fn access_log_has_one_combined_format_line_per_request() {
    let server = Site::new(&["hello", "testkit"], "[log]\naccessLog = access.log\n").start();
    let mut client = server.connect();
    client.roundtrip(
        "GET /hello HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1\r\nReferer: http://r/\r\n\r\n",
    );
    client.roundtrip("GET /nope?x=\"1\" HTTP/1.1\r\nHost: t\r\n\r\n");
    let pid = client
        .roundtrip("GET /testkit/pid HTTP/1.1\r\nHost: t\r\n\r\n")
        .text();
    let path = server.site.path("access.log");
    let mut lines = Vec::new();
    crate::support::eventually(
        std::time::Duration::from_secs(5),
        "three access log lines",
        || {
            lines = std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            lines.len() >= 3
        },
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{}", lines[0]);
    assert!(
        lines[0].contains("] \"GET /hello HTTP/1.1\" 200 13 \"http://r/\" \"probe/1\" "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(&format!(" {pid}")),
        "{} should end with the worker pid {pid}",
        lines[0]
    );
    // Client-controlled quotes are escaped, so fields cannot be forged.
    assert!(
        lines[1].contains("\"GET /nope?x=\\x221\\x22 HTTP/1.1\" 404 10 \"-\" \"-\" "),
        "{}",
        lines[1]
    );
}

#[test]
fn a_handler_status_outside_100_to_599_is_a_500_and_logged() {
    let server = Site::new(&["testkit"], "").start();
    for code in ["999", "99", "600", "0"] {
        let resp = server.get(&format!("/testkit/status/{code}"));
        assert_eq!(
            resp.status, 500,
            "status {code} was sent as {}",
            resp.status
        );
    }
    let log = server.log();
    assert!(log.contains("999"), "the bad status is not logged:\n{log}");
}
