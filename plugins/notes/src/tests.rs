//! The whole plugin through `TestApp`: routes, the login layer, sessions
//! and the store, as a worker would run them.

use super::*;
use drupe_sdk::testing::{TestApp, TestRequest, TestResponse};

const FORM: &str = "application/x-www-form-urlencoded";

fn app() -> TestApp {
    TestApp::new().setting("password", "s3cret")
}

fn form(path: &str, body: &str) -> TestRequest {
    TestRequest::post(path, body).header("Content-Type", FORM)
}

fn json(method: &str, path: &str, body: &str) -> TestRequest {
    TestRequest::new(method, path)
        .body(body)
        .header("Content-Type", "application/json")
}

/// Logs in as `user` and returns the response that carries the session
/// cookie.
fn login_as(app: &TestApp, user: &str) -> TestResponse {
    let resp = app.call(form("/login", &format!("user={user}&password=s3cret")));
    assert_eq!(resp.status(), 303, "{}", resp.body_text());
    resp
}

#[test]
fn the_api_creates_lists_shows_and_deletes() {
    let app = app();
    let session = login_as(&app, "ana");
    let call = |req: TestRequest| app.call(req.cookies_from(&session));

    let created = call(json("POST", "/api/notes", r#"{"text":"buy tea"}"#));
    assert_eq!(created.status(), 201);
    assert_eq!(created.header("location"), Some("/api/notes/1"));
    let note: Note = created.json();
    assert_eq!(
        (note.id, note.text.as_str(), note.author.as_str()),
        (1, "buy tea", "ana")
    );

    call(json("POST", "/api/notes", r#"{"text":"call bob"}"#));
    let all: Vec<Note> = call(TestRequest::get("/api/notes")).json();
    assert_eq!(all.iter().map(|n| n.id).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        call(TestRequest::get("/api/notes/2")).json::<Note>().text,
        "call bob"
    );

    assert_eq!(
        call(TestRequest::new("DELETE", "/api/notes/1")).status(),
        204
    );
    assert_eq!(call(TestRequest::get("/api/notes/1")).status(), 404);
    assert_eq!(
        call(TestRequest::new("DELETE", "/api/notes/1")).status(),
        404
    );
    assert_eq!(call(TestRequest::new("PUT", "/api/notes/2")).status(), 405);
    // The deleted note's id is still listed in the store; nobody sees it.
    let all: Vec<Note> = call(TestRequest::get("/api/notes")).json();
    assert_eq!(all.iter().map(|n| n.id).collect::<Vec<_>>(), [2]);
    assert_eq!(call(TestRequest::get("/api/notes/x")).status(), 404);
    assert_eq!(
        call(TestRequest::new("DELETE", "/api/notes/x")).status(),
        404
    );
}

#[test]
fn notes_are_listed_in_numeric_order() {
    let app = app();
    let session = login_as(&app, "ana");
    for n in 1..=11 {
        let body = format!(r#"{{"text":"note {n}"}}"#);
        let resp = app.call(json("POST", "/api/notes", &body).cookies_from(&session));
        assert_eq!(resp.status(), 201);
    }
    let all: Vec<Note> = app
        .call(TestRequest::get("/api/notes").cookies_from(&session))
        .json();
    assert_eq!(
        all.iter().map(|n| n.id).collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>()
    );
    let page = app.call(TestRequest::get("/")).body_text().into_owned();
    let (at2, at10) = (page.find("note 2 <"), page.find("note 10 <"));
    assert!(at2.is_some() && at2 < at10, "{page}");
}

#[test]
fn login_gives_the_session_a_new_id() {
    let app = app();
    // Someone's earlier session in this browser (a planted one, say).
    let before = login_as(&app, "eve");
    let after = app.call(form("/login", "user=ana&password=s3cret").cookies_from(&before));
    assert_eq!(after.status(), 303);
    let (old, new) = (before.header("set-cookie"), after.header("set-cookie"));
    assert!(new.is_some() && new != old, "{old:?} then {new:?}");

    let me = |from: &TestResponse| app.call(TestRequest::get("/").cookies_from(from));
    assert!(me(&after).body_text().contains("Logged in as ana"));
    assert!(!me(&before).body_text().contains("Logged in"));
    let old_api = app.call(TestRequest::get("/api/notes").cookies_from(&before));
    assert_eq!(old_api.status(), 401);
}

#[test]
fn logout_destroys_the_session_and_expires_its_cookie() {
    let app = app();
    let session = login_as(&app, "ana");
    let out = app.call(form("/logout", "").cookies_from(&session));
    assert_eq!(out.status(), 303);
    let cookie = out.header("set-cookie").unwrap_or_default();
    assert!(
        cookie.starts_with("drupe_session=") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
    let api = app.call(TestRequest::get("/api/notes").cookies_from(&session));
    assert_eq!(api.status(), 401);
    // Logging out without a session is harmless and sets no cookie.
    let again = app.call(form("/logout", ""));
    assert_eq!((again.status(), again.header("set-cookie")), (303, None));
}

#[test]
fn bad_input_gets_400_415_and_422() {
    let app = app();
    let session = login_as(&app, "ana");
    let status = |req: TestRequest| app.call(req.cookies_from(&session)).status();
    assert_eq!(status(json("POST", "/api/notes", r#"{"text":"#)), 400);
    assert_eq!(
        status(TestRequest::post("/api/notes", r#"{"text":"x"}"#)),
        415
    );
    assert_eq!(status(json("POST", "/api/notes", r#"{"txt":"x"}"#)), 422);
    assert_eq!(status(json("POST", "/api/notes", r#"{"text":"  "}"#)), 422);
}

#[test]
fn private_routes_need_a_login() {
    let app = app();
    let resp = app.call(TestRequest::get("/api/notes").header("Accept", "application/json"));
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.body_text(), r#"{"error":"Unauthorized","status":401}"#);
    let resp = app.call(form("/", "text=hi").mount("/notes"));
    assert_eq!(
        (resp.status(), resp.header("location")),
        (303, Some("/notes"))
    );
    assert_eq!(app.call(TestRequest::get("/export")).status(), 303);
    // The page itself is public.
    assert_eq!(app.call(TestRequest::get("/")).status(), 200);
}

#[test]
fn login_checks_the_password_and_logout_ends_it() {
    let app = app();
    let wrong = app.call(form("/login", "user=ana&password=nope"));
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.call(form("/login", "user=ana")).status(), 422);

    let session = login_as(&app, "ana");
    let page = app.call(TestRequest::get("/").cookies_from(&session));
    assert!(page.body_text().contains("Logged in as ana"));
    let out = app.call(form("/logout", "").cookies_from(&session));
    assert_eq!(out.status(), 303);
    let page = app.call(TestRequest::get("/").cookies_from(&session));
    assert!(!page.body_text().contains("Logged in"));
}

#[test]
fn login_is_refused_without_a_configured_password() {
    let app = TestApp::new();
    assert_eq!(app.call(form("/login", "user=ana&password=")).status(), 403);
}

#[test]
fn the_form_adds_an_escaped_note_and_redirects() {
    let app = app();
    let session = login_as(&app, "ana");
    let resp =
        app.call(form("/", "text=%3Cscript%3Ealert(1)%3C%2Fscript%3E").cookies_from(&session));
    assert_eq!((resp.status(), resp.header("location")), (303, Some("/")));
    let page = app.call(TestRequest::get("/"));
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.body_text();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"));
}

#[test]
fn the_theme_is_a_cookie_preference() {
    let app = app();
    let resp = app.call(TestRequest::get("/theme/dark").mount("/notes"));
    assert_eq!(resp.status(), 303);
    let cookie = resp.header("set-cookie").unwrap_or_default();
    assert!(
        cookie.starts_with("theme=dark; HttpOnly; SameSite=Lax; Path=/notes"),
        "{cookie}"
    );
    let page = app.call(TestRequest::get("/").header("Cookie", "theme=dark"));
    assert!(page.body_text().contains("class=\"dark\""));
    assert_eq!(app.call(TestRequest::get("/theme/pink")).status(), 400);
}

#[test]
fn export_is_a_download() {
    let app = app();
    let session = login_as(&app, "ana");
    app.call(form("/", "text=one").cookies_from(&session));
    let resp = app.call(TestRequest::get("/export").cookies_from(&session));
    assert_eq!(
        resp.header("content-disposition"),
        Some("attachment; filename=\"notes.txt\"")
    );
    assert_eq!(resp.body_text(), "#1 by ana\none\n\n");
}

#[test]
fn an_empty_password_setting_stops_the_worker() {
    let settings: Settings = [("password", "")].into_iter().collect();
    assert!(init(&settings).is_err());
}
