//! What a handler knows besides the request: its plugin's settings, and
//! (later) the shared store and sessions.
//!
//! A [`Context`] is built per call, either by the export shim over the
//! host's `HostApi` or by [`crate::testing`] without a host. The difference
//! lives in the private `Backend`, so the store and session API can be added
//! here with one implementation per backend and no change for handlers.

use crate::abi::{Call, HostApi};

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
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All key/value pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no settings.
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
    #[allow(dead_code, reason = "the store and sessions will call through it")]
    backend: Backend<'a>,
}

/// Where store and session calls will go.
#[derive(Debug)]
pub(crate) enum Backend<'a> {
    /// Inside a worker: callbacks on the host's table for this call.
    Host {
        #[allow(dead_code, reason = "used by the store and sessions")]
        host: &'a HostApi,
        #[allow(dead_code, reason = "used by the store and sessions")]
        call: *mut Call,
    },
    /// In a unit test: no host; a store would be an in-memory map here.
    Test,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        plugin_name: &'a str,
        settings: &'a Settings,
        backend: Backend<'a>,
    ) -> Context<'a> {
        Context {
            plugin_name,
            settings,
            backend,
        }
    }

    /// The value of `key` in this plugin's `[plugin.NAME]` INI section.
    pub fn setting(&self, key: &str) -> Option<&'a str> {
        self.settings.get(key)
    }

    /// All of this plugin's settings.
    pub fn settings(&self) -> &'a Settings {
        self.settings
    }

    /// The plugin's name as declared in `plugin!`.
    pub fn plugin_name(&self) -> &'a str {
        self.plugin_name
    }
}
