//! Configuration: the INI file, read in two steps.
//!
//! `raw` turns the text into sections and keys with their line numbers and
//! checks only what the user typed (known sections and keys, with a
//! "did you mean" for typos). `settings` defines every setting once — key,
//! default, doc text — and turns the raw file into the typed [`Config`]
//! below. Relative paths resolve against the folder of the INI file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

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
    /// `fixedNumberOfProcesses`, default: number of CPUs.
    pub processes: usize,
    /// `threadPool`, handler threads per process, default 8.
    pub thread_pool: usize,
    /// `gracefulTimeout`, default 30 s.
    pub graceful_timeout: Duration,
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
    /// Every other key, in file order, handed to the plugin's `init`.
    pub settings: Vec<(String, String)>,
    /// Line of the section header, for error messages.
    pub line: usize,
}

/// `[store]`
#[derive(Debug, Clone)]
pub struct Store {
    /// `url`: `sqlite://PATH` (relative to the INI's folder) or
    /// `redis://host:port/db`. Default `sqlite://drupe-data/shared.db`.
    pub url: String,
    /// `keyPrefix`, default `drupe:`.
    pub key_prefix: String,
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

/// Where a log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Off,
    Stderr,
    File(PathBuf),
}
