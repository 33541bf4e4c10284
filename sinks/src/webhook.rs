//! Webhook delivery: each endpoint has its own worker (a [`Destination`])
//! that posts the outbox's signals in order, signed, over `http://` or
//! `https://` (rustls; a private CA from `ca_file`), and retries each with
//! back-off and jitter until it is accepted or its deadline passes.
//!
//! One endpoint's trouble (unreachable, slow, answering 500) holds back only
//! that endpoint: the judge just appends to the outbox, and every other
//! destination has its own cursor.

use std::path::Path;
use std::time::Duration;

use grayscope_core::config::WebhookConfig;
use grayscope_core::signal::Signal;
use reqwest::StatusCode;

use crate::destination::{Attempt, Destination, RetryPolicy, error_chain};
use crate::error::{Error, Result};
use crate::now_nanos;
use crate::outbox::Entry;
use crate::signature::{ATTEMPT_HEADER, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// One webhook endpoint.
#[derive(Debug)]
pub struct WebhookSink {
    config: WebhookConfig,
    destination: String,
    client: reqwest::Client,
}

/// An HTTP client for a destination: `timeout` per request, and the
/// certificates of `ca_file` (PEM) trusted besides the system's.
pub(crate) fn client(
    what: &str,
    timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client> {
    let setup = |reason: String| Error::Setup {
        what: what.to_owned(),
        reason,
    };
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("grayscope/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| setup(format!("cannot read ca_file {}: {e}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            setup(format!(
                "ca_file {} holds no PEM certificate: {}",
                path.display(),
                error_chain(&e)
            ))
        })?;
        if certificates.is_empty() {
            return Err(setup(format!(
                "ca_file {} holds no PEM certificate",
                path.display()
            )));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| setup(error_chain(&e)))
}

impl WebhookSink {
    /// The endpoint of `config`.
    pub fn new(config: WebhookConfig) -> Result<WebhookSink> {
        let destination = format!("webhook:{}", config.name);
        let client = client(
            &destination,
            config.timeout.get(),
            config.ca_file.as_deref(),
        )?;
        Ok(WebhookSink {
            destination,
            config,
            client,
        })
    }

    /// The name its deliveries and cursor are kept under.
    pub fn destination(&self) -> &str {
        &self.destination
    }
}

impl Destination for WebhookSink {
    fn name(&self) -> &str {
        &self.destination
    }

    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial: self.config.initial_backoff.get(),
            max: self.config.max_backoff.get(),
            deadline: self.config.deadline.get(),
        }
    }

    fn wanted(&mut self, signal: &Signal) -> bool {
        (self.config.rollouts.is_empty() || self.config.rollouts.contains(&signal.rollout))
            && (self.config.verdicts.is_empty() || self.config.verdicts.contains(&signal.verdict))
    }

    async fn attempt(&self, entry: &Entry, body: &[u8], attempt: u32) -> Attempt {
        let signal = &entry.signal;
        let timestamp = now_nanos() / 1_000_000_000;
        let signature = sign(self.config.secret.as_bytes(), timestamp, body);
        let sent = self
            .client
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(ID_HEADER, &signal.id)
            .header(ATTEMPT_HEADER, attempt.to_string())
            .header("idempotency-key", &signal.id)
            .body(body.to_vec())
            .send()
            .await;
        http_outcome(sent)
    }
}

/// What an HTTP answer means for a delivery: any 2xx accepts; a 5xx, 408,
/// 429 or no answer is retried (honouring `Retry-After` in seconds); any
/// other status is a refusal.
pub(crate) fn http_outcome(sent: reqwest::Result<reqwest::Response>) -> Attempt {
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            return Attempt::Retry {
                error: error_chain(&e),
                status: None,
                after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Accepted(Some(status.as_u16()));
    }
    let after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let error = format!("HTTP {status}");
    match status {
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => Attempt::Retry {
            error,
            status: Some(status.as_u16()),
            after,
        },
        s if s.is_server_error() => Attempt::Retry {
            error,
            status: Some(status.as_u16()),
            after,
        },
        _ => Attempt::Refused {
            error,
            status: Some(status.as_u16()),
        },
    }
}
