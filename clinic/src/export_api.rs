//! The FHIR export over HTTPS, for a care record system, with `Authorization: Bearer <token>`
//! (a token from `lotsa clinic api-client add`):
//!
//! - `GET /export/v1/referrals[?changed_since=RFC3339]` lists what can be exported (ids,
//!   programs, states, when each last changed; no personal data), oldest change first, so a
//!   system can poll for what is new or changed;
//! - `GET /export/v1/fhir/{handover_id}` answers one referral's Bundle as `application/fhir+json`.
//!
//! It is served wherever the staff pages are (on
//! the staff listener when there is one). Refusals are RFC 9457 problem details whose `type`
//! is `urn:lotsa:export-problem:<code>`; they never repeat what was sent. The rules are in
//! [`crate::export`]; this module translates.

use crate::export::{authenticate, ExportError, Exporter, Reader};
use crate::pages::StaffSite;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The prefix of every refusal's `type`.
pub const PROBLEM_PREFIX: &str = "urn:lotsa:export-problem:";

/// The export routes.
pub fn routes(site: Arc<StaffSite>) -> Router {
    Router::new()
        .route(
            "/export/v1/referrals",
            get(index).head(only_get).fallback(only_get),
        )
        .route(
            "/export/v1/fhir/{handover_id}",
            get(export).head(only_get).fallback(only_get),
        )
        .with_state(site)
}

/// Any method but GET. HEAD above all: it would run the export (and log it) to send no body,
/// or else answer without a line in the access log.
async fn only_get() -> Response {
    let mut response = answer(StatusCode::METHOD_NOT_ALLOWED, "text/plain", String::new());
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}

#[derive(Deserialize)]
struct IndexQuery {
    changed_since: Option<String>,
}

async fn index(
    State(site): State<Arc<StaffSite>>,
    query: Result<Query<IndexQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let query = query.ok().map(|Query(q)| q);
    blocking(move || index_now(&site, query, &headers)).await
}

async fn export(
    State(site): State<Arc<StaffSite>>,
    Path(handover_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    blocking(move || export_now(&site, &handover_id, &headers)).await
}

/// Runs database reads, an fsync of the access log and HPKE off the async workers, as the
/// intake does, so that a polling system cannot stall the phones' deliveries.
async fn blocking(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|_| failed())
}

fn index_now(site: &StaffSite, query: Option<IndexQuery>, headers: &HeaderMap) -> Response {
    let who = match client(site, headers) {
        Ok(who) => who,
        Err(refusal) => return refusal.into_response(),
    };
    // A query that does not parse (a repeated changed_since, bad escapes) is refused like a
    // bad time: changed_since is the only parameter.
    let since = match query.map(|q| q.changed_since.as_deref().map(DateTime::parse_from_rfc3339)) {
        Some(None) => None,
        Some(Some(Ok(t))) => Some(t.timestamp()),
        None | Some(Some(Err(_))) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "bad_changed_since",
                "changed_since must be one RFC 3339 time, as 2026-12-01T10:00:00Z",
            )
        }
    };
    match exporter(site).index(&who, since, Utc::now()) {
        Ok(list) => {
            let stamp = |t: i64| {
                DateTime::from_timestamp(t, 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
            };
            let referrals: Vec<_> = list
                .iter()
                .map(|r| {
                    json!({"handover_id": r.handover_id, "program_id": r.program_id,
                           "state": r.state, "changed_at": stamp(r.changed_at),
                           "fhir": format!("/export/v1/fhir/{}", r.handover_id)})
                })
                .collect();
            let body = json!({ "referrals": referrals });
            answer(StatusCode::OK, "application/json", body.to_string())
        }
        Err(_) => failed(),
    }
}

fn export_now(site: &StaffSite, handover_id: &str, headers: &HeaderMap) -> Response {
    let who = match client(site, headers) {
        Ok(who) => who,
        Err(refusal) => return refusal.into_response(),
    };
    match exporter(site).export(handover_id, &who, Utc::now()) {
        Ok(bundle) => answer(StatusCode::OK, "application/fhir+json", bundle.to_string()),
        Err(ExportError::NotAllowed) => refused(
            StatusCode::FORBIDDEN,
            "export_not_allowed",
            "The referral's program does not allow a FHIR export",
        ),
        Err(ExportError::NotFound | ExportError::NotItsProgram) => refused(
            StatusCode::NOT_FOUND,
            "unknown_referral",
            "No referral with that id is held here",
        ),
        Err(ExportError::Erased) => refused(
            StatusCode::GONE,
            "erased",
            "The referral was erased when its retention ran out",
        ),
        Err(ExportError::Unreadable(_) | ExportError::OlderBundle(_) | ExportError::Storage(_)) => {
            failed()
        }
    }
}

/// Why a request carries no usable token.
enum NoClient {
    /// Missing, unknown or revoked.
    Refused,
    /// The database failed.
    Failed,
}

impl IntoResponse for NoClient {
    fn into_response(self) -> Response {
        match self {
            NoClient::Refused => refused(
                StatusCode::UNAUTHORIZED,
                "token_refused",
                "The API token is missing, unknown or revoked",
            ),
            NoClient::Failed => failed(),
        }
    }
}

/// The system whose token the request carries.
fn client(site: &StaffSite, headers: &HeaderMap) -> Result<Reader, NoClient> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authenticate(site.intake.storage(), authorization) {
        Ok(Some(who)) => Ok(who),
        Ok(None) => Err(NoClient::Refused),
        Err(_) => Err(NoClient::Failed),
    }
}

fn exporter(site: &StaffSite) -> Exporter<'_> {
    Exporter {
        storage: site.intake.storage(),
        keys: &site.keys,
        bundle: &site.bundle,
        log_key: &site.log_key,
    }
}

fn refused(status: StatusCode, code: &str, title: &str) -> Response {
    let body = json!({
        "type": format!("{PROBLEM_PREFIX}{code}"),
        "code": code,
        "title": title,
        "status": status.as_u16(),
    });
    let mut response = answer(status, "application/problem+json", body.to_string());
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn failed() -> Response {
    refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "The clinic service failed; nothing was exported",
    )
}

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
