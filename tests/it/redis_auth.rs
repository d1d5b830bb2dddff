//! Redis across hosts with a password and TLS: counting is exact with an
//! ACL user and over TLS, and a wrong password stops `--check` and the
//! start with a message that names the server and never the password —
//! not on the terminal, not in the error log.

use crate::counting::count_exactly;
use crate::support::{exclusive, Site};
use drupe_tests::redis::RedisServer;
use drupe_tests::tls::TlsRedis;

/// `[store]` with `url`, the error log in `error.log`.
fn site(url: &str) -> Site {
    Site::new(&["counter", "hello"], &format!("[store]\nurl = {url}\n")).with_error_log("error.log")
}

/// Exit code and all that a run printed, stdout, stderr and error log.
fn run(site: &Site, args: &[&str]) -> (Option<i32>, String) {
    let out = site.run(args);
    let log = std::fs::read_to_string(site.path("error.log")).unwrap_or_default();
    let text = format!(
        "{}{}{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn counting_is_exact_with_an_acl_user() {
    let _alone = exclusive();
    // `%` and `@` in the password, percent-encoded in the URL.
    let redis = RedisServer::with_acl_user("app", "s3cr%t@x");
    let url = format!("redis://app:s3cr%25t%40x@127.0.0.1:{}/0", redis.port());
    let server = site(&url).start();
    let took = count_exactly(&server, 32, 20_000, 100);
    eprintln!("ACL user: 20000 POSTs over 100 keys from 32 clients in {took:?}");
    assert!(!server.log().contains("s3cr"), "{}", server.log());
}

#[test]
fn counting_is_exact_over_tls() {
    let _alone = exclusive();
    let redis = TlsRedis::start(&["--requirepass", "tls-secret-77"]);
    let server = site(&redis.url(":tls-secret-77@")).start();
    let took = count_exactly(&server, 32, 20_000, 100);
    eprintln!("TLS: 20000 POSTs over 100 keys from 32 clients in {took:?}");
    let (code, text) = run(&server.site, &["--check"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("tls-secret-77"), "{text}");
}

#[test]
fn a_wrong_password_fails_check_and_start_without_showing_it() {
    let redis = RedisServer::with_acl_user("app", "right-password");
    let url = format!("redis://app:wrong-pass-1234@127.0.0.1:{}/0", redis.port());
    let site = site(&url);
    for args in [&["--check"][..], &[]] {
        let (code, text) = run(&site, args);
        assert_eq!(code, Some(1), "{args:?}: {text}");
        assert!(
            text.contains(&format!(
                "Redis at 127.0.0.1:{} refused the login as user 'app': wrong user name or password",
                redis.port()
            )),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("redis://app:***@127.0.0.1"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("wrong-pass-1234"), "{args:?}: {text}");
    }
    // `requirepass` and no password in the URL: says what to write.
    let redis = RedisServer::with_password("needed");
    let (code, text) = run(&site_for(&redis), &["--check"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("asks for a password and [store] url gives none"),
        "{text}"
    );
}

fn site_for(redis: &RedisServer) -> Site {
    site(&redis.url())
}

#[test]
fn tls_with_the_wrong_ca_fails_check_with_a_tls_message() {
    let redis = TlsRedis::start(&[]);
    let other = drupe_tests::tls::Certificates::make();
    let url = format!(
        "rediss://127.0.0.1:{}/0?ca={}",
        redis.tls_port,
        other.ca().display()
    );
    let (code, text) = run(&site(&url), &["--check"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("failed the TLS handshake"), "{text}");
}
