//! The reference intake service a receiving clinic runs: it implements the clinic side of
//! `docs/PROTOCOL.md` with the core's `protocol`, `crypto` and `program` modules, and never the
//! device's `store` or `sync`. Data flows one way: [`server`] (bytes) → [`intake`] (rules) →
//! [`storage`] (SQLite).
//!
//! - [`home`]: the clinic's directory (keys, certificates, `clinic.json`), made by `init`;
//! - [`tls`]: the development CA, PEM files and SPKI pins;
//! - [`serve`]: a service put together from the directory and the verified program bundle;
//! - [`server`]: HTTPS (rustls on ring), routing and limits;
//! - [`intake`]: the endpoints' logic, as plain functions from a received request to an answer,
//!   in the protocol's order of checks;
//! - [`storage`]: the database behind one narrow interface (embedded SQLite with group commit),
//!   so that a server database can follow;
//! - [`backup`]: encrypted backup and restore of the whole directory;
//! - [`local`]: a clinic on this machine, in-process (the demo's clinics, the device's sync tests);
//! - [`deadline`]: when a referred person must have been phoned (hours, or Swedish bank days);
//! - [`staff`]: the accounts of the people who phone back (argon2id password hashes);
//! - [`worklist`]: the referrals waiting for a first call, claims, call outcomes, the access log;
//! - [`sessions`]: staff logins, session cookies, CSRF tokens, throttling of failed logins;
//! - [`pages`]: the staff pages (login, the worklist), server-rendered HTML in Swedish or English;
//! - [`notify`]: counts of new, due-soon and overdue referrals handed to IT's command;
//! - [`housekeeping`]: what the service does on its own every hour (retention, the access log);
//! - [`retention`]: erasing settled referrals past their program's retention, and old tombstones;
//! - [`figures`]: the outcome counters per program and week, small cells suppressed;
//! - [`backlog`]: the phones' reported queues, flagging one silent on waiting referrals;
//! - [`fhir`]: one referral as a FHIR R4 Bundle (Patient, Consent, ServiceRequest, Task);
//! - [`export`]: whether a referral may be exported, to whom (API tokens), logged;
//! - [`export_api`]: the export over HTTPS, for a care record system with a token.

pub mod backlog;
pub mod backup;
pub mod deadline;
pub mod export;
pub mod export_api;
pub mod fhir;
pub mod figures;
pub mod home;
pub mod housekeeping;
pub mod intake;
pub mod local;
pub mod notify;
pub mod pages;
pub mod retention;
pub mod serve;
pub mod server;
pub mod sessions;
pub mod staff;
pub mod storage;
pub mod tls;
pub mod worklist;
