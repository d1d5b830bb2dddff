//! Integration tests: the real `drupe` binary, real plugins, real sockets,
//! real signals. `support` builds and starts everything; each module covers
//! one area.

mod load;
mod support;

mod check;
mod corpus;
mod faults;
mod lifecycle;
mod limits;
mod logs;
mod ops;
mod privileges;
mod protocol;
mod scaffold;
mod serving;
mod status;
mod store;
mod supervision;
