//! drupe: a pre-fork application server for Rust page-handler plugins.
//!
//! `main` parses the command line and calls [`run`]; the master
//! ([`master`]) binds the socket and forks workers ([`worker`]), which load
//! plugins ([`plugin`]), serve HTTP/1.1 ([`http`]) and give plugins the
//! shared store and sessions ([`store`]); master and workers share a
//! scoreboard and request statistics in memory ([`board`]). `drupe dev`
//! ([`dev`]) builds plugin crates and runs a master beside. Only [`sys`]
//! holds `unsafe` code.

// These docs are for drupe's developers, who read them with
// `cargo doc --document-private-items`; module docs link to the private
// parts they explain, which a plain `cargo doc` cannot resolve.
#![allow(rustdoc::private_intra_doc_links)]

pub mod board;
pub mod cli;
pub mod config;
pub mod dev;
pub mod http;
pub mod master;
pub mod plugin;
pub mod scaffold;
pub mod store;
pub mod sys;
pub mod tls;
pub mod worker;

mod logging;

pub use cli::{run, Cli};
