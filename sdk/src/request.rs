//! The request a handler reads: a safe view of the host's [`abi::Request`].
//!
//! All request data stays where the host put it; [`Request`] borrows it for
//! the length of the call and hands out `&str`/`&[u8]` without copying.
//! This is the one place in the SDK that turns the boundary's raw pointers
//! into slices (see [`Request::from_raw`]); every accessor goes through the
//! two helpers `bytes` and `pairs`.
//!
//! Text that is not valid UTF-8 (a client may send any bytes in the path or
//! a header) cannot be shown as `&str` without allocating. Such a method,
//! target or path reads as `""`, such a header or parameter as absent; the
//! raw bytes stay available through [`Request::header_bytes`] and
//! [`Request::body`]. Nothing here panics on client input.

#![allow(unsafe_code)] // raw boundary pointers become slices here, in one place

use std::borrow::Cow;
use std::fmt;

use crate::abi::{self, Bytes, KeyValue};
use crate::error::Error;

/// Reads a request's body: from memory, or from the host's temporary file
/// for a large one. Made by [`Request::body_reader`].
///
/// ```
/// # use drupe_sdk::prelude::*;
/// # use drupe_sdk::testing::TestRequest;
/// use std::io::Read;
///
/// let resp = TestRequest::post("/", "hello").call(|req, _ctx| {
///     let mut text = String::new();
///     req.body_reader().read_to_string(&mut text)?;
///     Ok(Response::text(text.to_uppercase()))
/// });
/// assert_eq!(resp.body_text(), "HELLO");
/// ```
#[derive(Debug)]
pub struct BodyReader<'a> {
    /// The body (in memory, or mapped from the file).
    body: &'a [u8],
    /// The host's file holding the body, or -1: read with `pread`, so
    /// only the caller's buffer is ever resident.
    fd: i32,
    at: usize,
}

impl std::io::Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.body.len().saturating_sub(self.at);
        let want = buf.len().min(rest);
        if want == 0 {
            return Ok(0);
        }
        let n = if self.fd >= 0 {
            use std::os::unix::fs::FileExt;
            use std::os::unix::io::FromRawFd;
            // SAFETY: the host keeps `fd` open for the call (`'a`); the
            // `File` is never dropped (so never closes it), and `read_at`
            // leaves the descriptor's offset alone.
            let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(self.fd) });
            file.read_at(&mut buf[..want], self.at as u64)?
        } else {
            buf[..want].copy_from_slice(&self.body[self.at..self.at + want]);
            want
        };
        self.at += n;
        Ok(n)
    }
}

/// An HTTP request, borrowed for the duration of one handler call.
///
/// Paths follow the WSGI split: a plugin mounted at `/hello` that receives
/// `GET /hello/bob?x=1` sees `script_name() == "/hello"`,
/// `path_info() == "/bob"` and `query() == "x=1"`.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::TestRequest;
///
/// fn show(req: &Request, _ctx: &mut Context) -> Result<Response> {
///     let page: u32 = req.query_param("page").as_deref().unwrap_or("1").parse()?;
///     let agent = req.header("user-agent").unwrap_or("?");
///     Ok(Response::text(format!("{} page {page} for {agent}", req.path())))
/// }
///
/// let resp = TestRequest::get("/items?page=2")
///     .mount("/shop")
///     .header("User-Agent", "curl")
///     .call(show);
/// assert_eq!(resp.body_text(), "/shop/items page 2 for curl");
/// ```
pub struct Request<'a> {
    /// Invariant (established by [`Request::from_raw`]): every pointer in
    /// `raw` is valid for `'a` as the boundary promises.
    raw: &'a abi::Request,
}

impl<'a> Request<'a> {
    /// Wraps a request handed over by the host.
    ///
    /// # Safety
    /// Every [`Bytes`] in `raw`, and the `headers`/`params` arrays with the
    /// `Bytes` inside them, must point to initialised memory that stays
    /// valid and unmodified for `'a` (a null pointer is tolerated and reads
    /// as empty). `raw` must be a whole request of this SDK's ABI: a
    /// shorter one from an older host is first copied into a whole one
    /// (the shim does that), so every field can be read.
    pub(crate) unsafe fn from_raw(raw: &'a abi::Request) -> Request<'a> {
        Request { raw }
    }

    /// The bytes behind one field of the request.
    fn bytes(&self, b: Bytes) -> &'a [u8] {
        if b.ptr.is_null() {
            return &[];
        }
        // SAFETY: `b` is a field of `self.raw` (or of an array in it), which
        // the `from_raw` contract keeps valid for `'a`; null is ruled out.
        unsafe { b.as_slice() }
    }

    /// A `headers` or `params` array.
    fn pairs(&self, ptr: *const KeyValue, len: usize) -> &'a [KeyValue] {
        if ptr.is_null() || len == 0 {
            return &[];
        }
        // SAFETY: `ptr`/`len` come from `self.raw`, which the `from_raw`
        // contract keeps valid for `'a`; null and empty are ruled out.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    fn str(&self, b: Bytes) -> &'a str {
        std::str::from_utf8(self.bytes(b)).unwrap_or("")
    }

    /// The method token (`GET`, `POST`, …).
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::new("PUT", "/").call(|req, _ctx| Ok(Response::text(req.method())));
    /// assert_eq!(resp.body_text(), "PUT");
    /// ```
    pub fn method(&self) -> &'a str {
        self.str(self.raw.method)
    }

    /// The request target exactly as received, query included
    /// (`/hello/bob?x=1`); `""` if it is not UTF-8.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/a?x=1").mount("/shop").call(|req, _ctx| Ok(Response::text(req.target())));
    /// assert_eq!(resp.body_text(), "/shop/a?x=1");
    /// ```
    pub fn target(&self) -> &'a str {
        self.str(self.raw.target)
    }

    /// The full path: [`script_name`](Request::script_name) followed by
    /// [`path_info`](Request::path_info), without the query. Allocates only
    /// when the plugin is not mounted at `/`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/a?x=1").mount("/shop").call(|req, _ctx| Ok(Response::text(req.path())));
    /// assert_eq!(resp.body_text(), "/shop/a");
    /// ```
    pub fn path(&self) -> Cow<'a, str> {
        let (mount, rest) = (self.script_name(), self.path_info());
        if mount.is_empty() {
            Cow::Borrowed(rest)
        } else {
            Cow::Owned(format!("{mount}{rest}"))
        }
    }

    /// The plugin's mount point (`/hello`); `""` when mounted at `/`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/items").mount("/shop").call(|req, _ctx| Ok(Response::text(req.script_name())));
    /// assert_eq!(resp.body_text(), "/shop");
    /// ```
    pub fn script_name(&self) -> &'a str {
        self.str(self.raw.script_name)
    }

    /// The path below the mount point, starting with `/` (`/bob`).
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/items").mount("/shop").call(|req, _ctx| Ok(Response::text(req.path_info())));
    /// assert_eq!(resp.body_text(), "/items");
    /// ```
    pub fn path_info(&self) -> &'a str {
        self.str(self.raw.path_info)
    }

    /// The query string without `?`, undecoded; `""` if none.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/?q=tea&page=2").call(|req, _ctx| Ok(Response::text(req.query())));
    /// assert_eq!(resp.body_text(), "q=tea&page=2");
    /// ```
    pub fn query(&self) -> &'a str {
        self.str(self.raw.query)
    }

    /// The first query parameter called `name`, percent-decoded with `+` as
    /// space (HTML form encoding). Invalid escapes are kept as they are;
    /// decoded bytes that are not UTF-8 become `U+FFFD`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/?q=green+tea").call(|req, _ctx| {
    ///     Ok(Response::text(req.query_param("q").unwrap_or_default()))
    /// });
    /// assert_eq!(resp.body_text(), "green tea");
    /// ```
    pub fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// All query parameters in order, decoded as in
    /// [`query_param`](Request::query_param). `a&b=` yields `("a", "")` and
    /// `("b", "")`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/?a=1&b=2").call(|req, _ctx| {
    ///     Ok(Response::text(req.query_pairs().map(|(k, v)| format!("{k}{v}")).collect::<String>()))
    /// });
    /// assert_eq!(resp.body_text(), "a1b2");
    /// ```
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> {
        self.query()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(k), form_decode(v))
            })
    }

    /// The first header called `name` (compared ignoring ASCII case); `None`
    /// if absent or not UTF-8.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").header("User-Agent", "curl").call(|req, _ctx| {
    ///     Ok(Response::text(req.header("user-agent").unwrap_or("-")))
    /// });
    /// assert_eq!(resp.body_text(), "curl");
    /// ```
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first header called `name` (ignoring ASCII case) as raw bytes.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").header("X-Id", "7").call(|req, _ctx| {
    ///     Ok(Response::bytes(req.header_bytes("x-id").unwrap_or(b"").to_vec()))
    /// });
    /// assert_eq!(resp.body(), b"7");
    /// ```
    pub fn header_bytes(&self, name: &str) -> Option<&'a [u8]> {
        self.pairs(self.raw.headers, self.raw.header_count)
            .iter()
            .find(|kv| self.bytes(kv.key).eq_ignore_ascii_case(name.as_bytes()))
            .map(|kv| self.bytes(kv.value))
    }

    /// All headers in the order received, names as the client spelled them.
    /// A header whose name or value is not UTF-8 is skipped.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").header("A", "1").header("B", "2").call(|req, _ctx| {
    ///     Ok(Response::text(req.headers().count().to_string()))
    /// });
    /// assert_eq!(resp.body_text(), "2");
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.pairs(self.raw.headers, self.raw.header_count)
            .iter()
            .filter_map(move |kv| {
                let name = std::str::from_utf8(self.bytes(kv.key)).ok()?;
                let value = std::str::from_utf8(self.bytes(kv.value)).ok()?;
                Some((name, value))
            })
    }

    /// The path parameter `name` from the route pattern (`{name}` or
    /// `{*name}`), already percent-decoded by the host; `None` if the route
    /// has no such parameter or the decoded value is not UTF-8.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/bob").param("name", "bob").call(|req, _ctx| {
    ///     Ok(Response::text(req.param("name").unwrap_or("?")))
    /// });
    /// assert_eq!(resp.body_text(), "bob");
    /// ```
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.pairs(self.raw.params, self.raw.param_count)
            .iter()
            .find(|kv| self.bytes(kv.key) == name.as_bytes())
            .and_then(|kv| std::str::from_utf8(self.bytes(kv.value)).ok())
    }

    /// The whole request body (de-chunked by the host).
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::post("/", &b"\x00\x01"[..]).call(|req, _ctx| Ok(Response::text(req.body().len().to_string())));
    /// assert_eq!(resp.body_text(), "2");
    /// ```
    pub fn body(&self) -> &'a [u8] {
        self.bytes(self.raw.body)
    }

    /// The whole body as something to [`Read`](std::io::Read), without
    /// holding it in memory: a body larger than the host's
    /// `[limits] bodyMemory` waits in a temporary file, and this reads it
    /// from there piece by piece (with `pread`), where
    /// [`body`](Request::body) would map all of it. Use it for uploads
    /// that may be large.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// use std::io::Read;
    ///
    /// fn count(req: &Request, _ctx: &mut Context) -> Result<Response> {
    ///     let mut total = 0;
    ///     let mut buf = [0u8; 8192];
    ///     let mut body = req.body_reader();
    ///     loop {
    ///         match body.read(&mut buf)? {
    ///             0 => break,
    ///             n => total += n,
    ///         }
    ///     }
    ///     Ok(Response::text(total.to_string()))
    /// }
    /// let resp = TestRequest::post("/", vec![1u8; 100_000]).call(count);
    /// assert_eq!(resp.body_text(), "100000");
    /// ```
    pub fn body_reader(&self) -> BodyReader<'a> {
        BodyReader {
            body: self.body(),
            fd: self.raw.body_fd,
            at: 0,
        }
    }

    /// The body as text.
    ///
    /// # Errors
    /// A 400 [`Error`] if the body is not valid UTF-8, so `?` answers the
    /// client properly.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let echo = |req: &Request, _: &mut Context| Ok(Response::text(req.body_str()?));
    /// assert_eq!(TestRequest::post("/", "hi").call(echo).body_text(), "hi");
    /// assert_eq!(TestRequest::post("/", &b"\xff"[..]).call(echo).status(), 400);
    /// ```
    pub fn body_str(&self) -> Result<&'a str, Error> {
        std::str::from_utf8(self.body())
            .map_err(|e| Error::bad_request(format!("request body is not UTF-8: {e}")))
    }

    /// The peer address as text (`127.0.0.1:50312`).
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").remote_addr("10.0.0.7:5000").call(|req, _ctx| Ok(Response::text(req.remote_addr())));
    /// assert_eq!(resp.body_text(), "10.0.0.7:5000");
    /// ```
    pub fn remote_addr(&self) -> &'a str {
        self.str(self.raw.remote_addr)
    }

    /// The HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").call(|req, _ctx| Ok(Response::text(req.http_minor().to_string())));
    /// assert_eq!(resp.body_text(), "1");
    /// ```
    pub fn http_minor(&self) -> u8 {
        self.raw.http_minor
    }

    /// `"https"` when the client reached the server over TLS (or through
    /// a trusted proxy that says so), otherwise `"http"`, also with a host
    /// too old to tell.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").call(|req, _ctx| Ok(Response::text(req.scheme())));
    /// assert_eq!(resp.body_text(), "http");
    /// let resp = TestRequest::get("/").scheme("https").call(|req, _ctx| Ok(Response::text(req.scheme())));
    /// assert_eq!(resp.body_text(), "https");
    /// ```
    pub fn scheme(&self) -> &'static str {
        if self.bytes(self.raw.scheme).eq_ignore_ascii_case(b"https") {
            "https"
        } else {
            "http"
        }
    }

    /// The value of cookie `name` from the `Cookie` header(s), as the
    /// client sent it (no decoding); `None` if there is no such cookie.
    /// When a name repeats, the first wins, as browsers send the most
    /// specific path first.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/")
    ///     .header("Cookie", "theme=dark; lang=en")
    ///     .call(|req, _ctx| Ok(Response::text(req.cookie("lang").unwrap_or("?"))));
    /// assert_eq!(resp.body_text(), "en");
    /// ```
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.pairs(self.raw.headers, self.raw.header_count)
            .iter()
            .filter(|kv| self.bytes(kv.key).eq_ignore_ascii_case(b"cookie"))
            .filter_map(|kv| std::str::from_utf8(self.bytes(kv.value)).ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(|c| c.ok())
            .find(|c| c.name() == name)
            .and_then(|c| c.value_raw())
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("script_name", &self.script_name())
            .field("path_info", &self.path_info())
            .field("body_len", &self.body().len())
            .finish_non_exhaustive()
    }
}

/// Owned request parts in Rust types, for building a real [`abi::Request`]
/// outside a host (used by [`crate::testing`]).
#[derive(Debug)]
pub(crate) struct Parts<'p> {
    pub method: &'p str,
    pub target: &'p str,
    pub script_name: &'p str,
    pub path_info: &'p str,
    pub query: &'p str,
    pub headers: &'p [(String, String)],
    pub params: &'p [(String, String)],
    pub body: &'p [u8],
    pub remote_addr: &'p str,
    pub scheme: &'p str,
}

impl Parts<'_> {
    /// Lays the parts out as an [`abi::Request`], exactly as a host would,
    /// and runs `f` on the [`Request`] view of it.
    pub(crate) fn with_request<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        let kv = |pairs: &[(String, String)]| -> Vec<KeyValue> {
            pairs
                .iter()
                .map(|(k, v)| KeyValue {
                    key: Bytes::from_str(k),
                    value: Bytes::from_str(v),
                })
                .collect()
        };
        let headers = kv(self.headers);
        let params = kv(self.params);
        let raw = abi::Request {
            size: std::mem::size_of::<abi::Request>(),
            method: Bytes::from_str(self.method),
            target: Bytes::from_str(self.target),
            script_name: Bytes::from_str(self.script_name),
            path_info: Bytes::from_str(self.path_info),
            query: Bytes::from_str(self.query),
            http_minor: 1,
            headers: headers.as_ptr(),
            header_count: headers.len(),
            params: params.as_ptr(),
            param_count: params.len(),
            body: Bytes::new(self.body),
            remote_addr: Bytes::from_str(self.remote_addr),
            scheme: Bytes::from_str(self.scheme),
            body_fd: -1,
        };
        // SAFETY: every pointer in `raw` borrows `self` or the local vectors
        // `headers`/`params`, all of which outlive the `Request`, which
        // cannot escape `f`.
        let req = unsafe { Request::from_raw(&raw) };
        f(&req)
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX`
/// a byte. Borrows when there is nothing to decode.
fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1)
                    .copied()
                    .and_then(hex_digit)
                    .zip(bytes.get(i + 2).copied().and_then(hex_digit));
                if let Some((hi, lo)) = hex {
                    out.push(hi << 4 | lo);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// The value of one hex digit (either case), or `None` for any other byte.
///
/// Not part of the plugin API: the one definition of a hex digit, shared
/// with the host (chunk sizes, `%XX` escapes in routes, session ids).
#[doc(hidden)]
#[inline]
pub fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn form_decode_handles_plus_escapes_and_garbage() {
        assert_eq!(form_decode("a+b%20c"), "a b c");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%C3%A9"), "é");
        assert_eq!(form_decode("%FF"), "\u{FFFD}");
        assert!(matches!(form_decode("plain"), Cow::Borrowed("plain")));
    }

    fn parts<'p>(headers: &'p [(String, String)], body: &'p [u8]) -> Parts<'p> {
        Parts {
            method: "POST",
            target: "/m/x?a=1&b=two+words&a=3",
            script_name: "/m",
            path_info: "/x",
            query: "a=1&b=two+words&a=3",
            headers,
            params: &[],
            body,
            remote_addr: "127.0.0.1:1",
            scheme: "http",
        }
    }

    #[test]
    fn accessors_read_the_raw_request() {
        let headers = vec![
            ("X-One".to_owned(), "1".to_owned()),
            ("x-one".to_owned(), "2".to_owned()),
        ];
        parts(&headers, b"hi").with_request(|req| {
            assert_eq!(req.method(), "POST");
            assert_eq!(req.path(), "/m/x");
            assert_eq!(req.query_param("a").unwrap(), "1");
            assert_eq!(req.query_param("b").unwrap(), "two words");
            assert_eq!(req.query_param("c"), None);
            assert_eq!(req.header("X-ONE"), Some("1"));
            assert_eq!(req.headers().count(), 2);
            assert_eq!(req.body_str().unwrap(), "hi");
            assert_eq!(req.param("id"), None);
            assert_eq!(req.http_minor(), 1);
        });
    }

    #[test]
    fn invalid_utf8_body_is_a_400() {
        parts(&[], &[0xff, 0xfe]).with_request(|req| {
            assert_eq!(req.body_str().unwrap_err().status(), 400);
        });
    }

    #[test]
    fn null_pointers_read_as_empty() {
        let raw = abi::Request {
            size: std::mem::size_of::<abi::Request>(),
            method: Bytes {
                ptr: std::ptr::null(),
                len: 3,
            },
            target: Bytes::EMPTY,
            script_name: Bytes::EMPTY,
            path_info: Bytes::EMPTY,
            query: Bytes::EMPTY,
            http_minor: 0,
            headers: std::ptr::null(),
            header_count: 4,
            params: std::ptr::null(),
            param_count: 1,
            body: Bytes::EMPTY,
            remote_addr: Bytes::EMPTY,
            scheme: Bytes::EMPTY,
            body_fd: -1,
        };
        // SAFETY: every pointer is null or points at a static empty string.
        let req = unsafe { Request::from_raw(&raw) };
        assert_eq!(req.method(), "");
        assert_eq!(req.headers().count(), 0);
        assert_eq!(req.param("x"), None);
    }
}
