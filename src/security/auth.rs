//! The bearer-token check as axum middleware and as a tonic interceptor.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use grayscope_core::auth::{Authenticator, Denied, Role};
use serde_json::json;

/// Which role a request needs, by method and path (`None`: open).
pub type RoleOf = fn(&Method, &str) -> Option<Role>;

/// Every OTLP/HTTP request sends telemetry.
pub fn ingest_role(_: &Method, _: &str) -> Option<Role> {
    Some(Role::Ingest)
}

/// The role a request to the HTTP API needs; `None` for the health check.
pub fn api_role(method: &Method, path: &str) -> Option<Role> {
    if path == "/healthz" {
        return None;
    }
    if path.starts_with("/api/v1/admin/") {
        return Some(Role::Admin);
    }
    // SQL is read-only, and Flagger's hooks only ask for the verdict.
    if path == "/api/v1/sql" || path.starts_with("/api/v1/flagger/") {
        return Some(Role::Query);
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(Role::Query);
    }
    Some(Role::Admin)
}

/// Where a request's token is: the `Authorization` header, or — for
/// Flagger, whose webhooks cannot send headers — a `token` query parameter
/// on its hooks.
fn presented_token(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or("");
        return Some(grayscope_core::auth::bearer_token(value).to_owned());
    }
    if !request.uri().path().starts_with("/api/v1/flagger/") {
        return None;
    }
    let query = request.uri().query()?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "token").then(|| value.to_owned())
    })
}

/// Middleware: lets a request through when its token may act in the role
/// `role_of` gives it, else answers 401 or 403 with a JSON error.
pub async fn require_http(
    State((auth, role_of)): State<(Authenticator, RoleOf)>,
    request: Request,
    next: Next,
) -> Response {
    let Some(role) = role_of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let token = presented_token(&request);
    match auth.check(token.as_deref(), role) {
        Ok(_) => next.run(request).await,
        Err(denied) => refuse_http(&denied),
    }
}

fn refuse_http(denied: &Denied) -> Response {
    let body = axum::Json(json!({ "error": denied.to_string() }));
    match denied {
        Denied::Forbidden { .. } => (StatusCode::FORBIDDEN, body).into_response(),
        Denied::Missing | Denied::Invalid => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            body,
        )
            .into_response(),
    }
}

/// A tonic interceptor letting through calls whose `authorization`
/// metadata carries a token that may act in `role`: UNAUTHENTICATED for a
/// missing or unknown token, PERMISSION_DENIED for a token without the role.
pub fn grpc_interceptor(
    auth: Authenticator,
    role: Role,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |request: tonic::Request<()>| {
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or(""));
        match auth.check_header(header, role) {
            Ok(_) => Ok(request),
            Err(denied @ Denied::Forbidden { .. }) => {
                Err(tonic::Status::permission_denied(denied.to_string()))
            }
            Err(denied) => Err(tonic::Status::unauthenticated(denied.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_asks_for_the_least_role_that_does_the_job() {
        for (method, path, role) in [
            (Method::GET, "/healthz", None),
            (Method::POST, "/api/v1/sql", Some(Role::Query)),
            (Method::GET, "/metrics", Some(Role::Query)),
            (Method::GET, "/api/v1/rollouts", Some(Role::Query)),
            (
                Method::GET,
                "/api/v1/rollouts/web/verdict",
                Some(Role::Query),
            ),
            (
                Method::POST,
                "/api/v1/flagger/confirm-promotion",
                Some(Role::Query),
            ),
            (Method::POST, "/api/v1/rollouts", Some(Role::Admin)),
            (
                Method::POST,
                "/api/v1/rollouts/web/rollback",
                Some(Role::Admin),
            ),
            (Method::DELETE, "/api/v1/rollouts/web", Some(Role::Admin)),
            (Method::GET, "/api/v1/admin/cohorts", Some(Role::Admin)),
            (Method::POST, "/api/v1/admin/reload", Some(Role::Admin)),
            (Method::PUT, "/anything/else", Some(Role::Admin)),
        ] {
            assert_eq!(api_role(&method, path), role, "{method} {path}");
        }
    }
}
