//! `notes`: a small real app on the SDK's handler API — a JSON API, an
//! HTML page with a form, login and logout, a layer that guards the
//! private routes, a cookie preference and a download.
//!
//! Mounted at `/notes`:
//!
//! | route | who | answer |
//! |---|---|---|
//! | `GET /` | anyone | the HTML page: notes, and the form or the login |
//! | `POST /` | logged in | form `text=…`: adds a note, 303 back to the page |
//! | `POST /login` | anyone | form `user=…&password=…`: 303 to the page, or 401 |
//! | `POST /logout` | anyone | ends the session, 303 to the page |
//! | `GET /theme/{light,dark}` | anyone | remembers the choice in a cookie, 303 |
//! | `GET /export` | logged in | every note as a text download |
//! | `GET /api/notes` | logged in | `[{"id":1,"text":"…","author":"…"}, …]` |
//! | `POST /api/notes` | logged in | JSON `{"text":"…"}`: 201 with the note and `Location` |
//! | `GET /api/notes/{id}` | logged in | the note, or 404 |
//! | `DELETE /api/notes/{id}` | logged in | 204, or 404 |
//!
//! A private route without a login answers 401 on `/api/…` and redirects
//! to the page elsewhere. The password is the `password` key of
//! `[plugin.notes]`; without one, login is refused. Logging in gives the
//! session a new id (a session id someone planted or learned before is
//! worthless afterwards); logging out destroys the session.
//!
//! Notes live in the shared store, so every worker and host sees the same
//! ones: each as JSON under `note:{id}`, and the ids, in the order they
//! were added, in the list `ids`, so the page needs no scan of the store.

mod page;

use drupe_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// What `init` reads from `[plugin.notes]`.
#[derive(Debug)]
pub struct Config {
    /// The one password; `None` disables login.
    password: Option<String>,
}

/// Reads the settings once per worker.
pub fn init(settings: &Settings) -> std::result::Result<Config, String> {
    let password = settings.get("password").map(str::to_owned);
    if password.as_deref() == Some("") {
        return Err(
            "[plugin.notes] password must not be empty (leave it out to disable login)".into(),
        );
    }
    Ok(Config { password })
}

/// A note as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub id: i64,
    pub text: String,
    pub author: String,
}

/// The body of `POST /api/notes` and of the page's form.
#[derive(Debug, Deserialize)]
pub struct NewNote {
    pub text: String,
}

/// The login form.
#[derive(Debug, Deserialize)]
struct Login {
    user: String,
    password: String,
}

/// The session field that holds the logged-in user.
const USER: &str = "user";
/// The list of every note id ever added. The store cannot take one item
/// out of a list, so a deleted note's id stays and readers skip ids whose
/// note is gone.
const IDS: &str = "ids";
/// The counter that numbers notes.
const NEXT_ID: &str = "next_id";
/// The longest note, in bytes.
const MAX_TEXT: usize = 10_000;

/// The store key of note `id`, which holds it as JSON.
fn note_key(id: i64) -> String {
    format!("note:{id}")
}

/// The logged-in user, if any.
fn user(ctx: &Context) -> Result<Option<String>> {
    Ok(ctx.session().get_string(USER)?)
}

/// Every note, oldest first.
fn all_notes(ctx: &Context) -> Result<Vec<Note>> {
    let store = ctx.store();
    let mut notes = Vec::new();
    for id in store.range(IDS, 0, -1)? {
        let id = id
            .to_i64()
            .ok_or_else(|| Error::internal(format!("`{IDS}` holds {id:?}, not a note id")))?;
        // `None`: a deleted note, or one deleted since the list was read.
        if let Some(note) = store.get_json(&note_key(id))? {
            notes.push(note);
        }
    }
    // Ids are numbered before they are pushed, so two notes added at the
    // same moment can reach the list in either order.
    notes.sort_by_key(|n: &Note| n.id);
    Ok(notes)
}

/// The note whose id is the text `id`; `None` for an unknown or
/// malformed id.
fn find(ctx: &Context, id: &str) -> Result<Option<Note>> {
    match id.parse() {
        Ok(id) => Ok(ctx.store().get_json(&note_key(id))?),
        Err(_) => Ok(None),
    }
}

/// Checks and stores a new note by `author`.
fn add(ctx: &Context, text: &str, author: String) -> Result<Note> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_TEXT {
        return Err(Error::new(
            422,
            format!("a note is 1 to {MAX_TEXT} bytes of text"),
        ));
    }
    let id = ctx.store().incr(NEXT_ID, 1)?;
    let note = Note {
        id,
        text: text.to_owned(),
        author,
    };
    // The id is listed before the note is written: if either call fails,
    // the client gets the error and no note appears anywhere (a listed id
    // without a note is skipped), rather than a note the client believes
    // was never added.
    ctx.store().push(IDS, id)?;
    ctx.store().set_json(&note_key(id), &note)?;
    Ok(note)
}

/// The page's address (the mount point itself), for redirects.
fn home<'a>(req: &Request<'a>) -> &'a str {
    match req.script_name() {
        "" => "/",
        mount => mount,
    }
}

/// The layer: private routes need a login. The API answers 401 (JSON for
/// a JSON client); a browser is sent to the page, which offers the login.
pub fn require_login(req: &Request, ctx: &mut Context, next: Next) -> Result<Response> {
    // The page is the mount point itself: `/notes` leaves `path_info` empty.
    let path = match req.path_info() {
        "" => "/",
        path => path,
    };
    let private =
        path.starts_with("/api/") || path == "/export" || (path == "/" && req.method() == "POST");
    if private && user(ctx)?.is_none() {
        if path.starts_with("/api/") {
            return Err(Error::unauthorized());
        }
        return Ok(Redirect::to(home(req)).into_response());
    }
    next.run(req, ctx)
}

/// `GET /`: the page.
pub fn index(req: &Request, ctx: &mut Context) -> Result<Html<String>> {
    let theme = page::Theme::from_cookie(req.cookie("theme"));
    Ok(Html(page::render(
        req.script_name(),
        home(req),
        theme,
        user(ctx)?.as_deref(),
        &all_notes(ctx)?,
    )))
}

/// `POST /`: the page's form.
pub fn create_from_form(req: &Request, ctx: &mut Context) -> Result<Redirect> {
    let form: NewNote = req.form()?;
    let author = user(ctx)?.ok_or_else(Error::unauthorized)?;
    add(ctx, &form.text, author)?;
    Ok(Redirect::to(home(req)))
}

/// `POST /login`.
pub fn login(req: &Request, ctx: &mut Context) -> Result<Redirect> {
    let form: Login = req.form()?;
    let Some(password) = &ctx.state::<Config>().password else {
        return Err(Error::new(
            403,
            "login is disabled: set `password` in [plugin.notes]",
        ));
    };
    let user = form.user.trim();
    if user.is_empty() || form.password != *password {
        return Err(Error::new(401, "wrong user name or password"));
    }
    ctx.session().set(USER, user)?;
    // A new id for the logged-in session, so that an id someone planted
    // in this browser before (session fixation) opens nothing.
    ctx.session().regenerate()?;
    Ok(Redirect::to(home(req)))
}

/// `POST /logout`: the session's data is deleted and its cookie expired,
/// not just the user forgotten.
pub fn logout(req: &Request, ctx: &mut Context) -> Result<Redirect> {
    ctx.session().destroy()?;
    Ok(Redirect::to(home(req)))
}

/// `GET /theme/{name}`: a year-long preference cookie.
pub fn set_theme(req: &Request, _ctx: &mut Context) -> Result<Response> {
    let theme = page::Theme::parse(req.param("name").unwrap_or(""))
        .ok_or_else(|| Error::bad_request("the theme is `light` or `dark`"))?;
    let cookie = Cookie::new("theme", theme.name())
        .path(home(req))
        .max_age(std::time::Duration::from_secs(365 * 24 * 3600));
    Ok(Redirect::to(home(req)).into_response().with_cookie(cookie))
}

/// `GET /export`: every note as a text file.
pub fn export(_req: &Request, ctx: &mut Context) -> Result<Response> {
    let text: String = all_notes(ctx)?
        .iter()
        .map(|n| format!("#{} by {}\n{}\n\n", n.id, n.author, n.text))
        .collect();
    Ok(Response::text(text)
        .with_header("Content-Disposition", "attachment; filename=\"notes.txt\""))
}

/// `GET /api/notes`.
pub fn list(_req: &Request, ctx: &mut Context) -> Result<Json<Vec<Note>>> {
    Ok(Json(all_notes(ctx)?))
}

/// `POST /api/notes`.
pub fn create(req: &Request, ctx: &mut Context) -> Result<Response> {
    let new: NewNote = req.json()?;
    let author = user(ctx)?.ok_or_else(Error::unauthorized)?;
    let note = add(ctx, &new.text, author)?;
    let location = format!("{}/api/notes/{}", req.script_name(), note.id);
    Ok(Response::json(&note)
        .with_status(201)
        .with_header("Location", location))
}

/// `GET /api/notes/{id}`.
pub fn show(req: &Request, ctx: &mut Context) -> Result<Json<Note>> {
    let id = req.param("id").unwrap_or_default();
    find(ctx, id)?.map(Json).ok_or_else(Error::not_found)
}

/// `DELETE /api/notes/{id}`.
pub fn delete(req: &Request, ctx: &mut Context) -> Result<()> {
    let id = req.param("id").unwrap_or_default();
    let id = id.parse().map_err(|_| Error::not_found())?;
    if ctx.store().delete(&note_key(id))? {
        Ok(())
    } else {
        Err(Error::not_found())
    }
}

drupe_sdk::plugin! {
    name: "notes",
    init: init,
    state: Config,
    layers: [require_login],
    routes: [
        GET "/" => index,
        POST "/" => create_from_form,
        POST "/login" => login,
        POST "/logout" => logout,
        GET "/theme/{name}" => set_theme,
        GET "/export" => export,
        GET "/api/notes" => list,
        POST "/api/notes" => create,
        GET "/api/notes/{id}" => show,
        DELETE "/api/notes/{id}" => delete,
    ],
}

#[cfg(test)]
mod tests;
