//! Tests of the whole path, INI text to [`Config`]: defaults, every kind of
//! value, path resolution, the error messages, and the shipped example file.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/drupe.ini");

fn parse(text: &str) -> Config {
    Config::parse(text.as_bytes(), Path::new("/etc/drupe/drupe.ini")).unwrap()
}

fn err(text: &str) -> String {
    Config::parse(text.as_bytes(), Path::new("drupe.ini"))
        .unwrap_err()
        .to_string()
}

#[test]
fn defaults() {
    let c = Config::default_for(Path::new("/srv/site/drupe.ini")).unwrap();
    assert_eq!(c.source, PathBuf::from("/srv/site/drupe.ini"));
    assert_eq!(c.server.socket_host, "127.0.0.1");
    assert_eq!(c.server.socket_port, 8080);
    assert_eq!(c.server.socket_queue_size, 1024);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(c.server.processes, cpus.min(256));
    assert_eq!(c.server.thread_pool, 8);
    assert_eq!(c.server.graceful_timeout, Duration::from_secs(30));
    assert_eq!(c.server.request_timeout, Duration::from_secs(30));
    assert_eq!(c.server.max_requests, 0);
    assert_eq!(c.server.max_requests_jitter, 0);
    assert_eq!(c.plugins.directory, PathBuf::from("/srv/site/plugins.d"));
    assert!(c.plugins.watch);
    assert!(c.plugin.is_empty());
    assert_eq!(c.store.url, "sqlite:///srv/site/drupe-data/shared.db");
    assert_eq!(c.store.key_prefix, "drupe:");
    assert_eq!(c.store.connect_timeout, Duration::from_secs(1));
    assert_eq!(c.store.timeout, Duration::from_secs(1));
    assert_eq!(c.store.session_timeout, Duration::from_secs(1800));
    assert_eq!(c.limits.max_request_line, 8192);
    assert_eq!(c.limits.max_header_bytes, 16384);
    assert_eq!(c.limits.max_headers, 100);
    assert_eq!(c.limits.max_body_bytes, 10 << 20);
    assert_eq!(c.limits.header_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.body_timeout, Duration::from_secs(30));
    assert_eq!(c.limits.keep_alive_timeout, Duration::from_secs(75));
    assert_eq!(c.limits.send_timeout, Duration::from_secs(60));
    assert_eq!(c.limits.max_keep_alive_requests, 10000);
    assert_eq!(c.limits.max_connections_per_process, 10000);
    assert_eq!(c.log.level, log::LevelFilter::Info);
    assert_eq!(c.log.error_log, LogTarget::Stderr);
    assert_eq!(c.log.access_log, LogTarget::Off);
}

#[test]
fn every_value_kind() {
    let c = parse(
        "[server]\nsocketHost = ::\nsocketPort = 0\nfixedNumberOfProcesses = 3\nthreadPool = 1\n\
         gracefulTimeout = 0\n[plugins]\nwatch = off\n[limits]\nmaxBodyBytes = 1\n\
         maxKeepAliveRequests = 0\n[log]\nlevel = DEBUG\nerrorLog = off\naccessLog = stderr\n\
         [store]\nurl = redis://cache:6380/2\nkeyPrefix =\nconnectTimeout = 0.25\n\
         timeout = 2\nsessionTimeout = 60\n",
    );
    assert_eq!(c.server.socket_host, "::");
    assert_eq!(c.server.socket_port, 0);
    assert_eq!(c.server.processes, 3);
    assert_eq!(c.server.thread_pool, 1);
    assert_eq!(c.server.graceful_timeout, Duration::ZERO);
    assert!(!c.plugins.watch);
    assert_eq!(c.limits.max_body_bytes, 1);
    assert_eq!(c.limits.max_keep_alive_requests, 0);
    assert_eq!(c.log.level, log::LevelFilter::Debug);
    assert_eq!(c.log.error_log, LogTarget::Off);
    assert_eq!(c.log.access_log, LogTarget::Stderr);
    assert_eq!(c.store.url, "redis://cache:6380/2");
    assert_eq!(c.store.key_prefix, "");
    assert_eq!(c.store.connect_timeout, Duration::from_millis(250));
    assert_eq!(c.store.timeout, Duration::from_secs(2));
    assert_eq!(c.store.session_timeout, Duration::from_secs(60));
}

#[test]
fn booleans() {
    for (text, want) in [
        ("true", true),
        ("Yes", true),
        ("on", true),
        ("1", true),
        ("false", false),
        ("no", false),
        ("OFF", false),
        ("0", false),
    ] {
        assert_eq!(
            parse(&format!("[plugins]\nwatch = {text}\n")).plugins.watch,
            want,
            "{text}"
        );
    }
    assert_eq!(
        err("[plugins]\nwatch = maybe\n"),
        "drupe.ini line 2: watch = maybe is not a boolean; use true or false"
    );
}

#[test]
fn relative_paths_resolve_against_the_ini_folder() {
    let c = parse(
        "[plugins]\ndirectory = ./plugins\n[store]\nurl = sqlite://data/x.db\n\
         [log]\nerrorLog = logs/error.log\naccessLog = /var/log/drupe/access.log\n",
    );
    assert_eq!(c.plugins.directory, PathBuf::from("/etc/drupe/plugins"));
    assert_eq!(c.store.url, "sqlite:///etc/drupe/data/x.db");
    assert_eq!(
        c.log.error_log,
        LogTarget::File("/etc/drupe/logs/error.log".into())
    );
    assert_eq!(
        c.log.access_log,
        LogTarget::File("/var/log/drupe/access.log".into())
    );
    assert_eq!(
        parse("[store]\nurl = sqlite:///abs/x.db\n").store.url,
        "sqlite:///abs/x.db"
    );
}

#[test]
fn plugin_sections_keep_mount_and_settings_in_order() {
    let c = parse("[plugin.hello]\nzeta = 1\nmount = /greet\ngreeting = Hello  ; inline\nalpha = 2\n[plugin.counter]\n");
    let hello = &c.plugin["hello"];
    assert_eq!(hello.mount.as_deref(), Some("/greet"));
    assert_eq!(hello.line, 1);
    let settings: Vec<(&str, &str)> = hello
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        settings,
        [("zeta", "1"), ("greeting", "Hello"), ("alpha", "2")]
    );
    assert_eq!(c.mount_of("hello"), "/greet");
    assert_eq!(c.plugin["counter"].line, 6);
    assert_eq!(c.mount_of("counter"), "/counter");
    assert_eq!(parse("[plugin.root]\nmount = /\n").mount_of("root"), "/");
}

#[test]
fn store_namespace_is_the_hosts_and_defaults_to_the_plugin_name() {
    let c = parse("[plugin.notes]\nstoreNamespace = shared\ncolor = red\n[plugin.admin]\n");
    assert_eq!(c.store_namespace_of("notes"), "shared");
    assert_eq!(c.store_namespace_of("admin"), "admin");
    assert_eq!(c.store_namespace_of("unlisted"), "unlisted");
    let notes = &c.plugin["notes"];
    assert_eq!(
        notes.settings,
        [("color".to_owned(), "red".to_owned())],
        "not the plugin's"
    );
    for bad in ["@session", "A", "a:b", "a b"] {
        let e = err(&format!("[plugin.notes]\nstoreNamespace = {bad}\n"));
        assert!(e.contains("drupe.ini line 2"), "{e}");
        assert!(e.contains("is not a namespace"), "{e}");
    }
}

#[test]
fn bad_mounts() {
    for (mount, why) in [
        ("hello", "must start with '/'"),
        ("/hello/", "must not end with '/'"),
        ("/a//b", "must not contain '//'"),
        ("/a/{id}", "must not contain '{' or '}'"),
        ("/a/../hello", "has a '.' or '..' segment"),
        ("/./hello", "has a '.' or '..' segment"),
        ("/a?b", "holds characters a request path cannot"),
    ] {
        let e = err(&format!("[plugin.hello]\nmount = {mount}\n"));
        assert!(
            e.starts_with(&format!(
                "drupe.ini line 2: mount = {mount} is not a mount path: it {why}"
            )),
            "{e}"
        );
    }
}

#[test]
fn bad_plugin_name() {
    assert_eq!(
        err("\n[plugin.Hello]\n"),
        "drupe.ini line 2: plugin name 'Hello' in [plugin.Hello] may use only a-z, 0-9, '_' and '-'"
    );
    assert!(err("[plugin.]\n").contains("plugin name ''"));
}

#[test]
fn unknown_key_suggests_the_nearest() {
    assert_eq!(
        err("[server]\n\n\n\n\n\nsocketport = 8080\n"),
        "drupe.ini line 7: unknown key 'socketport' in [server]; did you mean 'socketPort'?"
    );
    assert_eq!(
        err("[limits]\nmaxBodySize = 1\n"),
        "drupe.ini line 2: unknown key 'maxBodySize' in [limits]; did you mean 'maxBodyBytes'?"
    );
    assert_eq!(
        err("[store]\ncolour = red\n"),
        "drupe.ini line 2: unknown key 'colour' in [store]; the keys of [store] are url, keyPrefix, connectTimeout, timeout, sessionTimeout"
    );
}

#[test]
fn unknown_section_suggests_the_nearest() {
    assert_eq!(
        err("\n\n[sever]\n"),
        "drupe.ini line 3: unknown section [sever]; did you mean [server]?"
    );
    assert_eq!(
        err("[plugins.hello]\n"),
        "drupe.ini line 1: unknown section [plugins.hello]; did you mean [plugin.hello]?"
    );
    assert!(err("[database]\n").starts_with(
        "drupe.ini line 1: unknown section [database]; the sections are [server], [plugins]"
    ));
}

#[test]
fn bad_values_name_key_value_and_range() {
    let cases = [
        (
            "[server]\nsocketPort = 80800\n",
            "socketPort = 80800 is not a port number (0-65535)",
        ),
        (
            "[server]\nsocketPort = -1\n",
            "socketPort = -1 is not a port number (0-65535)",
        ),
        (
            "[server]\nfixedNumberOfProcesses = 0\n",
            "fixedNumberOfProcesses = 0 is not a number of processes from 1 to 256, or auto",
        ),
        (
            "[server]\nthreadPool = 2000\n",
            "threadPool = 2000 is not a whole number from 1 to 1024",
        ),
        (
            "[server]\nsocketHost =\n",
            "socketHost =  is not a host name or address; use e.g. 127.0.0.1 or 0.0.0.0",
        ),
        (
            "[limits]\nheaderTimeout = 0\n",
            "headerTimeout = 0 is not a number of seconds from 1 to 86400",
        ),
        (
            "[limits]\nmaxHeaders = 0\n",
            "maxHeaders = 0 is not a size in bytes (a whole number above 0)",
        ),
        (
            "[log]\nlevel = loud\n",
            "level = loud is not a log level; use off, error, warn, info, debug or trace",
        ),
        (
            "[store]\nurl = mysql://x\n",
            "url = mysql://x is not a store URL; use sqlite://PATH, redis://HOST:PORT/DB, \
             redis+sentinel://HOST:PORT,HOST:PORT/PRIMARY/DB or redis+cluster://HOST:PORT,HOST:PORT",
        ),
        (
            "[store]\nurl = rediss://:hunter2@cache:6380/0?ca=/no/such/ca.pem\n",
            "url = rediss://:***@cache:6380/0?ca=/no/such/ca.pem names the CA file \
             /no/such/ca.pem, which is not a readable file",
        ),
        (
            "[store]\ntimeout = 0\n",
            "timeout = 0 is not a number of seconds from 0.001 to 60 (0.5 is allowed)",
        ),
        (
            "[store]\nconnectTimeout = soon\n",
            "connectTimeout = soon is not a number of seconds from 0.001 to 60 (0.5 is allowed)",
        ),
        (
            "[store]\nurl = sqlite://\n",
            "url = sqlite:// has no file; write sqlite://PATH",
        ),
        (
            "[store]\nurl = redis+sentinel://s1:26379,s2:26379\n",
            "url = redis+sentinel://s1:26379,s2:26379 is not a Sentinel URL: the primary's name \
             is missing; write redis+sentinel://[USER:PASSWORD@]HOST:PORT,HOST:PORT/PRIMARY/DB",
        ),
        (
            "[server]\ndrainPeriod = soon\n",
            "drainPeriod = soon is not a number of seconds from 0 to 86400",
        ),
        (
            "[plugin.hello]\nmount = /_drupe/hello\n",
            "mount = /_drupe/hello is not a mount path: it must not be under /_drupe/, which the \
             host keeps for its own pages (/_drupe/health)",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), format!("drupe.ini line 2: {want}"));
    }
}

#[test]
fn broken_ini_line_is_reported_with_its_line() {
    assert_eq!(
        err("[server]\nsocketPort 8080\n"),
        "drupe.ini line 2: 'socketPort 8080' is not a setting; write 'key = value', or start a comment with ';'"
    );
}

#[test]
fn missing_file_names_path_and_os_error() {
    let e = Config::load(Path::new("/nonexistent/drupe.ini")).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("/nonexistent/drupe.ini: cannot read the config file: "),
        "{text}"
    );
    assert!(text.contains("No such file"), "{text}");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn every_default_parses() {
    // apply_defaults runs inside default_for; a bad default would fail here.
    assert!(Config::default_for(Path::new("x.ini")).is_ok());
    for s in settings() {
        // An empty list is a real default (trustedProxies: nobody).
        let list = s.key == "trustedProxies";
        assert!(
            !s.doc.is_empty() && (list || !s.default.is_empty()),
            "{}",
            s.key
        );
    }
}

#[test]
fn example_file_shows_every_setting() {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let mut section = "";
    let mut shown = Vec::new();
    for line in text.lines() {
        // A setting may be shown commented out (`;mount = ...`) when its
        // default depends on the section, as mount's does.
        let line = line.trim_start_matches(';').trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split_once(']')) {
            section = if name.0.starts_with("plugin.") {
                "plugin.NAME"
            } else {
                name.0
            };
        } else if let Some((key, rest)) = line.split_once('=') {
            shown.push((section.to_string(), key.trim().to_string()));
            assert!(
                rest.contains("; ") || key.trim() == "greeting",
                "no comment on {key}"
            );
        }
    }
    for s in settings() {
        assert!(
            shown
                .iter()
                .any(|(sec, key)| sec == s.section && key == s.key),
            "config/drupe.ini does not show [{}] {}",
            s.section,
            s.key
        );
    }
}

#[test]
fn example_file_parses() {
    let c = Config::load(Path::new(EXAMPLE)).unwrap();
    let folder = Path::new(EXAMPLE).parent().unwrap().canonicalize().unwrap();
    assert_eq!(c.source, folder.join("drupe.ini"));
    assert_eq!(c.server.socket_queue_size, 1024);
    assert_eq!(c.server.processes, 2);
    assert_eq!(c.plugins.directory, folder.join("plugins.d"));
    assert_eq!(
        c.plugin["hello"].settings,
        [("greeting".to_string(), "Hello".to_string())]
    );
    assert_eq!(c.mount_of("hello"), "/hello");
    assert_eq!(
        c.store.url,
        format!("sqlite://{}", folder.join("drupe-data/shared.db").display())
    );
    assert_eq!(c.log.access_log, LogTarget::Off);
}

#[test]
fn supervision_settings() {
    let c = parse("[server]\nrequestTimeout = 0\nmaxRequests = 1000\nmaxRequestsJitter = 50\n");
    assert_eq!(c.server.request_timeout, Duration::ZERO);
    assert_eq!(c.server.max_requests, 1000);
    assert_eq!(c.server.max_requests_jitter, 50);
    assert_eq!(
        err("[server]\nrequestTimeout = -1\n"),
        "drupe.ini line 2: requestTimeout = -1 is not a number of seconds from 0 to 86400"
    );
}

#[test]
fn operability_settings() {
    let c = Config::default_for(Path::new("/srv/drupe.ini")).unwrap();
    assert_eq!((c.server.user, c.server.group), (None, None));
    assert!(!c.server.show_index);
    assert_eq!(c.status.socket_host, "127.0.0.1");
    assert_eq!(c.status.socket_port, None);
    let c = parse(
        "[server]\nuser = www-data\ngroup = adm\nshowIndex = true\n\
         [status]\nsocketHost = 0.0.0.0\nsocketPort = 9180\n",
    );
    assert_eq!(c.server.user.as_deref(), Some("www-data"));
    assert_eq!(c.server.group.as_deref(), Some("adm"));
    assert!(c.server.show_index);
    assert_eq!(c.status.socket_host, "0.0.0.0");
    assert_eq!(c.status.socket_port, Some(9180));
    let c = parse("[server]\nuser = none\n[status]\nsocketPort = off\n");
    assert_eq!(c.server.user, None);
    assert_eq!(c.status.socket_port, None);
    assert_eq!(
        err("[server]\nuser = a b\n"),
        "drupe.ini line 2: user = a b is not a user or group name; use e.g. nobody, or none"
    );
    assert_eq!(
        err("[status]\nsocketPort = http\n"),
        "drupe.ini line 2: socketPort = http is not a port number (0-65535)"
    );
}

#[test]
fn drain_period_and_sentinel_url() {
    let c = Config::default_for(Path::new("x.ini")).unwrap();
    assert_eq!(c.server.drain_period, Duration::ZERO);
    let c = parse(
        "[server]\ndrainPeriod = 5\n[store]\nurl = redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/drupe/0\n",
    );
    assert_eq!(c.server.drain_period, Duration::from_secs(5));
    assert_eq!(
        c.store.url,
        "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/drupe/0"
    );
}

#[test]
fn proxy_settings() {
    let c = Config::default_for(Path::new("x.ini")).unwrap();
    assert!(!c.server.proxy_protocol);
    assert!(c.server.trusted_proxies.is_empty());
    let c =
        parse("[server]\nproxyProtocol = true\ntrustedProxies = 127.0.0.1/32, 10.0.0.0/8 ::1\n");
    assert!(c.server.proxy_protocol);
    let trusted = &c.server.trusted_proxies;
    for (ip, inside) in [
        ("127.0.0.1", true),
        ("10.9.8.7", true),
        ("::1", true),
        ("127.0.0.5", false),
    ] {
        assert_eq!(trusted.contains(ip.parse().unwrap()), inside, "{ip}");
    }
    let c = parse("[server]\ntrustedProxies =   ; nobody\n");
    assert!(c.server.trusted_proxies.is_empty());
    assert_eq!(
        err("[server]\nshowIndex = true\ntrustedProxies = 10.0.0.0/8, 10.1.2.3/8\n"),
        "drupe.ini line 3: trustedProxies = 10.0.0.0/8, 10.1.2.3/8 '10.1.2.3/8' has bits set \
         past its /8; write the block's first address"
    );
    assert_eq!(
        err("[server]\ntrustedProxy = ::1\n"),
        "drupe.ini line 2: unknown key 'trustedProxy' in [server]; did you mean 'trustedProxies'?"
    );
}

/// The example files for several hosts behind a load balancer (README,
/// "Running several hosts") parse, share one Redis and differ in the port.
#[test]
fn site_examples_for_several_hosts() {
    let config = Path::new(EXAMPLE).parent().unwrap();
    let mut ports = Vec::new();
    for name in ["site-8001.ini", "site-8002.ini"] {
        let c = Config::load(&config.join(name)).unwrap();
        assert_eq!(c.store.url, "redis://127.0.0.1:6379/0", "{name}");
        assert!(c.server.drain_period > Duration::ZERO, "{name}");
        // config/haproxy.cfg sends send-proxy-v2.
        assert!(c.server.proxy_protocol, "{name}");
        assert_eq!(
            c.plugins.directory,
            config.canonicalize().unwrap().join("plugins.d")
        );
        ports.push(c.server.socket_port);
    }
    assert_eq!(ports, [8001, 8002]);
}

#[test]
fn tls_files_resolve_against_the_ini_folder_and_come_in_pairs() {
    let c = Config::default_for(Path::new("/srv/drupe.ini")).unwrap();
    assert_eq!(c.tls.files(), None);
    assert_eq!(c.tls.redirect_port, None);
    let c = parse("[tls]\ncertificate = tls/cert.pem\nkey = /keys/key.pem\nredirectPort = 80\n");
    assert_eq!(
        c.tls.files(),
        Some((
            Path::new("/etc/drupe/tls/cert.pem"),
            Path::new("/keys/key.pem")
        ))
    );
    assert_eq!(c.tls.redirect_port, Some(80));
    assert_eq!(
        err("[tls]\ncertificate = cert.pem\n"),
        "drupe.ini: [tls] certificate is set but key is not: set both for HTTPS, or neither"
    );
    assert_eq!(
        err("[tls]\nredirectPort = 80\n"),
        "drupe.ini: [tls] redirectPort needs certificate and key: it sends clients to https://"
    );
    assert!(
        err("[server]\nproxyProtocol = true\n[tls]\ncertificate = c.pem\nkey = k.pem\n")
            .contains("proxyProtocol and [tls] do not work together yet")
    );
}

#[test]
fn static_lines_map_clean_prefixes_to_existing_folders() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("public")).unwrap();
    let ini = dir.path().join("drupe.ini");
    let load = |text: &str| {
        std::fs::write(&ini, text).unwrap();
        Config::load(&ini)
    };
    let c = load("[static]\n/assets = public\n/ = public\n").unwrap();
    let real = dir.path().join("public").canonicalize().unwrap();
    assert_eq!(c.statics.len(), 2);
    assert_eq!(
        (c.statics[0].prefix.as_str(), &c.statics[0].folder),
        ("/assets", &real)
    );
    let err = |text: &str| load(text).unwrap_err().to_string();
    assert!(err("[static]\n/x = missing\n").contains("line 2: /x = missing cannot be served"));
    assert!(
        err("[static]\n/x/ = public\n").contains("is not a URL prefix: it must not end with '/'")
    );
    assert!(err("[static]\n/a/../b = public\n").contains("is not a URL prefix"));
    assert!(err("[static]\n/x = public\n/x = public\n").contains("is set twice in [static]"));
    std::fs::write(dir.path().join("file"), "").unwrap();
    assert!(err("[static]\n/x = file\n").contains("is not a folder"));
}
