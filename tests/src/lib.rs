//! Helpers of the end-to-end tests in `tests/` (no product code): a TCP proxy for fault
//! injection between a device and a clinic, a server that answers 2xx without a receipt, and a
//! clinic and a phone on this machine.

pub mod field;
pub mod liar;
pub mod proxy;
