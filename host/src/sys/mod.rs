//! The only place in the host with `unsafe` code.
//!
//! Everything that needs it — `fork`, the shared-memory grid under the
//! scoreboard (`shm`), loading a shared library, calling through the
//! plugin ABI and the callbacks the host hands to plugins — is wrapped
//! here in small safe functions, each `unsafe` block with the reason it is
//! sound. The rest of the host is
//! `#![deny(unsafe_code)]`.

#![allow(unsafe_code)]

pub mod bodies;
pub mod dl;
pub mod net;
pub mod peer;
pub mod privileges;
pub mod proc;
pub mod process;
pub mod shm;
mod store_api;
