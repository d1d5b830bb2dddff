//! Integration tests: the real `drupe` binary, real plugins, real sockets,
//! real signals. `support` builds and starts everything; each module covers
//! one area.

mod balancer;
mod counting;
mod load;
mod support;

mod check;
mod cluster;
mod corpus;
mod dev;
mod faults;
mod files;
mod health;
mod hosts;
mod lifecycle;
mod limits;
mod load_errors;
mod logs;
mod notes;
mod ops;
mod privileges;
mod protocol;
mod proxy;
mod redis_auth;
mod scaffold;
mod sentinel;
mod serving;
mod status;
mod stop;
mod store;
mod supervision;
mod tls;
