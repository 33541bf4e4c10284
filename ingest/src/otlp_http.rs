//! The OTLP/HTTP receiver: `POST /v1/traces`, `/v1/logs`, `/v1/metrics`.
//!
//! Bodies are `application/x-protobuf` or `application/json` (OTLP JSON),
//! optionally `Content-Encoding: gzip`. Answers follow the OTLP/HTTP
//! specification: 200 with an export response (and `partial_success` when
//! some records were rejected) in the request's encoding; 400 for a body
//! that does not decode, 413 for one over the size limit (checked before
//! and after decompression), 415 for another content type or encoding —
//! each with a `google.rpc.Status` body saying why, and nothing stored.
//! Back-pressure is retryable, with `Retry-After`: 429 when all request
//! slots are taken, 503 when the store cannot keep up.

use std::io::Read as _;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::decode::Encoding;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::response::{error_body, export_response};
use crate::signal::Signal;

#[derive(Clone)]
struct HttpState {
    pipeline: Pipeline,
    max_request_size: usize,
}

/// The OTLP/HTTP routes, writing through `pipeline`, refusing bodies over
/// `max_request_size` bytes before or after decompression.
pub fn router(pipeline: Pipeline, max_request_size: usize) -> Router {
    let state = HttpState {
        pipeline,
        max_request_size,
    };
    let mut router = Router::new();
    for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
        router = router.route(
            signal.http_path(),
            post(
                move |State(state): State<HttpState>, headers: HeaderMap, body: Body| {
                    export(state, signal, headers, body)
                },
            ),
        );
    }
    router
        .with_state(state)
        // We enforce our own limit, before and after decompression.
        .layer(DefaultBodyLimit::disable())
}

async fn export(state: HttpState, signal: Signal, headers: HeaderMap, body: Body) -> Response {
    let content_type = header_text(&headers, CONTENT_TYPE);
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        let error = Error::UnsupportedContentType(content_type.to_owned());
        return error_response(Encoding::Json, &error);
    };
    // Take a slot before reading the body, so bodies in memory stay bounded.
    let _admission = match state.pipeline.admit() {
        Ok(admission) => admission,
        Err(error) => return error_response(encoding, &error),
    };
    match receive(&state, signal, encoding, &headers, body).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%signal, error = %error.client_message(), "OTLP/HTTP export rejected");
            error_response(encoding, &error)
        }
    }
}

async fn receive(
    state: &HttpState,
    signal: Signal,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let limit = state.max_request_size;
    let gzip = match header_text(headers, CONTENT_ENCODING).trim() {
        "" | "identity" => false,
        e if e.eq_ignore_ascii_case("gzip") => true,
        other => return Err(Error::UnsupportedContentEncoding(other.to_owned())),
    };
    let declared = header_text(headers, CONTENT_LENGTH).parse::<usize>().ok();
    if declared.is_some_and(|length| length > limit) {
        return Err(Error::TooLarge { limit });
    }
    let mut bytes = read_limited(body, limit).await?;
    if gzip {
        bytes = tokio::task::spawn_blocking(move || gunzip(&bytes, limit))
            .await
            .map_err(|e| Error::Internal(format!("decompression worker failed: {e}")))??;
    }
    let outcome = state.pipeline.export(signal, encoding, bytes).await?;
    let body = export_response(signal, encoding, &outcome);
    Ok((
        StatusCode::OK,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(encoding.content_type()),
        )],
        body,
    )
        .into_response())
}

fn header_text(headers: &HeaderMap, name: http::header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Error::TooLarge { limit })
        }
        Err(source) => Err(Error::ReadBody { source }),
    }
}

/// Decompresses a gzip body, refusing to produce more than `limit` bytes.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|source| Error::Decompress { source })?;
    if out.len() > limit {
        return Err(Error::TooLarge { limit });
    }
    Ok(Bytes::from(out))
}

fn error_response(encoding: Encoding, error: &Error) -> Response {
    let body = error_body(encoding, error.grpc_code(), error.client_message());
    let mut response = (
        error.http_status(),
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(encoding.content_type()),
        )],
        body,
    )
        .into_response();
    if let Some(retry_after) = error.retry_after() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write as _;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gunzip_restores_the_body() {
        let data = b"hello otlp".repeat(100);
        assert_eq!(gunzip(&gzip(&data), 10_000).unwrap(), Bytes::from(data));
    }

    #[test]
    fn gunzip_stops_at_the_limit() {
        // A small compressed body that inflates far beyond the limit.
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 4096);
        assert!(matches!(
            gunzip(&bomb, 4096),
            Err(Error::TooLarge { limit: 4096 })
        ));
    }

    #[test]
    fn corrupt_gzip_is_a_client_error() {
        let error = gunzip(b"\x1f\x8b\x08garbage", 1000).unwrap_err();
        assert_eq!(error.http_status(), StatusCode::BAD_REQUEST);
    }
}
