//! The configuration file: one TOML document, one table per component.
//!
//! Every field has a default, so an empty file (or none at all) is a working
//! configuration; every struct rejects unknown fields, and the error names the
//! line and column. The doc comments of these structs are the configuration
//! reference; `config.example.toml` at the repository root shows every field
//! with its default and is checked against [`Config::default`] by a test.

mod api;
mod byte_size;
mod cohorts;
mod duration;
mod kafka;
mod otlp;
mod patterns;
mod rollouts;
mod security;
mod signals;
mod sql;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use api::ApiConfig;
pub use byte_size::ByteSize;
pub use cohorts::{CohortConfig, TraceJoinConfig};
pub use duration::ConfigDuration;
pub use kafka::{InitialOffset, KafkaConfig, KafkaEncoding, KafkaSignal, KafkaTopicConfig};
pub use otlp::OtlpConfig;
pub use patterns::{LogRuleConfig, PatternsConfig};
pub use rollouts::{
    ChecksConfig, ErrorRateCheck, KernelCheck, LatencyCheck, LimitsConfig, NoDataPolicy, RateCheck,
    RequestRateCheck, RolloutConfig, StageConfig, TemplateCheck, default_stages,
};
pub use security::{AuthConfig, MIN_TOKEN_LEN, TlsConfig, TokenConfig};
pub use signals::{GrafanaConfig, KafkaSinkConfig, SignalsConfig, WebhookConfig};
pub use sql::SqlConfig;
pub use store::{StoreConfig, SyncMode, TableStoreConfig, WalConfig};

use crate::error::{Error, Result};
use crate::gray_flag::GrayFlag;

/// The whole configuration of a grayscope server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory where grayscope keeps its data. Default `./grayscope-data`.
    pub data_dir: PathBuf,
    /// OTLP receivers (gRPC and HTTP).
    pub otlp: OtlpConfig,
    /// The HTTP API: SQL over HTTP, and later rollouts and `/metrics`.
    pub api: ApiConfig,
    /// `[sql]`: the PostgreSQL wire and Flight SQL listeners, and the
    /// limits every query runs under.
    pub sql: SqlConfig,
    /// `[auth]`: bearer tokens and their roles, for every listener.
    pub auth: AuthConfig,
    /// `[tls]`: the certificate every listener presents. Absent (the
    /// default): plain TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// The durable store: write-ahead log, memtables, Parquet parts.
    pub store: StoreConfig,
    /// `[[cohorts]]`: the cohort routing rules, in order; the first rule
    /// that matches a record names its cohort (after the trace id's gray
    /// flag, before `baseline`). Default: none.
    pub cohorts: Vec<CohortConfig>,
    /// `[gray_flags]`: cohorts named by trace-id flags other than the
    /// built-in `0x0001` staging and `0x0002` canary, e.g.
    /// `"0x0003" = "gray-b"`. The built-in values cannot be remapped.
    /// Default: none.
    pub gray_flags: BTreeMap<GrayFlag, String>,
    /// `[trace_join]`: how log records and exemplars take their trace's
    /// cohort.
    pub trace_join: TraceJoinConfig,
    /// `[patterns]`: the log template miner that gives each log record its
    /// `template_id` and `template`.
    pub patterns: PatternsConfig,
    /// `[[log_rules]]`: named regular expressions, in order; each log
    /// record's `rules` column lists the names of those its body matches.
    /// Default: none.
    pub log_rules: Vec<LogRuleConfig>,
    /// `[[rollouts]]`: the rollouts the judge verifies (more can be added
    /// through the HTTP API). Default: none.
    pub rollouts: Vec<RolloutConfig>,
    /// `[signals]`: the outbox and the destinations of signals.
    pub signals: SignalsConfig,
    /// `[kafka]`: the Kafka source. Absent (the default): no Kafka.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./grayscope-data"),
            otlp: OtlpConfig::default(),
            api: ApiConfig::default(),
            sql: SqlConfig::default(),
            auth: AuthConfig::default(),
            tls: None,
            store: StoreConfig::default(),
            cohorts: Vec::new(),
            gray_flags: BTreeMap::new(),
            trace_join: TraceJoinConfig::default(),
            patterns: PatternsConfig::default(),
            log_rules: Vec::new(),
            rollouts: Vec::new(),
            signals: SignalsConfig::default(),
            kafka: None,
        }
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, Some(path))
    }

    /// Parses and validates configuration text; `path` only labels errors.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|source| Error::ParseConfig {
            path: path.map(Path::to_owned),
            source: Box::new(source),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types alone cannot.
    fn validate(&self) -> Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        self.otlp.validate()?;
        self.api.validate()?;
        self.sql.validate()?;
        self.auth.validate(&self.listeners())?;
        self.store.validate()?;
        cohorts::validate(&self.cohorts, &self.gray_flags)?;
        self.trace_join.validate()?;
        self.patterns.validate()?;
        patterns::validate_rules(&self.log_rules)?;
        for (i, rollout) in self.rollouts.iter().enumerate() {
            rollout.validate(&format!("rollouts[{i}]"))?;
            if self.rollouts[..i].iter().any(|r| r.name == rollout.name) {
                return Err(invalid(
                    &format!("rollouts[{i}].name"),
                    format!("{:?} is used by another rollout", rollout.name),
                ));
            }
        }
        self.signals.validate()?;
        if let Some(kafka) = &self.kafka {
            kafka.validate()?;
        }
        Ok(())
    }
}

impl Config {
    /// Every address the server binds, named by its field.
    pub fn listeners(&self) -> Vec<(&'static str, std::net::SocketAddr)> {
        let mut listeners = vec![
            ("otlp.grpc_addr", self.otlp.grpc_addr),
            ("otlp.http_addr", self.otlp.http_addr),
            ("api.addr", self.api.addr),
            ("sql.postgres_addr", self.sql.postgres_addr),
            ("sql.flight_addr", self.sql.flight_addr),
        ];
        if let Some(addr) = self.signals.grpc_addr {
            listeners.push(("signals.grpc_addr", addr));
        }
        listeners
    }
}

/// An [`Error::InvalidConfig`] for `field`.
pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_configuration() {
        let config = Config::parse("", None).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.otlp.grpc_addr.to_string(), "127.0.0.1:4317");
        assert_eq!(config.otlp.http_addr.to_string(), "127.0.0.1:4318");
        assert_eq!(config.api.addr.to_string(), "127.0.0.1:7600");
        assert_eq!(config.data_dir, PathBuf::from("./grayscope-data"));
    }

    #[test]
    fn the_example_file_shows_exactly_the_defaults() {
        let example = include_str!("../../config.example.toml");
        assert_eq!(Config::parse(example, None).unwrap(), Config::default());
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_line() {
        let text = "data_dir = \"/tmp/x\"\n[otlp]\ngrpc_adr = \"127.0.0.1:1\"\n";
        let err = Config::parse(text, Some(Path::new("g.toml"))).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("line 3"), "{source}");
        assert!(source.contains("unknown field `grpc_adr`"), "{source}");
        assert!(err.to_string().contains("g.toml"));
    }

    #[test]
    fn unknown_tables_are_rejected() {
        let err = Config::parse("[otpl]\n", None).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("unknown field `otpl`"), "{source}");
    }

    #[test]
    fn bad_addresses_are_rejected_with_their_line() {
        let err = Config::parse("[api]\naddr = \"localhost\"\n", None).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("line 2"), "{source}");
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let err = Config::parse("[otlp]\nmax_request_size = 0\n", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `otlp.max_request_size` must be at least 1 KiB"
        );
    }

    #[test]
    fn an_open_listener_off_loopback_is_refused_unless_insecure() {
        let text = "[api]\naddr = \"0.0.0.0:7600\"\n";
        let err = Config::parse(text, None).unwrap_err().to_string();
        assert!(err.contains("api.addr"), "{err}");
        assert!(err.contains("insecure = true"), "{err}");
        Config::parse(&format!("{text}[auth]\ninsecure = true\n"), None).unwrap();
        let with_token = format!(
            "{text}[[auth.tokens]]\nname = \"ci\"\ntoken = \"0123456789abcdef\"\nroles = [\"query\"]\n"
        );
        Config::parse(&with_token, None).unwrap();
    }

    #[test]
    fn weak_or_ambiguous_tokens_are_refused() {
        let token = |name: &str, token: &str, roles: &str| {
            format!("[[auth.tokens]]\nname = \"{name}\"\ntoken = \"{token}\"\nroles = {roles}\n")
        };
        let long = "0123456789abcdef";
        for (text, field) in [
            (token("a", "short", "[\"query\"]"), "auth.tokens[0].token"),
            (token("a", long, "[]"), "auth.tokens[0].roles"),
            (token("", long, "[\"query\"]"), "auth.tokens[0].name"),
            (
                token("a", long, "[\"query\"]") + &token("a", "another-long-token", "[\"query\"]"),
                "auth.tokens[1].name",
            ),
            (
                token("a", long, "[\"query\"]") + &token("b", long, "[\"admin\"]"),
                "auth.tokens[1].token",
            ),
        ] {
            let err = Config::parse(&text, None).unwrap_err().to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        let err = Config::parse(&token("a", long, "[\"root\"]"), None).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("root"), "{source}");
    }

    #[test]
    fn tokens_are_not_printed_in_debug_output() {
        let config = Config::parse(
            "[[auth.tokens]]\nname = \"ci\"\ntoken = \"s3cret-s3cret-s3cret\"\nroles = [\"query\"]\n",
            None,
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
