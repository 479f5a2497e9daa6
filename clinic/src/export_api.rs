//! The FHIR export over HTTPS, for a care record system: `GET /export/v1/fhir/{handover_id}`
//! with `Authorization: Bearer <token>` (a token from `lotsa clinic api-client add`) answers the
//! referral's Bundle as `application/fhir+json`. It is served wherever the staff pages are (on
//! the staff listener when there is one). Refusals are RFC 9457 problem details whose `type`
//! is `urn:lotsa:export-problem:<code>`; they never repeat what was sent. The rules are in
//! [`crate::export`]; this module translates.

use crate::export::{authenticate, ExportError, Exporter};
use crate::pages::StaffSite;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde_json::json;
use std::sync::Arc;

/// The prefix of every refusal's `type`.
pub const PROBLEM_PREFIX: &str = "urn:lotsa:export-problem:";

/// The export routes.
pub fn routes(site: Arc<StaffSite>) -> Router {
    Router::new()
        .route("/export/v1/fhir/{handover_id}", get(export))
        .with_state(site)
}

async fn export(
    State(site): State<Arc<StaffSite>>,
    Path(handover_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let storage = site.intake.storage();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let who = match authenticate(storage, authorization) {
        Ok(Some(who)) => who,
        Ok(None) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "token_refused",
                "The API token is missing, unknown or revoked",
            )
        }
        Err(_) => return failed(),
    };
    let exporter = Exporter {
        storage,
        keys: &site.keys,
        bundle: &site.bundle,
        log_key: &site.log_key,
    };
    match exporter.export(&handover_id, &who, Utc::now()) {
        Ok(bundle) => answer(StatusCode::OK, "application/fhir+json", bundle.to_string()),
        Err(ExportError::NotAllowed) => refused(
            StatusCode::FORBIDDEN,
            "export_not_allowed",
            "The referral's program does not allow a FHIR export",
        ),
        Err(ExportError::NotFound) => refused(
            StatusCode::NOT_FOUND,
            "unknown_referral",
            "No referral with that id is held here",
        ),
        Err(ExportError::Erased) => refused(
            StatusCode::GONE,
            "erased",
            "The referral was erased when its retention ran out",
        ),
        Err(ExportError::Unreadable(_) | ExportError::Storage(_)) => failed(),
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
