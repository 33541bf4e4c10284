//! Who may call the Flight SQL service.
//!
//! Every call but `Handshake` must carry `authorization: Bearer <token>`
//! with the `query` role (unless authentication is off). `Handshake`
//! trades HTTP basic credentials, whose password is the token (the user
//! name is free), for that bearer header, as ADBC and pyarrow's
//! `authenticate_basic_token` expect.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use arrow_flight::HandshakeResponse;
use base64::Engine as _;
use futures::Stream;
use futures::future::Either;
use grayscope_core::auth::{Authenticator, Denied, Role, bearer_token};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::server::NamedService;
use tonic::{Response, Status};

/// The one call that may come without a bearer token.
const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// The status for a refused token: UNAUTHENTICATED when there is none or
/// it is unknown, PERMISSION_DENIED when it lacks the role.
pub(crate) fn denied_status(denied: &Denied) -> Status {
    match denied {
        Denied::Missing | Denied::Invalid => Status::unauthenticated(denied.to_string()),
        Denied::Forbidden { .. } => Status::permission_denied(denied.to_string()),
    }
}

/// A gRPC service that lets through only calls whose bearer token has the
/// `query` role (and every `Handshake`, which checks its own credentials).
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    authenticator: Authenticator,
}

impl<S> Authenticated<S> {
    pub(crate) fn new(inner: S, authenticator: Authenticator) -> Self {
        Authenticated {
            inner,
            authenticator,
        }
    }
}

impl<S> std::fmt::Debug for Authenticated<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("authenticator", &self.authenticator)
            .finish_non_exhaustive()
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

type Refusal = std::future::Ready<Result<http::Response<tonic::body::Body>, Infallible>>;

impl<S, B> tonic::codegen::Service<http::Request<B>> for Authenticated<S>
where
    S: tonic::codegen::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        >,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Either<Refusal, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != HANDSHAKE_PATH {
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if let Err(denied) = self.authenticator.check_header(header, Role::Query) {
                tracing::debug!(path = request.uri().path(), %denied, "Flight SQL call refused");
                return Either::Left(std::future::ready(Ok(denied_status(&denied).into_http())));
            }
        }
        Either::Right(self.inner.call(request))
    }
}

/// The stream a handshake answers with.
pub(crate) type HandshakeStream =
    Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send + 'static>>;

/// Answers `Handshake`: checks the basic (or bearer) credentials in
/// `metadata` and returns the bearer header to use from then on.
pub(crate) fn handshake(
    authenticator: &Authenticator,
    metadata: &MetadataMap,
) -> Result<Response<HandshakeStream>, Status> {
    let answer = |payload: Vec<u8>| -> Response<HandshakeStream> {
        Response::new(Box::pin(futures::stream::once(async move {
            Ok(HandshakeResponse {
                protocol_version: 0,
                payload: payload.into(),
            })
        })))
    };
    if authenticator.is_open() {
        return Ok(answer(Vec::new()));
    }
    let header = metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let token = presented_token(header)?;
    authenticator
        .check(Some(&token), Role::Query)
        .map_err(|denied| denied_status(&denied))?;
    let bearer = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| Status::unauthenticated("the token is not valid"))?;
    let mut response = answer(token.into_bytes());
    response.metadata_mut().insert("authorization", bearer);
    Ok(response)
}

/// Base64 with or without padding: Go's Flight client (ADBC, Grafana)
/// sends basic credentials unpadded, pyarrow padded.
const BASIC: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The token of `Basic base64(user:token)` or `Bearer token`.
fn presented_token(header: &str) -> Result<String, Status> {
    let header = header.trim();
    let Some((scheme, value)) = header.split_once(' ') else {
        return Err(denied_status(&Denied::Missing));
    };
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASIC
            .decode(value.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| Status::unauthenticated("basic credentials do not decode"))?;
        let (_user, password) = decoded.split_once(':').unwrap_or(("", &decoded));
        Ok(password.to_owned())
    } else {
        Ok(bearer_token(header).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use grayscope_core::config::{AuthConfig, TokenConfig};
    use tonic::Code;

    use super::*;

    fn authenticator() -> Authenticator {
        Authenticator::new(&AuthConfig {
            insecure: false,
            tokens: vec![
                TokenConfig {
                    name: "grafana".into(),
                    token: "grafana-0123456789abcdef".into(),
                    roles: vec![Role::Query],
                },
                TokenConfig {
                    name: "collector".into(),
                    token: "collector-0123456789abcdef".into(),
                    roles: vec![Role::Ingest],
                },
            ],
        })
    }

    fn metadata(authorization: &str) -> MetadataMap {
        let mut map = MetadataMap::new();
        map.insert("authorization", authorization.parse().unwrap());
        map
    }

    fn basic(user_and_password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_and_password)
        )
    }

    #[test]
    fn basic_credentials_are_traded_for_a_bearer_header() {
        let unpadded = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode("anyone:grafana-0123456789abcdef")
        );
        assert!(basic("anyone:grafana-0123456789abcdef").ends_with('='));
        for header in [basic("anyone:grafana-0123456789abcdef"), unpadded] {
            let response = handshake(&authenticator(), &metadata(&header)).unwrap();
            assert_eq!(
                response.metadata().get("authorization").unwrap(),
                "Bearer grafana-0123456789abcdef",
                "{header}"
            );
        }
    }

    #[test]
    fn bad_handshakes_are_refused_with_the_right_code() {
        let auth = authenticator();
        for (header, code) in [
            (String::new(), Code::Unauthenticated),
            (
                basic("anyone:wrong-0123456789abcdef"),
                Code::Unauthenticated,
            ),
            ("Basic !!!".to_owned(), Code::Unauthenticated),
            (
                basic("anyone:collector-0123456789abcdef"),
                Code::PermissionDenied,
            ),
            (
                "Bearer collector-0123456789abcdef".to_owned(),
                Code::PermissionDenied,
            ),
        ] {
            let map = if header.is_empty() {
                MetadataMap::new()
            } else {
                metadata(&header)
            };
            let status = handshake(&auth, &map).err().unwrap();
            assert_eq!(status.code(), code, "{header:?}: {status}");
        }
    }

    #[test]
    fn an_open_server_shakes_any_hand() {
        assert!(handshake(&Authenticator::open(), &MetadataMap::new()).is_ok());
    }
}
