//! The dead-letter topic: messages that cannot be decoded, kept unchanged
//! with headers saying why, where from and when.
//!
//! | header | value |
//! |---|---|
//! | `grayscope.dlq.reason` | why the message was refused (the decoder's words) |
//! | `grayscope.dlq.topic` | the topic it was consumed from |
//! | `grayscope.dlq.partition` | its partition, decimal |
//! | `grayscope.dlq.offset` | its offset, decimal |
//! | `grayscope.dlq.time` | when it was dead-lettered, RFC 3339 UTC |
//! | `grayscope.dlq.signal`, `grayscope.dlq.encoding` | what the topic was configured to carry |
//!
//! The key, the payload, the original headers (after ours) and the
//! timestamp are kept. The source offset is committed only once the
//! dead-letter topic has the message (`acks=all`), so a poison message is
//! never lost, and the messages after it are stored meanwhile.

use std::time::Duration;

use grayscope_core::config::{KafkaConfig, KafkaTopicConfig};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use super::message::KafkaMessage;
use crate::error::{Error, Result};

/// Longest wait between attempts to write a dead letter.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Writes dead letters.
pub(crate) struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// What became of a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// The dead-letter topic has it.
    Yes,
    /// The topic refused it for good (even without its payload); it is
    /// logged and counted, and its offset committed all the same.
    Refused,
    /// Shutdown came first; its offset is not committed.
    Cancelled,
}

impl DeadLetters {
    /// A producer for `config.dead_letter_topic`.
    pub(crate) fn new(config: &KafkaConfig) -> Result<DeadLetters> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("client.id", "grayscope-dead-letters")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .set(
                "message.max.bytes",
                (config.max_message_size.as_usize() + (1 << 20))
                    .min(1_000_000_000)
                    .to_string(),
            );
        for (key, value) in &config.librdkafka_options {
            if !consumer_only(key) {
                client.set(key, value);
            }
        }
        let producer = client.create().map_err(|source| Error::Kafka {
            action: "create",
            client: "dead-letter producer",
            source,
        })?;
        Ok(DeadLetters {
            producer,
            topic: config.dead_letter_topic.clone(),
        })
    }

    /// The dead-letter topic.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes `message` to the dead-letter topic, retrying until the topic
    /// has it, refuses it for good, or `cancel` fires.
    pub(crate) async fn send(
        &self,
        message: &KafkaMessage,
        source: &KafkaTopicConfig,
        reason: &str,
        cancel: &CancellationToken,
    ) -> Delivered {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut backoff = Duration::from_millis(100);
        let mut with_payload = true;
        loop {
            let partition = message.partition.to_string();
            let offset = message.offset.to_string();
            let mut headers = OwnedHeaders::new_with_capacity(7 + message.headers.len());
            for (key, value) in [
                ("grayscope.dlq.reason", reason),
                ("grayscope.dlq.topic", &message.topic),
                ("grayscope.dlq.partition", &partition),
                ("grayscope.dlq.offset", &offset),
                ("grayscope.dlq.time", &time),
                ("grayscope.dlq.signal", source.signal.name()),
                ("grayscope.dlq.encoding", source.encoding.name()),
            ] {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let omitted = message.payload.len().to_string();
            if !with_payload {
                headers = headers.insert(Header {
                    key: "grayscope.dlq.payload_omitted_bytes",
                    value: Some(&omitted),
                });
            }
            for (key, value) in &message.headers {
                headers = headers.insert(Header {
                    key,
                    value: value.as_deref(),
                });
            }
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
            if with_payload {
                record = record.payload(&message.payload[..]);
            }
            if let Some(key) = &message.key {
                record = record.key(&key[..]);
            }
            if let Some(timestamp) = message.timestamp {
                record = record.timestamp(timestamp);
            }
            let sent = tokio::select! {
                sent = self.producer.send(record, Duration::from_secs(30)) => sent,
                () = cancel.cancelled() => return Delivered::Cancelled,
            };
            let error = match sent {
                Ok(_) => return Delivered::Yes,
                Err((error, _)) => error,
            };
            if too_large(&error) && with_payload {
                tracing::warn!(
                    topic = %self.topic, bytes = message.payload.len(),
                    "the dead-letter topic refused a message as too large; sending its headers only"
                );
                with_payload = false;
                continue;
            }
            if too_large(&error) {
                tracing::error!(
                    topic = %self.topic, source_topic = %message.topic,
                    partition = message.partition, offset = message.offset, %error,
                    "the dead-letter topic refused a message; it is dropped"
                );
                return Delivered::Refused;
            }
            tracing::warn!(topic = %self.topic, %error, "cannot write a dead letter; retrying");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = cancel.cancelled() => return Delivered::Cancelled,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Consumer properties librdkafka would warn about on a producer.
fn consumer_only(key: &str) -> bool {
    const PREFIXES: [&str; 9] = [
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "partition.assignment.strategy",
        "group.",
        "fetch.",
        "queued.",
        "isolation.level",
        "check.crcs",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p))
}

fn too_large(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize)
    )
}
