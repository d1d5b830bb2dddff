//! Cookies a handler sets: a builder with safe defaults over the `cookie`
//! crate, which does the formatting. Reading cookies is
//! [`Request::cookie`](crate::Request::cookie).
//!
//! The defaults (`Path=/; HttpOnly; SameSite=Lax`) are what a login or a
//! preference cookie wants; `Secure` follows the request's scheme unless
//! the handler decides, because only the shim that sends the response
//! knows whether the request came over https.

use std::fmt;
use std::time::Duration;

/// When a browser sends a cookie along with a request from another site.
///
/// ```
/// use drupe_sdk::prelude::*;
/// let c = Cookie::new("csrf", "t0k3n").same_site(SameSite::Strict);
/// # let _ = c;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Only with requests from this site.
    Strict,
    /// Also with top-level navigations from other sites (the default).
    Lax,
    /// With every request; browsers then require `Secure`.
    None,
}

/// A cookie to set with [`Response::with_cookie`](crate::Response::with_cookie).
///
/// Defaults: `Path=/`, `HttpOnly`, `SameSite=Lax`, and `Secure` when the
/// request's scheme is https unless [`secure`](Cookie::secure) says
/// otherwise. The value is sent as given: keep it to letters, digits and
/// `-._~` (or encode it), since `;`, `,`, spaces and quotes end or break a
/// cookie.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::TestRequest;
/// use std::time::Duration;
///
/// fn remember(_req: &Request, _ctx: &mut Context) -> Result<Response> {
///     let theme = Cookie::new("theme", "dark").max_age(Duration::from_secs(86400));
///     Ok(Response::new(204).with_cookie(theme))
/// }
///
/// let resp = TestRequest::get("/").scheme("https").call(remember);
/// assert_eq!(
///     resp.header("set-cookie"),
///     Some("theme=dark; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=86400")
/// );
/// ```
#[derive(Clone, PartialEq)]
pub struct Cookie {
    inner: cookie::Cookie<'static>,
    /// `None` until the handler decides; then the scheme decides.
    secure: Option<bool>,
}

impl Eq for Cookie {}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value may be a secret; it stays out of logs and panics.
        f.debug_struct("Cookie")
            .field("name", &self.inner.name())
            .finish_non_exhaustive()
    }
}

impl Cookie {
    /// A cookie with the defaults: `Path=/; HttpOnly; SameSite=Lax`,
    /// a session cookie (no `Max-Age`).
    ///
    /// ```
    /// use drupe_sdk::Cookie;
    /// let c = Cookie::new("lang", "en");
    /// assert_eq!((c.name(), c.value()), ("lang", "en"));
    /// ```
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Cookie {
        let mut inner = cookie::Cookie::new(name.into(), value.into());
        inner.set_path("/");
        inner.set_http_only(true);
        inner.set_same_site(cookie::SameSite::Lax);
        Cookie {
            inner,
            secure: None,
        }
    }

    /// A cookie that deletes the browser's cookie `name` (set at `Path=/`):
    /// empty, `Max-Age=0` and an `Expires` in the past.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::TestRequest;
    /// let resp = TestRequest::get("/").call(|_req, _ctx| {
    ///     Ok(Response::new(204).with_cookie(Cookie::removal("theme")))
    /// });
    /// let set = resp.header("set-cookie").unwrap_or_default();
    /// assert!(set.starts_with("theme=; ") && set.contains("Max-Age=0"), "{set}");
    /// ```
    pub fn removal(name: impl Into<String>) -> Cookie {
        let mut c = Cookie::new(name, "");
        c.inner.make_removal();
        c
    }

    /// Sets `Path`; the browser sends the cookie only below it.
    ///
    /// ```
    /// use drupe_sdk::Cookie;
    /// let c = Cookie::new("cart", "7").path("/shop");
    /// # let _ = c;
    /// ```
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Cookie {
        self.inner.set_path(path.into());
        self
    }

    /// Sets `Max-Age` (whole seconds): the browser keeps the cookie that
    /// long instead of until it closes.
    ///
    /// ```
    /// use drupe_sdk::Cookie;
    /// use std::time::Duration;
    /// let c = Cookie::new("theme", "dark").max_age(Duration::from_secs(3600));
    /// # let _ = c;
    /// ```
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Cookie {
        let secs = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        self.inner
            .set_max_age(cookie::time::Duration::seconds(secs));
        self
    }

    /// Decides `Secure` (sent over https only) instead of following the
    /// request's scheme.
    ///
    /// ```
    /// use drupe_sdk::Cookie;
    /// let c = Cookie::new("dev", "1").secure(false);
    /// # let _ = c;
    /// ```
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Cookie {
        self.secure = Some(secure);
        self
    }

    /// Sets or clears `HttpOnly` (hidden from page scripts; on by default).
    ///
    /// ```
    /// use drupe_sdk::Cookie;
    /// let c = Cookie::new("ui", "compact").http_only(false);
    /// # let _ = c;
    /// ```
    #[must_use]
    pub fn http_only(mut self, http_only: bool) -> Cookie {
        self.inner.set_http_only(http_only);
        self
    }

    /// Sets `SameSite` (`Lax` by default).
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// let c = Cookie::new("csrf", "x").same_site(SameSite::Strict);
    /// # let _ = c;
    /// ```
    #[must_use]
    pub fn same_site(mut self, same_site: SameSite) -> Cookie {
        self.inner.set_same_site(match same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        });
        self
    }

    /// The name.
    ///
    /// ```
    /// use drupe_sdk::Cookie;
    /// assert_eq!(Cookie::new("a", "1").name(), "a");
    /// ```
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The value.
    ///
    /// ```
    /// use drupe_sdk::Cookie;
    /// assert_eq!(Cookie::new("a", "1").value(), "1");
    /// ```
    pub fn value(&self) -> &str {
        self.inner.value()
    }

    /// The `Set-Cookie` value for a request that came over https or not.
    pub(crate) fn render(&self, https: bool) -> String {
        let secure = self.secure.unwrap_or(https);
        if self.inner.secure() == Some(secure) {
            return self.inner.to_string();
        }
        let mut c = self.inner.clone();
        c.set_secure(secure);
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_follows_the_scheme_unless_decided() {
        let c = Cookie::new("a", "1");
        assert_eq!(c.render(false), "a=1; HttpOnly; SameSite=Lax; Path=/");
        assert_eq!(
            c.render(true),
            "a=1; HttpOnly; SameSite=Lax; Secure; Path=/"
        );
        let c = Cookie::new("a", "1").secure(false).http_only(false);
        assert_eq!(c.render(true), "a=1; SameSite=Lax; Path=/");
        let c = Cookie::new("a", "1")
            .secure(true)
            .same_site(SameSite::Strict);
        assert_eq!(
            c.render(false),
            "a=1; HttpOnly; SameSite=Strict; Secure; Path=/"
        );
    }

    #[test]
    fn debug_hides_the_value() {
        assert!(!format!("{:?}", Cookie::new("sid", "s3cret")).contains("s3cret"));
    }
}
