//! `drupe new`: the scaffolded crate's own test passes, it builds, and the
//! real server serves it unchanged at `/NAME`.

use crate::support::{drupe, root, Site};
use std::process::Command;

#[test]
fn a_new_plugin_builds_tests_and_is_served_at_its_name() {
    let work = tempfile::tempdir().expect("temp dir");
    let crate_dir = work.path().join("greeter");
    let out = Command::new(drupe())
        .args(["new", "greeter"])
        .arg(&crate_dir)
        .output()
        .expect("drupe new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("/greeter"));

    // Share a target folder across runs so the SDK is built once.
    let target = root().join("target").join("scaffold");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    for args in [&["test", "--quiet"][..], &["build", "--quiet"][..]] {
        let status = Command::new(&cargo)
            .args(args)
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("cargo");
        assert!(
            status.success(),
            "cargo {args:?} in the scaffolded crate failed"
        );
    }

    let site = Site::new(&[], "");
    std::fs::copy(
        target.join("debug").join("libgreeter.so"),
        site.path("plugins.d/greeter.so"),
    )
    .expect("copy");
    let server = site.start();
    let resp = server.get("/greeter");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "Hello from greeter!");
}

#[test]
fn drupe_new_refuses_to_overwrite() {
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::write(work.path().join("keep.txt"), "mine").expect("write");
    let out = Command::new(drupe())
        .args(["new", "x"])
        .arg(work.path())
        .output()
        .expect("drupe new");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(work.path().join("keep.txt")).expect("read"),
        "mine"
    );
}
