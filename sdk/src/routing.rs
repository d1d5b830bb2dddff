//! The route table: every plugin route, prefixed by its mount point, in one
//! segment tree.
//!
//! Matching goes segment by segment and prefers, at each step, a literal
//! segment over `{name}` over a trailing `{*rest}` (DESIGN "Routing"),
//! backtracking when a more specific branch dead-ends. Among the routes that
//! match the path, the most specific one that accepts the method wins; if
//! the path matches but no route takes the method, the answer is 405 with
//! the union of their methods in `Allow`. `HEAD` is served by `GET` routes.
//!
//! Two routes with the same shape (the same literals, parameters in the same
//! places) and an overlapping method are a startup error naming both.
//!
//! Not part of the plugin API: the host routes every request with it, and
//! [`TestApp`](crate::testing::TestApp) routes a plugin's unit-test
//! requests with it, so both agree.

use crate::export::pattern_problem;
use crate::hex_digit;
use std::collections::HashMap;
use std::fmt;

/// Where a matched request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Index of the plugin in the loaded set.
    pub plugin: usize,
    /// Index of the route in that plugin's declaration.
    pub route: usize,
}

/// The result of looking up a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'r> {
    Found {
        endpoint: &'r Endpoint,
        /// Percent-decoded parameter values, in the endpoint's `params` order.
        values: Vec<String>,
    },
    /// The path exists, but not for this method; the list is for `Allow`.
    MethodNotAllowed(String),
    NotFound,
    /// A parameter would decode to something a plugin must never be handed
    /// (a `..` path component, from `%2F..` tricks); answer 400.
    Refused(&'static str),
}

/// One route, as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub target: Target,
    /// `GET`, `POST`, … or `*`.
    pub method: String,
    /// The mount point (`/hello`, or `` for the root mount).
    pub mount: String,
    /// The full pattern as registered, for messages and `--check`.
    pub pattern: String,
    /// Parameter names in path order.
    pub params: Vec<String>,
    /// Who registered it, for conflict messages.
    pub owner: String,
}

impl Endpoint {
    /// The method as `--check` and the index page show it: `ANY` for `*`.
    pub fn shown_method(&self) -> &str {
        if self.method == "*" {
            "ANY"
        } else {
            &self.method
        }
    }
}

/// A mount as the router keeps it: no trailing `/`, so the root mount `/`
/// is `` and mount + path below it is the request path (WSGI's
/// `script_name` + `path_info`).
pub fn stored_mount(mount: &str) -> &str {
    mount.trim_end_matches('/')
}

/// A mount (or a full route path) as people read it: the root mount,
/// stored as ``, shows as `/`.
pub fn shown_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Why a route cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError(pub String);

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RouteError {}

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<String, Node>,
    param: Option<Box<Node>>,
    /// Endpoints whose pattern ends with `{*rest}` at this depth.
    rest: Vec<Endpoint>,
    /// Endpoints whose pattern ends exactly here.
    here: Vec<Endpoint>,
}

/// All routes of all plugins.
#[derive(Debug, Default)]
pub struct Router {
    root: Node,
    count: usize,
}

enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
    Rest(&'a str),
}

fn parse_pattern(pattern: &str) -> Result<Vec<Segment<'_>>, String> {
    if let Some(problem) = pattern_problem(pattern) {
        return Err(format!("route pattern `{pattern}`: {problem}"));
    }
    // Well-formed (checked above): a leading `/`, no empty segment, every
    // brace a whole `{name}` or a last `{*name}`.
    let body = &pattern[1..];
    if body.is_empty() {
        return Ok(Vec::new());
    }
    Ok(body
        .split('/')
        .map(
            |part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(inner) => match inner.strip_prefix('*') {
                    Some(name) => Segment::Rest(name),
                    None => Segment::Param(inner),
                },
                None => Segment::Literal(part),
            },
        )
        .collect())
}

fn methods_overlap(a: &str, b: &str) -> bool {
    a == "*" || b == "*" || a == b
}

fn valid_method(method: &str) -> bool {
    method == "*" || (!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()))
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Number of registered routes.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Registers `pattern` (relative to `mount`) for `method`.
    pub fn add(
        &mut self,
        mount: &str,
        method: &str,
        pattern: &str,
        target: Target,
        owner: &str,
    ) -> Result<(), RouteError> {
        if !valid_method(method) {
            return Err(RouteError(format!(
                "{owner}: `{method}` is not a method (use GET, POST, … or ANY)"
            )));
        }
        let mount = stored_mount(mount);
        let relative = parse_pattern(pattern).map_err(|e| RouteError(format!("{owner}: {e}")))?;
        let mount_segments = parse_pattern(shown_path(mount))
            .map_err(|e| RouteError(format!("{owner}: mount `{mount}`: {e}")))?;
        if mount_segments
            .iter()
            .any(|s| !matches!(s, Segment::Literal(_)))
        {
            return Err(RouteError(format!(
                "{owner}: mount `{mount}` may not hold parameters"
            )));
        }
        let full = format!(
            "{mount}{}",
            if pattern == "/" && !mount.is_empty() {
                ""
            } else {
                pattern
            }
        );
        let mut params = Vec::new();
        let mut node = &mut self.root;
        let mut rest = false;
        for segment in mount_segments.iter().chain(relative.iter()) {
            match *segment {
                Segment::Literal(text) => node = node.literals.entry(text.to_owned()).or_default(),
                Segment::Param(name) => {
                    params.push(name.to_owned());
                    node = node.param.get_or_insert_with(Default::default);
                }
                Segment::Rest(name) => {
                    params.push(name.to_owned());
                    rest = true;
                }
            }
        }
        let endpoints = if rest { &mut node.rest } else { &mut node.here };
        if let Some(other) = endpoints
            .iter()
            .find(|e| methods_overlap(&e.method, method))
        {
            return Err(RouteError(format!(
                "route conflict: {owner} claims {method} {full}, which {} already claims as {} {}",
                other.owner, other.method, other.pattern
            )));
        }
        endpoints.push(Endpoint {
            target,
            method: method.to_owned(),
            mount: mount.to_owned(),
            pattern: full,
            params,
            owner: owner.to_owned(),
        });
        self.count += 1;
        Ok(())
    }

    /// Finds the endpoint for `method` and `path` (the request path without
    /// query, still percent-encoded, dot-segments already resolved by the
    /// HTTP parser).
    ///
    /// Parameters are percent-decoded. A decoded value with a `..` component
    /// is refused: `/files/..%2F..%2Fetc` has no dot-segment to resolve, yet
    /// `{*rest}` would decode it to `../../etc`. Checking the decoded values
    /// here also keeps a raw `..` away from plugins should a caller ever
    /// skip the parser's resolution.
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let segments: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        let mut allowed: Vec<&str> = Vec::new();
        let mut values: Vec<&str> = Vec::new();
        match find(&self.root, &segments, 0, method, &mut values, &mut allowed) {
            Some((endpoint, rest_from)) => {
                let mut decoded: Vec<String> = values.iter().map(|v| percent_decode(v)).collect();
                if let Some(from) = rest_from {
                    decoded.push(percent_decode(&segments[from..].join("/")));
                }
                if decoded.iter().any(|v| climbs(v)) {
                    return Lookup::Refused("a path parameter holds a `..` segment");
                }
                Lookup::Found {
                    endpoint,
                    values: decoded,
                }
            }
            None if allowed.is_empty() => Lookup::NotFound,
            None => Lookup::MethodNotAllowed(allow_header(&allowed)),
        }
    }

    /// The `Allow` value for `OPTIONS *` (RFC 9110 §9.3.7): every method some
    /// route takes, `HEAD` with `GET`, and `OPTIONS` itself; a route that
    /// takes any method adds the common ones, since `*` is not a method.
    pub fn server_allow(&self) -> String {
        let mut methods: Vec<&str> = vec!["OPTIONS"];
        for endpoint in self.endpoints() {
            match endpoint.method.as_str() {
                "*" => methods.extend(["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"]),
                "GET" => methods.extend(["GET", "HEAD"]),
                other => methods.push(other),
            }
        }
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }

    /// Every endpoint, sorted by pattern, for `--check` and the index page.
    pub fn endpoints(&self) -> Vec<&Endpoint> {
        let mut all = Vec::new();
        collect(&self.root, &mut all);
        all.sort_by(|a, b| a.pattern.cmp(&b.pattern).then(a.method.cmp(&b.method)));
        all
    }
}

fn collect<'r>(node: &'r Node, out: &mut Vec<&'r Endpoint>) {
    out.extend(node.here.iter());
    out.extend(node.rest.iter());
    for child in node.literals.values() {
        collect(child, out);
    }
    if let Some(param) = &node.param {
        collect(param, out);
    }
}

fn accepts(endpoint: &Endpoint, method: &str) -> bool {
    endpoint.method == "*"
        || endpoint.method == method
        || (method == "HEAD" && endpoint.method == "GET")
}

fn pick<'r>(
    endpoints: &'r [Endpoint],
    method: &str,
    allowed: &mut Vec<&'r str>,
) -> Option<&'r Endpoint> {
    let found = endpoints.iter().find(|e| accepts(e, method));
    if found.is_none() {
        allowed.extend(endpoints.iter().map(|e| e.method.as_str()));
    }
    found
}

/// Depth-first search, most specific branch first. Returns the endpoint and,
/// for a `{*rest}` match, the index of the first segment it swallowed.
fn find<'r, 'p>(
    node: &'r Node,
    segments: &[&'p str],
    depth: usize,
    method: &str,
    values: &mut Vec<&'p str>,
    allowed: &mut Vec<&'r str>,
) -> Option<(&'r Endpoint, Option<usize>)> {
    if depth == segments.len() {
        if let Some(endpoint) = pick(&node.here, method, allowed) {
            return Some((endpoint, None));
        }
    } else {
        let segment = segments[depth];
        if let Some(child) = node.literals.get(segment) {
            if let Some(found) = find(child, segments, depth + 1, method, values, allowed) {
                return Some(found);
            }
        }
        // An empty segment (`/a//b`, or a trailing `/`) never binds `{name}`.
        if let (Some(child), false) = (&node.param, segment.is_empty()) {
            values.push(segment);
            if let Some(found) = find(child, segments, depth + 1, method, values, allowed) {
                return Some(found);
            }
            values.pop();
        }
    }
    // `{*rest}` matches the remainder, including nothing at all.
    pick(&node.rest, method, allowed).map(|endpoint| (endpoint, Some(depth)))
}

fn allow_header(methods: &[&str]) -> String {
    let mut list: Vec<&str> = Vec::new();
    for &m in methods {
        if m == "*" {
            return "*".to_owned();
        }
        if !list.contains(&m) {
            list.push(m);
        }
        if m == "GET" && !list.contains(&"HEAD") {
            list.push("HEAD");
        }
    }
    list.sort_unstable();
    list.join(", ")
}

/// Whether a decoded parameter has a `..` path component.
fn climbs(value: &str) -> bool {
    value.split('/').any(|component| component == "..")
}

/// Decodes `%XX` escapes; an invalid escape is kept as typed. The result is
/// UTF-8 with invalid sequences replaced, since plugins get `&str` params.
pub fn percent_decode(input: &str) -> String {
    if !input.contains('%') {
        return input.to_owned();
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str, &str)]) -> Router {
        let mut r = Router::new();
        for (i, (mount, method, pattern)) in routes.iter().enumerate() {
            r.add(
                mount,
                method,
                pattern,
                Target {
                    plugin: 0,
                    route: i,
                },
                "test",
            )
            .unwrap();
        }
        r
    }

    fn found(r: &Router, method: &str, path: &str) -> (usize, Vec<String>) {
        match r.lookup(method, path) {
            Lookup::Found { endpoint, values } => (endpoint.target.route, values),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn literal_beats_param_beats_rest() {
        let r = router(&[
            ("/t", "*", "/{*rest}"),
            ("/t", "GET", "/{name}"),
            ("/t", "GET", "/panic"),
            ("/t", "*", "/"),
        ]);
        assert_eq!(found(&r, "GET", "/t/panic"), (2, vec![]));
        assert_eq!(found(&r, "GET", "/t/bob"), (1, vec!["bob".into()]));
        assert_eq!(found(&r, "GET", "/t/a/b"), (0, vec!["a/b".into()]));
        assert_eq!(found(&r, "POST", "/t"), (3, vec![]));
        // A more specific route that lacks the method falls back to a less
        // specific one that has it.
        assert_eq!(found(&r, "POST", "/t/panic"), (0, vec!["panic".into()]));
    }

    #[test]
    fn backtracks_out_of_a_dead_literal_branch() {
        let r = router(&[("/a", "GET", "/x/y"), ("/a", "GET", "/{p}/z")]);
        assert_eq!(found(&r, "GET", "/a/x/z"), (1, vec!["x".into()]));
    }

    #[test]
    fn root_mount_is_stored_empty_and_shown_as_slash() {
        assert_eq!(stored_mount("/"), "");
        assert_eq!(stored_mount("/hello/"), "/hello");
        assert_eq!(shown_path(stored_mount("/")), "/");
        assert_eq!(shown_path("/hello"), "/hello");
        let r = router(&[("/", "*", "/x")]);
        let e = r.endpoints()[0];
        assert_eq!((e.mount.as_str(), e.shown_method()), ("", "ANY"));
    }

    #[test]
    fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
        let r = router(&[("/c", "GET", "/{name}"), ("/c", "POST", "/{name}")]);
        assert_eq!(r.lookup("GET", "/nope"), Lookup::NotFound);
        assert_eq!(r.lookup("GET", "/c"), Lookup::NotFound);
        assert_eq!(
            r.lookup("DELETE", "/c/x"),
            Lookup::MethodNotAllowed("GET, HEAD, POST".into())
        );
    }

    #[test]
    fn head_is_served_by_get() {
        let r = router(&[("/hello", "GET", "/")]);
        assert_eq!(found(&r, "HEAD", "/hello"), (0, vec![]));
    }

    #[test]
    fn root_mount_and_mount_root_route() {
        let r = router(&[("/", "GET", "/"), ("/hello", "GET", "/")]);
        assert_eq!(found(&r, "GET", "/"), (0, vec![]));
        assert_eq!(found(&r, "GET", "/hello"), (1, vec![]));
        assert_eq!(r.lookup("GET", "/hello/"), Lookup::NotFound);
    }

    #[test]
    fn params_are_percent_decoded() {
        let r = router(&[("/hello", "GET", "/{name}")]);
        assert_eq!(
            found(&r, "GET", "/hello/J%C3%BCrgen%20B"),
            (0, vec!["Jürgen B".into()])
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn decoded_parameters_never_hold_dot_dot() {
        let r = router(&[("/f", "GET", "/{*rest}"), ("/n", "GET", "/{name}")]);
        for path in [
            "/f/..%2F..%2Fetc%2Fpasswd",
            "/f/a/..%2f",
            "/f/%2e%2e%2fx",
            "/f/../x",
            "/n/..%2Fx",
            "/n/..",
            "/n/%2E%2E",
        ] {
            assert!(
                matches!(r.lookup("GET", path), Lookup::Refused(_)),
                "{path}"
            );
        }
        assert_eq!(
            found(&r, "GET", "/f/a..b/..c/%2e"),
            (0, vec!["a..b/..c/.".into()])
        );
        assert_eq!(found(&r, "GET", "/n/..."), (1, vec!["...".into()]));
    }

    #[test]
    fn server_allow_lists_every_method_once() {
        let r = router(&[("/a", "GET", "/"), ("/b", "POST", "/"), ("/c", "GET", "/x")]);
        assert_eq!(r.server_allow(), "GET, HEAD, OPTIONS, POST");
        let r = router(&[("/a", "*", "/")]);
        assert_eq!(
            r.server_allow(),
            "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
        );
        assert_eq!(Router::new().server_allow(), "OPTIONS");
    }

    #[test]
    fn conflicting_routes_name_both_owners() {
        let mut r = Router::new();
        let t = Target {
            plugin: 0,
            route: 0,
        };
        r.add("/x", "GET", "/{a}", t, "plugin one (one.so)")
            .unwrap();
        let err = r
            .add("/x", "*", "/{b}", t, "plugin two (two.so)")
            .unwrap_err();
        assert!(
            err.0.contains("plugin one (one.so)") && err.0.contains("plugin two (two.so)"),
            "{err}"
        );
        // Different methods on one shape are fine.
        r.add("/x", "POST", "/lit", t, "two").unwrap();
        r.add("/x", "GET", "/lit", t, "two").unwrap();
    }

    #[test]
    fn bad_patterns_are_refused() {
        let mut r = Router::new();
        let t = Target {
            plugin: 0,
            route: 0,
        };
        for bad in ["x", "/a//b", "/a/", "/{*r}/x", "/a{b}", "/{}", "/{a-b}"] {
            assert!(r.add("/m", "GET", bad, t, "p").is_err(), "{bad}");
        }
        assert!(r.add("/m", "get", "/", t, "p").is_err());
    }
}
