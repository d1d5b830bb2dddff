//! Routing on arbitrary paths, the way the worker does it: the request
//! target goes through the HTTP parser (alphabet check, dot-segment
//! resolution), then the router. Whatever the path, nothing panics, no
//! plugin is handed a parameter with a `..` component, and the mount point
//! is a prefix of the path a match was found for. The raw path is also
//! looked up directly, without the parser, where the router's own `..`
//! check must hold on its own.
#![no_main]

use drupe::http::{Head, HeadLimits};
use drupe::plugin::routes::{Lookup, Router, Target};
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 5] = ["GET", "POST", "HEAD", "DELETE", "OPTIONS"];

fn router() -> Router {
    let mut r = Router::new();
    let routes: [(&str, &str, &str); 9] = [
        ("/hello", "GET", "/"),
        ("/hello", "GET", "/{name}"),
        ("/files", "GET", "/{*rest}"),
        ("/files", "POST", "/upload/{name}"),
        ("/t", "*", "/"),
        ("/t", "*", "/{*rest}"),
        ("/t", "GET", "/a/{x}/b/{y}"),
        ("", "GET", "/"),
        ("/deep/er", "DELETE", "/{id}/x"),
    ];
    for (i, (mount, method, pattern)) in routes.into_iter().enumerate() {
        let target = Target {
            plugin: 0,
            route: i,
        };
        r.add(mount, method, pattern, target, "fuzz")
            .expect("valid route");
    }
    r
}

/// `parsed`: the path came out of the HTTP parser, so it is absolute.
fn check(router: &Router, method: &str, path: &str, parsed: bool) {
    if let Lookup::Found { endpoint, values } = router.lookup(method, path) {
        assert_eq!(values.len(), endpoint.params.len());
        for v in &values {
            assert!(!v.split('/').any(|c| c == ".."), "{path:?} gave {v:?}");
        }
        if parsed {
            assert!(
                path.starts_with(endpoint.mount.as_str()),
                "{path:?} under {:?}",
                endpoint.mount
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static ROUTER: Router = router();
    }
    let Some((&selector, target)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(selector) % METHODS.len()];
    ROUTER.with(|router| {
        if let Ok(raw) = std::str::from_utf8(target) {
            check(router, method, raw, false);
        }
        let mut buf = Vec::with_capacity(target.len() + 32);
        buf.extend_from_slice(method.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(target);
        buf.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut head = Head::new();
        if let Ok(Some(_)) = head.parse(&buf, &HeadLimits::default()) {
            let path = std::str::from_utf8(head.path(&buf)).expect("the parser admits ASCII only");
            if path != "*" {
                check(router, method, path, true);
            }
        }
    });
});
