//! What a handler knows besides the request: its plugin's settings, the
//! shared store and the visitor's session.
//!
//! A [`Context`] is built per call, either by the export shim over the
//! host's `HostApi` or by [`crate::testing`] without a host. The difference
//! lives in the private `Backend`: [`Store`] and [`Session`] send every
//! call through [`Backend::exec`], which goes to the host or to the test
//! store's in-memory map, and handlers cannot tell which.

use std::any::Any;

use crate::abi::{Call, HostApi};
use crate::store::op::{Op, Reply};
use crate::store::{Session, Store, StoreError};
use crate::testing::TestCall;

/// The `[plugin.NAME]` keys from the INI file, in file order (`mount`
/// included), as handed to `init`.
///
/// ```
/// use drupe_sdk::Settings;
///
/// let settings: Settings = [("greeting", "Hi")].into_iter().collect();
/// assert_eq!(settings.get("greeting"), Some("Hi"));
/// assert_eq!(settings.get("missing"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// The value of the first `key` (case-sensitive, as INI keys are).
    ///
    /// ```
    /// use drupe_sdk::Settings;
    /// let s: Settings = [("port", "80")].into_iter().collect();
    /// assert_eq!(s.get("port"), Some("80"));
    /// assert_eq!(s.get("Port"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All key/value pairs in order.
    ///
    /// ```
    /// use drupe_sdk::Settings;
    /// let s: Settings = [("a", "1"), ("b", "2")].into_iter().collect();
    /// assert_eq!(s.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of pairs.
    ///
    /// ```
    /// use drupe_sdk::Settings;
    /// let s: Settings = [("a", "1")].into_iter().collect();
    /// assert_eq!(s.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no settings.
    ///
    /// ```
    /// use drupe_sdk::Settings;
    /// assert!(Settings::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Adds a pair at the end.
    pub(crate) fn push(&mut self, key: String, value: String) {
        self.pairs.push((key, value));
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Settings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Settings {
        Settings {
            pairs: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Per-call access to the plugin's environment.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::TestRequest;
///
/// fn who(_req: &Request, ctx: &mut Context) -> Result<Response> {
///     let owner = ctx.setting("owner").unwrap_or("nobody");
///     Ok(Response::text(format!("{} belongs to {owner}", ctx.plugin_name())))
/// }
///
/// let resp = TestRequest::get("/").setting("owner", "ops").call(who);
/// assert_eq!(resp.body_text(), "test belongs to ops");
/// ```
#[derive(Debug)]
pub struct Context<'a> {
    plugin_name: &'a str,
    settings: &'a Settings,
    state: &'a State,
    backend: Backend<'a>,
}

/// What `init` built, for the life of the worker: the `state:` type of
/// `plugin!`, `()` without one.
pub(crate) type State = dyn Any + Send + Sync;

/// Where store and session calls go.
#[derive(Debug)]
pub(crate) enum Backend<'a> {
    /// Inside a worker: callbacks on the host's table for this call.
    /// Invariant: `call` is the host's state for the `handle` call this
    /// backend was made for, and the backend does not outlive that call.
    Host { host: &'a HostApi, call: *mut Call },
    /// In a unit test: the test store's in-memory map.
    Test(&'a TestCall),
}

impl Backend<'_> {
    /// Runs one store or session operation.
    pub(crate) fn exec(&self, op: Op<'_>) -> Result<Reply, StoreError> {
        match self {
            Backend::Host { host, call } => crate::export::store::exec(host, *call, op),
            Backend::Test(test) => test.exec(op),
        }
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        plugin_name: &'a str,
        settings: &'a Settings,
        state: &'a State,
        backend: Backend<'a>,
    ) -> Context<'a> {
        Context {
            plugin_name,
            settings,
            state,
            backend,
        }
    }

    /// The plugin's state: what its `init` returned, built once per worker
    /// process before the first request (`S::default()` without `init`).
    ///
    /// # Panics
    /// If `S` is not the `state:` type declared in `plugin!`: a programming
    /// error, which the worker answers with a 500.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::{TestApp, TestRequest};
    ///
    /// struct Config { greeting: String }
    ///
    /// fn init(settings: &Settings) -> std::result::Result<Config, String> {
    ///     let greeting = settings.get("greeting").unwrap_or("Hello").to_owned();
    ///     Ok(Config { greeting })
    /// }
    ///
    /// fn hello(_req: &Request, ctx: &mut Context) -> String {
    ///     format!("{}!", ctx.state::<Config>().greeting)
    /// }
    ///
    /// drupe_sdk::plugin! {
    ///     name: "hello",
    ///     init: init,
    ///     state: Config,
    ///     routes: [GET "/" => hello],
    /// }
    ///
    /// let app = TestApp::new().setting("greeting", "Hi");
    /// assert_eq!(app.call(TestRequest::get("/")).body_text(), "Hi!");
    /// ```
    pub fn state<S: Any>(&self) -> &'a S {
        match self.state.downcast_ref::<S>() {
            Some(state) => state,
            None => panic!(
                "ctx.state::<{}>(): plugin! declares no `state:` of this type",
                std::any::type_name::<S>()
            ),
        }
    }

    /// The value of `key` in this plugin's `[plugin.NAME]` INI section.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// fn h(_req: &Request, ctx: &mut Context) -> Result<Response> {
    ///     Ok(Response::text(ctx.setting("greeting").unwrap_or("Hello")))
    /// }
    /// assert_eq!(TestRequest::get("/").setting("greeting", "Hi").call(h).body_text(), "Hi");
    /// assert_eq!(TestRequest::get("/").call(h).body_text(), "Hello");
    /// ```
    pub fn setting(&self, key: &str) -> Option<&'a str> {
        self.settings.get(key)
    }

    /// All of this plugin's settings.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// fn h(_req: &Request, ctx: &mut Context) -> Result<Response> {
    ///     Ok(Response::text(ctx.settings().len().to_string()))
    /// }
    /// assert_eq!(TestRequest::get("/").setting("a", "1").call(h).body_text(), "1");
    /// ```
    pub fn settings(&self) -> &'a Settings {
        self.settings
    }

    /// The plugin's name as declared in `plugin!`.
    ///
    /// ```
    /// # use drupe_sdk::prelude::*;
    /// # use drupe_sdk::testing::TestRequest;
    /// fn h(_req: &Request, ctx: &mut Context) -> Result<Response> {
    ///     Ok(Response::text(ctx.plugin_name()))
    /// }
    /// assert_eq!(TestRequest::get("/").plugin_name("shop").call(h).body_text(), "shop");
    /// ```
    pub fn plugin_name(&self) -> &'a str {
        self.plugin_name
    }

    /// This plugin's keys in the shared store (Redis or SQLite, as the host
    /// is configured). See [`Store`].
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    ///
    /// fn hit(_req: &Request, ctx: &mut Context) -> Result<Response> {
    ///     let n = ctx.store().incr("hits", 1)?;
    ///     Ok(Response::text(n.to_string()))
    /// }
    /// # let resp = drupe_sdk::testing::TestRequest::get("/").call(hit);
    /// # assert_eq!(resp.body_text(), "1");
    /// ```
    pub fn store(&self) -> Store<'_> {
        Store::new(&self.backend)
    }

    /// The visitor's session (cookie `drupe_session`). See [`Session`].
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    ///
    /// fn whoami(_req: &Request, ctx: &mut Context) -> Result<Response> {
    ///     let name = ctx.session().get_string("name")?;
    ///     Ok(Response::text(name.unwrap_or_else(|| "stranger".to_owned())))
    /// }
    /// # let resp = drupe_sdk::testing::TestRequest::get("/").call(whoami);
    /// # assert_eq!(resp.body_text(), "stranger");
    /// ```
    pub fn session(&self) -> Session<'_> {
        Session::new(&self.backend)
    }
}
