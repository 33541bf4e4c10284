//! SQL over HTTP: `POST /api/v1/sql`.
//!
//! The body is the SQL text (`text/plain` or anything but JSON), or a JSON
//! object `{"sql": "..."}`. The `Accept` header picks the result format
//! ([`OutputFormat`]). A query the user can fix (bad SQL, unknown column,
//! a write) gets 400 with the engine's message as `{"error": ...}`; a
//! query that ran out of resources 503; our own failures 500.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use crate::engine::QueryEngine;
use crate::error::Error;
use crate::format::OutputFormat;

/// The SQL routes, with request bodies limited to `max_sql_size` bytes.
pub fn router(engine: QueryEngine, max_sql_size: usize) -> Router {
    Router::new()
        .route("/api/v1/sql", post(run_sql))
        .with_state(engine)
        .layer(DefaultBodyLimit::max(max_sql_size))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
}

async fn run_sql(State(engine): State<QueryEngine>, headers: HeaderMap, body: Bytes) -> Response {
    let format = OutputFormat::from_accept(
        headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    );
    let sql = match sql_text(&headers, &body) {
        Ok(sql) => sql,
        Err(error) => return error_response(&error),
    };
    let started = std::time::Instant::now();
    let result = match engine.sql(&sql).await {
        Ok(result) => result,
        Err(error) => {
            tracing::debug!(%sql, %error, "query failed");
            return error_response(&error);
        }
    };
    tracing::debug!(
        rows = result.num_rows(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "query done"
    );
    match format.encode(&result) {
        Ok(bytes) => (
            StatusCode::OK,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            )],
            bytes,
        )
            .into_response(),
        Err(error) => error_response(&error),
    }
}

fn sql_text(headers: &HeaderMap, body: &[u8]) -> Result<String, Error> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    if is_json {
        let request: SqlRequest = serde_json::from_slice(body)
            .map_err(|e| Error::BadRequest(format!("expected {{\"sql\": \"...\"}}: {e}")))?;
        Ok(request.sql)
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| Error::BadRequest("the SQL text is not valid UTF-8".to_owned()))
    }
}

fn error_response(error: &Error) -> Response {
    let status = if error.is_resources_exhausted() {
        StatusCode::SERVICE_UNAVAILABLE
    } else if error.is_user_error() {
        StatusCode::BAD_REQUEST
    } else {
        tracing::error!(%error, "query failed on our side");
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let body = serde_json::json!({ "error": error.to_string() });
    (status, axum::Json(body)).into_response()
}
