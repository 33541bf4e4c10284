//! `[tls]` for the PostgreSQL wire protocol: the certificate the server
//! presents after a client's `SSLRequest`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use grayscope_core::config::TlsConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot read the TLS {what} from {path}")]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The reader's complaint.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(PathBuf),
    /// rustls refused the pair (a key that does not match, …).
    #[error("the TLS certificate and key cannot be used together")]
    Config(#[source] rustls::Error),
}

/// PostgreSQL clients that connect with TLS directly (PostgreSQL 17's
/// `sslnegotiation=direct`) name this protocol.
const ALPN: &[u8] = b"postgresql";

/// The acceptor for `config`'s certificate and key.
pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let read_error = |what, path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Read { what, path, source }
    };
    let certs = CertificateDer::pem_file_iter(&config.cert)
        .map_err(read_error("certificate", &config.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error("certificate", &config.cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(config.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(read_error("private key", &config.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Config)?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}
