//! Configuration: the INI file, read in two steps.
//!
//! `raw` turns the text into sections and keys with their line numbers and
//! checks only the INI syntax (with rust-ini), plus repeated sections or
//! keys. `settings` defines every setting once — key, default, doc text —
//! and turns the raw file into the typed [`Config`] below, refusing unknown
//! sections and keys (with a "did you mean") and bad values, which `values`
//! parses one at a time. Every error is a [`ConfigError`] naming file, line
//! and what to do. Relative paths resolve against the folder of the INI
//! file; `config/drupe.ini` shows every setting.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod cidr;
mod error;
pub mod raw;
mod settings;
mod store_url;
mod values;

pub use cidr::{Cidr, TrustedProxies};
pub use error::ConfigError;
pub use settings::{settings, Setting, STATIC_SECTION};
pub use store_url::{Auth, ClusterUrl, Redacted, RedisUrl, SentinelUrl, StoreUrl, Tls};

/// The validated configuration of one drupe host.
#[derive(Debug, Clone)]
pub struct Config {
    /// The INI file this came from (absolute).
    pub source: PathBuf,
    pub server: Server,
    pub plugins: Plugins,
    /// `[plugin.NAME]` sections, by plugin name.
    pub plugin: BTreeMap<String, PluginSection>,
    pub store: Store,
    pub limits: Limits,
    pub log: Log,
    pub status: Status,
    pub tls: Https,
    /// `[static]`: URL prefixes served from folders, in file order.
    pub statics: Vec<StaticDir>,
    /// Set by `drupe dev` only, never by the INI file: see [`Dev`].
    pub dev: Option<Dev>,
}

/// What `drupe dev` overrides in the INI file's settings: it serves with
/// one worker on `127.0.0.1:port`, logs errors to the terminal, loads the
/// plugins it builds from its own folder, and makes every page its error
/// page while a build or a probe failed. Kept in the [`Config`] so that a
/// reload, which reads the INI file again, keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dev {
    pub port: u16,
    pub plugin_dir: PathBuf,
    /// While this file exists, workers answer every request outside
    /// `/_drupe/` with it, as a 500.
    pub error_page: PathBuf,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct Server {
    /// `socketHost`, default `127.0.0.1`.
    pub socket_host: String,
    /// `socketPort`, default 8080. 0 picks a free port (tests).
    pub socket_port: u16,
    /// `socketQueueSize`, the listen backlog, default 1024.
    pub socket_queue_size: u32,
    /// `fixedNumberOfProcesses`, default `auto`: the number of CPUs.
    pub processes: usize,
    /// `threadPool`, handler threads per process, default 8.
    pub thread_pool: usize,
    /// `gracefulTimeout`, default 30 s.
    pub graceful_timeout: Duration,
    /// `drainPeriod`, default 0: after TERM or INT the host keeps serving
    /// this long with `/_drupe/health` answering 503, so a load balancer
    /// takes it out of rotation before it stops taking connections.
    pub drain_period: Duration,
    /// `requestTimeout`, default 30 s; zero turns it off. A handler that
    /// runs longer gets its worker killed and replaced.
    pub request_timeout: Duration,
    /// `maxRequests`, default 0 (never): a worker that has served this many
    /// requests is replaced gracefully.
    pub max_requests: u64,
    /// `maxRequestsJitter`, default 0: each worker's limit is raised by a
    /// random amount up to this.
    pub max_requests_jitter: u64,
    /// `user`, default none: started as root, the workers and the plugin
    /// probe switch to this user before loading any plugin.
    pub user: Option<String>,
    /// `group`, default none: the user's primary group.
    pub group: Option<String>,
    /// `showIndex`, default false: `GET /` lists the plugins and routes
    /// when no plugin claims `/`.
    pub show_index: bool,
    /// `proxyProtocol`, default false: every connection must open with a
    /// PROXY protocol header (v1 or v2), whose source address becomes the
    /// connection's client address (`http::proxy`).
    pub proxy_protocol: bool,
    /// `trustedProxies`, default empty: socket peers whose
    /// `X-Forwarded-For`, `X-Forwarded-Proto` and `Forwarded` headers are
    /// believed (`worker::origin`).
    pub trusted_proxies: TrustedProxies,
}

/// `[plugins]`
#[derive(Debug, Clone)]
pub struct Plugins {
    /// `directory`, default `plugins.d` (resolved against the INI's folder).
    pub directory: PathBuf,
    /// `watch`, default true.
    pub watch: bool,
}

/// `[plugin.NAME]`
#[derive(Debug, Clone, Default)]
pub struct PluginSection {
    /// `mount`, default `/<name>`. Always starts with `/`, no trailing `/`
    /// except the root mount `/`.
    pub mount: Option<String>,
    /// `storeNamespace`, default the plugin's name: plugins with the same
    /// namespace share store keys and session fields.
    pub store_namespace: Option<String>,
    /// Every other key, in file order, handed to the plugin's `init`.
    pub settings: Vec<(String, String)>,
    /// Line of the section header, for error messages.
    pub line: usize,
}

/// One line of `[static]`: `/prefix = folder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticDir {
    /// A clean URL path (the rules of a plugin mount).
    pub prefix: String,
    /// The folder, canonical (relative ones resolved against the INI's
    /// folder); it existed when the file was read.
    pub folder: PathBuf,
}

/// `[store]`
#[derive(Debug, Clone)]
pub struct Store {
    /// `url`: `sqlite://PATH` (relative to the INI's folder, stored
    /// absolute), `redis://host:port/db` or
    /// `redis+sentinel://host:port,host:port/primary/db` or
    /// `redis+cluster://host:port,host:port`, with credentials and TLS
    /// ([`StoreUrl`]). It may hold a password: show it only as [`Redacted`].
    /// Default `sqlite://drupe-data/shared.db`.
    pub url: String,
    /// `keyPrefix`, default `drupe:`.
    pub key_prefix: String,
    /// `connectTimeout`, default 1 s: one attempt to connect to Redis.
    pub connect_timeout: Duration,
    /// `timeout`, default 1 s: the most one store call may take,
    /// connecting and retrying included.
    pub timeout: Duration,
    /// `sessionTimeout`, default 1800 s: a session unused that long is gone.
    pub session_timeout: Duration,
}

/// `[limits]`
#[derive(Debug, Clone)]
pub struct Limits {
    /// `maxRequestLine`, bytes, default 8192.
    pub max_request_line: usize,
    /// `maxHeaderBytes`, bytes of the whole request head, default 16384.
    pub max_header_bytes: usize,
    /// `maxHeaders`, default 100.
    pub max_headers: usize,
    /// `maxBodyBytes`, default 10 MiB.
    pub max_body_bytes: usize,
    /// `headerTimeout`, seconds, default 10.
    pub header_timeout: Duration,
    /// `bodyTimeout`, seconds, default 30.
    pub body_timeout: Duration,
    /// `keepAliveTimeout`, seconds, default 75.
    pub keep_alive_timeout: Duration,
    /// `sendTimeout`, seconds, default 60: how long a client may go
    /// without accepting any response bytes (time without progress, as
    /// nginx's `send_timeout`; a slow reader that keeps reading is never
    /// cut).
    pub send_timeout: Duration,
    /// `bodyMemory`, bytes, default 1 MiB: a request body larger than
    /// this is written to an unnamed file in `body_folder` as it arrives,
    /// so `maxBodyBytes` can be gigabytes without costing memory.
    pub body_memory: usize,
    /// `bodyFolder`, default `auto`: the system's temporary folder
    /// (`$TMPDIR`, else `/tmp`), looked up when a body is spooled.
    pub body_folder: Option<PathBuf>,
    /// `maxKeepAliveRequests`, default 10000 (0 = unlimited).
    pub max_keep_alive_requests: usize,
    /// `maxConnectionsPerProcess`, default 10000.
    pub max_connections_per_process: usize,
}

/// `[log]`
#[derive(Debug, Clone)]
pub struct Log {
    /// `level`: error, warn, info, debug, trace. Default info.
    pub level: log::LevelFilter,
    /// `errorLog`: a path, `stderr` (default) or `off`.
    pub error_log: LogTarget,
    /// `accessLog`: a path, `stderr`, or `off` (default).
    pub access_log: LogTarget,
}

/// `[status]`: the status listener, served by the master.
#[derive(Debug, Clone)]
pub struct Status {
    /// `socketHost`, default `127.0.0.1`.
    pub socket_host: String,
    /// `socketPort`, default off (`None`): no status listener.
    pub socket_port: Option<u16>,
}

/// `[tls]`: HTTPS on `socketPort` when both files are set. The files are
/// read by the master (`crate::tls`), at start and at every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Https {
    /// `certificate`: the PEM chain, server certificate first. Default none.
    pub certificate: Option<PathBuf>,
    /// `key`: its private key, PEM (PKCS#8, PKCS#1 or SEC1). Default none.
    pub key: Option<PathBuf>,
    /// `redirectPort`: a plain listener answering 308 to `https://`.
    /// Default off.
    pub redirect_port: Option<u16>,
}

impl Https {
    /// The certificate and key files, when HTTPS is on.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        Some((self.certificate.as_deref()?, self.key.as_deref()?))
    }
}

/// Where a log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Off,
    Stderr,
    File(PathBuf),
}

impl Config {
    /// Reads and validates the INI file at `path`.
    ///
    /// The file's folder is canonicalised, so [`Config::source`] and every
    /// relative path in the file are absolute. Error messages name `path` as
    /// given.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let folder = folder
            .canonicalize()
            .map_err(|e| ConfigError::io(path, e))?;
        let source = match path.file_name() {
            Some(name) => folder.join(name),
            None => folder,
        };
        Self::from_text(&text, path, source)
    }

    /// Reads and validates INI text from `reader`. `source` names the file
    /// in messages and its folder anchors relative paths (made absolute
    /// against the current directory, without touching the file system).
    pub fn parse(mut reader: impl Read, source: &Path) -> Result<Config, ConfigError> {
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| ConfigError::io(source, e))?;
        let absolute = std::path::absolute(source).map_err(|e| ConfigError::io(source, e))?;
        Self::from_text(&text, source, absolute)
    }

    /// The configuration of an empty INI file at `source`: all defaults.
    pub fn default_for(source: &Path) -> Result<Config, ConfigError> {
        Self::parse(std::io::empty(), source)
    }

    /// Reads the INI file again (a reload), keeping `drupe dev`'s overrides.
    pub fn reread(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load(&self.source)?;
        if let Some(dev) = &self.dev {
            config.apply_dev(dev.clone());
        }
        Ok(config)
    }

    /// Applies `drupe dev`'s overrides (see [`Dev`]).
    pub fn apply_dev(&mut self, dev: Dev) {
        self.server.socket_host = "127.0.0.1".to_owned();
        self.server.socket_port = dev.port;
        self.server.processes = 1;
        // The dev supervisor swaps a plugin in and sends HUP at once; a
        // watch would reload a second time.
        self.plugins.directory = dev.plugin_dir.clone();
        self.plugins.watch = false;
        self.log.error_log = LogTarget::Stderr;
        self.dev = Some(dev);
    }

    /// The mount of plugin `name`: its `mount` setting, or `/<name>`.
    pub fn mount_of(&self, name: &str) -> String {
        self.plugin
            .get(name)
            .and_then(|p| p.mount.clone())
            .unwrap_or_else(|| format!("/{name}"))
    }

    /// The store namespace of plugin `name`: its `storeNamespace` setting,
    /// or its name.
    pub fn store_namespace_of(&self, name: &str) -> String {
        self.plugin
            .get(name)
            .and_then(|p| p.store_namespace.clone())
            .unwrap_or_else(|| name.to_owned())
    }

    /// `shown` names the file in messages; `source` is its absolute path.
    fn from_text(text: &str, shown: &Path, source: PathBuf) -> Result<Config, ConfigError> {
        let raw = raw::parse(text, shown)?;
        let base = source.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut config = Config::placeholder(source);
        settings::apply_defaults(&mut config, shown, &base)?;
        settings::apply_raw(&mut config, &raw, shown, &base)?;
        settings::check_tls(&config, shown)?;
        Ok(config)
    }

    /// Field values that exist only to be overwritten by the defaults in
    /// the settings table, which is the one place defaults are defined.
    fn placeholder(source: PathBuf) -> Config {
        Config {
            source,
            server: Server {
                socket_host: String::new(),
                socket_port: 0,
                socket_queue_size: 0,
                processes: 0,
                thread_pool: 0,
                graceful_timeout: Duration::ZERO,
                drain_period: Duration::ZERO,
                request_timeout: Duration::ZERO,
                max_requests: 0,
                max_requests_jitter: 0,
                user: None,
                group: None,
                show_index: false,
                proxy_protocol: false,
                trusted_proxies: TrustedProxies::default(),
            },
            plugins: Plugins {
                directory: PathBuf::new(),
                watch: false,
            },
            plugin: BTreeMap::new(),
            store: Store {
                url: String::new(),
                key_prefix: String::new(),
                connect_timeout: Duration::ZERO,
                timeout: Duration::ZERO,
                session_timeout: Duration::ZERO,
            },
            limits: Limits {
                max_request_line: 0,
                max_header_bytes: 0,
                max_headers: 0,
                max_body_bytes: 0,
                header_timeout: Duration::ZERO,
                body_timeout: Duration::ZERO,
                keep_alive_timeout: Duration::ZERO,
                send_timeout: Duration::ZERO,
                body_memory: 0,
                body_folder: None,
                max_keep_alive_requests: 0,
                max_connections_per_process: 0,
            },
            log: Log {
                level: log::LevelFilter::Off,
                error_log: LogTarget::Off,
                access_log: LogTarget::Off,
            },
            status: Status {
                socket_host: String::new(),
                socket_port: None,
            },
            tls: Https {
                certificate: None,
                key: None,
                redirect_port: None,
            },
            statics: Vec::new(),
            dev: None,
        }
    }
}

#[cfg(test)]
mod tests;
