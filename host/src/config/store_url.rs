//! `[store] url`: which store, checked when the INI file is read so that a
//! typo is a config error naming the line, not a 503 on every request.
//!
//! The forms ([`StoreUrl`]): `sqlite://PATH` (the default, one machine);
//! `redis://HOST:PORT/DB` (one Redis that every host shares);
//! `redis+sentinel://HOST:PORT,HOST:PORT/PRIMARY/DB` (a Redis primary whose
//! address the Sentinels named there know, so the store follows a
//! failover); `redis+cluster://HOST:PORT,HOST:PORT` (a Redis Cluster; the
//! nodes named are where drupe first asks for the slot map). Every Redis
//! form takes `USER:PASSWORD@` or `:PASSWORD@` (percent-encoded) before its
//! hosts; `rediss://` and `rediss+cluster://` speak TLS, and `?ca=PATH`
//! names the CA that signed the servers' certificates (default: the
//! system's). Nothing connects here.
//!
//! A store URL may hold a password, so it is shown only through
//! [`Redacted`] (or the [`Display`](std::fmt::Display) of a parsed URL,
//! which uses it): the password becomes `***` in every log line, error and
//! status page. `Debug` of the parsed forms hides it too.

use std::path::PathBuf;

/// The port a Sentinel listens on unless the URL says otherwise.
pub const SENTINEL_PORT: u16 = 26379;
/// The port a Redis server listens on unless the URL says otherwise.
pub const REDIS_PORT: u16 = 6379;

const SENTINEL_SCHEME: &str = "redis+sentinel://";
const SENTINEL_FORM: &str = "write redis+sentinel://[USER:PASSWORD@]HOST:PORT,HOST:PORT/PRIMARY/DB";
const REDIS_FORM: &str = "write redis://[USER:PASSWORD@]HOST:PORT/DB or rediss://…?ca=PATH";
const CLUSTER_FORM: &str = "write redis+cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT";
const FORMS: &str = "use sqlite://PATH, redis://HOST:PORT/DB, \
                     redis+sentinel://HOST:PORT,HOST:PORT/PRIMARY/DB \
                     or redis+cluster://HOST:PORT,HOST:PORT";

/// A store URL with any password replaced by `***`: the only way drupe
/// shows one. Works on any text, parsed or not, so a config error about a
/// malformed URL cannot leak the password either.
#[derive(Debug, Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl std::fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0;
        match split_url(text) {
            Some(Parts {
                userinfo: Some(userinfo),
                ..
            }) => {
                // `scheme://` + the user name (if any) + `:***@` + the rest,
                // cut exactly where the parser cuts.
                let start = text.len() - after_scheme(text).len();
                let at = start + userinfo.len();
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                let secret = if userinfo.contains(':') { ":***" } else { "" };
                write!(f, "{}{user}{secret}{}", &text[..start], &text[at..])
            }
            _ => f.write_str(text),
        }
    }
}

/// A password from a store URL; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The password itself, for the `AUTH` command only.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `USER:PASSWORD@` (an ACL user) or `:PASSWORD@` (`requirepass`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    pub user: Option<String>,
    pub password: Option<Password>,
}

/// `rediss://`: TLS, verifying the server against `ca` (PEM) or, without
/// it, the system's CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: Option<PathBuf>,
}

/// A parsed `redis://` or `rediss://` URL: one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub auth: Auth,
    pub tls: Option<Tls>,
    /// The URL as shown: already redacted.
    shown: String,
}

/// A parsed `redis+sentinel://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// The Sentinels to ask, in the order written. They are asked without
    /// credentials: `auth` is for the data nodes.
    pub sentinels: Vec<(String, u16)>,
    /// The name the Sentinels monitor the primary under
    /// (`sentinel monitor NAME …` in their config).
    pub primary: String,
    /// The database on the primary, as `redis://…/DB`.
    pub db: i64,
    /// The credentials for the primary (and any node that replaces it).
    pub auth: Auth,
    /// The URL as shown: already redacted.
    shown: String,
}

/// A parsed `redis+cluster://` or `rediss+cluster://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    /// Where to ask for the slot map first, in the order written.
    pub nodes: Vec<(String, u16)>,
    pub auth: Auth,
    pub tls: Option<Tls>,
    /// The URL as shown: already redacted.
    shown: String,
}

/// `[store] url`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH`, absolute once the config resolved it.
    Sqlite(PathBuf),
    Redis(RedisUrl),
    Sentinel(SentinelUrl),
    Cluster(ClusterUrl),
}

macro_rules! shown_redacted {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.shown)
            }
        }
    )*};
}
shown_redacted!(RedisUrl, SentinelUrl, ClusterUrl);

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StoreUrl::Redis(url) => url.fmt(f),
            StoreUrl::Sentinel(url) => url.fmt(f),
            StoreUrl::Cluster(url) => url.fmt(f),
        }
    }
}

impl StoreUrl {
    /// Parses any store URL; the error says what is wrong (the caller adds
    /// the value, redacted, and the line). SQLite paths are taken as they
    /// are.
    pub fn parse(url: &str) -> Result<StoreUrl, String> {
        if let Some(file) = url.strip_prefix("sqlite://") {
            return Ok(StoreUrl::Sqlite(PathBuf::from(file)));
        }
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("redis" | "rediss") => RedisUrl::parse(url).map(StoreUrl::Redis),
            Some("redis+sentinel") => SentinelUrl::parse(url).map(StoreUrl::Sentinel),
            Some("redis+cluster" | "rediss+cluster") => {
                ClusterUrl::parse(url).map(StoreUrl::Cluster)
            }
            Some("rediss+sentinel") => Err(
                "asks for TLS through Sentinel, which drupe does not do yet; \
                 use redis+sentinel:// on a trusted network, or rediss:// or rediss+cluster://"
                    .to_owned(),
            ),
            _ => Err(format!("is not a store URL; {FORMS}")),
        }
    }
}

/// A URL cut into its parts, before decoding.
struct Parts<'a> {
    userinfo: Option<&'a str>,
    hosts: &'a str,
    path: Option<&'a str>,
    query: Option<&'a str>,
}

fn after_scheme(text: &str) -> &str {
    text.split_once("://").map_or("", |(_, rest)| rest)
}

/// `scheme://[userinfo@]hosts[/path][?query]`. The user info runs to the
/// last `@` (so a password may hold `@`, `/` or `?` unencoded), the query
/// starts at the first `?` after it. A CA path holding `@` must be written
/// `%40`.
fn split_url(text: &str) -> Option<Parts<'_>> {
    let (_, rest) = text.split_once("://")?;
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (hosts, path) = match rest.split_once('/') {
        Some((hosts, path)) => (hosts, Some(path)),
        None => (rest, None),
    };
    Some(Parts {
        userinfo,
        hosts,
        path,
        query,
    })
}

/// `%XX` escapes to bytes, the result as UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = drupe_sdk::hex_digit(bytes.next()?)?;
            let lo = drupe_sdk::hex_digit(bytes.next()?)?;
            out.push((hi << 4) | lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

impl Auth {
    /// `USER:PASSWORD`, `:PASSWORD` or `USER`, percent-decoded. The error
    /// never holds the password.
    fn parse(userinfo: Option<&str>) -> Result<Auth, String> {
        let Some(userinfo) = userinfo else {
            return Ok(Auth::default());
        };
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        let user =
            percent_decode(user).ok_or("the user name has a bad %-escape or is not UTF-8")?;
        let password = password
            .map(|p| percent_decode(p).ok_or("the password has a bad %-escape or is not UTF-8"))
            .transpose()?;
        Ok(Auth {
            user: (!user.is_empty()).then_some(user),
            password: password.filter(|p| !p.is_empty()).map(Password),
        })
    }
}

/// `?ca=PATH` (the only option), for a TLS URL.
fn parse_tls(tls: bool, query: Option<&str>) -> Result<Option<Tls>, String> {
    let mut ca = None;
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        match pair.split_once('=') {
            Some(("ca", path)) if tls && !path.is_empty() => {
                let path = percent_decode(path).ok_or("the CA path has a bad %-escape")?;
                ca = Some(PathBuf::from(path));
            }
            Some(("ca", _)) if !tls => {
                return Err("?ca= is for TLS: write rediss:// to use it".to_owned())
            }
            _ => {
                return Err(format!(
                    "'{pair}' is not an option; the only one is ?ca=PATH"
                ))
            }
        }
    }
    Ok(tls.then_some(Tls { ca }))
}

fn parse_db(db: &str) -> Result<i64, String> {
    db.parse::<i64>()
        .ok()
        .filter(|n| (0..=1_000_000).contains(n))
        .ok_or_else(|| format!("the database '{db}' is not a number"))
}

fn host_list(hosts: &str, default_port: u16) -> Result<Vec<(String, u16)>, String> {
    hosts
        .split(',')
        .map(|h| {
            host_port(h, default_port).ok_or_else(|| format!("'{h}' is not HOST or HOST:PORT"))
        })
        .collect()
}

impl RedisUrl {
    /// Parses `redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB][?ca=PATH]`.
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        let bad = |what: &str| format!("is not a Redis URL: {what}; {REDIS_FORM}");
        let tls = url.starts_with("rediss://");
        let parts = split_url(url).filter(|_| tls || url.starts_with("redis://"));
        let parts = parts.ok_or_else(|| bad("it does not start with redis:// or rediss://"))?;
        let auth = Auth::parse(parts.userinfo).map_err(|e| bad(&e))?;
        let (host, port) = host_port(parts.hosts, REDIS_PORT)
            .ok_or_else(|| bad(&format!("'{}' is not HOST or HOST:PORT", parts.hosts)))?;
        let db = match parts.path {
            None | Some("") => 0,
            Some(db) => parse_db(db).map_err(|e| bad(&e))?,
        };
        Ok(RedisUrl {
            host,
            port,
            db,
            auth,
            tls: parse_tls(tls, parts.query).map_err(|e| bad(&e))?,
            shown: Redacted(url).to_string(),
        })
    }
}

impl SentinelUrl {
    /// Whether `url` is meant as a Sentinel URL (valid or not).
    pub fn is_sentinel(url: &str) -> bool {
        url.starts_with(SENTINEL_SCHEME)
    }

    /// Parses `redis+sentinel://[USER:PASSWORD@]HOST[:PORT],…/PRIMARY[/DB]`;
    /// the error says what is wrong (the caller adds the value and the line).
    pub fn parse(url: &str) -> Result<SentinelUrl, String> {
        let bad = |what: &str| format!("is not a Sentinel URL: {what}; {SENTINEL_FORM}");
        let parts = split_url(url)
            .filter(|_| Self::is_sentinel(url))
            .ok_or_else(|| bad("it does not start with redis+sentinel://"))?;
        if parts.query.is_some() || url.contains('#') {
            return Err(bad("options after '?' are not supported"));
        }
        let auth = Auth::parse(parts.userinfo).map_err(|e| bad(&e))?;
        let path = parts
            .path
            .ok_or_else(|| bad("the primary's name is missing"))?;
        let sentinels = host_list(parts.hosts, SENTINEL_PORT).map_err(|e| bad(&e))?;
        let (primary, db) = match path.split_once('/') {
            Some((name, "")) => (name, 0),
            Some((name, db)) => (name, parse_db(db).map_err(|e| bad(&e))?),
            None => (path, 0),
        };
        if primary.is_empty() || primary.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(bad("the primary's name is missing"));
        }
        Ok(SentinelUrl {
            sentinels,
            primary: primary.to_owned(),
            db,
            auth,
            shown: Redacted(url).to_string(),
        })
    }
}

impl ClusterUrl {
    /// Parses `redis[s]+cluster://[USER:PASSWORD@]HOST[:PORT],…[?ca=PATH]`.
    /// A cluster has database 0 only, so there is no `/DB`.
    pub fn parse(url: &str) -> Result<ClusterUrl, String> {
        let bad = |what: &str| format!("is not a Redis Cluster URL: {what}; {CLUSTER_FORM}");
        let tls = url.starts_with("rediss+cluster://");
        let parts = split_url(url)
            .filter(|_| tls || url.starts_with("redis+cluster://"))
            .ok_or_else(|| bad("it does not start with redis+cluster://"))?;
        let auth = Auth::parse(parts.userinfo).map_err(|e| bad(&e))?;
        if parts.path.is_some_and(|p| !p.is_empty() && p != "0") {
            return Err(bad("a cluster has only database 0"));
        }
        Ok(ClusterUrl {
            nodes: host_list(parts.hosts, REDIS_PORT).map_err(|e| bad(&e))?,
            auth,
            tls: parse_tls(tls, parts.query).map_err(|e| bad(&e))?,
            shown: Redacted(url).to_string(),
        })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
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
        None => default_port,
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
    let tls = match StoreUrl::parse(v)? {
        StoreUrl::Redis(url) => url.tls,
        StoreUrl::Cluster(url) => url.tls,
        _ => None,
    };
    match tls.and_then(|tls| tls.ca) {
        // Read by every worker when it connects; a typo is found now.
        Some(ca) if !ca.is_file() => Err(format!(
            "names the CA file {}, which is not a readable file",
            ca.display()
        )),
        _ => Ok(v.to_string()),
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
        assert_eq!(url.auth, Auth::default());
        let url = SentinelUrl::parse("redis+sentinel://[::1]:26380,[::1]/main").unwrap();
        assert_eq!(url.sentinels, hosts(&[("::1", 26380), ("::1", 26379)]));
        assert_eq!((url.primary.as_str(), url.db), ("main", 0));
        assert_eq!(
            SentinelUrl::parse("redis+sentinel://h/main/").unwrap().db,
            0
        );
        let url = SentinelUrl::parse("redis+sentinel://app:s%40cret@h1,h2:1/main/3").unwrap();
        assert_eq!(url.auth.user.as_deref(), Some("app"));
        assert_eq!(url.auth.password.unwrap().reveal(), "s@cret");
        assert_eq!(url.sentinels, hosts(&[("h1", 26379), ("h2", 1)]));
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
            (
                "redis+sentinel://:p%zz@h/p",
                "the password has a bad %-escape",
            ),
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

    #[test]
    fn redis_urls_with_credentials_and_tls() {
        let url = RedisUrl::parse("redis://cache:6380/2").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.db), ("cache", 6380, 2));
        assert_eq!((url.auth.clone(), url.tls.clone()), (Auth::default(), None));
        let url = RedisUrl::parse("redis://:pw@cache").unwrap();
        assert_eq!((url.port, url.db, url.auth.user.clone()), (6379, 0, None));
        assert_eq!(url.auth.password.unwrap().reveal(), "pw");
        // Percent-decoded; raw `@`, `/`, `?` and `:` in a password work too.
        let url = RedisUrl::parse("redis://app%2B1:p%3Aw%25d@[::1]:7000/1").unwrap();
        assert_eq!(url.auth.user.as_deref(), Some("app+1"));
        assert_eq!(url.auth.password.unwrap().reveal(), "p:w%d");
        assert_eq!((url.host.as_str(), url.port), ("::1", 7000));
        let url = RedisUrl::parse("redis://u:a@b/c?d:e@h:1/0").unwrap();
        assert_eq!(url.auth.password.unwrap().reveal(), "a@b/c?d:e");
        assert_eq!((url.host.as_str(), url.port), ("h", 1));
        let url = RedisUrl::parse("rediss://u:p@h:6390/0?ca=/etc/ssl/redis%40ca.pem").unwrap();
        assert_eq!(
            url.tls,
            Some(Tls {
                ca: Some(PathBuf::from("/etc/ssl/redis@ca.pem"))
            })
        );
        assert_eq!(
            RedisUrl::parse("rediss://h").unwrap().tls,
            Some(Tls { ca: None })
        );
    }

    #[test]
    fn bad_redis_urls_say_what_is_wrong_without_the_password() {
        for (url, why) in [
            ("redis://:secret@h:x/0", "'h:x' is not HOST or HOST:PORT"),
            (
                "redis://:secret@h/zero",
                "the database 'zero' is not a number",
            ),
            ("redis://:secret@h/0?ca=/x", "?ca= is for TLS"),
            ("rediss://:secret@h/0?db=1", "'db=1' is not an option"),
            ("redis://:sec%ret@h", "the password has a bad %-escape"),
        ] {
            let e = RedisUrl::parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains("sec"), "{url}: {e}");
        }
    }

    #[test]
    fn cluster_urls() {
        let url = ClusterUrl::parse("redis+cluster://app:pw@10.0.0.1:7000,10.0.0.2").unwrap();
        assert_eq!(url.nodes, hosts(&[("10.0.0.1", 7000), ("10.0.0.2", 6379)]));
        assert_eq!(url.auth.password.unwrap().reveal(), "pw");
        assert_eq!(url.tls, None);
        let url = ClusterUrl::parse("rediss+cluster://h:1?ca=ca.pem").unwrap();
        assert_eq!(url.tls.unwrap().ca, Some(PathBuf::from("ca.pem")));
        let e = ClusterUrl::parse("redis+cluster://h:1/3").unwrap_err();
        assert!(e.contains("a cluster has only database 0"), "{e}");
        assert!(matches!(
            StoreUrl::parse("redis+cluster://h:1/0"),
            Ok(StoreUrl::Cluster(_))
        ));
    }

    #[test]
    fn every_shown_form_hides_the_password() {
        for (url, shown) in [
            ("redis://:hunter2@h:1/0", "redis://:***@h:1/0"),
            ("redis://app:hunter2@h:1/0", "redis://app:***@h:1/0"),
            ("redis://app@h:1/0", "redis://app@h:1/0"),
            ("redis://h:1/0", "redis://h:1/0"),
            (
                "rediss://a:hun@ter2@h/0?ca=/c.pem",
                "rediss://a:***@h/0?ca=/c.pem",
            ),
            (
                "redis+sentinel://a:hunter2@s1,s2/p/0",
                "redis+sentinel://a:***@s1,s2/p/0",
            ),
            (
                "redis+cluster://:hunter2@n1:7000,n2:7001",
                "redis+cluster://:***@n1:7000,n2:7001",
            ),
            // Not even a URL drupe understands: still hidden.
            ("mysql://root:hunter2@db/x", "mysql://root:***@db/x"),
        ] {
            assert_eq!(Redacted(url).to_string(), shown);
            if let Ok(parsed) = StoreUrl::parse(url) {
                assert_eq!(parsed.to_string(), shown);
                assert!(!format!("{parsed:?}").contains("hunter2"), "{parsed:?}");
            }
        }
    }
}
