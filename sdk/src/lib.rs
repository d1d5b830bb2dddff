//! `drupe-sdk`: write page handlers for the drupe application server.
//!
//! A plugin is a crate built as a `cdylib` that declares its routes with
//! [`plugin!`]. The drupe host loads the `.so` in every worker process and
//! calls a handler for each matching request. Handlers are plain
//! synchronous functions from a [`Request`] and a [`Context`] to a
//! [`Result`]`<`[`Response`]`>`; they never see a raw pointer, and a panic
//! becomes a 500 for that request only.
//!
//! # Writing a plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib", "rlib"]   # rlib so unit tests can call handlers
//!
//! [dependencies]
//! drupe-sdk = "0.2"
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use drupe_sdk::prelude::*;
//!
//! fn index(_req: &Request, _ctx: &mut Context) -> Result<Response> {
//!     Ok(Response::text("Hello, World!"))
//! }
//!
//! fn greet(req: &Request, ctx: &mut Context) -> Result<Response> {
//!     let name = req.param("name").ok_or_else(Error::not_found)?;
//!     let greeting = ctx.setting("greeting").unwrap_or("Hello");
//!     Ok(Response::text(format!("{greeting}, {name}!")))
//! }
//!
//! drupe_sdk::plugin! {
//!     name: "hello",
//!     routes: [
//!         GET "/" => index,
//!         GET "/{name}" => greet,
//!     ],
//! }
//!
//! // In `#[cfg(test)] mod tests`:
//! use drupe_sdk::testing::TestRequest;
//! let resp = TestRequest::get("/bob").param("name", "bob").call(greet);
//! assert_eq!(resp.body_text(), "Hello, bob!");
//! ```
//!
//! Build with `cargo build --release`, copy `target/release/libhello.so`
//! into the plugin directory, and the host serves `GET /hello` and
//! `GET /hello/{name}`; keys of an INI section `[plugin.hello]` arrive as
//! [`Context::setting`]s. Log with `drupe_sdk::log::info!(..)` (or the `log`
//! crate): records go to the host's error log, tagged with the plugin name.
//!
//! # Shared data
//!
//! [`Context::store`] gives the plugin's keys in the store every worker and
//! host shares (Redis or SQLite, as the host is configured), and
//! [`Context::session`] the visitor's session; see [`Store`] and
//! [`Session`]. A [`StoreError`] converts into [`Error`], so `?` answers
//! 503 when the store could not be reached (nothing was done), 504 when a
//! write was sent but its answer never came (it may have been applied:
//! read the value back rather than retrying blindly), and 500 otherwise.
//! [`testing::TestStore`] keeps both in memory for unit tests.
//!
//! # Layout
//!
//! - [`guide`]: *Writing a plugin*, from a new crate to deployment.
//! - [`abi`]: the `#[repr(C)]` boundary shared with the host; plugin authors
//!   do not need it.
//! - [`plugin!`]: declares the plugin and exports its C entry point.
//! - [`testing`]: runs a handler in a unit test.

#![warn(missing_docs)]

pub mod abi;
mod body_source;
mod context;
mod cookie;
mod error;
#[doc(hidden)]
pub mod export;
#[cfg(feature = "serde")]
mod extract;
#[doc = include_str!("guide.md")]
pub mod guide {}
mod html;
mod into_response;
mod layer;
mod request;
mod response;
#[doc(hidden)]
pub mod routing;
mod status;
mod store;
#[doc(hidden)]
pub use store::op as store_op;
pub mod testing;

pub use context::{Context, Settings};
pub use cookie::{Cookie, SameSite};
pub use error::{Error, Result};
pub use html::html_escape;
#[cfg(feature = "serde")]
pub use into_response::Json;
pub use into_response::{Html, IntoResponse, Redirect};
pub use layer::Next;
#[doc(hidden)]
pub use request::hex_digit;
pub use request::{BodyReader, Request};
pub use response::Response;
#[doc(hidden)]
pub use status::reason_phrase;
pub use store::{Session, Store, StoreError, Value};

/// The `log` crate the SDK forwards to the host, so plugins can log without
/// depending on it themselves: `drupe_sdk::log::warn!("slow store")`.
pub use log;

/// Everything a handler needs: `use drupe_sdk::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "serde")]
    pub use crate::Json;
    pub use crate::{
        Context, Cookie, Error, Html, IntoResponse, Next, Redirect, Request, Response, Result,
        SameSite, Settings, StoreError, Value,
    };
}
