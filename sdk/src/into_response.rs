//! What a handler may return: anything that implements [`IntoResponse`],
//! as in axum, but synchronous.
//!
//! `plugin!` wraps every handler in a small function of the one type the
//! route table holds (`fn(&Request, &mut Context) -> Result<Response>`),
//! which calls [`IntoResponse::into_result`]. An [`Error`] stays an error
//! until the SDK sends it, so layers see it and the shim can answer in the
//! format the client asked for (see [`Error`]). For a handler that already
//! returns `Result<Response>` the wrapper changes nothing and costs nothing.

use crate::error::{Error, Result};
use crate::response::Response;

/// A value a handler can return.
///
/// Implemented for [`Response`], `&'static str` and `String`
/// (`text/plain; charset=utf-8`), `Vec<u8>` (`application/octet-stream`),
/// [`Json`], [`Html`], [`Redirect`], `()` (204), `(u16, T)` (the status,
/// then `T`'s response), [`Error`], and `Result<T, E>` where `T` is one of
/// these and `E` converts into [`Error`].
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::TestRequest;
///
/// fn created(_req: &Request, _ctx: &mut Context) -> (u16, &'static str) {
///     (201, "made it")
/// }
/// fn maybe(req: &Request, _ctx: &mut Context) -> Result<String> {
///     let n: u32 = req.query_param("n").unwrap_or_default().parse()?;
///     Ok(format!("n = {n}"))
/// }
///
/// drupe_sdk::plugin! {
///     name: "demo",
///     routes: [
///         POST "/" => created,
///         GET "/n" => maybe,
///     ],
/// }
///
/// let app = drupe_sdk::testing::TestApp::new();
/// let resp = app.call(TestRequest::post("/", ""));
/// assert_eq!((resp.status(), resp.body_text().as_ref()), (201, "made it"));
/// assert_eq!(app.call(TestRequest::get("/n?n=4")).body_text(), "n = 4");
/// assert_eq!(app.call(TestRequest::get("/n?n=x")).status(), 400);
/// ```
///
/// Your own types can implement it too:
///
/// ```
/// use drupe_sdk::prelude::*;
///
/// struct Teapot;
/// impl IntoResponse for Teapot {
///     fn into_response(self) -> Response {
///         Response::text("short and stout").with_status(418)
///     }
/// }
/// assert_eq!(Teapot.into_response().status(), 418);
/// ```
pub trait IntoResponse {
    /// The response to send.
    fn into_response(self) -> Response;

    /// The response, or the [`Error`] to send in its place. The SDK calls
    /// this rather than [`into_response`](IntoResponse::into_response), so
    /// that an error reaches layers and is answered as the request's
    /// `Accept` asks; only `Result` and `Error` (and wrappers of them)
    /// need to change it.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// let r: Result<Response> = Err(Error::not_found());
    /// assert_eq!(r.into_result().unwrap_err().status(), 404);
    /// ```
    fn into_result(self) -> Result<Response>
    where
        Self: Sized,
    {
        Ok(self.into_response())
    }
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

impl IntoResponse for () {
    /// 204 No Content.
    fn into_response(self) -> Response {
        Response::new(204)
    }
}

impl IntoResponse for Error {
    /// The `text/plain` response; the SDK itself uses
    /// [`into_result`](IntoResponse::into_result) and honours `Accept`.
    fn into_response(self) -> Response {
        Response::from(self)
    }

    fn into_result(self) -> Result<Response> {
        Err(self)
    }
}

impl<T: IntoResponse> IntoResponse for (u16, T) {
    /// `T`'s response with this status (the host answers 500 for a status
    /// outside 100–999).
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }

    fn into_result(self) -> Result<Response> {
        let (status, body) = self;
        body.into_result().map(|r| r.with_status(status))
    }
}

impl<T: IntoResponse, E: Into<Error>> IntoResponse for std::result::Result<T, E> {
    fn into_response(self) -> Response {
        self.into_result().unwrap_or_else(Response::from)
    }

    fn into_result(self) -> Result<Response> {
        self.map_err(Into::into).and_then(IntoResponse::into_result)
    }
}

/// A JSON body: `Json(value)` answers 200 `application/json`.
///
/// A value that cannot be serialised is a 500 (logged), not a panic.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::TestRequest;
///
/// #[derive(serde::Serialize)]
/// struct Note { id: u64, text: String }
///
/// fn show(_req: &Request, _ctx: &mut Context) -> Json<Note> {
///     Json(Note { id: 1, text: "tea".into() })
/// }
///
/// drupe_sdk::plugin! { name: "notes", routes: [GET "/" => show] }
///
/// let resp = drupe_sdk::testing::TestApp::new().call(TestRequest::get("/"));
/// assert_eq!(resp.header("content-type"), Some("application/json"));
/// assert_eq!(resp.body_text(), r#"{"id":1,"text":"tea"}"#);
/// ```
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

#[cfg(feature = "serde")]
impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        Response::json(&self.0)
    }

    fn into_result(self) -> Result<Response> {
        Response::try_json(&self.0)
    }
}

/// An HTML body: `Html(text)` answers 200 `text/html; charset=utf-8`.
/// Nothing is escaped for you: escape what users typed before it goes
/// into the page.
///
/// ```
/// use drupe_sdk::prelude::*;
/// let resp = Html("<h1>Notes</h1>").into_response();
/// assert_eq!(resp.header("content-type"), Some("text/html; charset=utf-8"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Html<T>(pub T);

impl<T: Into<String>> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        Response::html(self.0)
    }
}

/// A redirect: an empty response with a status and `Location`.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::TestRequest;
///
/// fn save(_req: &Request, _ctx: &mut Context) -> Redirect {
///     // After a form POST, send the browser to a page it may reload.
///     Redirect::to("/notes")
/// }
///
/// let resp = TestRequest::post("/", "").call(|req, ctx| Ok(save(req, ctx).into_response()));
/// assert_eq!((resp.status(), resp.header("location")), (303, Some("/notes")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    status: u16,
    location: String,
}

impl Redirect {
    /// 303 See Other: the browser fetches `location` with `GET`, the
    /// answer to a form post.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// assert_eq!(Redirect::to("/").into_response().status(), 303);
    /// ```
    pub fn to(location: &str) -> Redirect {
        Redirect::with_status(303, location)
    }

    /// 307 Temporary Redirect: the same request again at `location`, this
    /// time only.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// assert_eq!(Redirect::temporary("/b").into_response().status(), 307);
    /// ```
    pub fn temporary(location: &str) -> Redirect {
        Redirect::with_status(307, location)
    }

    /// 308 Permanent Redirect: the same request at `location`, from now on.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// assert_eq!(Redirect::permanent("/new").into_response().status(), 308);
    /// ```
    pub fn permanent(location: &str) -> Redirect {
        Redirect::with_status(308, location)
    }

    fn with_status(status: u16, location: &str) -> Redirect {
        Redirect {
            status,
            location: location.to_owned(),
        }
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        Response::new(self.status).with_header("Location", self.location)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_get_their_content_types() {
        let ct = |r: Response| r.header("content-type").map(str::to_owned);
        assert_eq!(
            ct("a".into_response()).as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            ct(String::from("a").into_response()).as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            ct(vec![1u8].into_response()).as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(
            ct(Html(String::new()).into_response()).as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(().into_response().status(), 204);
    }

    #[test]
    fn errors_stay_errors_until_sent() {
        let r: std::result::Result<&str, std::num::ParseIntError> = "x".parse::<u8>().map(|_| "ok");
        assert_eq!(r.into_result().unwrap_err().status(), 400);
        let r = (201, Err::<&str, _>(Error::forbidden()));
        assert_eq!(r.into_result().unwrap_err().status(), 403);
        assert_eq!((201, "x").into_result().unwrap().status(), 201);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn unserialisable_json_is_a_500_not_a_panic() {
        use std::collections::BTreeMap;
        let bad = BTreeMap::from([((1, 2), 3)]);
        assert_eq!(Json(&bad).into_result().unwrap_err().status(), 500);
        assert_eq!(Response::json(&bad).status(), 500);
    }
}
