//! `drupe-sdk`: write page handlers for the drupe application server.

pub mod abi;
