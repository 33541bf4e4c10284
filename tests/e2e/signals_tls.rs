//! Webhooks over `https://`: a receiver on loopback with a certificate from
//! a private CA made in the test (rcgen). grayscope trusts it only through
//! the webhook's `ca_file`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::harness::{Server, binary};
use super::signals::{Receiver, command, create};

const SECRET: &str = "router-secret";

/// A private CA and a server certificate it signed for 127.0.0.1.
struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "grayscope test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let chain = vec![
        CertificateDer::from(leaf.der().to_vec()),
        CertificateDer::from(ca.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server: Arc::new(server),
    }
}

fn https_webhook(name: &str, port: u16, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file.map_or(String::new(), |p| format!("ca_file = {p:?}\n"));
    format!(
        "[[signals.webhooks]]\nname = {name:?}\nurl = \"https://127.0.0.1:{port}/hook\"\n\
         secret = {SECRET:?}\ninitial_backoff = \"20ms\"\nmax_backoff = \"100ms\"\n{ca}"
    )
}

#[tokio::test]
async fn an_https_webhook_with_a_private_ca_receives_signed_signals_and_without_it_is_refused() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let (rx, addr) = Receiver::default().serve_tls(pki.server.clone()).await;
    let config = https_webhook("private-ca", addr.port(), Some(&ca_file))
        + &https_webhook("system-cas-only", addr.port(), None);
    let server = Server::start_with_config(&config);
    create(&server).await;
    command(&server, "pause").await;
    command(&server, "resume").await;

    // The receiver verified each signature before accepting (a bad one is
    // a 401 that Receiver counts).
    let ids = rx.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(ids, ["search-v7/canary/1", "search-v7/canary/2"]);

    // The endpoint whose CA grayscope does not trust is retried, and says
    // why.
    let sql = "SELECT destination, state, attempts, last_error FROM system.deliveries \
               WHERE sequence = 1 ORDER BY destination";
    let deadline = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let rows = server.sql(sql).await;
        if rows.len() == 2 && rows[1]["attempts"].as_i64() >= Some(2) {
            break rows;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rows[0]["destination"], "webhook:private-ca");
    assert_eq!(rows[0]["state"], "delivered");
    assert_eq!(rows[1]["destination"], "webhook:system-cas-only");
    assert_eq!(rows[1]["state"], "pending");
    let error = rows[1]["last_error"].as_str().unwrap();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(rx.wait_for(3, Duration::from_millis(200)).await.len(), 2);
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    for (ca_file, expected) in [
        (dir.path().join("missing.pem"), "cannot read ca_file"),
        (not_pem, "holds no PEM certificate"),
    ] {
        let config = dir.path().join("grayscope.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n[otlp]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
                 [api]\naddr = \"127.0.0.1:0\"\n{}",
                dir.path().join("data"),
                https_webhook("router", 9, Some(&ca_file)),
            ),
        )
        .unwrap();
        let output = std::process::Command::new(binary())
            .args(["serve", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains("webhook:router"), "{stderr}");
    }
}
