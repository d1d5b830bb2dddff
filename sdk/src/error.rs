//! The error a handler returns, and how it becomes a response.
//!
//! An [`Error`] is an HTTP status (4xx or 5xx) plus a message. For a client
//! error the message is the response body, so write it for the client: say
//! what was wrong with the request. For a server error the client only sees
//! the reason phrase (`Service Unavailable`); the message goes to the host's
//! error log, so it may name internals.
//!
//! The body is `text/plain`, or JSON (`{"error": "…", "status": 404}`)
//! when the request's `Accept` ranks `application/json` above `text/html`,
//! so an API client gets JSON and a browser text, from the same `?`.

use std::fmt;

/// Shorthand for a handler's result: `Result<Response>` means
/// `std::result::Result<Response, drupe_sdk::Error>`.
///
/// ```
/// use drupe_sdk::{Response, Result};
/// fn answer() -> Result<Response> {
///     Ok(Response::text("42"))
/// }
/// assert_eq!(answer().map(|r| r.status()).ok(), Some(200));
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed request: an HTTP status and a message.
///
/// Return it from a handler with `?` or `Err(..)`; the SDK answers with the
/// status and a `text/plain` body (see the module docs for what the body
/// holds).
///
/// ```
/// use drupe_sdk::Error;
///
/// let e = Error::bad_request("`count` must be a number");
/// assert_eq!(e.status(), 400);
/// assert_eq!(e.message(), "`count` must be a number");
///
/// let e: Error = "x7".parse::<u32>().unwrap_err().into();
/// assert_eq!(e.status(), 400);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: u16,
    message: String,
}

impl Error {
    /// An error with the given status and message.
    ///
    /// A status outside 400–599 is not an error status; it becomes 500, so
    /// a mistake here can never send a success to the client.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// let e = Error::new(409, "that name is taken");
    /// assert_eq!((e.status(), e.message()), (409, "that name is taken"));
    /// ```
    pub fn new(status: u16, message: impl Into<String>) -> Error {
        let status = if (400..=599).contains(&status) {
            status
        } else {
            500
        };
        Error {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request: the client sent something the handler cannot use.
    /// The message is sent to the client.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// assert_eq!(Error::bad_request("`n` must be a number").status(), 400);
    /// ```
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(400, message)
    }

    /// 401 Unauthorized, with the body `Unauthorized`: the request needs a
    /// login it does not have.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// assert_eq!(Error::unauthorized().status(), 401);
    /// ```
    pub fn unauthorized() -> Error {
        Error::new(401, "Unauthorized")
    }

    /// 403 Forbidden, with the body `Forbidden`: the visitor is known but
    /// may not do this.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// assert_eq!(Error::forbidden().status(), 403);
    /// ```
    pub fn forbidden() -> Error {
        Error::new(403, "Forbidden")
    }

    /// 404 Not Found, with the body `Not Found`.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// assert_eq!(Error::not_found().status(), 404);
    /// ```
    pub fn not_found() -> Error {
        Error::new(404, "Not Found")
    }

    /// 500 Internal Server Error. The message goes to the host log only.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// let e = Error::internal("index file missing");
    /// assert!(e.is_server_error() && e.status() == 500);
    /// ```
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(500, message)
    }

    /// 503 Service Unavailable, for a dependency (such as the store) that
    /// cannot be reached right now. The message goes to the host log only.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// assert_eq!(Error::unavailable("payment service down").status(), 503);
    /// ```
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(503, message)
    }

    /// The HTTP status, always in 400–599.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// assert_eq!(Error::not_found().status(), 404);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message as given to the constructor.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// assert_eq!(Error::bad_request("no name").message(), "no name");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether this is a 5xx error, whose message is logged rather than
    /// sent.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// assert!(Error::internal("x").is_server_error());
    /// assert!(!Error::not_found().is_server_error());
    /// ```
    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }

    /// What the client sees as the body: the message for 4xx, the reason
    /// phrase for 5xx.
    pub(crate) fn public_text(&self) -> &str {
        if self.is_server_error() {
            match crate::reason_phrase(self.status) {
                "" => "Server Error",
                phrase => phrase,
            }
        } else {
            &self.message
        }
    }
}

/// How `Accept` ranks a media type: the q-value of the most specific range
/// that matches it (RFC 9110 §12.5.1), 0 when none does. Without an
/// `Accept` header everything ranks 1.
fn accept_quality(accept: Option<&str>, kind: &str, subtype: &str) -> f32 {
    let Some(accept) = accept else { return 1.0 };
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let Some((t, s)) = media.split_once('/') else {
            continue;
        };
        let specificity = match (t.trim(), s.trim()) {
            (t, s) if t.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype) => 2,
            (t, "*") if t.eq_ignore_ascii_case(kind) => 1,
            ("*", "*") => 0,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(seen, _)| specificity > seen) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// Whether a client with this `Accept` header wants JSON rather than text:
/// it ranks `application/json` strictly above `text/html`.
pub(crate) fn prefers_json(accept: Option<&str>) -> bool {
    accept.is_some()
        && accept_quality(accept, "application", "json") > accept_quality(accept, "text", "html")
}

/// `s` as a JSON string literal, quotes included.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Error {
    /// The response for this error as an answer to `req`: JSON when the
    /// client prefers it (see the module docs), `text/plain` otherwise.
    pub(crate) fn into_response_for(self, req: &crate::Request<'_>) -> crate::Response {
        if prefers_json(req.header("accept")) {
            let body = format!(
                "{{\"error\":{},\"status\":{}}}",
                json_string(self.public_text()),
                self.status
            );
            crate::Response::bytes(body)
                .with_content_type("application/json")
                .with_status(self.status)
        } else {
            crate::Response::from(self)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::num::ParseIntError> for Error {
    /// A number in the request did not parse: 400.
    fn from(e: std::num::ParseIntError) -> Error {
        Error::bad_request(format!("invalid number: {e}"))
    }
}

impl From<std::str::Utf8Error> for Error {
    /// Text in the request was not UTF-8: 400.
    fn from(e: std::str::Utf8Error) -> Error {
        Error::bad_request(format!("invalid UTF-8: {e}"))
    }
}

impl From<std::io::Error> for Error {
    /// An I/O error (reading a body, a file, a stream): 500, the message
    /// in the log only. A handler that can tell the client's fault from
    /// its own maps the error itself.
    ///
    /// ```
    /// use drupe_sdk::Error;
    /// let e = Error::from(std::io::Error::other("disk on fire"));
    /// assert_eq!(e.status(), 500);
    /// ```
    fn from(e: std::io::Error) -> Error {
        Error::internal(format!("I/O error: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_only_when_ranked_above_html() {
        assert!(!prefers_json(None));
        assert!(prefers_json(Some("application/json")));
        assert!(!prefers_json(Some("*/*")));
        assert!(!prefers_json(Some(
            "text/html,application/xhtml+xml,*/*;q=0.8"
        )));
        assert!(prefers_json(Some("application/json, text/html;q=0.9")));
        assert!(!prefers_json(Some("application/json;q=0.5, text/html")));
        assert!(prefers_json(Some("application/*, text/*;q=0.2")));
        assert!(!prefers_json(Some("text/html, application/json")));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\\n\u{1}"), r#""a\"b\\\n\u0001""#);
    }

    #[test]
    fn status_outside_error_range_becomes_500() {
        assert_eq!(Error::new(200, "ok?").status(), 500);
        assert_eq!(Error::new(302, "redirect?").status(), 500);
        assert_eq!(Error::new(418, "teapot").status(), 418);
    }

    #[test]
    fn server_error_text_hides_the_message() {
        let e = Error::unavailable("redis at 10.0.0.7:6379 refused");
        assert_eq!(e.status(), 503);
        assert_eq!(e.public_text(), "Service Unavailable");
        assert_eq!(Error::bad_request("no").public_text(), "no");
    }

    #[test]
    fn conversions_are_client_errors() {
        let e: Error = "abc".parse::<u64>().map_err(Error::from).unwrap_err();
        assert_eq!(e.status(), 400);
        let utf8 = String::from_utf8(vec![b'a', 0xff])
            .unwrap_err()
            .utf8_error();
        assert_eq!(Error::from(utf8).status(), 400);
    }
}
