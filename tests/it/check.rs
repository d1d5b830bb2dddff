//! `drupe --check` and configuration errors.

use crate::support::Site;

#[test]
fn check_lists_plugins_and_routes_and_exits_0() {
    let site = Site::new(&["hello", "testkit"], "[plugin.hello]\nmount = /hi\n");
    let out = site.run(&["--check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("plugin hello 0.1.0"), "{stdout}");
    for route in [
        "GET     /hi/{name}",
        "GET     /testkit/panic",
        "ANY     /testkit/{*rest}",
    ] {
        assert!(stdout.contains(route), "missing {route}:\n{stdout}");
    }
}

#[test]
fn a_mistyped_key_names_file_line_and_the_right_key() {
    let site = Site::new(
        &["hello"],
        "[server]\nsocketPort = 0\nfixedNumberOfProcess = 2\n",
    );
    let out = site.run(&["--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("drupe.ini line 5"), "{stderr}");
    assert!(
        stderr.contains("did you mean 'fixedNumberOfProcesses'"),
        "{stderr}"
    );
}

#[test]
fn two_plugins_claiming_one_route_is_a_startup_error_naming_both() {
    let site = Site::new(&["hello", "testkit"], "[plugin.hello]\nmount = /testkit\n");
    let out = site.run(&["--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("route conflict") && stderr.contains("hello") && stderr.contains("testkit"),
        "{stderr}"
    );
}

/// Runs `--check` on `site`; exit code and everything printed.
fn check(site: &Site) -> (Option<i32>, String) {
    let out = site.run(&["--check"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn a_mount_with_dot_segments_is_refused_with_file_and_line() {
    let site = Site::new(&["hello"], "[plugin.hello]\nmount = /a/../hello\n");
    let (code, text) = check(&site);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("drupe.ini line"), "{text}");
    assert!(text.contains("/a/../hello"), "{text}");
}

#[test]
fn an_unwritable_sqlite_path_fails_the_check_naming_the_file() {
    let site = Site::new(
        &["hello"],
        "[store]\nurl = sqlite:///proc/no-such-dir/drupe.db\n",
    );
    let (code, text) = check(&site);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("/proc/no-such-dir/drupe.db"), "{text}");
}

#[test]
fn a_dangling_link_or_a_folder_named_so_in_the_plugin_folder_is_reported() {
    let site = Site::new(&["hello"], "");
    let dir = site.path("plugins.d");
    std::os::unix::fs::symlink(dir.join("gone.so.orig"), dir.join("gone.so")).expect("symlink");
    std::fs::create_dir(dir.join("folder.so")).expect("mkdir");
    let (code, text) = check(&site);
    assert!(
        text.contains("gone.so"),
        "the dangling link is not named:\n{text}"
    );
    assert!(
        text.contains("folder.so"),
        "the folder is not named:\n{text}"
    );
    // Warnings, not errors: the plugins that are there still load.
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("plugin hello"), "{text}");
}
