//! `testkit`: a fixture plugin for the host's integration and fault tests.
//!
//! Every route misbehaves on purpose in one well-defined way: it panics,
//! aborts the worker, sleeps, spins the CPU, reports which worker served
//! it, sends a header the host must refuse, or answers a chosen status.
//! `/store/{key}` reads and writes a raw store key, to show that it is
//! testkit's own. Not for production.
//!
//! `init` can fail on purpose, to test a worker that cannot boot: with
//! `[plugin.testkit] initCounter = FILE` and `failInitAfter = N`, each
//! `init` (in a probe or a worker) appends a byte to FILE, and every call
//! after the N-th fails. With `identityLog = FILE`, each `init` appends
//! the `Uid:` and `Gid:` lines of `/proc/self/status`: who the probe and the
//! workers run as when they load plugins. With `abortInInit = true`,
//! `init` aborts the process (SIGABRT): a probe killed by a signal.

use std::time::{Duration, Instant};

use drupe_sdk::prelude::*;

/// The longest `/sleep/{ms}` or `/spin/{ms}` accepted: ten minutes, so a
/// typo cannot wedge a test run for days.
const MAX_MS: u64 = 600_000;

/// Counts this `init` call in `initCounter` and fails past `failInitAfter`;
/// records who runs it in `identityLog`.
pub fn init(settings: &Settings) -> std::result::Result<(), String> {
    if settings.get("abortInInit") == Some("true") {
        std::process::abort();
    }
    if let Some(file) = settings.get("identityLog") {
        let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
        let ids: String = status
            .lines()
            .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:"))
            .map(|l| format!("{l}\n"))
            .collect();
        // One O_APPEND write per call: whole records from every process.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, ids.as_bytes()))
            .map_err(|e| format!("identityLog {file}: {e}"))?;
    }
    let (Some(counter), Some(limit)) = (settings.get("initCounter"), settings.get("failInitAfter"))
    else {
        return Ok(());
    };
    let limit: u64 = limit
        .parse()
        .map_err(|_| format!("failInitAfter = {limit} is not a number"))?;
    // One O_APPEND write per call: atomic across processes.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(counter)
        .map_err(|e| format!("initCounter {counter}: {e}"))?;
    std::io::Write::write_all(&mut file, b"+").map_err(|e| format!("initCounter: {e}"))?;
    let calls = file.metadata().map_err(|e| e.to_string())?.len();
    if calls > limit {
        Err(format!(
            "testkit: init call {calls} fails on purpose (failInitAfter = {limit})"
        ))
    } else {
        Ok(())
    }
}

/// `ANY /`, `ANY /echo`, `ANY /{*rest}`: 200 with the request body.
pub fn echo(req: &Request, _ctx: &mut Context) -> Result<Response> {
    Ok(Response::bytes(req.body().to_vec()))
}

/// `GET /scheme`: `req.scheme()`, `http` or `https`.
pub fn scheme(req: &Request, _ctx: &mut Context) -> Result<Response> {
    Ok(Response::text(req.scheme()))
}

/// `GET /panic`: the handler panics (the SDK turns that into a 500).
pub fn panic(_req: &Request, _ctx: &mut Context) -> Result<Response> {
    panic!("testkit: panic on request")
}

/// `GET /abort`: the whole worker process aborts.
pub fn abort(_req: &Request, _ctx: &mut Context) -> Result<Response> {
    std::process::abort()
}

/// The `{ms}` parameter as a duration; 400 if missing, not a number or too
/// large.
fn millis(req: &Request) -> Result<Duration> {
    let ms: u64 = req
        .param("ms")
        .ok_or_else(|| Error::bad_request("missing {ms}"))?
        .parse()?;
    if ms > MAX_MS {
        return Err(Error::bad_request(format!("{{ms}} is at most {MAX_MS}")));
    }
    Ok(Duration::from_millis(ms))
}

/// With `[plugin.testkit] startedFile = FILE`, appends `LABEL PID\n` to
/// FILE (one `O_APPEND` write): the event a test waits for to know that a
/// handler is running, instead of sleeping and hoping.
fn announce(ctx: &Context, label: &str) -> Result<()> {
    let Some(file) = ctx.setting("startedFile") else {
        return Ok(());
    };
    let line = format!("{label} {}\n", std::process::id());
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
        .map_err(|e| Error::internal(format!("startedFile {file}: {e}")))
}

/// `GET /sleep/{ms}`: blocks this handler thread, then 200 `slept {ms}`.
/// Announces itself first (see [`announce`]).
pub fn sleep(req: &Request, ctx: &mut Context) -> Result<Response> {
    let d = millis(req)?;
    announce(ctx, &format!("sleep/{}", d.as_millis()))?;
    std::thread::sleep(d);
    Ok(Response::text(format!("slept {}", d.as_millis())))
}

/// `GET /spin/{ms}`: keeps a CPU busy that long, then 200 `spun {ms}`.
pub fn spin(req: &Request, _ctx: &mut Context) -> Result<Response> {
    let d = millis(req)?;
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
    Ok(Response::text(format!("spun {}", d.as_millis())))
}

/// `GET /session-peek`: reads the session field `seen` without writing
/// anything: `none` or its value. Must never create a session.
pub fn session_peek(_req: &Request, ctx: &mut Context) -> Result<Response> {
    let seen = ctx.session().get_string("seen")?;
    Ok(Response::text(seen.unwrap_or_else(|| "none".to_owned())))
}

/// `GET /pid`: the serving worker's pid as decimal text.
pub fn pid(_req: &Request, _ctx: &mut Context) -> Result<Response> {
    Ok(Response::text(std::process::id().to_string()))
}

/// `GET /headers`: the request headers as `name: value` lines, in order.
pub fn headers(req: &Request, _ctx: &mut Context) -> Result<Response> {
    let mut out = String::new();
    for (name, value) in req.headers() {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
    Ok(Response::text(out))
}

/// `GET /remote`: who the host says the request came from, as
/// `remote_addr scheme` (`127.0.0.5:50312 http`): the socket's peer, or
/// the client a PROXY header or a trusted proxy's headers named.
pub fn remote(req: &Request, _ctx: &mut Context) -> Result<Response> {
    Ok(Response::text(format!(
        "{} {}",
        req.remote_addr(),
        req.scheme()
    )))
}

/// `GET /bad-header`: a response header with CR LF in its value. The host
/// must refuse it and answer 500 instead of splitting the response.
pub fn bad_header(_req: &Request, _ctx: &mut Context) -> Result<Response> {
    Ok(Response::text("this body must not be sent")
        .with_header("X-Injected", "a\r\nSet-Cookie: pwned=1"))
}

/// `GET /store/{key}`: the value of this plugin's `key`, or 404.
pub fn store_get(req: &Request, ctx: &mut Context) -> Result<Response> {
    let key = req.param("key").ok_or_else(Error::not_found)?;
    let value = ctx.store().get(key)?.ok_or_else(Error::not_found)?;
    Ok(Response::bytes(value.into_bytes()))
}

/// `PUT /store/{key}`: sets this plugin's `key` to the body; 204.
pub fn store_put(req: &Request, ctx: &mut Context) -> Result<Response> {
    let key = req.param("key").ok_or_else(Error::not_found)?;
    ctx.store().set(key, req.body())?;
    Ok(Response::new(204))
}

/// `GET /header/{value}`: 200 with the decoded path parameter as the value
/// of `X-Echo`. With `%0D%0A` or `%00` in it the host must refuse the
/// header and answer 500: user input cannot split a response.
pub fn echo_header(req: &Request, _ctx: &mut Context) -> Result<Response> {
    let value = req.param("value").unwrap_or_default();
    Ok(Response::text("header set").with_header("X-Echo", value))
}

/// `ANY /status/{code}`: that status with the body `body of {code}`, which
/// the host must drop for HEAD, 204, 205 and 304.
pub fn status(req: &Request, _ctx: &mut Context) -> Result<Response> {
    let code: u16 = req
        .param("code")
        .ok_or_else(|| Error::bad_request("missing {code}"))?
        .parse()?;
    Ok(Response::text(format!("body of {code}")).with_status(code))
}

/// `GET /path/{*rest}`: what routing handed over, as
/// `path_info=…\nrest=…\n`, to show that no `..` ever reaches a plugin.
pub fn path(req: &Request, _ctx: &mut Context) -> Result<Response> {
    Ok(Response::text(format!(
        "path_info={}\nrest={}\n",
        req.path_info(),
        req.param("rest").unwrap_or_default()
    )))
}

/// `GET /file/{*path}`: `Response::file` of `path` below the folder in
/// the `fileRoot` setting (404 without it). Routing never hands over a
/// `..`, so the path stays below the folder.
pub fn file(req: &Request, ctx: &mut Context) -> Result<Response> {
    let root = ctx.setting("fileRoot").ok_or_else(Error::not_found)?;
    let path = req.param("path").unwrap_or_default();
    Ok(Response::file(std::path::Path::new(root).join(path)))
}

/// `GET /stream/{n}`: `n` bytes (`0123456789` repeated), streamed chunked.
pub fn stream(req: &Request, _ctx: &mut Context) -> Result<Response> {
    Ok(Response::stream(digits(count(req)?)))
}

/// `GET /stream-sized/{n}`: the same bytes, streamed with a length.
pub fn stream_sized(req: &Request, _ctx: &mut Context) -> Result<Response> {
    let n = count(req)?;
    Ok(Response::stream_sized(digits(n), n))
}

fn count(req: &Request) -> Result<u64> {
    Ok(req
        .param("n")
        .ok_or_else(|| Error::bad_request("missing {n}"))?
        .parse()?)
}

/// `n` bytes of `0123456789…`, produced as they are read.
fn digits(n: u64) -> Digits {
    Digits { at: 0, len: n }
}

/// See [`digits`].
#[derive(Debug)]
pub struct Digits {
    at: u64,
    len: u64,
}

impl std::io::Read for Digits {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.len - self.at).unwrap_or(usize::MAX));
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = b'0' + ((self.at + i as u64) % 10) as u8;
        }
        self.at += n as u64;
        Ok(n)
    }
}

/// `POST /count-body`: reads the body through `req.body_reader()` and
/// answers `LENGTH HASH` (FNV-1a, 64 bits, hex): proof that every byte
/// arrived, without the handler holding the body.
pub fn count_body(req: &Request, _ctx: &mut Context) -> Result<Response> {
    use std::io::Read;
    let mut reader = req.body_reader();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut len, mut hash) = (0u64, 0xcbf2_9ce4_8422_2325u64);
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Error::internal(e.to_string()))?;
        if n == 0 {
            break;
        }
        len += n as u64;
        for &b in &buf[..n] {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok(Response::text(format!("{len} {hash:016x}")))
}

drupe_sdk::plugin! {
    name: "testkit",
    init: init,
    routes: [
        ANY "/" => echo,
        ANY "/echo" => echo,
        GET "/panic" => panic,
        GET "/abort" => abort,
        GET "/sleep/{ms}" => sleep,
        GET "/spin/{ms}" => spin,
        GET "/pid" => pid,
        GET "/session-peek" => session_peek,
        GET "/headers" => headers,
        GET "/remote" => remote,
        GET "/bad-header" => bad_header,
        GET "/store/{key}" => store_get,
        PUT "/store/{key}" => store_put,
        GET "/header/{value}" => echo_header,
        GET "/scheme" => scheme,
        ANY "/status/{code}" => status,
        GET "/path/{*rest}" => path,
        GET "/file/{*path}" => file,
        GET "/stream/{n}" => stream,
        GET "/stream-sized/{n}" => stream_sized,
        POST "/count-body" => count_body,
        ANY "/{*rest}" => echo,
    ],
}

#[cfg(test)]
mod tests {
    use super::*;
    use drupe_sdk::testing::TestRequest;

    #[test]
    fn echo_returns_the_body() {
        let resp = TestRequest::post("/echo", &b"\x00binary\xff"[..]).call(echo);
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(resp.body(), b"\x00binary\xff");
    }

    #[test]
    fn pid_is_this_process() {
        let resp = TestRequest::get("/pid").call(pid);
        assert_eq!(resp.body_text(), std::process::id().to_string());
    }

    #[test]
    fn sleep_waits_and_reports() {
        let resp = TestRequest::get("/sleep/5").param("ms", "5").call(sleep);
        assert_eq!((resp.status(), resp.body_text().as_ref()), (200, "slept 5"));
    }

    #[test]
    fn bad_ms_is_a_400() {
        for ms in ["abc", "-1", "", "600001"] {
            let resp = TestRequest::get("/sleep/x").param("ms", ms).call(sleep);
            assert_eq!(resp.status(), 400, "ms = {ms:?}");
            let resp = TestRequest::get("/spin/x").param("ms", ms).call(spin);
            assert_eq!(resp.status(), 400, "ms = {ms:?}");
        }
        assert_eq!(TestRequest::get("/sleep").call(sleep).status(), 400);
    }

    #[test]
    fn spin_runs_at_least_that_long() {
        let start = Instant::now();
        let resp = TestRequest::get("/spin/20").param("ms", "20").call(spin);
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(resp.body_text(), "spun 20");
    }

    #[test]
    fn headers_are_listed_in_order() {
        let resp = TestRequest::get("/headers")
            .header("Host", "x")
            .header("X-A", "1")
            .call(headers);
        assert_eq!(resp.body_text(), "Host: x\nX-A: 1\n");
    }

    #[test]
    fn store_keys_round_trip() {
        let store = drupe_sdk::testing::TestStore::new();
        let get = || {
            TestRequest::get("/store/k")
                .param("key", "k")
                .store(&store)
                .call(store_get)
        };
        assert_eq!(get().status(), 404);
        let put = TestRequest::new("PUT", "/store/k")
            .param("key", "k")
            .body("v")
            .store(&store)
            .call(store_put);
        assert_eq!(put.status(), 204);
        assert_eq!(get().body(), b"v");
    }

    #[test]
    fn init_fails_after_the_configured_number_of_calls() {
        assert_eq!(init(&Settings::default()), Ok(()));
        let dir = std::env::temp_dir().join(format!("testkit-init-{}", std::process::id()));
        let counter = dir.to_string_lossy().into_owned();
        let _ = std::fs::remove_file(&dir);
        let settings: Settings = [("initCounter", counter.as_str()), ("failInitAfter", "2")]
            .into_iter()
            .collect();
        assert_eq!(init(&settings), Ok(()));
        assert_eq!(init(&settings), Ok(()));
        let third = init(&settings);
        let _ = std::fs::remove_file(&dir);
        assert!(third.is_err_and(|e| e.contains("init call 3 fails on purpose")));
    }

    #[test]
    fn status_and_header_routes() {
        let resp = TestRequest::get("/status/204")
            .param("code", "204")
            .call(status);
        assert_eq!(resp.status(), 204);
        let resp = TestRequest::get("/header/x")
            .param("value", "a b")
            .call(echo_header);
        assert_eq!(resp.header("X-Echo"), Some("a b"));
    }

    #[test]
    #[should_panic(expected = "testkit: panic on request")]
    fn panic_panics() {
        TestRequest::get("/panic").call(panic);
    }
}
