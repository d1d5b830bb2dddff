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
