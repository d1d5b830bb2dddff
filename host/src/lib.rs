//! drupe: a pre-fork application server for Rust page-handler plugins.

pub mod config;
pub mod http;
