//! The HTTPS front of the intake service: TLS 1.3 with rustls on ring, HTTP/1.1 with hyper, routing
//! with axum. It turns bytes into an [`Incoming`] and an [`Answer`] back into bytes, and enforces
//! the limits that protect the service: body and header sizes, time limits for the handshake,
//! the headers and the whole request, and a bound on requests in progress that sheds the rest
//! with 503 and `Retry-After`. Every rule about what is accepted lives in [`crate::intake`].

use crate::intake::{Answer, Intake};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use lotsa_core::protocol::signature::Incoming;
use lotsa_core::protocol::{ProblemType, JSON, MAX_BODY_BYTES};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// The service's limits. The defaults suit a clinic on a small server; tests shrink them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests in progress at once; more are answered 503 at once.
    pub max_in_flight: usize,
    /// The most header bytes (names and values) a request may carry: more is 431.
    pub max_header_bytes: usize,
    /// Time for the TLS handshake, and for the request headers to arrive.
    pub handshake_timeout: Duration,
    /// Time for a request's body to arrive (else 408), and for requests in progress to finish
    /// when the service stops.
    pub request_timeout: Duration,
    /// Seconds a shed or rate-limited client is told to wait.
    pub retry_after_secs: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_in_flight: 256,
            max_header_bytes: 16 * 1024,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            retry_after_secs: 5,
        }
    }
}

/// What the service answers with besides the intake: the signed bundle it serves.
pub struct Service {
    /// The intake logic and its database.
    pub intake: Arc<Intake>,
    /// The signed program bundle, served at `GET /v1/bundle` as it was verified.
    pub bundle: Arc<String>,
    /// The public origin and path prefix devices use (`https://host[:port][/prefix]`): the
    /// `@target-uri` they signed is rebuilt from it, not from the Host the service sees.
    pub endpoint: String,
    /// The limits.
    pub limits: Limits,
    /// The staff pages, when this listener serves them (at `/staff`).
    pub staff: Option<Arc<crate::pages::StaffSite>>,
}

#[derive(Clone)]
struct Shared {
    intake: Arc<Intake>,
    bundle: Arc<String>,
    endpoint: Arc<String>,
    limits: Arc<Limits>,
    slots: Arc<Semaphore>,
}

/// The router: the protocol's six endpoints under the endpoint's path prefix, with problem
/// details for every other path or method.
fn router(shared: Shared, prefix: &str) -> Router {
    let api = Router::new()
        .route("/v1/handovers", post(deliver))
        .route("/v1/withdrawals", post(withdraw))
        .route("/v1/devices", post(enrol))
        .route("/v1/device-status", post(report))
        .route("/v1/bundle", get(bundle))
        .route("/v1/health", get(health))
        .method_not_allowed_fallback(|| async { problem(ProblemType::MethodNotAllowed) });
    let api = if prefix.is_empty() {
        api
    } else {
        Router::new().nest(prefix, api)
    };
    api.fallback(|| async { problem(ProblemType::NotFound) })
        .with_state(shared)
}

/// Splits an endpoint URL into its origin (`https://host[:port]`) and path prefix.
fn split_endpoint(endpoint: &str) -> (String, String) {
    let after_scheme = endpoint.find("://").map(|i| i + 3).unwrap_or(0);
    match endpoint[after_scheme..].find('/') {
        Some(i) => (
            endpoint[..after_scheme + i].to_string(),
            endpoint[after_scheme + i..].to_string(),
        ),
        None => (endpoint.to_string(), String::new()),
    }
}

fn problem(kind: ProblemType) -> Response {
    to_response(Answer::problem(kind, None), None)
}

fn to_response(answer: Answer, retry_after: Option<u32>) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    if status != StatusCode::NO_CONTENT {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(answer.content_type),
        );
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(secs) = retry_after.or(answer.retry_after) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

async fn health() -> Response {
    let answer = Answer {
        status: 200,
        content_type: JSON,
        body: br#"{"status":"ok"}"#.to_vec(),
        retry_after: None,
    };
    to_response(answer, None)
}

async fn bundle(State(s): State<Shared>) -> Response {
    let answer = Answer {
        status: 200,
        content_type: JSON,
        body: s.bundle.as_bytes().to_vec(),
        retry_after: None,
    };
    to_response(answer, None)
}

async fn deliver(State(s): State<Shared>, req: Request) -> Response {
    intake(s, req, |intake, incoming| {
        intake.deliver(incoming, Utc::now())
    })
    .await
}

async fn withdraw(State(s): State<Shared>, req: Request) -> Response {
    intake(s, req, |intake, incoming| {
        intake.withdraw(incoming, Utc::now())
    })
    .await
}

async fn report(State(s): State<Shared>, req: Request) -> Response {
    intake(s, req, |intake, incoming| {
        intake.report(incoming, Utc::now())
    })
    .await
}

async fn enrol(State(s): State<Shared>, req: Request) -> Response {
    intake(s, req, |intake, incoming| {
        intake.enrol(incoming, Utc::now())
    })
    .await
}

/// One signed POST: a slot (or 503), the header bound, the body within its limit and its time
/// (else 408), then the intake's logic on a blocking thread (it waits for the group commit). Once
/// the body has arrived the request is carried to its end: a write is never abandoned halfway.
async fn intake(s: Shared, req: Request, serve: fn(&Intake, &Incoming<'_>) -> Answer) -> Response {
    let Ok(slot) = s.slots.clone().try_acquire_owned() else {
        return to_response(
            Answer::problem(ProblemType::Overloaded, None),
            Some(s.limits.retry_after_secs),
        );
    };
    let (parts, body) = req.into_parts();
    if header_bytes(&parts.headers) > s.limits.max_header_bytes {
        return problem(ProblemType::HeadersTooLarge);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return problem(ProblemType::TooLarge);
    }
    let body = match tokio::time::timeout(s.limits.request_timeout, read_body(body)).await {
        Ok(Ok(body)) => body,
        Ok(Err(kind)) => return problem(kind),
        Err(_) => return problem(ProblemType::RequestTimeout),
    };
    let method = parts.method.as_str().to_string();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    // Under the endpoint's prefix the router sees the path without it (axum's `nest`), so the
    // URL the device signed is the configured endpoint followed by that path.
    let target_uri = format!("{}{}", s.endpoint, path);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let intake = s.intake.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let incoming = Incoming {
            method: &method,
            target_uri: &target_uri,
            headers: &headers,
            body: &body,
        };
        serve(&intake, &incoming)
    })
    .await
    .unwrap_or_else(|_| Answer::problem(ProblemType::Internal, None));
    to_response(answer, None)
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

async fn read_body(body: Body) -> Result<Bytes, ProblemType> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ProblemType::TooLarge),
        Err(_) => Err(ProblemType::MalformedBody),
    }
}

/// A running service: where it listens, and how to stop it.
pub struct Running {
    /// The address it is bound to.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets the requests in progress finish (up to the request timeout) and
    /// returns once they have.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.done.await;
    }
}

/// Starts serving on a bound listener, in the current tokio runtime.
pub fn start(listener: TcpListener, tls: Arc<rustls::ServerConfig>, service: Service) -> Running {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let done = tokio::spawn(accept_loop(listener, tls, service, stopped));
    Running {
        addr,
        stop: Some(stop),
        done,
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: Service,
    stopped: impl Future<Output = Result<(), tokio::sync::oneshot::error::RecvError>>,
) {
    let (_, prefix) = split_endpoint(&service.endpoint);
    let limits = Arc::new(service.limits);
    let shared = Shared {
        intake: service.intake,
        bundle: service.bundle,
        endpoint: Arc::new(service.endpoint.clone()),
        limits: limits.clone(),
        slots: Arc::new(Semaphore::new(limits.max_in_flight)),
    };
    let app = match service.staff {
        Some(site) => router(shared, &prefix).merge(staff_side(site)),
        None => router(shared, &prefix),
    };
    serve_app(listener, tls, app, limits, stopped).await;
}

/// What is served to the clinic's own people and systems: the staff pages and the FHIR export.
fn staff_side(site: Arc<crate::pages::StaffSite>) -> Router {
    crate::pages::routes(site.clone()).merge(crate::export_api::routes(site))
}

/// Starts serving only the staff pages on their own listener (`--staff-bind`), with their own
/// certificate, in the current tokio runtime; every other path is 404.
pub fn start_staff(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    site: Arc<crate::pages::StaffSite>,
) -> Running {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let app = staff_side(site).fallback(|| async { StatusCode::NOT_FOUND });
    let done = tokio::spawn(serve_app(
        listener,
        tls,
        app,
        Arc::new(Limits::default()),
        stopped,
    ));
    Running {
        addr,
        stop: Some(stop),
        done,
    }
}

/// Accepts TLS connections and serves `app` on each until `stopped`, then lets the requests in
/// progress finish (up to the request timeout).
async fn serve_app(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Arc<Limits>,
    stopped: impl Future<Output = Result<(), tokio::sync::oneshot::error::RecvError>>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stopped);
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, _) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of file descriptors or a reset before accept: wait a moment, go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (acceptor, app, limits) = (acceptor.clone(), app.clone(), limits.clone());
        let mut closed = closed.clone();
        connections.spawn(async move {
            let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
            let Ok(Ok(stream)) = handshake.await else {
                return;
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.handshake_timeout)
                .max_buf_size(64 * 1024)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = closed.changed() => {
                    // Stopping: finish the request in progress, then close.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.request_timeout, drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

/// The TLS configuration: TLS 1.3 only, HTTP/1.1, on ring.
pub fn tls_config(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_splits_into_its_origin_and_its_path_prefix() {
        assert_eq!(
            split_endpoint("https://localhost:8443/lots-for-livet"),
            ("https://localhost:8443".into(), "/lots-for-livet".into())
        );
        assert_eq!(
            split_endpoint("https://intake.example.se"),
            ("https://intake.example.se".into(), String::new())
        );
    }
}
