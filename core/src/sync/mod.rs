//! Delivery to the clinic: the pinned HTTPS client (`transport`) today; the device key and
//! enrolment, and the delivery engine that takes leases from the store, sends, verifies receipts
//! and records the results, follow (see the design document's "Delivery").
//!
//! `sync` uses `store` and `protocol`; nothing below it knows it exists.

pub mod transport;

pub use transport::{Reply, Timeouts, Transport, TransportError};
