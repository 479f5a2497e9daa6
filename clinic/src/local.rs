//! A clinic on this machine, in-process: made with `init` in a directory, listening on
//! `127.0.0.1` (its endpoint is `https://127.0.0.1:<port>/<prefix>`, which its development
//! certificate names), served on its own tokio runtime. The demo starts two of these; the device's
//! sync tests talk to them over real HTTPS.

use crate::home::{Home, InitOptions};
use crate::intake::{code_hash, new_enrolment_code, DeviceRate};
use crate::serve::{prepare, ServeError};
use crate::server::{start, Limits, Running};
use crate::storage::{Storage, StorageError};
use chrono::{DateTime, Duration, Utc};
use lotsa_core::crypto::PublicKey;
use lotsa_core::program::Clinic;
use lotsa_core::referral::HandoverPayload;
use std::net::SocketAddr;
use std::path::Path;

/// A clinic made and (once started) served on loopback.
pub struct LocalClinic {
    home: Home,
    clinic: Clinic,
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    listener: Option<tokio::net::TcpListener>,
    running: Option<Running>,
    served: Option<(String, PublicKey)>,
    limits: Limits,
    device_rate: DeviceRate,
}

impl LocalClinic {
    /// Makes a clinic in `dir` (empty or absent) for `https://127.0.0.1:<a free port>/<prefix>`,
    /// and holds that port until [`LocalClinic::start`].
    pub fn create(
        dir: &Path,
        name: &str,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<LocalClinic, ServeError> {
        LocalClinic::create_behind(dir, name, prefix, None, now)
    }

    /// The same, for devices that reach it through something else on 127.0.0.1 (a proxy on
    /// `public_port`): its endpoint names that port, while it listens on its own.
    pub fn create_behind(
        dir: &Path,
        name: &str,
        prefix: &str,
        public_port: Option<u16>,
        now: DateTime<Utc>,
    ) -> Result<LocalClinic, ServeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| ServeError::Tls(format!("no runtime: {e}")))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| ServeError::Tls(format!("cannot listen on 127.0.0.1: {}", e.kind())))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServeError::Tls(e.kind().to_string()))?;
        let home = Home::new(dir);
        let clinic = home.init(
            &InitOptions {
                name: name.to_string(),
                endpoint: format!(
                    "https://127.0.0.1:{}/{prefix}",
                    public_port.unwrap_or(addr.port())
                ),
                provided_tls: None,
            },
            now,
        )?;
        Ok(LocalClinic {
            home,
            clinic,
            addr,
            runtime,
            listener: Some(listener),
            running: None,
            served: None,
            limits: Limits::default(),
            device_rate: DeviceRate::default(),
        })
    }

    /// Its `clinic.json`, for the program administrator's bundle.
    pub fn clinic(&self) -> &Clinic {
        &self.clinic
    }

    /// Moves its server to the spare TLS key ([`Home::rotate_tls`]); serve a bundle signed with
    /// the new `clinic.json` next (it stops serving the old one, which no longer matches).
    pub fn rotate_tls(&mut self, now: DateTime<Utc>) -> Result<(), ServeError> {
        self.stop_serving_only();
        self.home.rotate_tls(None, now)?;
        self.clinic = self.home.clinic()?;
        Ok(())
    }

    /// Its directory.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts serving a signed bundle that names it (verified against `trust`).
    pub fn start(&mut self, bundle: &str, trust: &PublicKey) -> Result<(), ServeError> {
        self.served = Some((bundle.to_string(), *trust));
        self.resume()
    }

    /// Serves from now on with other limits (`max_in_flight: 0` answers every request 503).
    pub fn set_limits(&mut self, limits: Limits) -> Result<(), ServeError> {
        self.limits = limits;
        self.resume()
    }

    /// Serves from now on with another per-device budget (a benchmark's one phone sends more
    /// than a phone's backlog ever holds).
    pub fn set_device_rate(&mut self, rate: DeviceRate) -> Result<(), ServeError> {
        self.device_rate = rate;
        self.resume()
    }

    /// Stops serving (the port is released: a device now finds the clinic unreachable).
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.stop());
        }
        self.listener = None;
    }

    /// Serves again, on the same port, what it served before (after [`LocalClinic::stop`]).
    pub fn resume(&mut self) -> Result<(), ServeError> {
        self.stop_serving_only();
        let Some((bundle, trust)) = &self.served else {
            return Err(ServeError::NoProgram(self.clinic.endpoint.clone()));
        };
        let ready = prepare(
            &self.home,
            bundle,
            trust,
            Utc::now(),
            self.limits.clone(),
            self.device_rate,
        )?;
        let listener = match self.listener.take() {
            Some(l) => l,
            None => self
                .runtime
                .block_on(tokio::net::TcpListener::bind(self.addr))
                .map_err(|e| ServeError::Tls(format!("cannot listen again: {}", e.kind())))?,
        };
        let _entered = self.runtime.enter();
        self.running = Some(start(listener, ready.tls, ready.service));
        Ok(())
    }

    fn stop_serving_only(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.stop());
        }
    }

    /// A one-time enrolment code for one phone, valid for a day.
    pub fn enrolment_code(&self) -> Result<String, StorageError> {
        let code = new_enrolment_code()
            .ok_or_else(|| StorageError::NotCommitted("no random numbers".into()))?;
        let until = (Utc::now() + Duration::hours(24)).timestamp();
        self.storage()?
            .add_enrolment_code(code_hash(&code), until)?;
        Ok(code)
    }

    /// A referral it holds, opened with its key as staff would read it (`None`: not held).
    pub fn read(&self, handover_id: &str) -> Result<Option<HandoverPayload>, ServeError> {
        let Some(held) = self.storage()?.handover(handover_id)? else {
            return Ok(None);
        };
        let keys = self.home.load()?.keys;
        keys.open(handover_id, &held)
            .map(Some)
            .map_err(|kind| ServeError::Unreadable(kind.code().to_string()))
    }

    /// Its database, opened beside the service (as the administrator's commands open it).
    pub fn storage(&self) -> Result<Storage, StorageError> {
        Storage::open(&self.home.database())
    }
}

impl Drop for LocalClinic {
    fn drop(&mut self) {
        self.stop_serving_only();
    }
}
