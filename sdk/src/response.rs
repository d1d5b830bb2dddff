//! The response a handler returns.
//!
//! A [`Response`] is plain owned data. The SDK hands it to the host after
//! the handler returns (the host copies it), so a handler never touches the
//! boundary. The host adds `Content-Length`, `Date` and `Connection` itself
//! and refuses a header name that is not a token or a value holding CR, LF
//! or NUL; such a response becomes a 500.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::body_source::{Source, Stream};
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
    /// A file or a reader instead of `body` (which is then empty).
    source: Option<Source>,
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
            source: None,
        }
    }

    /// 200 with the file at `path` as the body, sent by the host straight
    /// from the file (`sendfile(2)`), never through the plugin's memory.
    ///
    /// The host opens the file once the handler has returned and adds
    /// `Content-Type` (guessed from the extension, unless you set one),
    /// `Last-Modified`, a strong `ETag` and `Accept-Ranges: bytes`. It
    /// answers `If-None-Match` / `If-Modified-Since` with 304, one byte
    /// range (`Range: bytes=0-99`) with 206 and an unsatisfiable one with
    /// 416; HEAD reads nothing. A file that does not exist, or is not a
    /// regular file, is a 404; one the worker may not read is a 403. Your
    /// other headers (`Cache-Control`, `Content-Disposition`, cookies) are
    /// kept. A relative path is relative to the worker's current
    /// directory; the handler decides which paths are safe to serve.
    ///
    /// On a host older than ABI 1.4 the SDK reads the file into the body
    /// itself instead (same 404 / 403, no ranges or validators), so the
    /// plugin still works, at the cost of memory.
    ///
    /// ```
    /// use drupe_sdk::Response;
    ///
    /// let resp = Response::file("reports/2024.pdf").with_header("Cache-Control", "max-age=60");
    /// assert_eq!(resp.file_path(), Some(std::path::Path::new("reports/2024.pdf")));
    /// assert!(resp.body().is_empty()); // the host sends the bytes
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> Response {
        Response {
            source: Some(Source::File(path.into())),
            ..Response::new(200)
        }
    }

    /// 200 `application/octet-stream` whose body is what `reader` yields,
    /// sent chunked as the client takes it: the whole body is never in
    /// memory, and a slow client holds no thread. At most one buffer
    /// (64 KiB) per connection is read ahead.
    ///
    /// `read` runs on a worker thread after the handler has returned,
    /// whenever the client can take more. A `read` that blocks (a pipe, a
    /// socket) is allowed: the worker hands its event loop to another
    /// thread, as for a handler that blocks, but it keeps that thread, so
    /// prefer readers that are quick. An error or a panic in `read` ends
    /// the response early (the client sees a truncated chunked body) and is
    /// logged. `requestTimeout` does not apply to the stream; `sendTimeout`
    /// does (a client that stops reading is cut).
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// use std::io::Read;
    ///
    /// // A million zero bytes, never held in memory at once.
    /// let resp = Response::stream(std::io::repeat(0).take(1_000_000))
    ///     .with_content_type("application/zip");
    /// assert_eq!(resp.header("content-type"), Some("application/zip"));
    /// assert_eq!(resp.read_body().unwrap().len(), 1_000_000);
    /// ```
    pub fn stream(reader: impl Read + Send + 'static) -> Response {
        Response {
            source: Some(Source::Stream(Stream::new(reader, None))),
            ..Response::bytes(Vec::new())
        }
    }

    /// Like [`stream`](Response::stream), but with a known length, sent as
    /// `Content-Length` instead of chunked (clients show progress). The
    /// reader must yield exactly `len` bytes: if it ends early the host
    /// closes the connection (the client sees a truncated body), and
    /// bytes past `len` are not sent.
    ///
    /// ```
    /// use drupe_sdk::Response;
    ///
    /// let data = std::io::Cursor::new(vec![7u8; 4096]);
    /// let resp = Response::stream_sized(data, 4096);
    /// assert_eq!(resp.read_body().unwrap(), vec![7u8; 4096]);
    /// ```
    pub fn stream_sized(reader: impl Read + Send + 'static, len: u64) -> Response {
        Response {
            source: Some(Source::Stream(Stream::new(reader, Some(len)))),
            ..Response::bytes(Vec::new())
        }
    }

    /// The file a [`Response::file`] sends, if it is one.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// assert_eq!(Response::text("x").file_path(), None);
    /// assert!(Response::file("a.txt").file_path().is_some());
    /// ```
    pub fn file_path(&self) -> Option<&Path> {
        match &self.source {
            Some(Source::File(path)) => Some(path),
            _ => None,
        }
    }

    /// The whole body, whatever its source: the bytes, the file's content,
    /// or what the stream yields (which takes the reader: a second call,
    /// or a clone's, reads an empty stream). Meant for tests; a worker
    /// never calls it.
    ///
    /// ```
    /// use drupe_sdk::Response;
    /// assert_eq!(Response::text("hi").read_body().unwrap(), b"hi");
    /// assert!(Response::file("/no/such/file").read_body().is_err());
    /// ```
    pub fn read_body(&self) -> std::io::Result<Vec<u8>> {
        match &self.source {
            None => Ok(self.body.clone()),
            Some(Source::File(path)) => std::fs::read(path),
            Some(Source::Stream(stream)) => {
                let mut body = Vec::new();
                if let Some(mut reader) = stream.take() {
                    reader.read_to_end(&mut body)?;
                }
                Ok(body)
            }
        }
    }

    /// Where the body comes from when it is not `body`.
    pub(crate) fn source(&self) -> Option<&Source> {
        self.source.as_ref()
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
            source: None,
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

    /// The body in memory; empty for a [`file`](Response::file) or a
    /// [`stream`](Response::stream) (see [`read_body`](Response::read_body)).
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
