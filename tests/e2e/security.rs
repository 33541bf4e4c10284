//! Every listener checks bearer tokens and their roles, and speaks TLS when
//! `[tls]` is configured (issue 9's security tests for OTLP/gRPC,
//! OTLP/HTTP and the HTTP API).

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use super::harness::Server;

const INGEST: &str = "ingest-token-0123456789";
const QUERY: &str = "query-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

fn tokens() -> String {
    format!(
        "[[auth.tokens]]\nname = \"collector\"\ntoken = \"{INGEST}\"\nroles = [\"ingest\"]\n\
         [[auth.tokens]]\nname = \"grafana\"\ntoken = \"{QUERY}\"\nroles = [\"query\"]\n\
         [[auth.tokens]]\nname = \"operator\"\ntoken = \"{ADMIN}\"\nroles = [\"admin\"]\n"
    )
}

/// What a request presents: nothing, an unknown token, or a known one.
#[derive(Debug, Clone, Copy)]
enum Presented {
    Nothing,
    Unknown,
    Token(&'static str),
}

impl Presented {
    fn header(self) -> Option<String> {
        match self {
            Presented::Nothing => None,
            Presented::Unknown => Some("Bearer not-a-token-0123456789".to_owned()),
            Presented::Token(token) => Some(format!("Bearer {token}")),
        }
    }
}

async fn http_status(method: reqwest::Method, url: &str, who: Presented, body: Vec<u8>) -> u16 {
    let content_type = if url.contains("/v1/traces") {
        "application/x-protobuf"
    } else {
        "application/json"
    };
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("content-type", content_type)
        .body(body);
    if let Some(header) = who.header() {
        request = request.header("authorization", header);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn grpc_export(channel: Channel, who: Presented) -> Result<(), tonic::Status> {
    let mut client = TraceServiceClient::new(channel);
    let mut request = tonic::Request::new(ExportTraceServiceRequest::default());
    if let Some(header) = who.header() {
        request
            .metadata_mut()
            .insert("authorization", header.parse().unwrap());
    }
    client.export(request).await.map(|_| ())
}

#[tokio::test]
async fn otlp_receivers_take_only_ingest_tokens() {
    let server = Server::start_with_config(&tokens());
    let channel = Channel::from_shared(server.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let body = ExportTraceServiceRequest::default().encode_to_vec();
    for (who, http, grpc) in [
        (Presented::Nothing, 401, Some(Code::Unauthenticated)),
        (Presented::Unknown, 401, Some(Code::Unauthenticated)),
        (Presented::Token(QUERY), 403, Some(Code::PermissionDenied)),
        (Presented::Token(INGEST), 200, None),
        (Presented::Token(ADMIN), 200, None),
    ] {
        let status = http_status(
            reqwest::Method::POST,
            &server.otlp_http_url("/v1/traces"),
            who,
            body.clone(),
        )
        .await;
        assert_eq!(status, http, "OTLP/HTTP with {who:?}");
        let code = grpc_export(channel.clone(), who)
            .await
            .err()
            .map(|s| s.code());
        assert_eq!(code, grpc, "OTLP/gRPC with {who:?}");
    }
}

#[tokio::test]
async fn the_api_asks_query_for_reading_and_admin_for_changing() {
    let server = Server::start_with_config(&tokens());
    let api = |path: &str| format!("http://{}{path}", server.api);
    let sql = br#"{"sql": "SELECT count(*) AS n FROM spans"}"#.to_vec();
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    for (method, path, body, who, expected) in [
        (get.clone(), "/healthz", vec![], Presented::Nothing, 200),
        (
            post.clone(),
            "/api/v1/sql",
            sql.clone(),
            Presented::Nothing,
            401,
        ),
        (
            post.clone(),
            "/api/v1/sql",
            sql.clone(),
            Presented::Unknown,
            401,
        ),
        (
            post.clone(),
            "/api/v1/sql",
            sql.clone(),
            Presented::Token(INGEST),
            403,
        ),
        (
            post.clone(),
            "/api/v1/sql",
            sql.clone(),
            Presented::Token(QUERY),
            200,
        ),
        (
            post.clone(),
            "/api/v1/sql",
            sql.clone(),
            Presented::Token(ADMIN),
            200,
        ),
        (get.clone(), "/metrics", vec![], Presented::Nothing, 401),
        (
            get.clone(),
            "/metrics",
            vec![],
            Presented::Token(QUERY),
            200,
        ),
        (
            get.clone(),
            "/api/v1/rollouts",
            vec![],
            Presented::Token(INGEST),
            403,
        ),
        (
            get.clone(),
            "/api/v1/rollouts",
            vec![],
            Presented::Token(QUERY),
            200,
        ),
        (
            get.clone(),
            "/api/v1/admin/cohorts",
            vec![],
            Presented::Token(QUERY),
            403,
        ),
        (
            get.clone(),
            "/api/v1/admin/cohorts",
            vec![],
            Presented::Token(ADMIN),
            200,
        ),
        // Changing a rollout is the admin's; past the check, the unknown
        // rollout is a 404.
        (
            post.clone(),
            "/api/v1/rollouts/nope/pause",
            vec![],
            Presented::Token(QUERY),
            403,
        ),
        (
            post.clone(),
            "/api/v1/rollouts/nope/pause",
            vec![],
            Presented::Token(ADMIN),
            404,
        ),
    ] {
        let status = http_status(method.clone(), &api(path), who, body).await;
        assert_eq!(status, expected, "{method} {path} with {who:?}");
    }
    // Flagger's webhooks cannot send headers: its hooks take `?token=`.
    let flagger =
        br#"{"name": "nope", "namespace": "default", "phase": "Progressing", "metadata": {}}"#;
    for (query, expected) in [
        ("", 401),
        ("?token=not-a-token-0123", 401),
        (&*format!("?token={QUERY}"), 404),
    ] {
        let status = http_status(
            post.clone(),
            &api(&format!("/api/v1/flagger/confirm-promotion{query}")),
            Presented::Nothing,
            flagger.to_vec(),
        )
        .await;
        assert_eq!(status, expected, "flagger{query}");
    }
}

/// A self-signed certificate for `localhost`, written to `dir`.
fn certificate(dir: &std::path::Path) -> (String, String) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, private) = (key.cert.pem(), key.signing_key.serialize_pem());
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), &private).unwrap();
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n",
        dir.join("cert.pem"),
        dir.join("key.pem")
    );
    (cert, config)
}

/// One HTTP/1.1 `GET` over TLS, trusting `ca`; the response's status line.
async fn https_get(
    addr: std::net::SocketAddr,
    ca: &str,
    path: &str,
    token: &str,
) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\n\
             connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response.lines().next().unwrap_or_default().to_owned())
}

use rustls::pki_types::pem::PemObject as _;

#[tokio::test]
async fn every_listener_speaks_tls_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, tls) = certificate(dir.path());
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let server = Server::start_with_config(&format!("{tls}{}", tokens()));

    // The HTTP API and OTLP/HTTP: a client that trusts the certificate
    // gets its answer; one that trusts another does not get past the
    // handshake; a plain-text request gets no HTTP answer.
    let status = https_get(server.api, &ca, "/metrics", QUERY).await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    let status = https_get(server.http, &ca, "/v1/traces", INGEST)
        .await
        .unwrap();
    assert_eq!(
        status, "HTTP/1.1 405 Method Not Allowed",
        "OTLP/HTTP over TLS"
    );
    let refused = https_get(server.api, &other.cert.pem(), "/metrics", QUERY).await;
    assert!(
        refused.is_err(),
        "an untrusted certificate was accepted: {refused:?}"
    );
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", server.api))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // OTLP/gRPC: tonic's client with the CA exports; without TLS it cannot.
    let channel = Channel::from_shared(format!("https://localhost:{}", server.grpc.port()))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    grpc_export(channel, Presented::Token(INGEST))
        .await
        .unwrap();
    let plain = Channel::from_shared(server.grpc_url())
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let result = grpc_export(channel, Presented::Token(INGEST)).await;
        assert!(result.is_err(), "plain gRPC was served");
    }
}

#[test]
fn an_open_listener_off_loopback_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grayscope.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[api]\naddr = \"0.0.0.0:0\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let output = std::process::Command::new(super::harness::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("api.addr"), "{stderr}");
    assert!(stderr.contains("insecure = true"), "{stderr}");
}
