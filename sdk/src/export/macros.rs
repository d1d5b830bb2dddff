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

/// Checks a route pattern at compile time: it starts with `/`.
pub const fn route_pattern(pattern: &'static str) -> &'static str {
    let b = pattern.as_bytes();
    assert!(
        !b.is_empty() && b[0] == b'/',
        "drupe_sdk::plugin!: a route pattern starts with `/`"
    );
    pattern
}

/// Declares a plugin: its name, optional `init`, and routes.
///
/// ```
/// use drupe_sdk::prelude::*;
///
/// fn index(_req: &Request, _ctx: &mut Context) -> Result<Response> {
///     Ok(Response::text("Hello, World!"))
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
/// - `name`: `[a-z0-9_-]+`; the default mount point is `/<name>`.
/// - `init` (optional): runs once per worker with the `[plugin.NAME]`
///   settings before any request; an `Err` stops the worker from starting,
///   with the message in the host's log.
/// - `routes`: `METHOD "pattern" => handler`, where `METHOD` is `GET`,
///   `POST`, … or `ANY`, and the pattern is relative to the mount point:
///   `/`, `/literal`, `/{name}`, `/{*rest}` (last segment only). A handler
///   is `fn(&Request, &mut Context) -> Result<Response>`.
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
/// The macro exports the C symbol `drupe_plugin_v1`, so use it once per
/// crate, in a crate built as a `cdylib`. Build with `panic = "unwind"` (the
/// default): the SDK turns a panicking handler into a 500, which it cannot
/// do if panics abort.
#[macro_export]
macro_rules! plugin {
    (
        name: $name:literal,
        $(init: $init:path,)?
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

            // Same order as `__DRUPE_ROUTES`: the host's route index picks both.
            static __DRUPE_HANDLERS: &[$crate::export::Handler] = &[$($handler),*];

            unsafe extern "C" fn __drupe_init(
                host: *const $crate::abi::HostApi,
                settings: *const $crate::abi::KeyValue,
                settings_len: usize,
                error: $crate::abi::OutBuf,
            ) -> $crate::abi::Outcome {
                let user_init: ::core::option::Option<$crate::export::InitFn> =
                    $crate::__drupe_init!($($init)?);
                // SAFETY: the host calls `init` as `PluginDecl::init`
                // documents, which is the shim's contract.
                unsafe {
                    $crate::export::init_shim(__DRUPE_NAME, user_init, host, settings, settings_len, error)
                }
            }

            unsafe extern "C" fn __drupe_handle(
                route: usize,
                request: *const $crate::abi::Request,
                call: *mut $crate::abi::Call,
            ) -> $crate::abi::Outcome {
                // SAFETY: the host calls `handle` as `PluginDecl::handle`
                // documents, which is the shim's contract.
                unsafe { $crate::export::handle_shim(__DRUPE_HANDLERS, route, request, call) }
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
        };
    };
}

/// `plugin!`'s optional `init:` line as an `Option`.
#[doc(hidden)]
#[macro_export]
macro_rules! __drupe_init {
    () => {
        ::core::option::Option::None
    };
    ($init:path) => {
        ::core::option::Option::Some($init)
    };
}
