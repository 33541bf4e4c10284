//! Webhook delivery: each endpoint has its own worker that posts the
//! outbox's signals in order, signed, and retries each with back-off and
//! jitter until it is accepted or its deadline passes.
//!
//! One endpoint's trouble (unreachable, slow, answering 500) holds back only
//! that endpoint: the judge just appends to the outbox, and every other
//! destination has its own cursor.

use std::time::{Duration, Instant};

use grayscope_core::config::WebhookConfig;
use grayscope_core::signal::Signal;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::backoff::backoff;
use crate::deliveries::{Deliveries, DeliveryState};
use crate::error::{Error, Result};
use crate::metrics::SinkMetrics;
use crate::now_nanos;
use crate::outbox::{Entry, Outbox};
use crate::signature::{ATTEMPT_HEADER, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// Signals read from the outbox at a time.
const BATCH: usize = 64;

/// The worker of one webhook endpoint.
#[derive(Debug)]
pub struct WebhookSink {
    config: WebhookConfig,
    destination: String,
    outbox: Outbox,
    deliveries: Deliveries,
    metrics: SinkMetrics,
    client: reqwest::Client,
}

/// What one attempt came to.
enum Attempt {
    Accepted(StatusCode),
    /// Worth retrying; a `Retry-After` the endpoint asked for.
    Retry(String, Option<StatusCode>, Option<Duration>),
    Refused(String, StatusCode),
}

impl WebhookSink {
    /// A worker for `config`, delivering from `outbox`.
    pub fn new(
        config: WebhookConfig,
        outbox: Outbox,
        deliveries: Deliveries,
        metrics: SinkMetrics,
    ) -> Result<WebhookSink> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout.get())
            .connect_timeout(config.timeout.get())
            .user_agent(concat!("grayscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Setup {
                what: format!("webhook {}", config.name),
                reason: e.to_string(),
            })?;
        Ok(WebhookSink {
            destination: format!("webhook:{}", config.name),
            config,
            outbox,
            deliveries,
            metrics,
            client,
        })
    }

    /// The name its deliveries and cursor are kept under.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    fn wanted(&self, signal: &Signal) -> bool {
        (self.config.rollouts.is_empty() || self.config.rollouts.contains(&signal.rollout))
            && (self.config.verdicts.is_empty() || self.config.verdicts.contains(&signal.verdict))
    }

    /// Delivers until `shutdown`. A signal interrupted by shutdown is
    /// delivered again after the restart.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let mut appended = self.outbox.subscribe();
        let mut cursor = self.outbox.cursor(&self.destination)?;
        loop {
            let entries = self.outbox.read_after(cursor, BATCH);
            if entries.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    changed = appended.changed() => if changed.is_err() { return Ok(()) },
                }
                continue;
            }
            for entry in entries {
                if self.wanted(&entry.signal) && !self.deliver(&entry, &shutdown).await {
                    return Ok(());
                }
                self.outbox.ack(&self.destination, entry.index)?;
                cursor = entry.index;
            }
        }
    }

    /// Delivers one signal, retrying; false if shutdown interrupted it.
    async fn deliver(&self, entry: &Entry, shutdown: &CancellationToken) -> bool {
        let signal = &entry.signal;
        let body = match serde_json::to_vec(&**signal) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(id = %signal.id, "cannot serialise a signal: {e}");
                return true;
            }
        };
        let started = Instant::now();
        self.deliveries
            .start(&self.destination, signal, now_nanos());
        for attempt in 1u32.. {
            self.deliveries.update(&self.destination, &signal.id, |d| {
                d.attempts = attempt;
                d.next_attempt = None;
            });
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return false,
                outcome = self.attempt(signal, &body, attempt) => outcome,
            };
            self.metrics.webhook_attempt(&self.config.name);
            let (error, status, asked) = match outcome {
                Attempt::Accepted(status) => {
                    self.finish(signal, DeliveryState::Delivered, Some(status), None);
                    self.metrics
                        .delivered(&self.config.name, signal, started.elapsed());
                    return true;
                }
                Attempt::Refused(error, status) => {
                    tracing::warn!(endpoint = %self.config.name, id = %signal.id, %error,
                        "the webhook refused the signal; not retrying");
                    self.finish(signal, DeliveryState::Failed, Some(status), Some(error));
                    self.metrics.failed(&self.config.name);
                    return true;
                }
                Attempt::Retry(error, status, asked) => (error, status, asked),
            };
            let wait = asked.map_or_else(
                || {
                    backoff(
                        self.config.initial_backoff.get(),
                        self.config.max_backoff.get(),
                        attempt,
                        &mut rand::rng(),
                    )
                },
                |asked| asked.min(self.config.max_backoff.get()),
            );
            if started.elapsed() + wait > self.config.deadline.get() {
                tracing::warn!(endpoint = %self.config.name, id = %signal.id, attempts = attempt,
                    %error, "giving up on the signal: its delivery deadline passed");
                self.finish(signal, DeliveryState::Failed, status, Some(error));
                self.metrics.failed(&self.config.name);
                return true;
            }
            tracing::debug!(endpoint = %self.config.name, id = %signal.id, attempt, ?wait, %error,
                "webhook delivery failed; retrying");
            let next = now_nanos() + i64::try_from(wait.as_nanos()).unwrap_or(i64::MAX);
            self.deliveries.update(&self.destination, &signal.id, |d| {
                d.last_status = status.map(|s| s.as_u16());
                d.last_error = Some(error);
                d.next_attempt = Some(next);
            });
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        true
    }

    fn finish(
        &self,
        signal: &Signal,
        state: DeliveryState,
        status: Option<StatusCode>,
        error: Option<String>,
    ) {
        let now = now_nanos();
        self.deliveries.update(&self.destination, &signal.id, |d| {
            d.state = state;
            d.last_status = status.map(|s| s.as_u16());
            d.last_error = error;
            d.next_attempt = None;
            d.finished = Some(now);
        });
    }

    async fn attempt(&self, signal: &Signal, body: &[u8], attempt: u32) -> Attempt {
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
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Attempt::Retry(error_chain(&e), None, None),
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Accepted(status);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let error = format!("HTTP {status}");
        match status {
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Attempt::Retry(error, Some(status), retry_after)
            }
            s if s.is_server_error() => Attempt::Retry(error, Some(status), retry_after),
            _ => Attempt::Refused(error, status),
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
