//! Run a handler in a plain `#[test]`: no sockets, no host, no `.so`.
//!
//! [`TestRequest`] lays its parts out as a real [`crate::abi::Request`] and
//! the handler reads it through the same [`Request`] and [`Context`] code
//! that serves it in a worker. An `Err` from the handler becomes the response
//! the worker would send (status, `text/plain`, message for 4xx, reason
//! phrase for 5xx).
//!
//! ```
//! use drupe_sdk::prelude::*;
//! use drupe_sdk::testing::TestRequest;
//!
//! fn greet(req: &Request, ctx: &mut Context) -> Result<Response> {
//!     let name = req.param("name").ok_or_else(Error::not_found)?;
//!     let greeting = ctx.setting("greeting").unwrap_or("Hello");
//!     Ok(Response::text(format!("{greeting}, {name}!")))
//! }
//!
//! let resp = TestRequest::get("/bob")
//!     .mount("/hello")
//!     .param("name", "bob")
//!     .setting("greeting", "Hi")
//!     .call(greet);
//! assert_eq!(resp.status(), 200);
//! assert_eq!(resp.body_text(), "Hi, bob!");
//!
//! let resp = TestRequest::get("/").call(greet);
//! assert_eq!(resp.status(), 404);
//! ```
//!
//! Differences from a worker: a panic in the handler propagates (so
//! `#[should_panic]` works; a worker would answer 500), response headers are
//! not checked (a worker refuses CR/LF/NUL in a value with a 500), and path
//! parameters are whatever [`TestRequest::param`] set, not matched from a
//! route pattern.
//!
//! The store and sessions work too, in memory: give requests the same
//! [`TestStore`] to share data between them (each request without one gets
//! an empty store of its own).
//!
//! [`TestApp`] runs the whole plugin that `plugin!` declared in the crate:
//! its `init` and state, its layers, and its route table, which fills in
//! path parameters and answers 404 and 405 as the host does.

mod app;
mod store;

use std::ops::Deref;

use crate::context::{Backend, Context, Settings, State};
use crate::error::{Error, Result};
use crate::export::{respond, Handler, Plugin};
use crate::request::{Parts, Request};
use crate::response::Response;
#[doc(hidden)]
pub use app::register;
pub use app::TestApp;
pub(crate) use store::TestCall;
pub use store::TestStore;

/// What the client would receive from a [`TestApp`]: a [`Response`] (all
/// its methods work on it) plus helpers for assertions.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::{TestApp, TestRequest};
///
/// fn numbers(_req: &Request, _ctx: &mut Context) -> Json<Vec<u32>> {
///     Json(vec![1, 2])
/// }
/// drupe_sdk::plugin! { name: "n", routes: [GET "/" => numbers] }
///
/// let resp = TestApp::new().call(TestRequest::get("/"));
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.json::<Vec<u32>>(), [1, 2]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResponse(Response);

impl TestResponse {
    /// The JSON body as a `T`.
    ///
    /// # Panics
    /// If the body is not a JSON `T`, with the body in the message.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::{TestApp, TestRequest};
    ///
    /// fn one(_req: &Request, _ctx: &mut Context) -> Response {
    ///     Response::json(&serde_json::json!({"id": 1}))
    /// }
    /// drupe_sdk::plugin! { name: "n", routes: [GET "/" => one] }
    ///
    /// let resp = TestApp::new().call(TestRequest::get("/"));
    /// assert_eq!(resp.json::<serde_json::Value>()["id"], 1);
    /// ```
    #[cfg(feature = "serde")]
    #[track_caller]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        match serde_json::from_slice(self.0.body()) {
            Ok(value) => value,
            Err(e) => panic!(
                "the response body is not the JSON expected ({e}): {}",
                self.0.body_text()
            ),
        }
    }

    /// The [`Response`] itself.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::{TestApp, TestRequest};
    /// # fn nothing(_req: &Request, _ctx: &mut Context) {}
    /// # drupe_sdk::plugin! { name: "n", routes: [GET "/" => nothing] }
    /// let resp: Response = TestApp::new().call(TestRequest::get("/")).into_response();
    /// assert_eq!(resp.status(), 204);
    /// ```
    pub fn into_response(self) -> Response {
        self.0
    }
}

impl Deref for TestResponse {
    type Target = Response;

    fn deref(&self) -> &Response {
        &self.0
    }
}

impl From<TestResponse> for Response {
    fn from(resp: TestResponse) -> Response {
        resp.0
    }
}

/// A request to run a handler on, built up with chained calls.
///
/// ```
/// # use drupe_sdk::prelude::*;
/// # use drupe_sdk::testing::TestRequest;
/// let resp = TestRequest::post("/items?draft=1", "tea")
///     .header("Content-Type", "text/plain")
///     .call(|req, _ctx| Ok(Response::text(format!("{} {}", req.query(), req.body_str()?))));
/// assert_eq!(resp.body_text(), "draft=1 tea");
/// ```
#[derive(Debug, Clone)]
pub struct TestRequest {
    method: String,
    mount: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    params: Vec<(String, String)>,
    body: Vec<u8>,
    settings: Settings,
    plugin_name: String,
    remote_addr: String,
    scheme: String,
    store: TestStore,
}

impl TestRequest {
    /// A request with any method. `path` is the path below the mount point
    /// (`/bob`); a `?query` on it is split off as if given to
    /// [`query`](TestRequest::query).
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::new("DELETE", "/x").call(|req, _ctx| Ok(Response::text(req.method())));
    /// assert_eq!(resp.body_text(), "DELETE");
    /// ```
    pub fn new(method: &str, path: &str) -> TestRequest {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        TestRequest {
            method: method.to_owned(),
            mount: String::new(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
            params: Vec::new(),
            body: Vec::new(),
            settings: Settings::default(),
            plugin_name: "test".to_owned(),
            remote_addr: "127.0.0.1:40000".to_owned(),
            scheme: "http".to_owned(),
            store: TestStore::new(),
        }
    }

    /// A `GET` request.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// assert_eq!(TestRequest::get("/").call(|_req, _ctx| Ok(Response::text("hi"))).body_text(), "hi");
    /// ```
    pub fn get(path: &str) -> TestRequest {
        TestRequest::new("GET", path)
    }

    /// A `POST` request with a body.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::post("/", "data").call(|req, _ctx| Ok(Response::bytes(req.body().to_vec())));
    /// assert_eq!(resp.body(), b"data");
    /// ```
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> TestRequest {
        TestRequest::new("POST", path).body(body)
    }

    /// Sets a path parameter, as the host would from `{name}` in the route.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/7").param("id", "7").call(|req, _ctx| Ok(Response::text(req.param("id").unwrap_or(""))));
    /// assert_eq!(resp.body_text(), "7");
    /// ```
    #[must_use]
    pub fn param(mut self, name: &str, value: &str) -> TestRequest {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a request header.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").header("Accept", "text/html").call(|req, _ctx| Ok(Response::text(req.header("accept").unwrap_or(""))));
    /// assert_eq!(resp.body_text(), "text/html");
    /// ```
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> TestRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the query string (without `?`, still encoded: `q=a+b`).
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").query("page=2").call(|req, _ctx| Ok(Response::text(req.query_param("page").unwrap_or_default())));
    /// assert_eq!(resp.body_text(), "2");
    /// ```
    #[must_use]
    pub fn query(mut self, query: &str) -> TestRequest {
        self.query = query.to_owned();
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::new("PUT", "/").body("new").call(|req, _ctx| Ok(Response::text(req.body_str()?)));
    /// assert_eq!(resp.body_text(), "new");
    /// ```
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> TestRequest {
        self.body = body.into();
        self
    }

    /// Adds a plugin setting, as from the `[plugin.NAME]` INI section.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").setting("currency", "EUR").call(|_req, ctx| Ok(Response::text(ctx.setting("currency").unwrap_or(""))));
    /// assert_eq!(resp.body_text(), "EUR");
    /// ```
    #[must_use]
    pub fn setting(mut self, key: &str, value: &str) -> TestRequest {
        self.settings.push(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the mount point (`/hello`), which becomes `script_name`;
    /// default: mounted at `/`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/a").mount("/shop").call(|req, _ctx| Ok(Response::text(req.script_name())));
    /// assert_eq!(resp.body_text(), "/shop");
    /// ```
    #[must_use]
    pub fn mount(mut self, mount: &str) -> TestRequest {
        self.mount = mount.trim_end_matches('/').to_owned();
        self
    }

    /// Sets the plugin name the [`Context`] reports; default `test`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").plugin_name("shop").call(|_req, ctx| Ok(Response::text(ctx.plugin_name())));
    /// assert_eq!(resp.body_text(), "shop");
    /// ```
    #[must_use]
    pub fn plugin_name(mut self, name: &str) -> TestRequest {
        self.plugin_name = name.to_owned();
        self
    }

    /// Sets the peer address; default `127.0.0.1:40000`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").remote_addr("[::1]:9").call(|req, _ctx| Ok(Response::text(req.remote_addr())));
    /// assert_eq!(resp.body_text(), "[::1]:9");
    /// ```
    #[must_use]
    pub fn remote_addr(mut self, addr: &str) -> TestRequest {
        self.remote_addr = addr.to_owned();
        self
    }

    /// Sets the scheme the request came with (`http` or `https`), as a
    /// host with TLS would; default `http`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").scheme("https").call(|req, _ctx| Ok(Response::text(req.scheme())));
    /// assert_eq!(resp.body_text(), "https");
    /// ```
    #[must_use]
    pub fn scheme(mut self, scheme: &str) -> TestRequest {
        self.scheme = scheme.to_owned();
        self
    }

    /// Uses `store` for `ctx.store()` and `ctx.session()`, so this request
    /// sees what earlier requests with the same store wrote. Without it the
    /// request gets an empty store of its own.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// use drupe_sdk::testing::TestStore;
    /// let store = TestStore::new();
    /// let hit = |_req: &Request, ctx: &mut Context| Ok(Response::text(ctx.store().incr("n", 1)?.to_string()));
    /// TestRequest::get("/").store(&store).call(hit);
    /// assert_eq!(TestRequest::get("/").store(&store).call(hit).body_text(), "2");
    /// ```
    #[must_use]
    pub fn store(mut self, store: &TestStore) -> TestRequest {
        self.store = store.clone();
        self
    }

    /// Sends back the cookies that `response` set (its `Set-Cookie`
    /// headers, as a browser would), e.g. to continue its session.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::{TestRequest, TestStore};
    ///
    /// fn login(_req: &Request, ctx: &mut Context) -> Result<Response> {
    ///     ctx.session().set("user", "ana")?;
    ///     Ok(Response::text("welcome"))
    /// }
    /// fn me(_req: &Request, ctx: &mut Context) -> Result<Response> {
    ///     let user = ctx.session().get_string("user")?.ok_or_else(Error::not_found)?;
    ///     Ok(Response::text(user))
    /// }
    ///
    /// let store = TestStore::new();
    /// let first = TestRequest::post("/login", "").store(&store).call(login);
    /// let resp = TestRequest::get("/me").store(&store).cookies_from(&first).call(me);
    /// assert_eq!(resp.body_text(), "ana");
    /// // Without the cookie there is no session.
    /// assert_eq!(TestRequest::get("/me").store(&store).call(me).status(), 404);
    /// ```
    #[must_use]
    pub fn cookies_from(mut self, response: &Response) -> TestRequest {
        let cookies: Vec<&str> = response
            .headers()
            .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, value)| value.split(';').next())
            .map(str::trim)
            .collect();
        if !cookies.is_empty() {
            self.headers.push(("Cookie".to_owned(), cookies.join("; ")));
        }
        self
    }

    /// The session id in this request's `Cookie` headers, if any.
    fn session_cookie(&self) -> Option<String> {
        self.headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, value)| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == store::SESSION_COOKIE)
            .map(|(_, id)| id.to_owned())
    }

    /// Runs `handler` on this request and returns what the client would
    /// receive.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// fn teapot(_req: &Request, _ctx: &mut Context) -> Result<Response> {
    ///     Err(Error::new(418, "short and stout"))
    /// }
    /// let resp = TestRequest::get("/").call(teapot);
    /// assert_eq!((resp.status(), resp.body_text().as_ref()), (418, "short and stout"));
    /// ```
    pub fn call<F>(&self, handler: F) -> Response
    where
        F: FnOnce(&Request<'_>, &mut Context<'_>) -> Result<Response>,
    {
        let store = self.store.clone();
        self.run(
            &self.params,
            &self.settings,
            &self.plugin_name,
            store,
            &(),
            |req, ctx| respond(req, ctx, handler, report),
        )
        .0
    }

    /// Runs `handler` through `plugin`'s layers, as the shim does.
    pub(crate) fn serve(
        &self,
        plugin: &Plugin,
        handler: Handler,
        params: &[(String, String)],
        settings: &Settings,
        store: TestStore,
        state: &State,
    ) -> TestResponse {
        self.run(params, settings, plugin.name, store, state, |req, ctx| {
            let serve = |req: &Request<'_>, ctx: &mut Context<'_>| plugin.run(handler, req, ctx);
            respond(req, ctx, serve, report)
        })
    }

    /// Lays this request out as the host would and runs `f` on it with a
    /// context over `store`, then adds what the host adds.
    fn run(
        &self,
        params: &[(String, String)],
        settings: &Settings,
        plugin_name: &str,
        store: TestStore,
        state: &State,
        f: impl FnOnce(&Request<'_>, &mut Context<'_>) -> Response,
    ) -> TestResponse {
        let mut target = format!("{}{}", self.mount, self.path);
        if !self.query.is_empty() {
            target.push('?');
            target.push_str(&self.query);
        }
        let parts = Parts {
            method: &self.method,
            target: &target,
            script_name: &self.mount,
            path_info: &self.path,
            query: &self.query,
            headers: &self.headers,
            params,
            body: &self.body,
            remote_addr: &self.remote_addr,
            scheme: &self.scheme,
        };
        let call = TestCall::new(store, plugin_name, self.session_cookie());
        let response = parts.with_request(|req| {
            let mut ctx = Context::new(plugin_name, settings, state, Backend::Test(&call));
            f(req, &mut ctx)
        });
        // The host adds the cookie of a session the request started
        // (`Secure` over https).
        let https = self.scheme.eq_ignore_ascii_case("https");
        TestResponse(match call.set_cookie() {
            Some(cookie) => response.with_header(
                "Set-Cookie",
                crate::store::op::session_cookie_over(cookie, https),
            ),
            None => response,
        })
    }

    /// The method and path below the mount point, for routing.
    pub(crate) fn route_key(&self) -> (&str, &str) {
        (&self.method, &self.path)
    }
}

/// A worker logs a server error; a test shows it on failure.
fn report(e: &Error) {
    eprintln!("handler failed: {e}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn describe(req: &Request<'_>, ctx: &mut Context<'_>) -> Result<Response> {
        Ok(Response::text(format!(
            "{} {} [{}|{}] q={} p={:?} s={:?} {}",
            req.method(),
            req.target(),
            req.script_name(),
            req.path_info(),
            req.query(),
            req.param("id"),
            ctx.setting("k"),
            ctx.plugin_name(),
        )))
    }

    #[test]
    fn builds_target_from_mount_path_and_query() {
        let resp = TestRequest::new("DELETE", "/items/7?force=1")
            .mount("/shop/")
            .param("id", "7")
            .setting("k", "v")
            .call(describe);
        assert_eq!(
            resp.body_text(),
            r#"DELETE /shop/items/7?force=1 [/shop|/items/7] q=force=1 p=Some("7") s=Some("v") test"#
        );
    }

    #[test]
    fn error_becomes_the_shims_response() {
        let resp = TestRequest::get("/").call(|_, _| Err(Error::unavailable("store down")));
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.body_text(), "Service Unavailable");
        assert_eq!(
            resp.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }

    #[test]
    fn post_carries_body() {
        let resp =
            TestRequest::post("/", "abc").call(|req, _| Ok(Response::bytes(req.body().to_vec())));
        assert_eq!(resp.body(), b"abc");
    }
}
