//! Delivery to the clinic: the pinned HTTPS client (`transport`) and the delivery engine
//! (`engine`: enrolment, and `sync`, which leases due items from the store, sends them signed,
//! verifies receipts and settles each result; see the design document's "Delivery").
//!
//! `sync` uses `store` and `protocol`; nothing below it knows it exists.

pub mod engine;
pub mod transport;

pub use engine::{
    enrol, sync, Backoff, DeviceAction, ItemNote, SyncError, SyncOptions, SyncReport, Trigger,
};
pub use transport::{Reply, Timeouts, Transport, TransportError};
