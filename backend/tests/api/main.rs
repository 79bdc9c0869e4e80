//! Integration tests: the real server on port 0, the mock upstream over real
//! HTTP, and a real HTTP client. One binary for all of them (zero2prod style).

mod chat;
mod faults;
mod helpers;
mod offline;
mod persistence;
mod probes;
mod shutdown;
mod validation;
