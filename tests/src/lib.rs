//! Helpers of the end-to-end tests in `tests/` (no product code): a TCP proxy for fault
//! injection between a device and a clinic.

pub mod proxy;
