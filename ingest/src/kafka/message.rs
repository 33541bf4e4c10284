//! A consumed message, copied out of librdkafka's buffers.

use std::sync::Arc;

use bytes::Bytes;
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};

/// One consumed message with what storing it (or dead-lettering it) needs.
#[derive(Debug, Clone)]
pub(crate) struct KafkaMessage {
    /// Index of its topic among the configured topics.
    pub(crate) route: usize,
    /// Its topic.
    pub(crate) topic: Arc<str>,
    /// Its partition.
    pub(crate) partition: i32,
    /// Its offset.
    pub(crate) offset: i64,
    /// The assignment of its partition it was consumed under.
    pub(crate) epoch: u64,
    /// The value; empty for a null value.
    pub(crate) payload: Bytes,
    /// The key, if any.
    pub(crate) key: Option<Bytes>,
    /// The headers, in order.
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    /// Milliseconds since the epoch, when the message has a timestamp.
    pub(crate) timestamp: Option<i64>,
}

impl KafkaMessage {
    /// Copies `message`, consumed from topic number `route` under
    /// assignment `epoch`.
    pub(crate) fn copy(
        message: &BorrowedMessage<'_>,
        route: usize,
        topic: Arc<str>,
        epoch: u64,
    ) -> KafkaMessage {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        KafkaMessage {
            route,
            topic,
            partition: message.partition(),
            offset: message.offset(),
            epoch,
            payload: message
                .payload()
                .map(Bytes::copy_from_slice)
                .unwrap_or_default(),
            key: message.key().map(Bytes::copy_from_slice),
            headers,
            timestamp: message.timestamp().to_millis(),
        }
    }
}
