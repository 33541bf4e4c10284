//! `[kafka]`: consuming the topics the OpenTelemetry Collector's Kafka
//! exporter writes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ByteSize, ConfigDuration, invalid};
use crate::error::Result;

/// The Kafka source. Absent from the file: no Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port` separated by commas. Default
    /// `127.0.0.1:9092`.
    pub brokers: String,
    /// Consumer group. Instances with the same group share the topics'
    /// partitions; each record is stored by one of them. Default
    /// `grayscope`.
    pub group_id: String,
    /// `[[kafka.topics]]`: the topics consumed, each with its signal and
    /// encoding. Default: the three the Collector's Kafka exporter writes
    /// by default, `otlp_spans` (traces), `otlp_metrics` (metrics) and
    /// `otlp_logs` (logs), all `otlp_proto`. Listing any topic replaces the
    /// whole default list.
    pub topics: Vec<KafkaTopicConfig>,
    /// Topic that receives messages that cannot be decoded, unchanged, with
    /// headers saying why, where from and when. Default
    /// `grayscope_dead_letters`.
    pub dead_letter_topic: String,
    /// Where a consumer group without committed offsets starts: `latest`
    /// (only messages produced from now on, as Kafka's and the Collector's
    /// Kafka receiver's default) or `earliest` (all the topic holds).
    /// Default `latest`.
    pub initial_offset: InitialOffset,
    /// How often consumed offsets are committed, each only once every
    /// record of its message, and of every message before it in its
    /// partition, is durable in the store. Default `1s`.
    pub commit_interval: ConfigDuration,
    /// Largest message accepted; larger ones go to the dead-letter topic.
    /// Default `16MiB`.
    pub max_message_size: ByteSize,
    /// Message bytes being decoded and stored at once. When they reach
    /// this, or the store applies back-pressure, every assigned partition
    /// is paused until they drain. Default `32MiB`.
    pub max_in_flight_size: ByteSize,
    /// Spans remembered by (trace id, span id) so that a span delivered
    /// again (after a crash or a rebalance) is counted and not stored
    /// twice; 0 turns this off. About 70 bytes each (70 MB at the
    /// default). Default 1000000.
    pub remembered_spans: usize,
    /// `[kafka.librdkafka_options]`: further librdkafka client properties,
    /// for consumer and dead-letter producer alike (consumer-only ones such
    /// as `session.timeout.ms` go to the consumer alone), e.g.
    /// `"security.protocol" = "SASL_SSL"`, `"sasl.mechanism" =
    /// "SCRAM-SHA-512"`, `"session.timeout.ms" = "45000"`. Properties that
    /// the fields above set, and offset committing, are not allowed here.
    /// Default: none.
    pub librdkafka_options: BTreeMap<String, String>,
}

/// Properties grayscope sets itself; a user setting them would break the
/// at-least-once guarantee or duplicate a field above.
const RESERVED_OPTIONS: [(&str, &str); 7] = [
    ("bootstrap.servers", "use `kafka.brokers`"),
    ("group.id", "use `kafka.group_id`"),
    ("auto.offset.reset", "use `kafka.initial_offset`"),
    (
        "enable.auto.commit",
        "grayscope commits offsets itself, once records are durable",
    ),
    (
        "enable.auto.offset.store",
        "grayscope commits offsets itself, once records are durable",
    ),
    ("auto.commit.interval.ms", "use `kafka.commit_interval`"),
    ("enable.partition.eof", "grayscope sets it"),
];

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".to_owned(),
            group_id: "grayscope".to_owned(),
            topics: KafkaTopicConfig::collector_defaults(),
            dead_letter_topic: "grayscope_dead_letters".to_owned(),
            initial_offset: InitialOffset::Latest,
            commit_interval: ConfigDuration::from_secs(1),
            max_message_size: ByteSize(16 * 1024 * 1024),
            max_in_flight_size: ByteSize(32 * 1024 * 1024),
            remembered_spans: 1_000_000,
            librdkafka_options: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.brokers.trim().is_empty() {
            return Err(invalid("kafka.brokers", "must name at least one broker"));
        }
        if self.group_id.trim().is_empty() {
            return Err(invalid("kafka.group_id", "must not be empty"));
        }
        if self.topics.is_empty() {
            return Err(invalid("kafka.topics", "must list at least one topic"));
        }
        let mut names = BTreeSet::new();
        for topic in &self.topics {
            if topic.topic.trim().is_empty() {
                return Err(invalid("kafka.topics.topic", "must not be empty"));
            }
            if !names.insert(topic.topic.as_str()) {
                return Err(invalid(
                    "kafka.topics.topic",
                    format!("{:?} is listed twice", topic.topic),
                ));
            }
            if topic.encoding == KafkaEncoding::JsonLines && topic.signal != KafkaSignal::Logs {
                return Err(invalid(
                    "kafka.topics.encoding",
                    format!(
                        "`json_lines` carries log records only, but topic {:?} is `{}`",
                        topic.topic,
                        topic.signal.name()
                    ),
                ));
            }
        }
        if self.dead_letter_topic.trim().is_empty() {
            return Err(invalid("kafka.dead_letter_topic", "must not be empty"));
        }
        if names.contains(self.dead_letter_topic.as_str()) {
            return Err(invalid(
                "kafka.dead_letter_topic",
                "must not be one of the consumed topics",
            ));
        }
        if self.commit_interval.get().is_zero() {
            return Err(invalid("kafka.commit_interval", "must not be zero"));
        }
        if self.max_message_size.0 < 1024 {
            return Err(invalid("kafka.max_message_size", "must be at least 1 KiB"));
        }
        if self.max_in_flight_size.0 < 1024 {
            return Err(invalid(
                "kafka.max_in_flight_size",
                "must be at least 1 KiB",
            ));
        }
        for key in self.librdkafka_options.keys() {
            if let Some((_, why)) = RESERVED_OPTIONS.iter().find(|(k, _)| k == key) {
                return Err(invalid(
                    &format!("kafka.librdkafka_options.{key}"),
                    format!("is not allowed: {why}"),
                ));
            }
        }
        Ok(())
    }
}

/// One consumed topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTopicConfig {
    /// The topic's name. Required.
    pub topic: String,
    /// What its messages carry: `traces`, `metrics` or `logs`. Required.
    pub signal: KafkaSignal,
    /// How its messages are encoded. Default `otlp_proto`.
    #[serde(default)]
    pub encoding: KafkaEncoding,
}

impl KafkaTopicConfig {
    /// The Collector Kafka exporter's default topics, all `otlp_proto`.
    pub fn collector_defaults() -> Vec<KafkaTopicConfig> {
        [
            ("otlp_spans", KafkaSignal::Traces),
            ("otlp_metrics", KafkaSignal::Metrics),
            ("otlp_logs", KafkaSignal::Logs),
        ]
        .into_iter()
        .map(|(topic, signal)| KafkaTopicConfig {
            topic: topic.to_owned(),
            signal,
            encoding: KafkaEncoding::OtlpProto,
        })
        .collect()
    }
}

/// The signal a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaSignal {
    /// Spans (`ExportTraceServiceRequest`), stored in `spans`.
    Traces,
    /// Metric data points, stored in `metrics`.
    Metrics,
    /// Log records, stored in `logs`.
    Logs,
}

impl KafkaSignal {
    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            KafkaSignal::Traces => "traces",
            KafkaSignal::Metrics => "metrics",
            KafkaSignal::Logs => "logs",
        }
    }
}

/// How a topic's messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaEncoding {
    /// An OTLP export request in binary protobuf, as the Collector's Kafka
    /// exporter writes by default.
    #[default]
    OtlpProto,
    /// An OTLP export request in OTLP JSON (the exporter's `otlp_json`).
    OtlpJson,
    /// Log records as JSON objects, one per line (usually one per
    /// message), as services that log to Kafka directly write them; see
    /// `docs/kafka.md` for the fields read.
    JsonLines,
}

impl KafkaEncoding {
    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            KafkaEncoding::OtlpProto => "otlp_proto",
            KafkaEncoding::OtlpJson => "otlp_json",
            KafkaEncoding::JsonLines => "json_lines",
        }
    }
}

/// Where a consumer group without committed offsets starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialOffset {
    /// At the end: only messages produced from now on.
    #[default]
    Latest,
    /// At the beginning: everything the topic still holds.
    Earliest,
}

impl InitialOffset {
    /// librdkafka's `auto.offset.reset` value.
    pub fn name(self) -> &'static str {
        match self {
            InitialOffset::Latest => "latest",
            InitialOffset::Earliest => "earliest",
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn a_bare_kafka_table_consumes_the_collector_topics() {
        let config = Config::parse("[kafka]\n", None).unwrap();
        let kafka = config.kafka.unwrap();
        let topics: Vec<_> = kafka
            .topics
            .iter()
            .map(|t| (t.topic.as_str(), t.signal.name(), t.encoding.name()))
            .collect();
        assert_eq!(
            topics,
            [
                ("otlp_spans", "traces", "otlp_proto"),
                ("otlp_metrics", "metrics", "otlp_proto"),
                ("otlp_logs", "logs", "otlp_proto"),
            ]
        );
        assert_eq!(kafka.brokers, "127.0.0.1:9092");
        assert_eq!(kafka.group_id, "grayscope");
    }

    #[test]
    fn listed_topics_replace_the_defaults() {
        let text = "[kafka]\nbrokers = \"k1:9092,k2:9092\"\n\
                    [[kafka.topics]]\ntopic = \"app_logs\"\nsignal = \"logs\"\nencoding = \"json_lines\"\n\
                    [[kafka.topics]]\ntopic = \"spans_json\"\nsignal = \"traces\"\nencoding = \"otlp_json\"\n";
        let kafka = Config::parse(text, None).unwrap().kafka.unwrap();
        assert_eq!(kafka.topics.len(), 2);
        assert_eq!(kafka.topics[0].encoding.name(), "json_lines");
        assert_eq!(kafka.topics[1].encoding.name(), "otlp_json");
    }

    #[test]
    fn bad_kafka_settings_name_the_field() {
        let cases = [
            (
                "[kafka]\n[[kafka.topics]]\ntopic = \"t\"\nsignal = \"traces\"\nencoding = \"json_lines\"\n",
                "`kafka.topics.encoding`",
            ),
            (
                "[kafka]\ndead_letter_topic = \"otlp_spans\"\n",
                "`kafka.dead_letter_topic`",
            ),
            (
                "[kafka.librdkafka_options]\n\"enable.auto.commit\" = \"true\"\n",
                "`kafka.librdkafka_options.enable.auto.commit`",
            ),
            ("[kafka]\nbrokers = \" \"\n", "`kafka.brokers`"),
        ];
        for (text, field) in cases {
            let err = Config::parse(text, None).unwrap_err().to_string();
            assert!(err.contains(field), "{text:?}: {err}");
        }
        let err = Config::parse("[kafka]\nbrokerz = \"x\"\n", None).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("line 2"), "{source}");
    }
}
