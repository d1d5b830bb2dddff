//! Operating drupe: the index page and systemd readiness.

use crate::support::{Signal, Site};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

#[test]
fn show_index_lists_plugins_and_routes_escaped_when_nothing_claims_the_root() {
    let server = Site::new(
        &["hello", "testkit"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nshowIndex = true\n\
         [plugin.hello]\nmount = /x&'q'\n",
    )
    .start();
    let resp = server.get("/");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let page = resp.text();
    assert!(page.contains("<h2>hello <small>"), "{page}");
    assert!(page.contains("<h2>testkit <small>"), "{page}");
    // A mount is a path a request can reach, so `<`, `>` and `"` cannot be
    // in one (the config refuses them); `&` and `'` can, and are escaped.
    assert!(
        page.contains("mounted at <code>/x&amp;&#39;q&#39;</code>"),
        "{page}"
    );
    assert!(!page.contains("'q'"), "unescaped quote: {page}");
    assert!(
        page.contains("<code>GET /testkit/sleep/{ms}</code>"),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"/testkit/pid\"><code>GET /testkit/pid</code></a>"),
        "{page}"
    );
    let mut client = server.connect();
    let head = client.roundtrip("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("Content-Length"),
        Some(page.len().to_string().as_str())
    );
    let post = client.roundtrip("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(post.status, 404);
}

#[test]
fn the_index_is_off_by_default_and_a_root_plugin_wins() {
    let server = Site::new(&["hello"], "").start();
    assert_eq!(server.get("/").status, 404);
    let server = Site::new(
        &["hello"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nshowIndex = true\n\
         [plugin.hello]\nmount = /\n",
    )
    .start();
    assert_eq!(server.get("/").text(), "Hello, World!");
}

#[test]
fn under_systemd_the_master_notifies_ready_once_serving_and_stopping_on_term() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut server = Site::new(&["hello"], "")
        .with_env("NOTIFY_SOCKET", &socket_path.to_string_lossy())
        .start();
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1");
    assert_eq!(&buf[..n], b"READY=1");
    // Sent after the "listening" line, which `start` waited for: serving.
    assert_eq!(server.get("/hello").status, 200);
    server.signal(Signal::SIGTERM);
    let n = socket.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}
