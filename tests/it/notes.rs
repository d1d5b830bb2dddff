//! The `notes` example through the real binary and real sockets, on both
//! store backends: the JSON API with its error statuses, the login layer
//! and the session it keeps across workers, the HTML form and its
//! redirect, the theme cookie and the download.

use crate::support::{Client, Response, Server, Site};
use drupe_tests::redis::RedisServer;

const SETTINGS: &str = "[plugin.notes]\npassword = s3cret\n";

fn start(store: &str) -> Server {
    Site::new(&["notes"], &format!("{store}{SETTINGS}")).start()
}

fn send(client: &mut Client, method: &str, path: &str, headers: &str, body: &str) -> Response {
    client.roundtrip(&format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// `name=value` of the cookie `name` that `resp` sets.
fn cookie_from(resp: &Response, name: &str) -> String {
    resp.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", resp.headers))
        .to_owned()
}

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

fn the_app_works(server: &Server) {
    let mut client = server.connect();

    // Not logged in: the API says 401 in JSON, the form redirects.
    let resp = send(
        &mut client,
        "GET",
        "/notes/api/notes",
        "Accept: application/json\r\n",
        "",
    );
    assert_eq!(resp.status, 401);
    assert_eq!(resp.text(), r#"{"error":"Unauthorized","status":401}"#);
    let resp = send(&mut client, "POST", "/notes", FORM, "text=x");
    assert_eq!(
        (resp.status, resp.header("location")),
        (303, Some("/notes"))
    );

    let resp = send(
        &mut client,
        "POST",
        "/notes/login",
        FORM,
        "user=ana&password=wrong",
    );
    assert_eq!(resp.status, 401);
    let resp = send(
        &mut client,
        "POST",
        "/notes/login",
        FORM,
        "user=ana&password=s3cret",
    );
    assert_eq!(resp.status, 303, "{}", resp.text());
    let session = format!("Cookie: {}\r\n", cookie_from(&resp, "drupe_session"));
    let json = format!("{session}Content-Type: application/json\r\n");

    // The API, from a fresh connection (likely another worker).
    let mut client = server.connect();
    let resp = send(
        &mut client,
        "POST",
        "/notes/api/notes",
        &json,
        r#"{"text":"buy tea"}"#,
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let location = resp.header("location").unwrap_or_default().to_owned();
    assert!(location.starts_with("/notes/api/notes/"), "{location}");
    assert!(
        resp.text().contains(r#""text":"buy tea","author":"ana""#),
        "{}",
        resp.text()
    );

    let resp = send(&mut client, "GET", &location, &session, "");
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains("buy tea"));
    let resp = send(&mut client, "GET", "/notes/api/notes", &session, "");
    assert!(
        resp.text().starts_with('[') && resp.text().contains("buy tea"),
        "{}",
        resp.text()
    );

    let status = |client: &mut Client, headers: &str, body: &str| {
        send(client, "POST", "/notes/api/notes", headers, body).status
    };
    assert_eq!(status(&mut client, &json, r#"{"text":"#), 400);
    assert_eq!(status(&mut client, &session, r#"{"text":"x"}"#), 415);
    assert_eq!(status(&mut client, &json, r#"{"note":"x"}"#), 422);

    // The form: a 303 back to the page, which shows the text escaped.
    let headers = format!("{session}{FORM}");
    let resp = send(
        &mut client,
        "POST",
        "/notes",
        &headers,
        "text=%3Cb%3Ehi%3C%2Fb%3E",
    );
    assert_eq!(resp.status, 303);
    let page = send(&mut client, "GET", "/notes", "", "");
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.text().contains("&lt;b&gt;hi&lt;/b&gt;"),
        "{}",
        page.text()
    );

    let resp = send(&mut client, "GET", "/notes/export", &session, "");
    assert_eq!(
        resp.header("content-disposition"),
        Some("attachment; filename=\"notes.txt\"")
    );
    assert!(resp.text().contains("buy tea"));

    let resp = send(&mut client, "GET", "/notes/theme/dark", "", "");
    assert_eq!(cookie_from(&resp, "theme"), "theme=dark");
    let page = send(&mut client, "GET", "/notes", "Cookie: theme=dark\r\n", "");
    assert!(page.text().contains("class=\"dark\""));

    let resp = send(&mut client, "DELETE", &location, &session, "");
    assert_eq!(resp.status, 204);
    assert_eq!(
        send(&mut client, "DELETE", &location, &session, "").status,
        404
    );

    // Logged out, the same cookie opens nothing.
    let resp = send(&mut client, "POST", "/notes/logout", &session, "");
    assert_eq!(resp.status, 303);
    assert_eq!(
        send(&mut client, "GET", "/notes/api/notes", &session, "").status,
        401
    );
}

#[test]
fn notes_on_sqlite() {
    the_app_works(&start(""));
}

#[test]
fn notes_on_redis() {
    let redis = RedisServer::start();
    the_app_works(&start(&format!("[store]\nurl = {}\n", redis.url())));
}
