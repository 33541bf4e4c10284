//! The Kafka destination: every signal of the outbox, in order, produced to
//! `[signals.kafka] topic`, keyed by rollout (so one rollout's signals stay
//! in one partition, in order), with the signal document as the value — the
//! same bytes as a webhook's body — and headers a consumer can route on
//! without parsing it:
//!
//! | header | value |
//! |---|---|
//! | `grayscope-signal-id` | the signal's `id` |
//! | `grayscope-sequence` | its `sequence`, in decimal |
//! | `grayscope-verdict` | `promote`, `hold` or `rollback` |
//! | `grayscope-cohort` | the canary cohort |
//! | `content-type` | `application/json` |
//!
//! The producer is idempotent (`enable.idempotence=true`, `acks=all`) and
//! one signal is in flight at a time: the cursor moves only after the
//! broker acknowledged it. Delivery is at least once: a crash between the
//! acknowledgement and the cursor's write produces that signal again, with
//! the same id.

use std::time::Duration;

use grayscope_core::config::KafkaSinkConfig;
use grayscope_core::signal::Signal;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::destination::{Attempt, Destination, RetryPolicy};
use crate::error::{Error, Result};
use crate::outbox::Entry;

/// The name of its cursor and deliveries.
pub const DESTINATION: &str = "kafka";

/// The longest librdkafka itself retries one attempt; the destination's
/// back-off retries after that, up to `delivery_timeout`.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The Kafka topic signals are produced to.
pub struct KafkaSink {
    config: KafkaSinkConfig,
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("brokers", &self.config.brokers)
            .field("topic", &self.config.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// A producer for `config`. It does not connect yet: an unreachable
    /// broker shows as retried deliveries, not as a failed start.
    pub fn new(config: KafkaSinkConfig) -> Result<KafkaSink> {
        let attempt = ATTEMPT_TIMEOUT.min(config.delivery_timeout.get());
        let mut client = ClientConfig::new();
        for (key, value) in &config.librdkafka_options {
            client.set(key, value);
        }
        let producer = client
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", attempt.as_millis().max(1).to_string())
            .set("client.id", "grayscope-signals")
            .create()
            .map_err(|e| Error::Setup {
                what: format!("kafka (topic {})", config.topic),
                reason: e.to_string(),
            })?;
        Ok(KafkaSink { config, producer })
    }
}

/// The message headers of a signal.
fn headers(signal: &Signal) -> OwnedHeaders {
    let sequence = signal.sequence.to_string();
    let verdict = signal.verdict.to_string();
    OwnedHeaders::new_with_capacity(5)
        .insert(Header {
            key: "grayscope-signal-id",
            value: Some(signal.id.as_str()),
        })
        .insert(Header {
            key: "grayscope-sequence",
            value: Some(sequence.as_str()),
        })
        .insert(Header {
            key: "grayscope-verdict",
            value: Some(verdict.as_str()),
        })
        .insert(Header {
            key: "grayscope-cohort",
            value: Some(signal.cohort.as_str()),
        })
        .insert(Header {
            key: "content-type",
            value: Some("application/json"),
        })
}

/// Errors no retry can cure.
fn permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::InvalidTopic
        )
    )
}

impl Destination for KafkaSink {
    fn name(&self) -> &str {
        DESTINATION
    }

    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            deadline: self.config.delivery_timeout.get(),
        }
    }

    fn wanted(&mut self, _signal: &Signal) -> bool {
        true
    }

    async fn attempt(&self, entry: &Entry, body: &[u8], _attempt: u32) -> Attempt {
        let signal = &entry.signal;
        let record = FutureRecord::to(&self.config.topic)
            .key(signal.rollout.as_bytes())
            .payload(body)
            .headers(headers(signal));
        match self
            .producer
            .send(record, Timeout::After(ATTEMPT_TIMEOUT))
            .await
        {
            Ok(_) => Attempt::Accepted(None),
            Err((error, _)) if permanent(&error) => Attempt::Refused {
                error: error.to_string(),
                status: None,
            },
            Err((error, _)) => Attempt::Retry {
                error: error.to_string(),
                status: None,
                after: None,
            },
        }
    }
}
