//! `[signals]`: where the signals go — webhooks (http or https), a Kafka
//! topic, the gRPC `Watch` stream, Grafana annotations — and the outbox
//! they leave from.
//!
//! ```toml
//! [signals]
//! retain = 10000
//! grpc_addr = "127.0.0.1:7634"
//!
//! [[signals.webhooks]]
//! name = "router"
//! url = "https://router.internal:9000/grayscope"
//! secret = "change me"
//! verdicts = ["rollback", "promote"]
//! ca_file = "/etc/grayscope/router-ca.pem"
//!
//! [signals.kafka]
//! brokers = "127.0.0.1:9092"
//! topic = "grayscope.signals"
//!
//! [signals.grafana]
//! url = "http://127.0.0.1:3000"
//! token = "glsa_…"
//! ```
//!
//! Every signal is appended to the outbox (`<data_dir>/signals/`) and synced
//! before the rollout state that produced it is saved; each destination
//! (every webhook, Kafka, Grafana) delivers from there in order, in its own
//! task, and remembers how far it got, so a signal survives a restart until
//! it is delivered, and one destination's trouble holds back no other. The
//! `Watch` stream replays the outbox from a router's last sequences, then
//! follows it. docs/signals.md has the details.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigDuration, invalid};
use crate::error::Result;
use crate::verdict::Verdict;

/// The signals' outbox and destinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalsConfig {
    /// Signals kept in the outbox after every destination delivered them, so
    /// that a gRPC watcher can resume from an older sequence. Default 10000.
    pub retain: usize,
    /// `[[signals.webhooks]]`: HTTP endpoints that receive each signal as a
    /// signed JSON `POST`. Default: none.
    pub webhooks: Vec<WebhookConfig>,
    /// `[signals.kafka]`: a topic that receives each signal, keyed by
    /// rollout, from an idempotent producer (`acks=all`). Absent = no Kafka.
    pub kafka: Option<KafkaSinkConfig>,
    /// Address of the gRPC `Watch` server
    /// (`proto/grayscope/signals/v1/signals.proto`): routers subscribe and
    /// resume from their last sequence per canary. Printed as
    /// `signals_grpc=ADDR` on the `listening` line. Absent = not served.
    pub grpc_addr: Option<SocketAddr>,
    /// `[signals.grafana]`: Grafana's HTTP API, to annotate every verdict
    /// change (`POST /api/annotations`). Absent = no annotations.
    pub grafana: Option<GrafanaConfig>,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        SignalsConfig {
            retain: 10_000,
            webhooks: Vec::new(),
            kafka: None,
            grpc_addr: None,
            grafana: None,
        }
    }
}

/// One webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique name: the delivery state in `system.deliveries` and the
    /// outbox cursor are kept under it.
    pub name: String,
    /// The URL signals are `POST`ed to: `http://`, or `https://` (TLS with
    /// rustls, checked against the system's CAs and `ca_file`).
    pub url: String,
    /// The shared secret of the HMAC-SHA256 signature
    /// (`X-Grayscope-Signature`, see docs/signals.md). Required.
    pub secret: String,
    /// Only signals of these rollouts. Default: every rollout.
    #[serde(default)]
    pub rollouts: Vec<String>,
    /// Only signals with these verdicts (`promote`, `hold`, `rollback`).
    /// Default: every verdict.
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    /// How long one attempt may take. Default `5s`.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
    /// Back-off before the first retry; it doubles with each retry, with
    /// jitter. Default `250ms`.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: ConfigDuration,
    /// Longest back-off between two attempts. Default `30s`.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: ConfigDuration,
    /// How long a signal is retried before it is given up (state `failed`)
    /// and the next one is sent. Default `1h`.
    #[serde(default = "default_deadline")]
    pub deadline: ConfigDuration,
    /// A PEM file of CA certificates trusted for this `https://` endpoint,
    /// besides the system's: for a private CA. Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}
fn default_initial_backoff() -> ConfigDuration {
    ConfigDuration::from_millis(250)
}
fn default_max_backoff() -> ConfigDuration {
    ConfigDuration::from_secs(30)
}
fn default_deadline() -> ConfigDuration {
    ConfigDuration::from_secs(3600)
}

/// The Kafka topic signals are produced to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers, comma-separated.
    pub brokers: String,
    /// The topic. Default `grayscope.signals`.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// How long one signal is retried (by librdkafka, then with back-off)
    /// before it is given up (state `failed`) and the next one is sent.
    /// Default `5m`.
    #[serde(default = "default_kafka_timeout")]
    pub delivery_timeout: ConfigDuration,
    /// Extra librdkafka producer properties (`"security.protocol" =
    /// "ssl"`, `"sasl.mechanisms"`, …). `enable.idempotence` and `acks`
    /// are always `true` and `all`. Default: none.
    #[serde(default)]
    pub librdkafka_options: BTreeMap<String, String>,
}

fn default_topic() -> String {
    "grayscope.signals".to_owned()
}
fn default_kafka_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(300)
}

/// Grafana's HTTP API, annotated on every change of a canary's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrafanaConfig {
    /// Grafana's base URL (`http://127.0.0.1:3000`, or with a sub-path);
    /// annotations go to `{url}/api/annotations`.
    pub url: String,
    /// A service-account token sent as `Authorization: Bearer`. Default: none.
    #[serde(default)]
    pub token: Option<String>,
    /// Tags added to every annotation, besides the rollout, cohort and
    /// verdict. Default `["grayscope"]`.
    #[serde(default = "default_tags")]
    pub tags: Vec<String>,
    /// How long one request may take. Default `5s`.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
    /// How long one annotation is retried before it is given up. Default
    /// `1h`.
    #[serde(default = "default_deadline")]
    pub deadline: ConfigDuration,
    /// A PEM file of CA certificates trusted for an `https://` Grafana,
    /// besides the system's. Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_tags() -> Vec<String> {
    vec!["grayscope".to_owned()]
}

impl SignalsConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        for (i, hook) in self.webhooks.iter().enumerate() {
            let field = |f: &str| format!("signals.webhooks[{i}].{f}");
            if hook.name.is_empty() || self.webhooks[..i].iter().any(|h| h.name == hook.name) {
                return Err(invalid(&field("name"), "must be non-empty and unique"));
            }
            if !hook.url.starts_with("http://") && !hook.url.starts_with("https://") {
                return Err(invalid(&field("url"), "must be an http:// or https:// URL"));
            }
            if hook.secret.is_empty() {
                return Err(invalid(&field("secret"), "must not be empty"));
            }
            if hook.initial_backoff.get().is_zero()
                || hook.max_backoff.get() < hook.initial_backoff.get()
            {
                return Err(invalid(
                    &field("max_backoff"),
                    "back-offs must be positive and max_backoff >= initial_backoff",
                ));
            }
            if hook.timeout.get().is_zero() {
                return Err(invalid(&field("timeout"), "must not be zero"));
            }
        }
        if let Some(kafka) = &self.kafka
            && (kafka.brokers.is_empty() || kafka.topic.is_empty())
        {
            return Err(invalid(
                "signals.kafka",
                "brokers and topic must not be empty",
            ));
        }
        if let Some(kafka) = &self.kafka
            && kafka.delivery_timeout.get().is_zero()
        {
            return Err(invalid(
                "signals.kafka.delivery_timeout",
                "must not be zero",
            ));
        }
        if let Some(kafka) = &self.kafka
            && let Some(key) = kafka.librdkafka_options.keys().find(|k| {
                matches!(
                    k.as_str(),
                    "bootstrap.servers" | "enable.idempotence" | "acks" | "request.required.acks"
                )
            })
        {
            return Err(invalid(
                "signals.kafka.librdkafka_options",
                format!(
                    "{key:?} is set by grayscope (brokers; idempotence and acks=all are always on)"
                ),
            ));
        }
        if let Some(grafana) = &self.grafana {
            if !grafana.url.starts_with("http://") && !grafana.url.starts_with("https://") {
                return Err(invalid("signals.grafana.url", "must be an http(s):// URL"));
            }
            if grafana.timeout.get().is_zero() {
                return Err(invalid("signals.grafana.timeout", "must not be zero"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn error(text: &str) -> String {
        Config::parse(text, None).unwrap_err().to_string()
    }

    #[test]
    fn kafka_the_watch_stream_and_grafana_are_accepted_with_their_defaults() {
        let config = Config::parse(
            "[signals]\ngrpc_addr = \"127.0.0.1:7634\"\n\
             [signals.kafka]\nbrokers = \"k:9092\"\n\
             [signals.grafana]\nurl = \"https://grafana.internal/grafana\"\ntoken = \"t\"\n",
            None,
        )
        .unwrap();
        let signals = config.signals;
        assert_eq!(signals.grpc_addr.unwrap().port(), 7634);
        let kafka = signals.kafka.unwrap();
        assert_eq!(kafka.topic, "grayscope.signals");
        assert_eq!(kafka.delivery_timeout.get().as_secs(), 300);
        let grafana = signals.grafana.unwrap();
        assert_eq!(grafana.tags, ["grayscope"]);
        assert_eq!(grafana.timeout.get().as_secs(), 5);
    }

    #[test]
    fn what_grayscope_decides_for_the_producer_or_a_non_http_url_is_refused_by_name() {
        let acks = error(
            "[signals.kafka]\nbrokers = \"k:9092\"\n\
             [signals.kafka.librdkafka_options]\n\"acks\" = \"1\"\n",
        );
        assert!(acks.contains("signals.kafka.librdkafka_options"), "{acks}");
        assert!(acks.contains("\"acks\""), "{acks}");
        let empty = error("[signals.kafka]\nbrokers = \"\"\n");
        assert!(empty.contains("`signals.kafka`"), "{empty}");
        let grafana = error("[signals.grafana]\nurl = \"grafana:3000\"\n");
        assert!(grafana.contains("`signals.grafana.url`"), "{grafana}");
        let hook = error("[[signals.webhooks]]\nname = \"r\"\nurl = \"ftp://x\"\nsecret = \"s\"\n");
        assert!(hook.contains("`signals.webhooks[0].url`"), "{hook}");
    }
}
