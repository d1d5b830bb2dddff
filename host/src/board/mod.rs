//! What the processes of one host share in memory: the scoreboard (who
//! serves, which request runs where, since when) and the request
//! statistics of the status listener. The master maps both before it
//! forks; each is a typed grid of atomics from `sys::shm` — one header per
//! worker, one cell per handler thread — so this module is safe code.

pub mod scoreboard;
pub mod stats;
