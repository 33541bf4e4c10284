//! Bearer tokens and roles: the one check every listener makes.
//!
//! An [`Authenticator`] is built from `[auth]`. Each listener asks it whether
//! a presented token (from `Authorization: Bearer …`, or the password of the
//! PostgreSQL wire protocol) may act in the listener's [`Role`]. Tokens are
//! compared by their SHA-256 digests in constant time, against every
//! configured token, so neither the time taken nor an early exit tells a
//! caller how close a guess came.
//!
//! ```
//! use grayscope_core::auth::{Authenticator, Denied, Role};
//! use grayscope_core::config::{AuthConfig, TokenConfig};
//!
//! let auth = Authenticator::new(&AuthConfig {
//!     insecure: false,
//!     tokens: vec![TokenConfig {
//!         name: "collector".into(),
//!         token: "0123456789abcdef-ingest".into(),
//!         roles: vec![Role::Ingest],
//!     }],
//! });
//! let who = auth.check_header(Some("Bearer 0123456789abcdef-ingest"), Role::Ingest);
//! assert_eq!(who.unwrap().name(), "collector");
//! assert!(matches!(
//!     auth.check_header(Some("Bearer 0123456789abcdef-ingest"), Role::Query),
//!     Err(Denied::Forbidden { .. })
//! ));
//! assert_eq!(auth.check_header(None, Role::Ingest).unwrap_err(), Denied::Missing);
//! ```

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AuthConfig;

/// What a token may do. Each listener needs one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Send telemetry: the OTLP receivers.
    Ingest,
    /// Read: SQL over HTTP, the PostgreSQL wire protocol, Flight SQL, the
    /// signal stream and verdict endpoints, `/metrics`.
    Query,
    /// Change things: the rollout and admin API. Grants every role.
    Admin,
}

impl Role {
    /// The role's name as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Query => "query",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who a request acts as, once its token was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    name: Arc<str>,
    roles: Arc<[Role]>,
}

impl Principal {
    /// The token's configured name (`anonymous` when authentication is off).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this principal may act in `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.iter().any(|&r| r == role || r == Role::Admin)
    }
}

/// Why a request was refused. The messages are safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No token was presented (HTTP 401, gRPC UNAUTHENTICATED).
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Missing,
    /// The token is not one of the configured ones (HTTP 401, gRPC
    /// UNAUTHENTICATED).
    #[error("the token is not valid")]
    Invalid,
    /// The token is valid but lacks the role (HTTP 403, gRPC
    /// PERMISSION_DENIED).
    #[error("token {name:?} does not have the {role} role")]
    Forbidden {
        /// The token's name.
        name: String,
        /// The role the listener needs.
        role: Role,
    },
}

struct Entry {
    digest: [u8; 32],
    principal: Principal,
}

/// Checks tokens against `[auth]`. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    entries: Arc<[Entry]>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Authenticator {
    /// The tokens of `config`; with none, every request is let through.
    pub fn new(config: &AuthConfig) -> Authenticator {
        let entries = config
            .tokens
            .iter()
            .map(|token| Entry {
                digest: digest(&token.token),
                principal: Principal {
                    name: token.name.as_str().into(),
                    roles: token.roles.as_slice().into(),
                },
            })
            .collect();
        Authenticator { entries }
    }

    /// An authenticator that lets everything through (no tokens).
    pub fn open() -> Authenticator {
        Authenticator::new(&AuthConfig::default())
    }

    /// Whether authentication is off (no tokens configured).
    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `token` may act in `role`.
    pub fn check(&self, token: Option<&str>, role: Role) -> Result<Principal, Denied> {
        if self.is_open() {
            return Ok(Principal {
                name: "anonymous".into(),
                roles: [Role::Admin].as_slice().into(),
            });
        }
        let token = token.filter(|t| !t.is_empty()).ok_or(Denied::Missing)?;
        let presented = digest(token);
        // Compare with every entry, without stopping at a match.
        let mut found = None;
        for entry in self.entries.iter() {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(&entry.principal);
            }
        }
        let principal = found.ok_or(Denied::Invalid)?;
        if principal.has(role) {
            Ok(principal.clone())
        } else {
            Err(Denied::Forbidden {
                name: principal.name().to_owned(),
                role,
            })
        }
    }

    /// Whether the `Authorization` header's bearer token may act in `role`.
    /// The scheme is matched without regard to case, as HTTP says.
    pub fn check_header(
        &self,
        authorization: Option<&str>,
        role: Role,
    ) -> Result<Principal, Denied> {
        self.check(authorization.map(bearer_token), role)
    }
}

/// The token of `Bearer <token>`; any other scheme yields "" (no token).
pub fn bearer_token(authorization: &str) -> &str {
    let value = authorization.trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;

    fn authenticator() -> Authenticator {
        let token = |name: &str, roles: &[Role]| TokenConfig {
            name: name.to_owned(),
            token: format!("{name}-0123456789abcdef"),
            roles: roles.to_vec(),
        };
        Authenticator::new(&AuthConfig {
            insecure: false,
            tokens: vec![
                token("collector", &[Role::Ingest]),
                token("grafana", &[Role::Query]),
                token("operator", &[Role::Admin]),
            ],
        })
    }

    #[test]
    fn each_token_acts_only_in_its_roles() {
        let auth = authenticator();
        let bearer = |name: &str| format!("Bearer {name}-0123456789abcdef");
        for (name, role, allowed) in [
            ("collector", Role::Ingest, true),
            ("collector", Role::Query, false),
            ("collector", Role::Admin, false),
            ("grafana", Role::Query, true),
            ("grafana", Role::Ingest, false),
            ("grafana", Role::Admin, false),
            ("operator", Role::Ingest, true),
            ("operator", Role::Query, true),
            ("operator", Role::Admin, true),
        ] {
            let result = auth.check_header(Some(&bearer(name)), role);
            match (allowed, result) {
                (true, Ok(principal)) => assert_eq!(principal.name(), name),
                (false, Err(Denied::Forbidden { name: n, role: r })) => {
                    assert_eq!((n.as_str(), r), (name, role));
                }
                (_, other) => panic!("{name} as {role}: {other:?}"),
            }
        }
    }

    #[test]
    fn missing_and_wrong_tokens_are_told_apart() {
        let auth = authenticator();
        assert_eq!(auth.check_header(None, Role::Query), Err(Denied::Missing));
        assert_eq!(
            auth.check_header(Some("Bearer "), Role::Query),
            Err(Denied::Missing)
        );
        assert_eq!(
            auth.check_header(Some("Basic Z3JhZmFuYQ=="), Role::Query),
            Err(Denied::Missing)
        );
        assert_eq!(
            auth.check_header(Some("Bearer grafana-0123456789abcdeF"), Role::Query),
            Err(Denied::Invalid)
        );
        assert_eq!(
            auth.check_header(Some("bearer  grafana-0123456789abcdef "), Role::Query)
                .map(|p| p.name().to_owned()),
            Ok("grafana".to_owned())
        );
    }

    #[test]
    fn without_tokens_everything_is_allowed() {
        let auth = Authenticator::open();
        assert!(auth.is_open());
        let principal = auth.check(None, Role::Admin).unwrap();
        assert_eq!(principal.name(), "anonymous");
    }
}
