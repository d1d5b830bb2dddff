//! Helpers shared by the integration tests in `it/` and the host's unit
//! tests: a real `redis-server` that a test owns (with a password, ACL
//! users or TLS), a Redis primary with a replica and three Sentinels, and a
//! Redis Cluster of three primaries and three replicas.
//!
//! Integration tests themselves live in `it/`.

pub mod cluster;
pub mod redis;
pub mod sentinel;
pub mod tls;
