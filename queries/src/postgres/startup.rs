//! Logging in over the PostgreSQL wire protocol.
//!
//! With `[[auth.tokens]]`, the server asks for a cleartext password and
//! takes it as a bearer token: it must be valid and hold the `query` role
//! (the user name is free; Grafana's datasource and `psql` both send one).
//! A missing or unknown token is refused with SQLSTATE 28P01
//! (invalid_password), a token without the role with 28000
//! (invalid_authorization_specification). Without tokens, anyone on the
//! (loopback) listener is let in. With `[tls]`, a connection that did not
//! switch to TLS is refused before any password is asked for, so a
//! password never crosses the network in clear text.

use std::fmt::Debug;

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::{Sink, SinkExt as _};
use grayscope_core::auth::{Authenticator, Denied, Role};

/// Checks each connection's token (its password) and TLS.
pub struct TokenStartup {
    authenticator: Authenticator,
    tls_required: bool,
    /// Set for connections beyond `[sql] max_connections`: each is refused
    /// at login, with the limit named.
    refuse_over: Option<usize>,
    parameters: DefaultServerParameterProvider,
    keys: RandomPidSecretKeyGenerator,
}

impl TokenStartup {
    /// Logins checked by `authenticator`; with `tls_required`, only over TLS.
    pub fn new(authenticator: Authenticator, tls_required: bool) -> TokenStartup {
        TokenStartup {
            authenticator,
            tls_required,
            refuse_over: None,
            parameters: DefaultServerParameterProvider::default(),
            keys: RandomPidSecretKeyGenerator::default(),
        }
    }

    /// `other`'s checks, but every login is refused with SQLSTATE 53300:
    /// the server already has its `max_connections` clients.
    pub fn refusing_like(other: &TokenStartup, max_connections: usize) -> TokenStartup {
        TokenStartup {
            refuse_over: Some(max_connections),
            ..TokenStartup::new(other.authenticator.clone(), other.tls_required)
        }
    }

    async fn accept<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, secret_key) = self.keys.generate(client);
        client.set_pid_and_secret_key(pid, secret_key);
        finish_authentication(client, &self.parameters).await
    }
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message,
    )))
}

/// The PostgreSQL error for a refused token.
pub fn denied(denied: &Denied) -> PgWireError {
    match denied {
        Denied::Missing => fatal(
            "28P01",
            "authentication required: give a grayscope token with the query role as the password"
                .to_owned(),
        ),
        Denied::Invalid => fatal(
            "28P01",
            "password authentication failed: the token is not valid".to_owned(),
        ),
        Denied::Forbidden { .. } => fatal("28000", denied.to_string()),
    }
}

#[async_trait]
impl StartupHandler for TokenStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if self.tls_required && !client.is_secure() {
                    return Err(fatal(
                        "28000",
                        "this server accepts only TLS connections: connect with sslmode=require \
                         (or verify-full)"
                            .to_owned(),
                    ));
                }
                if let Some(max) = self.refuse_over {
                    return Err(fatal(
                        "53300",
                        format!(
                            "sorry, too many clients already: the server serves at most {max} \
                             PostgreSQL connections at once ([sql] max_connections)"
                        ),
                    ));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if self.authenticator.is_open() {
                    return self.accept(client).await;
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let password = password.into_password()?;
                match self
                    .authenticator
                    .check(Some(&password.password), Role::Query)
                {
                    Ok(principal) => {
                        tracing::debug!(token = principal.name(), "PostgreSQL login");
                        self.accept(client).await?;
                    }
                    Err(refusal) => {
                        tracing::info!(peer = %client.socket_addr(), %refusal, "PostgreSQL login refused");
                        return Err(denied(&refusal));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
