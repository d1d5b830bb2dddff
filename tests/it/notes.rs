//! The `notes` example through the real binary and real sockets, on both
//! store backends: the JSON API with its error statuses, the login layer
//! and the session it keeps across workers, the HTML form and its
//! redirect, the theme cookie and the download; a login that gives the
//! session a new id, a logout that destroys it, and notes listed by number.

use crate::support::{Client, Response, Server, Site};
use drupe_tests::redis::RedisServer;

const SETTINGS: &str = "[plugin.notes]\npassword = s3cret\n";

/// `notes` beside `session`, whose visit counter shows what happened to
/// the session data a visitor had before logging in.
fn start(store: &str) -> Server {
    Site::new(&["notes", "session"], &format!("{store}{SETTINGS}")).start()
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

/// Logs in as `user` with the right password, sending `cookie` (a
/// `Cookie:` line, or nothing).
fn login(client: &mut Client, cookie: &str, user: &str) -> Response {
    let headers = format!("{cookie}{FORM}");
    let body = format!("user={user}&password=s3cret");
    send(client, "POST", "/notes/login", &headers, &body)
}

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
    let resp = login(&mut client, "", "ana");
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

/// `Cookie: drupe_session=…` from the session `resp` started or renewed.
fn session_header(resp: &Response) -> String {
    format!("Cookie: {}\r\n", cookie_from(resp, "drupe_session"))
}

/// The session plugin's visit count for the visitor with `cookie`.
fn visits(server: &Server, cookie: &str) -> String {
    send(&mut server.connect(), "GET", "/session", cookie, "").text()
}

/// Login regenerates the session: a session id from before the login (one
/// planted by someone else, say) opens nothing afterwards, while the
/// visitor keeps their data under the new id. Logout destroys it: the
/// cookie expires and the data is gone (checked in Redis itself when
/// `redis` is given).
fn sessions_are_renewed_and_destroyed(server: &Server, redis: Option<&RedisServer>) {
    // A session from before the login, started by another plugin.
    let first = send(&mut server.connect(), "GET", "/session", "", "");
    assert_eq!(first.text(), "1");
    let before = session_header(&first);

    let resp = login(&mut server.connect(), &before, "ana");
    assert_eq!(resp.status, 303, "{}", resp.text());
    let after = session_header(&resp);
    assert_ne!(after, before, "login must hand out a new session id");

    let api = |cookie: &str| send(&mut server.connect(), "GET", "/notes/api/notes", cookie, "");
    assert_eq!(api(&after).status, 200);
    assert_eq!(api(&before).status, 401, "the pre-login id still works");
    assert_eq!(visits(server, &after), "2", "the data moved to the new id");
    // The dead id is not revived: its visitor gets a fresh session.
    assert_eq!(visits(server, &before), "1");

    let logout = send(&mut server.connect(), "POST", "/notes/logout", &after, "");
    assert_eq!(logout.status, 303);
    let expired = logout
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("drupe_session="))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    assert!(expired.contains("Max-Age=0"), "{:?}", logout.headers);
    if let Some(redis) = redis {
        let id = after.trim_end().rsplit('=').next().unwrap_or_default();
        let left: Vec<String> = redis
            .keys()
            .into_iter()
            .filter(|k| k.contains(id))
            .collect();
        assert!(left.is_empty(), "the session is still stored: {left:?}");
    }
    assert_eq!(api(&after).status, 401);
    assert_eq!(visits(server, &after), "1", "the session's data is gone");
}

/// Notes come back by number, 9 before 10, in the API, the page and the
/// download, whichever worker serves them.
fn notes_are_listed_by_number(server: &Server) {
    let mut client = server.connect();
    let session = session_header(&login(&mut client, "", "bo"));
    let json = format!("{session}Content-Type: application/json\r\n");
    for n in 0..11 {
        let body = format!(r#"{{"text":"ordered {n}"}}"#);
        let mut client = server.connect();
        let resp = send(&mut client, "POST", "/notes/api/notes", &json, &body);
        assert_eq!(resp.status, 201, "{}", resp.text());
    }
    let list = send(&mut client, "GET", "/notes/api/notes", &session, "");
    let notes: serde_json::Value = serde_json::from_str(&list.text()).expect("a JSON list");
    let ids: Vec<i64> = notes
        .as_array()
        .expect("a JSON list")
        .iter()
        .filter_map(|n| n["id"].as_i64())
        .collect();
    assert!(ids.len() >= 11 && ids.iter().any(|&id| id >= 10), "{ids:?}");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "not by number: {ids:?}"
    );

    let page = send(&mut client, "GET", "/notes", "", "").text();
    let (at9, at10) = (page.find("ordered 9 <"), page.find("ordered 10 <"));
    assert!(at9.is_some() && at9 < at10, "{page}");
    let export = send(&mut client, "GET", "/notes/export", &session, "").text();
    let (at9, at10) = (export.find("ordered 9\n"), export.find("ordered 10\n"));
    assert!(at9.is_some() && at9 < at10, "{export}");
}

#[test]
fn notes_on_sqlite() {
    let server = start("");
    the_app_works(&server);
    sessions_are_renewed_and_destroyed(&server, None);
    notes_are_listed_by_number(&server);
}

#[test]
fn notes_on_redis() {
    let redis = RedisServer::start();
    let server = start(&format!("[store]\nurl = {}\n", redis.url()));
    the_app_works(&server);
    sessions_are_renewed_and_destroyed(&server, Some(&redis));
    notes_are_listed_by_number(&server);
}
