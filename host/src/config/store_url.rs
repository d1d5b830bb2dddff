//! `[store] url`: which store, checked when the INI file is read so that a
//! typo is a config error naming the line, not a 503 on every request.
//!
//! Three forms: `sqlite://PATH` (the default, one machine),
//! `redis://HOST:PORT/DB` (one Redis that every host shares) and
//! `redis+sentinel://HOST:PORT,HOST:PORT/PRIMARY/DB` (a Redis primary whose
//! address the Sentinels named there know, so the store follows a
//! failover). Nothing connects here.

use std::path::PathBuf;

/// The port a Sentinel listens on unless the URL says otherwise.
pub const SENTINEL_PORT: u16 = 26379;

const SENTINEL_SCHEME: &str = "redis+sentinel://";
const SENTINEL_FORM: &str = "write redis+sentinel://HOST:PORT,HOST:PORT/PRIMARY/DB";

/// A parsed `redis+sentinel://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// The Sentinels to ask, in the order written.
    pub sentinels: Vec<(String, u16)>,
    /// The name the Sentinels monitor the primary under
    /// (`sentinel monitor NAME …` in their config).
    pub primary: String,
    /// The database on the primary, as `redis://…/DB`.
    pub db: i64,
}

impl SentinelUrl {
    /// Whether `url` is meant as a Sentinel URL (valid or not).
    pub fn is_sentinel(url: &str) -> bool {
        url.starts_with(SENTINEL_SCHEME)
    }

    /// Parses `redis+sentinel://HOST[:PORT],…/PRIMARY[/DB]`; the error
    /// says what is wrong (the caller adds the value and the line).
    pub fn parse(url: &str) -> Result<SentinelUrl, String> {
        let bad = |what: &str| format!("is not a Sentinel URL: {what}; {SENTINEL_FORM}");
        let rest = url
            .strip_prefix(SENTINEL_SCHEME)
            .ok_or_else(|| bad("it does not start with redis+sentinel://"))?;
        if rest.contains(['?', '#']) {
            return Err(bad("options after '?' are not supported"));
        }
        if rest.contains('@') {
            return Err(bad(
                "passwords are not supported for Sentinel yet (run Redis without AUTH on a trusted network)",
            ));
        }
        let (hosts, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("the primary's name is missing"))?;
        let sentinels = hosts
            .split(',')
            .map(|h| host_port(h).ok_or_else(|| bad(&format!("'{h}' is not HOST or HOST:PORT"))))
            .collect::<Result<Vec<_>, _>>()?;
        let (primary, db) = match path.split_once('/') {
            Some((name, "")) => (name, 0),
            Some((name, db)) => (
                name,
                db.parse::<i64>()
                    .ok()
                    .filter(|n| (0..=1_000_000).contains(n))
                    .ok_or_else(|| bad(&format!("the database '{db}' is not a number")))?,
            ),
            None => (path, 0),
        };
        if primary.is_empty() || primary.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(bad("the primary's name is missing"));
        }
        Ok(SentinelUrl {
            sentinels,
            primary: primary.to_owned(),
            db,
        })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok().filter(|&p| p != 0)?,
        None => SENTINEL_PORT,
    };
    Some((host.to_owned(), port))
}

/// Checks `[store] url` and returns it as stored: relative SQLite paths
/// resolved (through `resolve`, against the INI's folder) and stored back
/// absolute, so workers never depend on their current directory.
pub(super) fn check(
    v: &str,
    resolve: impl Fn(&str) -> Result<PathBuf, String>,
) -> Result<String, String> {
    if let Some(file) = v.strip_prefix("sqlite://") {
        let file = resolve(file).map_err(|_| "has no file; write sqlite://PATH".to_string())?;
        return Ok(format!("sqlite://{}", file.display()));
    }
    if SentinelUrl::is_sentinel(v) {
        return SentinelUrl::parse(v).map(|_| v.to_string());
    }
    match v.split_once("://") {
        Some(("redis", rest)) if !rest.is_empty() => match redis::Client::open(v) {
            Ok(_) => Ok(v.to_string()),
            Err(e) => Err(format!(
                "is not a Redis URL ({e}); write redis://HOST:PORT/DB"
            )),
        },
        Some(("rediss", _)) => Err(
            "asks for TLS to Redis, which drupe does not speak; use redis:// on a trusted network"
                .to_string(),
        ),
        _ => Err(
            "is not a store URL; use sqlite://PATH, redis://HOST:PORT/DB \
             or redis+sentinel://HOST:PORT,HOST:PORT/PRIMARY/DB"
                .to_string(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hosts(list: &[(&str, u16)]) -> Vec<(String, u16)> {
        list.iter().map(|&(h, p)| (h.to_owned(), p)).collect()
    }

    #[test]
    fn sentinel_urls() {
        let url = SentinelUrl::parse("redis+sentinel://10.0.0.1:5000,sentinel-b/drupe/2").unwrap();
        assert_eq!(
            url.sentinels,
            hosts(&[("10.0.0.1", 5000), ("sentinel-b", 26379)])
        );
        assert_eq!((url.primary.as_str(), url.db), ("drupe", 2));
        let url = SentinelUrl::parse("redis+sentinel://[::1]:26380,[::1]/main").unwrap();
        assert_eq!(url.sentinels, hosts(&[("::1", 26380), ("::1", 26379)]));
        assert_eq!((url.primary.as_str(), url.db), ("main", 0));
        assert_eq!(
            SentinelUrl::parse("redis+sentinel://h/main/").unwrap().db,
            0
        );
    }

    #[test]
    fn bad_sentinel_urls_say_what_is_wrong() {
        for (url, why) in [
            ("redis+sentinel://h:1", "the primary's name is missing"),
            ("redis+sentinel://h:1/", "the primary's name is missing"),
            ("redis+sentinel://h:1,/p", "'' is not HOST or HOST:PORT"),
            (
                "redis+sentinel://h:port/p",
                "'h:port' is not HOST or HOST:PORT",
            ),
            ("redis+sentinel://h:0/p", "'h:0' is not HOST or HOST:PORT"),
            ("redis+sentinel://h/p/x", "the database 'x' is not a number"),
            ("redis+sentinel://:pw@h/p", "passwords are not supported"),
            (
                "redis+sentinel://h/p?db=1",
                "options after '?' are not supported",
            ),
        ] {
            let e = SentinelUrl::parse(url).unwrap_err();
            assert!(e.starts_with("is not a Sentinel URL: "), "{url}: {e}");
            assert!(e.contains(why), "{url}: {e}");
            assert!(e.ends_with(SENTINEL_FORM), "{url}: {e}");
        }
    }
}
