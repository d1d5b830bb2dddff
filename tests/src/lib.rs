//! Helpers shared by the integration tests in `it/` and the host's unit
//! tests: a real `redis-server` that a test owns, and a Redis primary with
//! a replica and three Sentinels.
//!
//! Integration tests themselves live in `it/`.

pub mod redis;
pub mod sentinel;
