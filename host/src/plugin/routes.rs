//! The route table. It lives in the SDK (`drupe_sdk::routing`), so that a
//! plugin's unit tests (`TestApp`) route exactly as a worker does.

pub use drupe_sdk::routing::*;
