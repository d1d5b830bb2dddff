//! A misbehaving plugin hurts only its own request; a broken one is refused.

use crate::support::{eventually, Site};
use std::time::Duration;

#[test]
fn a_panicking_handler_gets_500_and_the_worker_lives_on() {
    let server = Site::new(
        &["hello", "testkit"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\n",
    )
    .start();
    let mut client = server.connect();
    let pid = client
        .roundtrip("GET /testkit/pid HTTP/1.1\r\nHost: t\r\n\r\n")
        .text();
    let resp = client.roundtrip("GET /testkit/panic HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status, 500);
    // Same connection, same worker process: nothing was restarted.
    assert_eq!(
        client
            .roundtrip("GET /testkit/pid HTTP/1.1\r\nHost: t\r\n\r\n")
            .text(),
        pid
    );
    assert_eq!(
        client
            .roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .status,
        200
    );
    assert!(
        server.log().contains("testkit: panic on request"),
        "{}",
        server.log()
    );
}

#[test]
fn a_header_with_crlf_is_refused_not_injected() {
    let server = Site::new(&["testkit"], "").start();
    let resp = server.get("/testkit/bad-header");
    assert_eq!(resp.status, 500);
    assert!(
        resp.headers
            .iter()
            .all(|(k, _)| !k.eq_ignore_ascii_case("injected")),
        "{:?}",
        resp.headers
    );
}

#[test]
fn an_aborting_worker_is_replaced() {
    let server = Site::new(&["hello", "testkit"], "").start();
    let before = server.worker_pids();
    assert_eq!(before.len(), 2, "two workers");
    let mut client = server.connect();
    client.send(b"GET /testkit/abort HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        client.try_read_response(false).is_none(),
        "the aborted worker sends nothing"
    );
    eventually(Duration::from_secs(5), "a replacement worker", || {
        let now = server.worker_pids();
        now.len() == 2 && now != before
    });
    for _ in 0..10 {
        assert_eq!(server.get("/hello").status, 200);
    }
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused_naming_the_file() {
    let site = Site::new(&["hello"], "");
    std::fs::write(site.path("plugins.d/notes.so"), b"this is not an ELF file").expect("write");
    let out = site.run(&["--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("notes.so"), "{stderr}");

    let mut server_start = std::process::Command::new(crate::support::drupe())
        .arg("--config")
        .arg(site.ini_path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    let status = server_start.wait().expect("wait");
    let mut stderr = String::new();
    std::io::Read::read_to_string(
        &mut server_start.stderr.take().expect("stderr"),
        &mut stderr,
    )
    .expect("read");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("notes.so") && stderr.contains("cannot load"),
        "{stderr}"
    );
}

#[test]
fn a_library_without_the_entry_symbol_is_not_a_plugin() {
    let site = Site::new(&["hello"], "");
    // A real shared library, just not a drupe plugin.
    let libm = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
        "/usr/lib/libm.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("libm for this test");
    std::fs::copy(libm, site.path("plugins.d/libm.so")).expect("copy libm");
    let out = site.run(&["--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("libm.so: not a drupe plugin"), "{stderr}");
}

#[test]
fn a_plugin_built_for_another_abi_major_is_refused_with_both_versions() {
    let site = Site::new(&["hello", "other_abi"], "");
    let out = site.run(&["--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("other_abi.so: built for plugin ABI 2.0, but this drupe speaks ABI 1."),
        "{stderr}"
    );
}
