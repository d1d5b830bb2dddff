//! Step two: every setting, defined once, and the typed [`Config`] built
//! from the raw file.
//!
//! [`SETTINGS`] holds each setting's section, key, default (as the text a user
//! would write) and one line of doc. A default goes through the same parser
//! as a value from the file, so the table is the only place a default lives;
//! `config/drupe.ini` shows every entry, and a test keeps the two in step.
//! The parsers for one value (a port, a size, seconds, a path) are in
//! `values`.

use std::path::Path;

use super::error::suggest;
use super::raw::RawConfig;
use super::store_url::{self, Redacted};
use super::values::{
    account, boolean, fractional_seconds, host, int, level, log_target, mount, optional_path, path,
    port, processes, seconds, size,
};
use super::{Config, ConfigError, TrustedProxies};

/// One setting of the INI file.
#[derive(Debug)]
pub struct Setting {
    /// Section name; `plugin.NAME` for the per-plugin sections.
    pub section: &'static str,
    /// Key, spelled as in the file (CherryPy style: `socketPort`).
    pub key: &'static str,
    /// Default, as it would be written in the file.
    pub default: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
    /// Parses a value and stores it in the config; `Err` says what is wrong
    /// with the value. Private: the table is read, not extended, elsewhere.
    apply: Apply,
}

type Apply = fn(&mut Config, &str, &Context) -> Result<(), String>;

/// What a value needs to know besides its text.
struct Context<'a> {
    /// Folder of the INI file: relative paths resolve against it.
    base: &'a Path,
    /// `NAME` while reading a `[plugin.NAME]` section.
    plugin: Option<&'a str>,
}

/// Section name of the per-plugin sections in [`SETTINGS`].
const PLUGIN_SECTION: &str = "plugin.NAME";

/// `[static]`: every key is a URL prefix, every value a folder; no fixed
/// keys, so it is not in [`SETTINGS`].
pub const STATIC_SECTION: &str = "static";

/// Every setting, in the order `config/drupe.ini` shows them.
static SETTINGS: &[Setting] = &[
    Setting {
        section: "server",
        key: "socketHost",
        default: "127.0.0.1",
        doc: "address to listen on (0.0.0.0 or :: for all)",
        apply: |c, v, _| host(v).map(|value| c.server.socket_host = value),
    },
    Setting {
        section: "server",
        key: "socketPort",
        default: "8080",
        doc: "TCP port; 0 picks a free port",
        apply: |c, v, _| port(v).map(|value| c.server.socket_port = value),
    },
    Setting {
        section: "server",
        key: "socketQueueSize",
        default: "1024",
        doc: "listen backlog",
        apply: |c, v, _| int(v, 1, 65535).map(|value| c.server.socket_queue_size = value),
    },
    Setting {
        section: "server",
        key: "fixedNumberOfProcesses",
        default: "auto",
        doc: "worker processes; auto = number of CPUs",
        apply: |c, v, _| processes(v).map(|value| c.server.processes = value),
    },
    Setting {
        section: "server",
        key: "threadPool",
        default: "8",
        doc: "handler threads per worker process",
        apply: |c, v, _| int(v, 1, 1024).map(|value| c.server.thread_pool = value),
    },
    Setting {
        section: "server",
        key: "gracefulTimeout",
        default: "30",
        doc: "seconds a stopping worker may finish in-flight requests",
        apply: |c, v, _| seconds(v, 0).map(|value| c.server.graceful_timeout = value),
    },
    Setting {
        section: "server",
        key: "drainPeriod",
        default: "0",
        doc: "seconds a stopping host keeps serving while /_drupe/health answers 503, so a load balancer can move traffic away first",
        apply: |c, v, _| seconds(v, 0).map(|value| c.server.drain_period = value),
    },
    Setting {
        section: "server",
        key: "requestTimeout",
        default: "30",
        doc: "seconds a handler may run before its worker is killed and replaced; 0 = off",
        apply: |c, v, _| seconds(v, 0).map(|value| c.server.request_timeout = value),
    },
    Setting {
        section: "server",
        key: "maxRequests",
        default: "0",
        doc: "requests after which a worker is replaced (leak containment); 0 = never",
        apply: |c, v, _| int(v, 0, u64::MAX).map(|value| c.server.max_requests = value),
    },
    Setting {
        section: "server",
        key: "maxRequestsJitter",
        default: "0",
        doc: "up to this many requests more, drawn per worker, so workers are not all replaced at once",
        apply: |c, v, _| int(v, 0, u64::MAX).map(|value| c.server.max_requests_jitter = value),
    },
    Setting {
        section: "server",
        key: "user",
        default: "none",
        doc: "user the workers and the plugin probe run as when drupe starts as root; none = the user who started drupe",
        apply: |c, v, _| account(v).map(|value| c.server.user = value),
    },
    Setting {
        section: "server",
        key: "group",
        default: "none",
        doc: "group the workers run as (with user); none = the user's primary group",
        apply: |c, v, _| account(v).map(|value| c.server.group = value),
    },
    Setting {
        section: "server",
        key: "showIndex",
        default: "false",
        doc: "GET / lists the plugins and their routes when no plugin claims /",
        apply: |c, v, _| boolean(v).map(|value| c.server.show_index = value),
    },
    Setting {
        section: "server",
        key: "proxyProtocol",
        default: "false",
        doc: "every connection opens with a PROXY protocol v1/v2 header (HAProxy send-proxy-v2) naming the client; one without is closed",
        apply: |c, v, _| boolean(v).map(|value| c.server.proxy_protocol = value),
    },
    Setting {
        section: "server",
        key: "trustedProxies",
        default: "",
        doc: "addresses or CIDR blocks (127.0.0.1/32, 10.0.0.0/8, ::1) of socket peers whose X-Forwarded-For, X-Forwarded-Proto and Forwarded are believed; empty = nobody's",
        apply: |c, v, _| TrustedProxies::parse(v).map(|value| c.server.trusted_proxies = value),
    },
    Setting {
        section: "plugins",
        key: "directory",
        default: "plugins.d",
        doc: "folder of plugin .so files",
        apply: |c, v, x| path(v, x.base).map(|value| c.plugins.directory = value),
    },
    Setting {
        section: "plugins",
        key: "watch",
        default: "true",
        doc: "reload when a .so in the directory changes",
        apply: |c, v, _| boolean(v).map(|value| c.plugins.watch = value),
    },
    Setting {
        section: PLUGIN_SECTION,
        key: "mount",
        default: "/<plugin name>",
        doc: "URL prefix of the plugin's routes",
        apply: |c, v, x| {
            let mount = mount(v)?;
            if let Some(name) = x.plugin {
                c.plugin.entry(name.to_string()).or_default().mount = Some(mount);
            }
            Ok(())
        },
    },
    Setting {
        section: PLUGIN_SECTION,
        key: "storeNamespace",
        default: "<plugin name>",
        doc: "plugins with the same namespace share store keys and sessions; other keys go to the plugin",
        apply: |c, v, x| {
            if !is_plugin_name(v) {
                return Err(format!(
                    "storeNamespace = {v} is not a namespace: use a-z, 0-9, '_' and '-', as in plugin names"
                ));
            }
            if let Some(name) = x.plugin {
                c.plugin.entry(name.to_string()).or_default().store_namespace = Some(v.to_owned());
            }
            Ok(())
        },
    },
    Setting {
        section: "store",
        key: "url",
        default: "sqlite://drupe-data/shared.db",
        doc: "shared store: sqlite://PATH, redis://[USER:PASSWORD@]HOST:PORT/DB, rediss://…?ca=PATH (TLS), redis+sentinel://[USER:PASSWORD@]HOST:PORT,HOST:PORT/PRIMARY/DB or redis+cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT (rediss+cluster:// with TLS)",
        apply: |c, v, x| store_url::check(v, |file| path(file, x.base))
            .map(|value| c.store.url = value),
    },
    Setting {
        section: "store",
        key: "keyPrefix",
        default: "drupe:",
        doc: "prefix of every store key",
        apply: |c, v, _| {
            c.store.key_prefix = v.to_string();
            Ok(())
        },
    },
    Setting {
        section: "store",
        key: "connectTimeout",
        default: "1",
        doc: "seconds (0.5 allowed) one attempt to connect to Redis may take",
        apply: |c, v, _| fractional_seconds(v).map(|value| c.store.connect_timeout = value),
    },
    Setting {
        section: "store",
        key: "timeout",
        default: "1",
        doc: "seconds (0.5 allowed) a store call may take, connecting included; then 503 (504 if an increment went out and its answer did not come)",
        apply: |c, v, _| fractional_seconds(v).map(|value| c.store.timeout = value),
    },
    Setting {
        section: "store",
        key: "sessionTimeout",
        default: "1800",
        doc: "seconds a session lives without being used",
        apply: |c, v, _| seconds(v, 1).map(|value| c.store.session_timeout = value),
    },
    Setting {
        section: "limits",
        key: "maxRequestLine",
        default: "8192",
        doc: "bytes in the request line",
        apply: |c, v, _| size(v).map(|value| c.limits.max_request_line = value),
    },
    Setting {
        section: "limits",
        key: "maxHeaderBytes",
        default: "16384",
        doc: "bytes in the whole request head",
        apply: |c, v, _| size(v).map(|value| c.limits.max_header_bytes = value),
    },
    Setting {
        section: "limits",
        key: "maxHeaders",
        default: "100",
        doc: "number of request headers",
        apply: |c, v, _| size(v).map(|value| c.limits.max_headers = value),
    },
    Setting {
        section: "limits",
        key: "maxBodyBytes",
        default: "10485760",
        doc: "bytes in a request body (10 MiB)",
        apply: |c, v, _| size(v).map(|value| c.limits.max_body_bytes = value),
    },
    Setting {
        section: "limits",
        key: "headerTimeout",
        default: "10",
        doc: "seconds to receive the request head",
        apply: |c, v, _| seconds(v, 1).map(|value| c.limits.header_timeout = value),
    },
    Setting {
        section: "limits",
        key: "bodyTimeout",
        default: "30",
        doc: "seconds to receive the request body",
        apply: |c, v, _| seconds(v, 1).map(|value| c.limits.body_timeout = value),
    },
    Setting {
        section: "limits",
        key: "keepAliveTimeout",
        default: "75",
        doc: "seconds an idle keep-alive connection stays open",
        apply: |c, v, _| seconds(v, 1).map(|value| c.limits.keep_alive_timeout = value),
    },
    Setting {
        section: "limits",
        key: "sendTimeout",
        default: "60",
        doc: "seconds a client may go without accepting any response bytes",
        apply: |c, v, _| seconds(v, 1).map(|value| c.limits.send_timeout = value),
    },
    Setting {
        section: "limits",
        key: "bodyMemory",
        default: "1048576",
        doc: "request bodies larger than this (bytes) wait in an unnamed temporary file, not in memory",
        apply: |c, v, _| size(v).map(|value| c.limits.body_memory = value),
    },
    Setting {
        section: "limits",
        key: "bodyFolder",
        default: "auto",
        doc: "folder of those temporary files; auto = $TMPDIR or /tmp",
        apply: |c, v, cx| {
            c.limits.body_folder = match v {
                "auto" => None,
                _ => Some(path(v, cx.base)?),
            };
            Ok(())
        },
    },
    Setting {
        section: "limits",
        key: "maxKeepAliveRequests",
        default: "10000",
        doc: "requests per connection; 0 = unlimited",
        apply: |c, v, _| int(v, 0, u64::from(u32::MAX))
            .map(|value| c.limits.max_keep_alive_requests = value),
    },
    Setting {
        section: "limits",
        key: "maxConnectionsPerProcess",
        default: "10000",
        doc: "open connections per worker process",
        apply: |c, v, _| int(v, 1, 1 << 20)
            .map(|value| c.limits.max_connections_per_process = value),
    },
    Setting {
        section: "log",
        key: "level",
        default: "info",
        doc: "error log level: off, error, warn, info, debug, trace",
        apply: |c, v, _| level(v).map(|value| c.log.level = value),
    },
    Setting {
        section: "log",
        key: "errorLog",
        default: "stderr",
        doc: "error log: a file, stderr or off",
        apply: |c, v, x| log_target(v, x.base).map(|value| c.log.error_log = value),
    },
    Setting {
        section: "log",
        key: "accessLog",
        default: "off",
        doc: "access log (Combined Log Format): a file, stderr or off",
        apply: |c, v, x| log_target(v, x.base).map(|value| c.log.access_log = value),
    },
    Setting {
        section: "status",
        key: "socketHost",
        default: "127.0.0.1",
        doc: "address of the status listener (/_drupe/status, /_drupe/metrics)",
        apply: |c, v, _| host(v).map(|value| c.status.socket_host = value),
    },
    Setting {
        section: "status",
        key: "socketPort",
        default: "off",
        doc: "port of the status listener; off = no listener; 0 picks a free port",
        apply: |c, v, _| {
            c.status.socket_port = match v {
                "off" => None,
                _ => Some(port(v)?),
            };
            Ok(())
        },
    },
    Setting {
        section: "tls",
        key: "certificate",
        default: "none",
        doc: "PEM certificate chain, server certificate first; with key, socketPort speaks HTTPS (TLS 1.2 and 1.3); re-read at every reload",
        apply: |c, v, x| optional_path(v, x.base).map(|value| c.tls.certificate = value),
    },
    Setting {
        section: "tls",
        key: "key",
        default: "none",
        doc: "PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1), read by the master before it drops root",
        apply: |c, v, x| optional_path(v, x.base).map(|value| c.tls.key = value),
    },
    Setting {
        section: "tls",
        key: "redirectPort",
        default: "off",
        doc: "plain-HTTP port answering every request 308 to the same URL on https://; off = none",
        apply: |c, v, _| {
            c.tls.redirect_port = match v {
                "off" => None,
                _ => Some(port(v)?),
            };
            Ok(())
        },
    },
];

/// `[tls]` keys that only make sense together, and with `[server]`.
pub(super) fn check_tls(config: &Config, file: &Path) -> Result<(), ConfigError> {
    let tls = &config.tls;
    let why = match (&tls.certificate, &tls.key) {
        (Some(_), None) => "[tls] certificate is set but key is not: set both for HTTPS, or neither",
        (None, Some(_)) => "[tls] key is set but certificate is not: set both for HTTPS, or neither",
        (None, None) if tls.redirect_port.is_some() => {
            "[tls] redirectPort needs certificate and key: it sends clients to https://"
        }
        // The PROXY header comes before the handshake, in the clear; the
        // TLS port does not read it yet.
        (Some(_), Some(_)) if config.server.proxy_protocol => {
            "[server] proxyProtocol and [tls] do not work together yet: let the balancer terminate TLS, or pass TLS through without send-proxy"
        }
        _ => return Ok(()),
    };
    Err(ConfigError::file(file, why.to_owned()))
}

/// Every setting drupe knows, for `--check` and documentation.
pub fn settings() -> &'static [Setting] {
    SETTINGS
}

/// Sets every default from the table; `config` must come from
/// `Config::placeholder`, whose field values are all overwritten here.
pub(super) fn apply_defaults(
    config: &mut Config,
    file: &Path,
    base: &Path,
) -> Result<(), ConfigError> {
    let cx = Context { base, plugin: None };
    for s in SETTINGS.iter().filter(|s| s.section != PLUGIN_SECTION) {
        (s.apply)(config, s.default, &cx).map_err(|why| {
            ConfigError::file(
                file,
                format!("built-in default {} = {} {why}", s.key, s.default),
            )
        })?;
    }
    Ok(())
}

/// Applies the raw file on top of the defaults.
pub(super) fn apply_raw(
    config: &mut Config,
    raw: &RawConfig,
    file: &Path,
    base: &Path,
) -> Result<(), ConfigError> {
    for section in &raw.sections {
        if section.name == STATIC_SECTION {
            for entry in &section.entries {
                let dir = static_dir(&entry.key, &entry.value, base).map_err(|why| {
                    ConfigError::at(
                        file,
                        entry.line,
                        format!("{} = {} {why}", entry.key, entry.value),
                    )
                })?;
                // A repeated prefix is refused by `raw`, like any repeated key.
                config.statics.push(dir);
            }
            continue;
        }
        let plugin = match section.name.strip_prefix("plugin.") {
            Some(name) => {
                check_plugin_name(name).map_err(|why| ConfigError::at(file, section.line, why))?;
                let entry = config.plugin.entry(name.to_string()).or_default();
                entry.line = section.line;
                Some(name)
            }
            None if SETTINGS.iter().any(|s| s.section == section.name) => None,
            None => return Err(unknown_section(&section.name, section.line, file)),
        };
        let table = plugin.map_or(section.name.as_str(), |_| PLUGIN_SECTION);
        let cx = Context { base, plugin };
        for entry in &section.entries {
            let known = SETTINGS
                .iter()
                .find(|s| s.section == table && s.key == entry.key);
            let setting = match (known, plugin) {
                (Some(s), _) => s,
                (None, Some(name)) => {
                    // Plugin sections are free-form: the plugin's own settings.
                    let p = config.plugin.entry(name.to_string()).or_default();
                    p.settings.push((entry.key.clone(), entry.value.clone()));
                    continue;
                }
                (None, None) => {
                    return Err(unknown_key(&entry.key, &section.name, entry.line, file))
                }
            };
            (setting.apply)(config, &entry.value, &cx).map_err(|why| {
                ConfigError::at(
                    file,
                    entry.line,
                    // A store URL may hold a password: never echo it.
                    format!("{} = {} {why}", entry.key, Redacted(&entry.value)),
                )
            })?;
        }
    }
    Ok(())
}

/// One `[static]` line: the prefix follows the rules of a plugin mount,
/// and the folder must exist (it is stored canonical, so the worker's
/// containment check compares real paths).
fn static_dir(prefix: &str, folder: &str, base: &Path) -> Result<crate::config::StaticDir, String> {
    let prefix = mount(prefix).map_err(|why| why.replacen("mount path", "URL prefix", 1))?;
    let folder = path(folder, base)?;
    let folder = folder
        .canonicalize()
        .map_err(|e| format!("cannot be served: {}: {e}", folder.display()))?;
    if !folder.is_dir() {
        return Err(format!("is not a folder: {}", folder.display()));
    }
    Ok(crate::config::StaticDir { prefix, folder })
}

fn unknown_section(name: &str, line: usize, file: &Path) -> ConfigError {
    let mut known: Vec<String> = Vec::new();
    for s in SETTINGS.iter().filter(|s| s.section != PLUGIN_SECTION) {
        if !known.iter().any(|k| k == s.section) {
            known.push(s.section.to_string());
        }
    }
    known.push(STATIC_SECTION.to_owned());
    // `[plugins.hello]` or `[Plugin.hello]` most likely meant `[plugin.hello]`.
    if let Some((_, rest)) = name.split_once(['.', ' ', ':']) {
        known.push(format!("plugin.{rest}"));
    }
    let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
    let hint = match suggest(name, &candidates) {
        Some(best) => format!("did you mean [{best}]?"),
        None => format!(
            "the sections are [{}] and [plugin.NAME]",
            candidates.join("], [")
        ),
    };
    ConfigError::at(file, line, format!("unknown section [{name}]; {hint}"))
}

fn unknown_key(key: &str, section: &str, line: usize, file: &Path) -> ConfigError {
    let keys: Vec<&str> = SETTINGS
        .iter()
        .filter(|s| s.section == section)
        .map(|s| s.key)
        .collect();
    let hint = match suggest(key, &keys) {
        Some(best) => format!("did you mean '{best}'?"),
        None => format!("the keys of [{section}] are {}", keys.join(", ")),
    };
    ConfigError::at(
        file,
        line,
        format!("unknown key '{key}' in [{section}]; {hint}"),
    )
}

/// Plugin names become URL prefixes, store key namespaces and file names,
/// so keep them to a safe, lowercase alphabet.
fn check_plugin_name(name: &str) -> Result<(), String> {
    if is_plugin_name(name) {
        Ok(())
    } else {
        Err(format!(
            "plugin name '{name}' in [plugin.{name}] may use only a-z, 0-9, '_' and '-'"
        ))
    }
}

/// Whether `name` keeps to the plugin-name alphabet; store namespaces use it
/// too, since one is a plugin name by default (and so never starts with
/// `@`, which the session keys use).
fn is_plugin_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    !name.is_empty() && name.chars().all(ok)
}
