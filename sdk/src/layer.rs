//! Layers: functions that run around every route of a plugin, for what
//! many handlers share (a login check, a header on every answer, timing).
//!
//! `plugin! { …, layers: [outer, inner], … }` makes each request go
//! `outer` → `inner` → the route's handler. A layer gets the request, the
//! context and a [`Next`]; it calls [`Next::run`] to go on, or answers
//! itself instead. It sees the handler's [`Error`](crate::Error) as an
//! `Err`, before the SDK turns it into a response.

use crate::context::Context;
use crate::error::Result;
use crate::request::Request;
use crate::response::Response;

/// A route handler as the route table holds it; `plugin!` wraps every
/// handler, whatever it returns, into one of these.
pub type Handler = for<'r, 'a, 'c, 'b> fn(&'r Request<'a>, &'c mut Context<'b>) -> Result<Response>;

/// A layer, as listed in `plugin! { layers: [...] }`.
pub type Layer =
    for<'r, 'a, 'c, 'b> fn(&'r Request<'a>, &'c mut Context<'b>, Next) -> Result<Response>;

/// The rest of the chain: the layers after this one, then the handler.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::testing::{TestApp, TestRequest};
///
/// /// Private pages need a user in the session; the others pass.
/// fn require_login(req: &Request, ctx: &mut Context, next: Next) -> Result<Response> {
///     if req.path_info().starts_with("/private") && ctx.session().get("user")?.is_none() {
///         return Err(Error::unauthorized());
///     }
///     next.run(req, ctx)
/// }
///
/// /// Marks every answer, errors included.
/// fn stamp(req: &Request, ctx: &mut Context, next: Next) -> Result<Response> {
///     let response = next.run(req, ctx).unwrap_or_else(Response::from);
///     Ok(response.with_header("X-Served-By", "demo"))
/// }
///
/// fn secret(_req: &Request, _ctx: &mut Context) -> &'static str {
///     "42"
/// }
///
/// drupe_sdk::plugin! {
///     name: "demo",
///     layers: [stamp, require_login],
///     routes: [GET "/private" => secret],
/// }
///
/// let resp = TestApp::new().call(TestRequest::get("/private"));
/// assert_eq!(resp.status(), 401);
/// assert_eq!(resp.header("x-served-by"), Some("demo"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Next {
    layers: &'static [Layer],
    handler: Handler,
}

impl Next {
    /// The chain of `layers` (outermost first) around `handler`.
    pub(crate) fn new(layers: &'static [Layer], handler: Handler) -> Next {
        Next { layers, handler }
    }

    /// Runs the next layer, or the handler when no layer is left.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    ///
    /// fn log_slow(req: &Request, ctx: &mut Context, next: Next) -> Result<Response> {
    ///     let started = std::time::Instant::now();
    ///     let result = next.run(req, ctx);
    ///     if started.elapsed().as_millis() > 500 {
    ///         drupe_sdk::log::warn!("slow: {}", req.target());
    ///     }
    ///     result
    /// }
    /// # drupe_sdk::plugin! { name: "x", layers: [log_slow], routes: [GET "/" => ok] }
    /// # fn ok(_: &Request, _: &mut Context) {}
    /// ```
    pub fn run(self, req: &Request<'_>, ctx: &mut Context<'_>) -> Result<Response> {
        match self.layers.split_first() {
            Some((layer, rest)) => layer(req, ctx, Next::new(rest, self.handler)),
            None => (self.handler)(req, ctx),
        }
    }
}
