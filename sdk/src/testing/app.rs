//! [`TestApp`]: the plugin that `plugin!` declared in this crate, served
//! without a host: its state, layers and route table, over one
//! [`TestStore`].
//!
//! `TestApp::new()` takes no argument, so it must find the declaration on
//! its own: `plugin!` registers it before `main` (in test and debug
//! builds) through [`register`].

use std::sync::OnceLock;

use super::{TestRequest, TestResponse, TestStore};
use crate::context::{Settings, State};
use crate::export::Plugin;
use crate::response::Response;
use crate::routing::{Lookup, Router, Target};

/// The plugin `plugin!` declared in the crate under test.
static DECLARED: OnceLock<&'static Plugin> = OnceLock::new();

/// Called by `plugin!`'s constructor. Not for plugin code.
#[doc(hidden)]
pub fn register(plugin: &'static Plugin) {
    let _ = DECLARED.set(plugin);
}

/// The plugin that `plugin!` declared in this crate, ready to take
/// requests: paths below its mount point go through its route table
/// (literal beats `{name}` beats `{*rest}`; 404 for an unknown path, 405
/// with `Allow` for another method), its layers and its handlers, with the
/// state its `init` builds from [`setting`](TestApp::setting)s. Every call
/// uses the app's one [`TestStore`], so data and sessions carry over.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::{TestApp, TestRequest};
///
/// fn show(req: &Request, ctx: &mut Context) -> Result<String> {
///     let id = req.param("id").ok_or_else(Error::not_found)?;
///     let text = ctx.store().get_string(id)?.ok_or_else(Error::not_found)?;
///     Ok(text)
/// }
/// fn put(req: &Request, ctx: &mut Context) -> Result<()> {
///     let id = req.param("id").ok_or_else(Error::not_found)?;
///     ctx.store().set(id, req.body_str()?)?;
///     Ok(())
/// }
///
/// drupe_sdk::plugin! {
///     name: "kv",
///     routes: [
///         GET "/{id}" => show,
///         PUT "/{id}" => put,
///     ],
/// }
///
/// let app = TestApp::new();
/// assert_eq!(app.call(TestRequest::new("PUT", "/a").body("tea")).status(), 204);
/// assert_eq!(app.call(TestRequest::get("/a")).body_text(), "tea");
/// assert_eq!(app.call(TestRequest::get("/b")).status(), 404);
/// let resp = app.call(TestRequest::new("DELETE", "/a"));
/// assert_eq!((resp.status(), resp.header("allow")), (405, Some("GET, HEAD, PUT")));
/// ```
#[derive(Debug)]
pub struct TestApp {
    plugin: &'static Plugin,
    router: Router,
    settings: Settings,
    store: TestStore,
    /// Built by the plugin's `init` at the first call, from the settings
    /// given until then.
    state: OnceLock<Box<State>>,
}

impl TestApp {
    /// The plugin declared with `plugin!` in this crate, with no settings
    /// and an empty store.
    ///
    /// # Panics
    /// If the crate declares no plugin, if its routes conflict (as the
    /// host would refuse it), or when built in release mode without
    /// `cfg(test)` (where `plugin!` does not register it).
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # fn index(_: &Request, _: &mut Context) -> &'static str { "hi" }
    /// # drupe_sdk::plugin! { name: "x", routes: [GET "/" => index] }
    /// let app = drupe_sdk::testing::TestApp::new();
    /// # assert_eq!(app.call(drupe_sdk::testing::TestRequest::get("/")).body_text(), "hi");
    /// ```
    #[allow(clippy::new_without_default)] // it finds the plugin, so it may panic
    #[track_caller]
    pub fn new() -> TestApp {
        let Some(&plugin) = DECLARED.get() else {
            panic!(
                "TestApp::new(): no `drupe_sdk::plugin!` in this crate's test build \
                 (TestApp runs the crate's own plugin, in `cargo test`)"
            );
        };
        let mut router = Router::new();
        for (route, &(method, pattern)) in plugin.route_strs().iter().enumerate() {
            let target = Target { plugin: 0, route };
            if let Err(e) = router.add("", method, pattern, target, plugin.name) {
                panic!("TestApp::new(): the host would refuse this plugin: {e}");
            }
        }
        TestApp {
            plugin,
            router,
            settings: Settings::default(),
            store: TestStore::new(),
            state: OnceLock::new(),
        }
    }

    /// Adds a setting, as from the `[plugin.NAME]` INI section; `init`
    /// sees it.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::{TestApp, TestRequest};
    /// fn hi(_req: &Request, ctx: &mut Context) -> String {
    ///     ctx.setting("greeting").unwrap_or("hello").to_owned()
    /// }
    /// # drupe_sdk::plugin! { name: "x", routes: [GET "/" => hi] }
    /// let app = TestApp::new().setting("greeting", "hi");
    /// assert_eq!(app.call(TestRequest::get("/")).body_text(), "hi");
    /// ```
    #[must_use]
    pub fn setting(mut self, key: &str, value: &str) -> TestApp {
        self.settings.push(key.to_owned(), value.to_owned());
        self.state = OnceLock::new();
        self
    }

    /// The app's store, to look at or to make unavailable.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::{TestApp, TestRequest};
    /// fn hit(_req: &Request, ctx: &mut Context) -> Result<String> {
    ///     Ok(ctx.store().incr("hits", 1)?.to_string())
    /// }
    /// # drupe_sdk::plugin! { name: "x", routes: [GET "/" => hit] }
    /// let app = TestApp::new();
    /// app.store().set_unavailable(true);
    /// assert_eq!(app.call(TestRequest::get("/")).status(), 503);
    /// ```
    pub fn store(&self) -> &TestStore {
        &self.store
    }

    /// Serves `request` (its path is below the mount point; its own store,
    /// settings, plugin name and parameters are replaced by the app's) and
    /// returns what the client would receive.
    ///
    /// # Panics
    /// If the plugin's `init` fails, with its message.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::{TestApp, TestRequest};
    /// fn item(req: &Request, _ctx: &mut Context) -> String {
    ///     format!("item {}", req.param("id").unwrap_or("?"))
    /// }
    /// # drupe_sdk::plugin! { name: "x", routes: [GET "/items/{id}" => item] }
    /// let app = TestApp::new();
    /// assert_eq!(app.call(TestRequest::get("/items/7").mount("/shop")).body_text(), "item 7");
    /// assert_eq!(app.call(TestRequest::get("/items")).status(), 404);
    /// ```
    #[track_caller]
    pub fn call(&self, request: TestRequest) -> TestResponse {
        let (method, path) = request.route_key();
        let (endpoint, values) = match self.router.lookup(method, path) {
            Lookup::Found { endpoint, values } => (endpoint, values),
            Lookup::NotFound => return host_answer(404, "Not Found\n"),
            Lookup::Refused(_) => return host_answer(400, "Bad Request\n"),
            Lookup::MethodNotAllowed(allow) => {
                let resp = host_answer(405, "Method Not Allowed\n");
                return TestResponse(resp.0.with_header("Allow", allow));
            }
        };
        let params: Vec<(String, String)> = endpoint.params.iter().cloned().zip(values).collect();
        let route = endpoint.target.route;
        let state = self
            .state
            .get_or_init(|| match (self.plugin.init)(&self.settings) {
                Ok(state) => state,
                Err(message) => panic!("the plugin's init failed: {message}"),
            });
        request.serve(
            self.plugin,
            self.plugin.handlers[route],
            &params,
            &self.settings,
            self.store.clone(),
            &**state,
        )
    }
}

/// What the host itself answers when no handler runs.
fn host_answer(status: u16, body: &str) -> TestResponse {
    TestResponse(Response::text(body).with_status(status))
}
