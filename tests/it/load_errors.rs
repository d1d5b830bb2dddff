//! Every plugin load failure is explained where the user is looking: by
//! `--check` on the terminal (whatever `errorLog` says), on a reload in the
//! error log — always with the file's name and the reason.

use crate::support::{eventually, plugin, Site};
use std::time::Duration;

/// `--check` on `site`: exit code, stdout + stderr.
fn check(site: &Site) -> (Option<i32>, String) {
    let out = site.run(&["--check"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The first `len` bytes of a built plugin: an unfinished copy.
fn cut(name: &str, len: usize) -> Vec<u8> {
    let mut bytes = std::fs::read(plugin(name)).expect("read plugin");
    bytes.truncate(len);
    bytes
}

#[test]
fn check_names_a_truncated_plugin_on_the_terminal_even_with_an_error_log_file() {
    let site = Site::new(&["hello"], "").with_error_log("error.log");
    std::fs::write(site.path("plugins.d/testkit.so"), cut("testkit", 200_000)).expect("write");
    let (code, text) = check(&site);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("plugins.d/testkit.so: truncated: the file has 200000 bytes"),
        "{text}"
    );
    assert!(text.contains("see the errors above"), "{text}");
}

#[test]
fn check_names_the_signal_that_killed_the_probe_and_the_plugin_it_was_starting() {
    let site = Site::new(
        &["hello", "testkit"],
        "[plugin.testkit]\nabortInInit = true\n",
    )
    .with_error_log("error.log");
    let (code, text) = check(&site);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("the plugin probe was killed by SIGABRT while starting plugin `testkit`")
            && text.contains("plugins.d/testkit.so"),
        "{text}"
    );
}

/// Writes `bytes` under a temporary name, then renames it into the
/// watched plugin directory.
fn drop_in(site: &Site, name: &str, bytes: &[u8]) {
    let tmp = site.path(&format!("plugins.d/.{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, site.path(&format!("plugins.d/{name}"))).expect("rename");
}

#[test]
fn a_reload_refusing_a_truncated_plugin_logs_the_file_and_why() {
    let server = Site::new(&["hello"], "").start();
    drop_in(&server.site, "testkit.so", &cut("testkit", 300_000));
    eventually(Duration::from_secs(10), "the probe to refuse it", || {
        server.log().contains("failed its probe")
    });
    let log = server.log();
    let failed = log
        .lines()
        .position(|l| l.contains("failed its probe"))
        .expect("failure line");
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[..failed]
            .iter()
            .any(|l| l.contains("plugins.d/testkit.so: truncated")),
        "the reason is not above the failure:\n{log}"
    );
    assert!(log.contains("generation 1 keeps serving"), "{log}");
    assert_eq!(server.get("/hello").status, 200);
}

#[test]
fn a_reload_whose_probe_is_killed_names_the_signal_and_the_plugin() {
    let server = Site::new(&["hello"], "[plugin.testkit]\nabortInInit = true\n").start();
    drop_in(
        &server.site,
        "testkit.so",
        &std::fs::read(plugin("testkit")).expect("read"),
    );
    eventually(Duration::from_secs(10), "the probe to die", || {
        server.log().contains("failed its probe")
    });
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("failed its probe"))
        .expect("failure line");
    assert!(
        line.contains("killed by SIGABRT while starting plugin `testkit`")
            && line.contains("plugins.d/testkit.so")
            && !line.contains("see the errors above"),
        "{line}"
    );
    assert_eq!(server.get("/hello").status, 200);
}
