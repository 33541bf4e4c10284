//! What every outbox destination (a webhook, the Kafka topic, Grafana's
//! annotations) shares: a worker that reads the outbox after its cursor, in
//! order, and tries each signal it wants until it is accepted, refused for
//! good or past its deadline, waiting with [`backoff`] between attempts; it
//! records each delivery in [`Deliveries`] and the metrics, and moves its
//! cursor only once a signal is settled.
//!
//! Each destination runs in its own task: one that is unreachable or slow
//! holds back nothing but itself.

use std::future::Future;
use std::time::{Duration, Instant};

use grayscope_core::signal::Signal;
use tokio_util::sync::CancellationToken;

use crate::backoff::backoff;
use crate::deliveries::{Deliveries, DeliveryState};
use crate::error::Result;
use crate::metrics::SinkMetrics;
use crate::now_nanos;
use crate::outbox::{Entry, Outbox};

/// Signals read from the outbox at a time.
const BATCH: usize = 64;

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The destination has it (with the HTTP status, for HTTP ones).
    Accepted(Option<u16>),
    /// Worth retrying; with the wait the destination asked for, if any.
    Retry {
        error: String,
        status: Option<u16>,
        after: Option<Duration>,
    },
    /// Refused for good: not retried.
    Refused { error: String, status: Option<u16> },
}

/// How a destination retries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// The wait before the first retry; it doubles with each retry.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// How long one signal is tried before it is given up.
    pub deadline: Duration,
}

/// A place signals are delivered to.
pub(crate) trait Destination: Send + Sync + 'static {
    /// The name its cursor and deliveries are kept under (`webhook:router`).
    fn name(&self) -> &str;

    /// How it retries.
    fn policy(&self) -> RetryPolicy;

    /// A signal it delivered (or skipped) before this run: lets a
    /// destination that filters on history (Grafana's verdict changes)
    /// rebuild what it knew.
    fn seen(&mut self, _signal: &Signal) {}

    /// Whether it wants this signal; called once per signal, in order.
    fn wanted(&mut self, signal: &Signal) -> bool;

    /// One attempt to deliver `entry`, whose JSON document is `body`.
    fn attempt(
        &self,
        entry: &Entry,
        body: &[u8],
        attempt: u32,
    ) -> impl Future<Output = Attempt> + Send;

    /// Called once a signal is settled (delivered or given up).
    fn settled(&self, _delivered: bool) {}
}

/// Delivers from `outbox` to `destination` until `shutdown`. A signal
/// interrupted by shutdown is delivered again after the restart.
pub(crate) async fn run<D: Destination>(
    mut destination: D,
    outbox: Outbox,
    deliveries: Deliveries,
    metrics: SinkMetrics,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut appended = outbox.subscribe();
    let name = destination.name().to_owned();
    let mut cursor = outbox.cursor(&name)?;
    for entry in outbox.read_after(0, usize::MAX) {
        if entry.index > cursor {
            break;
        }
        destination.seen(&entry.signal);
    }
    let worker = Worker {
        name,
        deliveries,
        metrics,
    };
    loop {
        let entries = outbox.read_after(cursor, BATCH);
        if entries.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = appended.changed() => if changed.is_err() { return Ok(()) },
            }
            continue;
        }
        for entry in entries {
            if destination.wanted(&entry.signal)
                && !worker.deliver(&destination, &entry, &shutdown).await
            {
                return Ok(());
            }
            outbox.ack(&worker.name, entry.index)?;
            cursor = entry.index;
        }
    }
}

struct Worker {
    name: String,
    deliveries: Deliveries,
    metrics: SinkMetrics,
}

impl Worker {
    /// Delivers one signal, retrying; false if shutdown interrupted it.
    async fn deliver<D: Destination>(
        &self,
        destination: &D,
        entry: &Entry,
        shutdown: &CancellationToken,
    ) -> bool {
        let signal = &entry.signal;
        let body = match serde_json::to_vec(&**signal) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(id = %signal.id, "cannot serialise a signal: {e}");
                return true;
            }
        };
        let policy = destination.policy();
        let started = Instant::now();
        self.deliveries.start(&self.name, signal, now_nanos());
        for attempt in 1u32.. {
            self.deliveries.update(&self.name, &signal.id, |d| {
                d.attempts = attempt;
                d.next_attempt = None;
            });
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return false,
                outcome = destination.attempt(entry, &body, attempt) => outcome,
            };
            self.metrics.attempt_to(&self.name);
            let (error, status, asked) = match outcome {
                Attempt::Accepted(status) => {
                    self.finish(signal, DeliveryState::Delivered, status, None);
                    self.metrics.delivered_to(&self.name, signal);
                    destination.settled(true);
                    return true;
                }
                Attempt::Refused { error, status } => {
                    tracing::warn!(destination = %self.name, id = %signal.id, %error,
                        "the destination refused the signal; not retrying");
                    self.finish(signal, DeliveryState::Failed, status, Some(error));
                    self.metrics.failed_to(&self.name);
                    destination.settled(false);
                    return true;
                }
                Attempt::Retry {
                    error,
                    status,
                    after,
                } => (error, status, after),
            };
            let wait = asked.map_or_else(
                || backoff(policy.initial, policy.max, attempt, &mut rand::rng()),
                |asked| asked.min(policy.max),
            );
            if started.elapsed() + wait > policy.deadline {
                tracing::warn!(destination = %self.name, id = %signal.id, attempts = attempt,
                    %error, "giving up on the signal: its delivery deadline passed");
                self.finish(signal, DeliveryState::Failed, status, Some(error));
                self.metrics.failed_to(&self.name);
                destination.settled(false);
                return true;
            }
            tracing::debug!(destination = %self.name, id = %signal.id, attempt, ?wait, %error,
                "delivery failed; retrying");
            let next = now_nanos() + i64::try_from(wait.as_nanos()).unwrap_or(i64::MAX);
            self.deliveries.update(&self.name, &signal.id, |d| {
                d.last_status = status;
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
        status: Option<u16>,
        error: Option<String>,
    ) {
        let now = now_nanos();
        self.deliveries.update(&self.name, &signal.id, |d| {
            d.state = state;
            d.last_status = status;
            d.last_error = error;
            d.next_attempt = None;
            d.finished = Some(now);
        });
    }
}

/// An error and its causes, on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
