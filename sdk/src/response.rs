//! The response a handler returns.
//!
//! A [`Response`] is plain owned data. The SDK hands it to the host after
//! the handler returns (the host copies it), so a handler never touches the
//! boundary. The host adds `Content-Length`, `Date` and `Connection` itself
//! and refuses a header name that is not a token or a value holding CR, LF
//! or NUL; such a response becomes a 500.

use std::borrow::Cow;

use crate::cookie::Cookie;
use crate::error::Error;

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const OCTETS: &str = "application/octet-stream";
pub(crate) const JSON: &str = "application/json";

/// An HTTP response: status, headers in order, body.
///
/// ```
/// use drupe_sdk::Response;
///
/// let resp = Response::text("created")
///     .with_status(201)
///     .with_header("Location", "/items/7");
/// assert_eq!(resp.status(), 201);
/// assert_eq!(resp.header("location"), Some("/items/7"));
/// assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
/// assert_eq!(resp.body_text(), "created");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Cookies to set, written as `Set-Cookie` headers when the response
    /// is sent: only then is the request's scheme known, which decides
    /// `Secure`.
    cookies: Vec<Cookie>,
}

impl Response {
    /// An empty response with the given status and no headers.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// let resp = Response::new(204);
    /// assert_eq!((resp.status(), resp.body()), (204, &b""[..]));
    /// ```
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            cookies: Vec::new(),
        }
    }

    /// 200 with `Content-Type: text/plain; charset=utf-8`.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// assert_eq!(Response::text("hi").header("content-type"), Some("text/plain; charset=utf-8"));
    /// ```
    pub fn text(body: impl Into<String>) -> Response {
        Response::with_body(TEXT, body.into().into_bytes())
    }

    /// 200 with `Content-Type: text/html; charset=utf-8`. The SDK does not
    /// escape anything: building safe HTML is up to the handler.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// assert_eq!(Response::html("<p>hi</p>").header("content-type"), Some("text/html; charset=utf-8"));
    /// ```
    pub fn html(body: impl Into<String>) -> Response {
        Response::with_body(HTML, body.into().into_bytes())
    }

    /// 200 with `Content-Type: application/octet-stream`; change it with
    /// [`with_content_type`](Response::with_content_type).
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// let resp = Response::bytes(vec![0u8, 255]);
    /// assert_eq!(resp.header("content-type"), Some("application/octet-stream"));
    /// ```
    pub fn bytes(body: impl Into<Vec<u8>>) -> Response {
        Response::with_body(OCTETS, body.into())
    }

    fn with_body(content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body,
            cookies: Vec::new(),
        }
    }

    /// 200 with `Content-Type: application/json` and `value` serialised.
    /// A value that cannot be serialised (a map with non-string keys, a
    /// failing `Serialize`) gives a 500 and a line in the host's log, not
    /// a panic.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// use std::collections::BTreeMap;
    ///
    /// let resp = Response::json(&BTreeMap::from([("id", 7)]));
    /// assert_eq!(resp.header("content-type"), Some("application/json"));
    /// assert_eq!(resp.body_text(), r#"{"id":7}"#);
    /// ```
    #[cfg(feature = "serde")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response {
        Response::try_json(value).unwrap_or_else(|e| {
            log::error!("{e}");
            Response::from(e)
        })
    }

    /// [`Response::json`] with the serialisation failure as a 500 [`Error`].
    #[cfg(feature = "serde")]
    pub(crate) fn try_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Response, Error> {
        serde_json::to_vec(value)
            .map(|body| Response::with_body(JSON, body))
            .map_err(|e| Error::internal(format!("serialising a JSON response: {e}")))
    }

    /// Replaces the status. The host answers 500 instead of a status
    /// outside 100–999.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// assert_eq!(Response::text("gone").with_status(410).status(), 410);
    /// ```
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Adds a header; a name may repeat (`Set-Cookie`).
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// let resp = Response::new(302).with_header("Location", "/login");
    /// assert_eq!(resp.header("location"), Some("/login"));
    /// ```
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a cookie: one `Set-Cookie` header, written when the response is
    /// sent (with `Secure` if the request came over https, unless the
    /// cookie says `.secure(false)`).
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::TestRequest;
    ///
    /// fn dark(_req: &Request, _ctx: &mut Context) -> Result<Response> {
    ///     Ok(Response::text("ok").with_cookie(Cookie::new("theme", "dark")))
    /// }
    /// let resp = TestRequest::get("/").call(dark);
    /// assert_eq!(resp.header("set-cookie"), Some("theme=dark; HttpOnly; SameSite=Lax; Path=/"));
    /// ```
    #[must_use]
    pub fn with_cookie(mut self, cookie: Cookie) -> Response {
        self.cookies.push(cookie);
        self
    }

    /// The response as it goes out for a request of that scheme: cookies
    /// become `Set-Cookie` headers. Free when there are none.
    pub(crate) fn finish(mut self, https: bool) -> Response {
        for cookie in std::mem::take(&mut self.cookies) {
            self.headers
                .push(("Set-Cookie".to_owned(), cookie.render(https)));
        }
        self
    }

    /// Sets `Content-Type`, replacing any there was.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// let resp = Response::text("{}").with_content_type("application/json");
    /// assert_eq!(resp.header("content-type"), Some("application/json"));
    /// ```
    #[must_use]
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Response {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
        self.with_header("Content-Type", content_type)
    }

    /// The status.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// assert_eq!(Response::text("ok").status(), 200);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header of that name, compared ignoring ASCII case.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// assert_eq!(Response::new(200).with_header("X-A", "1").header("x-a"), Some("1"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers in the order they were added.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// let resp = Response::new(200).with_header("A", "1").with_header("B", "2");
    /// assert_eq!(resp.headers().collect::<Vec<_>>(), [("A", "1"), ("B", "2")]);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The body.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// assert_eq!(Response::text("hi").body(), b"hi");
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text, invalid UTF-8 replaced by `U+FFFD`; meant for
    /// assertions in tests.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// assert_eq!(Response::bytes(b"hi".to_vec()).body_text(), "hi");
    /// ```
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl From<Error> for Response {
    /// The response the SDK sends for a handler's `Err`: the error's status,
    /// `text/plain`, and the message (4xx) or the reason phrase (5xx).
    fn from(e: Error) -> Response {
        Response::text(e.public_text()).with_status(e.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_is_replaced_not_repeated() {
        let r = Response::bytes(vec![1, 2]).with_content_type("image/png");
        assert_eq!(r.headers().count(), 1);
        assert_eq!(r.header("Content-Type"), Some("image/png"));
    }

    #[test]
    fn error_response_hides_server_error_detail() {
        let r = Response::from(Error::internal("db password wrong"));
        assert_eq!(r.status(), 500);
        assert_eq!(r.body_text(), "Internal Server Error");
        let r = Response::from(Error::bad_request("bad id"));
        assert_eq!((r.status(), r.body_text().as_ref()), (400, "bad id"));
    }

    #[test]
    fn new_is_empty() {
        let r = Response::new(204);
        assert_eq!(r.status(), 204);
        assert!(r.body().is_empty());
        assert_eq!(r.headers().count(), 0);
    }
}
