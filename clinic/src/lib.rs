//! The reference intake service a receiving clinic runs: it implements the clinic side of
//! `docs/PROTOCOL.md` with the core's `protocol`, `crypto` and `program` modules, and never the
//! device's `store` or `sync`.
//!
//! - [`storage`]: the clinic's database behind one narrow interface (embedded SQLite today), so
//!   that a server database can follow;
//! - [`intake`]: the endpoints' logic, as plain functions from a received request to an answer,
//!   in the protocol's order of checks.
//!
//! Planned (see the intake-service issue's note): the HTTPS server (axum, rustls on ring), group
//! commit, limits, the administration commands, backup and restore.

pub mod intake;
pub mod storage;
