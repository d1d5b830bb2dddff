//! The `plugin!` macro, and the checks it runs on a declaration at
//! compile time (so a bad name or route is a build error, not a load-time
//! surprise). What the generated entry points do is in the parent module.

/// Checks a plugin name at compile time: `[a-z0-9_-]+`.
pub const fn plugin_name(name: &'static str) -> &'static str {
    let b = name.as_bytes();
    assert!(!b.is_empty(), "drupe_sdk::plugin!: the name is empty");
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        assert!(
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-',
            "drupe_sdk::plugin!: a name is made of a-z, 0-9, `_` and `-`"
        );
        i += 1;
    }
    name
}

/// Checks a route method at compile time and maps `ANY` to `*`.
pub const fn route_method(method: &'static str) -> &'static str {
    let b = method.as_bytes();
    if b.len() == 3 && b[0] == b'A' && b[1] == b'N' && b[2] == b'Y' {
        return "*";
    }
    let mut i = 0;
    while i < b.len() {
        assert!(
            b[i].is_ascii_uppercase(),
            "drupe_sdk::plugin!: a method is written in capitals (GET, POST, …) or is ANY"
        );
        i += 1;
    }
    method
}

/// Why a route pattern cannot be served, or `None` if it can. The one
/// definition of a well-formed pattern: `plugin!` checks it at compile
/// time ([`route_pattern`]) and the router again when it loads a plugin.
///
/// A pattern starts with `/`; every segment after that is a literal, a
/// `{name}` or, last only, a `{*name}`, with names of letters, digits and
/// `_`; no segment is empty except the whole pattern `/`.
pub const fn pattern_problem(pattern: &str) -> Option<&'static str> {
    let b = pattern.as_bytes();
    if b.is_empty() || b[0] != b'/' {
        return Some("a route pattern starts with `/`");
    }
    if b.len() == 1 {
        return None;
    }
    // Walk segment by segment: [start, end) between slashes.
    let mut start = 1;
    while start <= b.len() {
        let mut end = start;
        while end < b.len() && b[end] != b'/' {
            end += 1;
        }
        if end == start {
            return Some("empty segment (`//` or a trailing `/`)");
        }
        if b[start] == b'{' {
            if b[end - 1] != b'}' || end - start < 3 {
                return Some(if b[end - 1] != b'}' {
                    "unclosed `{`: a parameter fills a whole segment, like `/{name}`"
                } else {
                    "a parameter needs a name, like `/{name}`"
                });
            }
            let mut name = start + 1;
            if b[name] == b'*' {
                if end != b.len() {
                    return Some("`{*rest}` must be the last segment");
                }
                name += 1;
                if name == end - 1 {
                    return Some("a parameter needs a name, like `/{*rest}`");
                }
            }
            while name < end - 1 {
                let c = b[name];
                if !(c.is_ascii_alphanumeric() || c == b'_') {
                    return Some("parameter names are letters, digits and `_`");
                }
                name += 1;
            }
        } else {
            let mut i = start;
            while i < end {
                if b[i] == b'{' || b[i] == b'}' {
                    return Some("a parameter must fill a whole segment, like `/{name}`");
                }
                i += 1;
            }
        }
        start = end + 1;
    }
    None
}

/// Checks a route pattern at compile time (see [`pattern_problem`]).
pub const fn route_pattern(pattern: &'static str) -> &'static str {
    if let Some(problem) = pattern_problem(pattern) {
        panic!("{}", problem);
    }
    pattern
}

/// Takes a handler as `plugin!` lists it: one of the wrong shape, or with
/// a return type that is not `IntoResponse`, fails here with an error
/// that names this function and the expected signature.
pub fn route_handler<R: crate::IntoResponse>(
    handler: for<'r, 'a, 'c, 'b> fn(&'r crate::Request<'a>, &'c mut crate::Context<'b>) -> R,
) -> for<'r, 'a, 'c, 'b> fn(&'r crate::Request<'a>, &'c mut crate::Context<'b>) -> R {
    handler
}

/// Declares a plugin: its name, optional `init`, `state` and `layers`, and
/// routes.
///
/// ```
/// use drupe_sdk::prelude::*;
///
/// fn index(_req: &Request, _ctx: &mut Context) -> &'static str {
///     "Hello, World!"
/// }
///
/// fn echo(req: &Request, _ctx: &mut Context) -> Result<Response> {
///     Ok(Response::bytes(req.body().to_vec()))
/// }
///
/// fn init(settings: &drupe_sdk::Settings) -> std::result::Result<(), String> {
///     match settings.get("greeting") {
///         Some("") => Err("`greeting` must not be empty".to_owned()),
///         _ => Ok(()),
///     }
/// }
///
/// drupe_sdk::plugin! {
///     name: "demo",
///     init: init,
///     routes: [
///         GET "/" => index,
///         ANY "/{*rest}" => echo,
///     ],
/// }
/// ```
///
/// The keys, in this order (all optional except `name` and `routes`):
///
/// - `name`: `[a-z0-9_-]+`; the default mount point is `/<name>`.
/// - `init`: runs once per worker with the `[plugin.NAME]` settings before
///   any request; an `Err` stops the worker from starting, with the message
///   in the host's log. It returns `Result<S, String>`, where `S` is the
///   `state` type (`()` without one).
/// - `state`: a type `S` (`Send + Sync + 'static`) that handlers read with
///   [`Context::state`](crate::Context::state); built by `init`, or by
///   `S::default()` without one.
/// - `layers: [f, ...]`: functions `fn(&Request, &mut Context, Next) ->
///   Result<Response>` around every route, the first outermost; see
///   [`Next`](crate::Next).
/// - `routes`: `METHOD "pattern" => handler`, where `METHOD` is `GET`,
///   `POST`, … or `ANY`, and the pattern is relative to the mount point:
///   `/`, `/literal`, `/{name}`, `/{*rest}` (last segment only). A handler
///   is `fn(&Request, &mut Context) -> R` for any `R` that implements
///   [`IntoResponse`](crate::IntoResponse).
///
/// Mistakes in the declaration are compile errors, not load-time surprises:
///
/// ```compile_fail
/// # use drupe_sdk::prelude::*;
/// # fn index(_: &Request, _: &mut Context) -> Result<Response> { Ok(Response::new(204)) }
/// drupe_sdk::plugin! { name: "hello", routes: [get "/" => index] } // method in capitals
/// ```
///
/// ```compile_fail
/// # use drupe_sdk::prelude::*;
/// # fn index(_: &Request, _: &mut Context) -> Result<Response> { Ok(Response::new(204)) }
/// drupe_sdk::plugin! { name: "Hello World", routes: [GET "/" => index] } // [a-z0-9_-]+
/// ```
///
/// ```compile_fail
/// # use drupe_sdk::prelude::*;
/// # fn index(_: &Request, _: &mut Context) -> Result<Response> { Ok(Response::new(204)) }
/// drupe_sdk::plugin! { name: "hello", routes: [GET "items" => index] } // starts with `/`
/// ```
///
/// ```compile_fail
/// # use drupe_sdk::prelude::*;
/// # fn index(_: &Request, _: &mut Context) -> Result<Response> { Ok(Response::new(204)) }
/// drupe_sdk::plugin! { name: "hello", routes: [GET "/{*rest}/edit" => index] } // `{*rest}` last
/// ```
///
/// ```compile_fail
/// # use drupe_sdk::prelude::*;
/// # fn index(_: &Request, _: &mut Context) -> Result<Response> { Ok(Response::new(204)) }
/// drupe_sdk::plugin! { name: "hello", routes: [GET "/item-{id}" => index] } // a whole segment
/// ```
///
/// ```compile_fail
/// # use drupe_sdk::prelude::*;
/// # fn index(_: &Request, _: &mut Context) -> Result<Response> { Ok(Response::new(204)) }
/// drupe_sdk::plugin! { name: "hello", routes: [GET "/{id" => index] } // unclosed brace
/// ```
///
/// ```compile_fail
/// # use drupe_sdk::prelude::*;
/// struct NotAResponse;
/// fn index(_: &Request, _: &mut Context) -> NotAResponse { NotAResponse }
/// drupe_sdk::plugin! { name: "hello", routes: [GET "/" => index] } // not IntoResponse
/// ```
///
/// The macro exports the C symbol `drupe_plugin_v1`, so use it once per
/// crate, in a crate built as a `cdylib`. Build with `panic = "unwind"` (the
/// default): the SDK turns a panicking handler into a 500, which it cannot
/// do if panics abort.
#[macro_export]
macro_rules! plugin {
    (
        name: $name:literal,
        $(init: $init:path,)?
        $(state: $state:ty,)?
        $(layers: [ $($layer:path),* $(,)? ],)?
        routes: [ $( $method:ident $pattern:literal => $handler:path ),* $(,)? ] $(,)?
    ) => {
        #[allow(unsafe_code)] // the C entry points must be `unsafe extern "C"`
        const _: () = {
            const __DRUPE_NAME: &str = $crate::export::plugin_name($name);

            const __DRUPE_ROUTES: &[$crate::abi::RouteDecl] = &[$(
                $crate::abi::RouteDecl {
                    method: $crate::abi::Bytes::from_str(
                        $crate::export::route_method(::core::stringify!($method)),
                    ),
                    pattern: $crate::abi::Bytes::from_str($crate::export::route_pattern($pattern)),
                },
            )*];

            // Same order as `__DRUPE_ROUTES`: the host's route index picks
            // both. Each handler, whatever it returns, is wrapped in a
            // function of the one type the table holds.
            static __DRUPE_HANDLERS: &[$crate::export::Handler] = &[$({
                fn route(
                    req: &$crate::Request<'_>,
                    ctx: &mut $crate::Context<'_>,
                ) -> $crate::Result<$crate::Response> {
                    $crate::IntoResponse::into_result($crate::export::route_handler($handler)(req, ctx))
                }
                route
            }),*];

            static __DRUPE_LAYERS: &[$crate::export::Layer] = &[$($($layer),*)?];

            fn __drupe_state(
                settings: &$crate::Settings,
            ) -> ::core::result::Result<::std::boxed::Box<dyn ::core::any::Any + Send + Sync>, ::std::string::String> {
                $crate::__drupe_state!(settings, [$($init)?], [$($state)?])
            }

            static __DRUPE_PLUGIN: $crate::export::Plugin = $crate::export::Plugin {
                name: __DRUPE_NAME,
                routes: __DRUPE_ROUTES,
                handlers: __DRUPE_HANDLERS,
                layers: __DRUPE_LAYERS,
                init: __drupe_state,
            };

            unsafe extern "C" fn __drupe_init(
                host: *const $crate::abi::HostApi,
                settings: *const $crate::abi::KeyValue,
                settings_len: usize,
                error: $crate::abi::OutBuf,
            ) -> $crate::abi::Outcome {
                // SAFETY: the host calls `init` as `PluginDecl::init`
                // documents, which is the shim's contract.
                unsafe {
                    $crate::export::init_shim(&__DRUPE_PLUGIN, host, settings, settings_len, error)
                }
            }

            unsafe extern "C" fn __drupe_handle(
                route: usize,
                request: *const $crate::abi::Request,
                call: *mut $crate::abi::Call,
            ) -> $crate::abi::Outcome {
                // SAFETY: the host calls `handle` as `PluginDecl::handle`
                // documents, which is the shim's contract.
                unsafe { $crate::export::handle_shim(&__DRUPE_PLUGIN, route, request, call) }
            }

            unsafe extern "C" fn __drupe_shutdown() {
                $crate::export::shutdown_shim();
            }

            static __DRUPE_DECL: $crate::abi::PluginDecl = $crate::abi::PluginDecl {
                magic: $crate::abi::MAGIC,
                abi_major: $crate::abi::ABI_MAJOR,
                abi_minor: $crate::abi::ABI_MINOR,
                size: ::core::mem::size_of::<$crate::abi::PluginDecl>() as u32,
                name: $crate::abi::Bytes::from_str(__DRUPE_NAME),
                version: $crate::abi::Bytes::from_str(::core::env!("CARGO_PKG_VERSION")),
                sdk_version: $crate::abi::Bytes::from_str($crate::export::SDK_VERSION),
                routes: __DRUPE_ROUTES.as_ptr(),
                route_count: __DRUPE_ROUTES.len(),
                init: __drupe_init,
                handle: __drupe_handle,
                shutdown: __drupe_shutdown,
            };

            #[unsafe(no_mangle)]
            pub extern "C" fn drupe_plugin_v1() -> *const $crate::abi::PluginDecl {
                &__DRUPE_DECL
            }

            // Lets `TestApp::new()` find this plugin in the crate's tests
            // (and doctests, which build without `cfg(test)`): a pointer
            // stored before `main`, as a constructor. Release builds of
            // the plugin carry none.
            #[cfg(all(target_os = "linux", any(test, debug_assertions)))]
            #[used]
            #[unsafe(link_section = ".init_array")]
            static __DRUPE_REGISTER: extern "C" fn() = {
                extern "C" fn register() {
                    $crate::testing::register(&__DRUPE_PLUGIN);
                }
                register
            };
        };
    };
}

/// `plugin!`'s `init:` and `state:` lines as the function that builds the
/// state: `init` with its result boxed, or the state's `Default`, or `()`.
#[doc(hidden)]
#[macro_export]
macro_rules! __drupe_state {
    ($settings:ident, [], []) => {
        ::core::result::Result::Ok(::std::boxed::Box::new(()))
    };
    ($settings:ident, [$init:path], []) => {{
        let state: ::core::result::Result<(), ::std::string::String> = $init($settings);
        state.map(|s| ::std::boxed::Box::new(s) as _)
    }};
    ($settings:ident, [$init:path], [$state:ty]) => {{
        let state: ::core::result::Result<$state, ::std::string::String> = $init($settings);
        state.map(|s| ::std::boxed::Box::new(s) as _)
    }};
    ($settings:ident, [], [$state:ty]) => {
        ::core::result::Result::Ok(::std::boxed::Box::new(
            <$state as ::core::default::Default>::default(),
        ))
    };
}
