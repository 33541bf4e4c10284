//! `[auth]` and `[tls]`: who may use which listener, and the certificate
//! every listener presents.
//!
//! ```toml
//! [auth]
//! # Required to listen on anything but loopback without tokens.
//! insecure = false
//!
//! [[auth.tokens]]
//! name = "collector"
//! token = "a long random string"
//! roles = ["ingest"]
//!
//! [tls]
//! cert = "/etc/grayscope/cert.pem"
//! key = "/etc/grayscope/key.pem"
//! ```
//!
//! With no tokens every listener is open, which is only allowed while they
//! all listen on loopback (or `insecure = true`). With tokens, every request
//! on every listener must carry one (`Authorization: Bearer …`, or the
//! password of the PostgreSQL wire protocol) whose roles include the one
//! the listener needs: `ingest` for OTLP, `query` for SQL, `admin` for the
//! rollout and admin API. `admin` grants every role.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::invalid;
use crate::auth::Role;
use crate::error::Result;

/// Fewest characters a token may have: short tokens can be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// `[auth]`: bearer tokens and their roles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Allow listening on a non-loopback address without tokens. Default
    /// `false`: such a configuration is refused at start-up.
    pub insecure: bool,
    /// `[[auth.tokens]]`: the accepted tokens. Default: none (every
    /// listener open, loopback only).
    pub tokens: Vec<TokenConfig>,
}

/// One accepted bearer token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it: named in logs, never the token itself.
    pub name: String,
    /// The secret, at least 16 characters.
    pub token: String,
    /// What it may do: `ingest`, `query`, `admin` (`admin` grants all).
    pub roles: Vec<Role>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("roles", &self.roles)
            .finish()
    }
}

/// `[tls]`: one certificate for every listener. Absent (the default):
/// plain TCP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl AuthConfig {
    /// Checks the tokens, and refuses open listeners off loopback unless
    /// `insecure` says the user means it. `listeners` names every address
    /// the server will bind.
    pub(crate) fn validate(&self, listeners: &[(&str, SocketAddr)]) -> Result<()> {
        for (i, token) in self.tokens.iter().enumerate() {
            let field = format!("auth.tokens[{i}]");
            if token.name.trim().is_empty() {
                return Err(invalid(&format!("{field}.name"), "must not be empty"));
            }
            if self.tokens[..i].iter().any(|t| t.name == token.name) {
                return Err(invalid(
                    &format!("{field}.name"),
                    format!("{:?} is used by another token", token.name),
                ));
            }
            if token.token.chars().count() < MIN_TOKEN_LEN {
                return Err(invalid(
                    &format!("{field}.token"),
                    format!("must have at least {MIN_TOKEN_LEN} characters"),
                ));
            }
            if self.tokens[..i].iter().any(|t| t.token == token.token) {
                return Err(invalid(
                    &format!("{field}.token"),
                    "is the same as another token's",
                ));
            }
            if token.roles.is_empty() {
                return Err(invalid(
                    &format!("{field}.roles"),
                    "must name at least one of \"ingest\", \"query\", \"admin\"",
                ));
            }
        }
        let exposed = listeners.iter().find(|(_, a)| !a.ip().is_loopback());
        if self.tokens.is_empty()
            && !self.insecure
            && let Some((what, addr)) = exposed
        {
            return Err(invalid(
                what,
                format!(
                    "= {addr} is not a loopback address, and no [[auth.tokens]] are \
                     configured: anyone who can reach it could use it. Add tokens, or set \
                     `insecure = true` under [auth] if the network is trusted"
                ),
            ));
        }
        Ok(())
    }
}
