//! Log template mining at ingest: every log body gets its template and the
//! names of the `[[log_rules]]` it matches.
//!
//! One [`LogMining`] per process holds the template miner
//! (`grayscope_patterns::Miner`) behind a mutex and the compiled rules.
//! [`LogMining::mine`] is the one function that mines a body: the logs
//! converter calls it for every record (inside the conversion, which runs
//! off the async runtime), and `grayscope mine` calls it for every line, so
//! both give the same templates and ids for the same bodies.
//!
//! The miner's state lives in `<data_dir>/patterns/miner.json`: loaded when
//! the server starts ([`LogMiningBuilder::open`]), written when it changed
//! every `[patterns] save_interval` ([`LogMining::save_every`]) and at
//! shutdown ([`LogMining::persist`]). Ids are hashes of the template text and
//! do not depend on it; learned templates, counts and lineage do.
//!
//! ```
//! use grayscope_ingest::mining::LogMiningBuilder;
//! use grayscope_core::Config;
//!
//! let config = Config::parse(
//!     "[[log_rules]]\nname = \"redis_timeout\"\npattern = \"timeout.*redis\"\n",
//!     None,
//! )?;
//! let mining = LogMiningBuilder::from_config(&config)?.in_memory();
//! let mut hits = mining.rule_hits();
//! let mined = mining.mine("timeout after 30s talking to redis at 10.0.0.7:6379", 0, &mut hits);
//! assert_eq!(&*mined.template, "timeout after <*> talking to redis at <*>:<*>");
//! assert_eq!(mining.rules().names_of(&hits).collect::<Vec<_>>(), ["redis_timeout"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use grayscope_core::Config;
use grayscope_core::config::{LogRuleConfig, PatternsConfig};
use grayscope_patterns::Miner;
use tokio_util::sync::CancellationToken;

// The miner's types that `LogMining` speaks in, so that its users need not
// depend on the `patterns` crate themselves.
pub use grayscope_patterns::{
    Mined, MinerConfig, MinerStats, RuleHits, RuleSet, TemplateId, TemplateInfo,
};

/// Where the miner's state lives, under the data directory.
pub const STATE_FILE: &str = "patterns/miner.json";

/// The validated mining configuration: the miner's settings and the
/// compiled rules, ready to become a [`LogMining`].
#[derive(Debug, Clone)]
pub struct LogMiningBuilder {
    miner: MinerConfig,
    rules: RuleSet,
    save_interval: Duration,
}

impl LogMiningBuilder {
    /// Validates `[patterns]` and `[[log_rules]]` with the miner's own
    /// checks and compiles the rules into one automaton. An out-of-range
    /// setting or a pattern that does not compile is a configuration error
    /// naming the field or the rule, as `grayscope check-config` reports it.
    pub fn from_config(config: &Config) -> Result<LogMiningBuilder, grayscope_core::Error> {
        let miner = miner_config(&config.patterns);
        miner.validate().map_err(|error| match error {
            grayscope_patterns::Error::InvalidConfig { field, reason } => {
                invalid(format!("patterns.{field}"), reason)
            }
            other => invalid("patterns".to_owned(), other.to_string()),
        })?;
        let rules = rule_set(&config.log_rules)?;
        Ok(LogMiningBuilder {
            miner,
            rules,
            save_interval: config.patterns.save_interval.get(),
        })
    }

    /// A builder from a miner configuration and compiled rules, saving every
    /// 30 s.
    pub fn new(miner: MinerConfig, rules: RuleSet) -> LogMiningBuilder {
        LogMiningBuilder {
            miner,
            rules,
            save_interval: PatternsConfig::default().save_interval.get(),
        }
    }

    /// The miner's settings.
    pub fn miner_config(&self) -> &MinerConfig {
        &self.miner
    }

    /// The compiled rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Mining with a fresh miner that is never saved (tests, benchmarks,
    /// `grayscope mine`).
    pub fn in_memory(self) -> LogMining {
        let miner = Miner::new(self.miner.clone());
        self.build(miner, None)
    }

    /// Mining with the miner saved in `data_dir` ([`STATE_FILE`]), or a
    /// fresh one on the first start. A state file that exists but does not
    /// load is an error, not a silent fresh start (the templates and lineage
    /// it holds would be lost at the next save).
    pub fn open(self, data_dir: &Path) -> grayscope_patterns::Result<LogMining> {
        let path = data_dir.join(STATE_FILE);
        let miner = Miner::load_or_new(&path, self.miner.clone())?;
        Ok(self.build(miner, Some(path)))
    }

    fn build(self, miner: Miner, state_path: Option<PathBuf>) -> LogMining {
        let saved_lines = miner.stats().lines;
        LogMining {
            shared: Arc::new(Shared {
                miner: Mutex::new(MinerState { miner, saved_lines }),
                rules: self.rules,
                state_path,
                save_interval: self.save_interval,
            }),
        }
    }
}

impl Default for LogMiningBuilder {
    /// The default miner, no rules.
    fn default() -> Self {
        LogMiningBuilder::new(MinerConfig::default(), no_rules())
    }
}

/// The empty rule set.
fn no_rules() -> RuleSet {
    match RuleSet::new(&[]) {
        Ok(rules) => rules,
        // Only names and patterns can fail to compile, and there are none.
        Err(error) => unreachable!("an empty rule list does not compile: {error}"),
    }
}

/// The template miner and the log rules of a running server. Cheap to
/// clone; clones share the miner.
#[derive(Clone)]
pub struct LogMining {
    shared: Arc<Shared>,
}

struct Shared {
    miner: Mutex<MinerState>,
    rules: RuleSet,
    state_path: Option<PathBuf>,
    save_interval: Duration,
}

struct MinerState {
    miner: Miner,
    /// `miner.stats().lines` when the state was last saved or loaded: the
    /// miner changed since iff it differs.
    saved_lines: u64,
}

impl std::fmt::Debug for LogMining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMining")
            .field("rules", &self.shared.rules.names())
            .field("state_path", &self.shared.state_path)
            .finish_non_exhaustive()
    }
}

impl Default for LogMining {
    /// A default miner in memory, no rules.
    fn default() -> Self {
        LogMiningBuilder::default().in_memory()
    }
}

impl LogMining {
    /// Mines one log body observed at `time_unix_nano`: its template, and
    /// the rules it matches written to `hits` (from [`LogMining::rule_hits`]).
    ///
    /// The one function that mines a body, at ingest and in `grayscope
    /// mine`. CPU work: call it off the async runtime. The miner's lock is
    /// held for this body only; the rules are scanned outside it.
    pub fn mine(&self, body: &str, time_unix_nano: u64, hits: &mut RuleHits) -> Mined {
        let mined = self.lock().miner.mine(body, time_unix_nano);
        self.shared.rules.scan(body, hits);
        mined
    }

    /// A reusable buffer for the rules one body matches.
    pub fn rule_hits(&self) -> RuleHits {
        self.shared.rules.hits()
    }

    /// The compiled rules (names in configuration order).
    pub fn rules(&self) -> &RuleSet {
        &self.shared.rules
    }

    /// Every template the miner knows, live ones first, then retired ones
    /// with the template that replaced them.
    pub fn templates(&self) -> Vec<TemplateInfo> {
        self.lock().miner.templates().collect()
    }

    /// Every template the miner knows (as [`LogMining::templates`]), each
    /// with the live template its lineage ends in (itself when live; `None`
    /// when the line of descent was evicted).
    pub fn templates_resolved(&self) -> Vec<(TemplateInfo, Option<TemplateId>)> {
        let state = self.lock();
        state
            .miner
            .templates()
            .map(|t| {
                let current = state.miner.resolve(&t.id);
                (t, current)
            })
            .collect()
    }

    /// The live template that `id` became: itself when live, else the end
    /// of its lineage.
    pub fn resolve(&self, id: &TemplateId) -> Option<TemplateId> {
        self.lock().miner.resolve(id)
    }

    /// The miner's counters.
    pub fn stats(&self) -> MinerStats {
        self.lock().miner.stats()
    }

    /// Where the state is saved; `None` for a miner in memory.
    pub fn state_path(&self) -> Option<&Path> {
        self.shared.state_path.as_deref()
    }

    /// Writes the miner's state if it changed since it was loaded or last
    /// saved; returns whether it wrote. Blocking file I/O (use
    /// [`LogMining::persist`] from async code). Mining waits meanwhile: the
    /// miner is serialised under its lock.
    pub fn save(&self) -> grayscope_patterns::Result<bool> {
        let Some(path) = &self.shared.state_path else {
            return Ok(false);
        };
        let mut state = self.lock();
        let lines = state.miner.stats().lines;
        if lines == state.saved_lines {
            return Ok(false);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| {
                grayscope_patterns::Error::SaveState {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        state.miner.save(path)?;
        state.saved_lines = lines;
        Ok(true)
    }

    /// [`LogMining::save`] on a blocking thread.
    pub async fn persist(&self) -> grayscope_patterns::Result<bool> {
        let mining = self.clone();
        match tokio::task::spawn_blocking(move || mining.save()).await {
            Ok(result) => result,
            Err(join) => Err(grayscope_patterns::Error::Internal(format!(
                "the miner save worker failed: {join}"
            ))),
        }
    }

    /// Saves the state every `[patterns] save_interval` when it changed,
    /// until `stop` is cancelled. A failed save is logged and retried at the
    /// next interval; the final save at shutdown is the owner's
    /// ([`LogMining::persist`] once ingest has stopped).
    pub async fn save_every(self, stop: CancellationToken) {
        if self.shared.state_path.is_none() {
            stop.cancelled().await;
            return;
        }
        let mut ticks = tokio::time::interval(self.shared.save_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.persist().await {
                Ok(true) => tracing::debug!("template miner state saved"),
                Ok(false) => {}
                Err(error) => tracing::warn!(
                    error = %error_chain(&error),
                    "cannot save the template miner state; retrying at the next interval"
                ),
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, MinerState> {
        // The miner never panics on input; if a bug made it panic, keep
        // mining with the state as it was rather than fail every export.
        self.shared
            .miner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `[patterns]` as the miner's configuration. Both structs are written out
/// in full, so a field added to either fails to compile here.
pub fn miner_config(config: &PatternsConfig) -> MinerConfig {
    let PatternsConfig {
        max_templates,
        max_lineage,
        max_tokens,
        max_line_bytes,
        max_token_bytes,
        similarity_threshold,
        min_distinct_values,
        tree_depth,
        max_merge_candidates,
        cache_capacity,
        structured,
        first_line_only,
        save_interval: _,
    } = *config;
    MinerConfig {
        max_templates,
        max_lineage,
        max_tokens,
        max_line_bytes,
        max_token_bytes,
        similarity_threshold,
        min_distinct_values,
        tree_depth,
        max_merge_candidates,
        cache_capacity,
        structured,
        first_line_only,
    }
}

/// Compiles `[[log_rules]]`; a pattern that does not compile names its rule.
fn rule_set(rules: &[LogRuleConfig]) -> Result<RuleSet, grayscope_core::Error> {
    let pairs: Vec<(String, String)> = rules
        .iter()
        .map(|r| (r.name.clone(), r.pattern.clone()))
        .collect();
    RuleSet::new(&pairs).map_err(|error| match &error {
        grayscope_patterns::Error::InvalidRulePattern { name, pattern, .. } => {
            let index = rules.iter().position(|r| &r.name == name).unwrap_or(0);
            invalid(
                format!("log_rules[{index}].pattern"),
                format!(
                    "of rule {name:?} does not compile: {pattern:?}: {}",
                    root_cause(&error)
                ),
            )
        }
        grayscope_patterns::Error::InvalidRuleName { index, .. } => {
            invalid(format!("log_rules[{index}].name"), error.to_string())
        }
        _ => invalid("log_rules".to_owned(), error_chain(&error)),
    })
}

fn invalid(field: String, reason: impl Into<String>) -> grayscope_core::Error {
    grayscope_core::Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

/// The causes of `error`, without its own message.
fn source_text(error: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cause = error.source();
    while let Some(e) = cause {
        parts.push(e.to_string());
        cause = e.source();
    }
    parts.join(": ")
}

/// The innermost cause of `error` (for a pattern, the regex parser's
/// message with its caret under the offending position).
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// `error` and its causes, joined with `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let causes = source_text(error);
    if causes.is_empty() {
        error.to_string()
    } else {
        format!("{error}: {causes}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, None).unwrap()
    }

    #[test]
    fn defaults_are_the_miners_defaults() {
        assert_eq!(
            miner_config(&PatternsConfig::default()),
            MinerConfig::default()
        );
        let builder = LogMiningBuilder::from_config(&Config::default()).unwrap();
        assert_eq!(builder.miner_config(), &MinerConfig::default());
        assert!(builder.rules().is_empty());
    }

    #[test]
    fn a_bad_pattern_is_a_configuration_error_naming_the_rule() {
        let config = config(
            "[[log_rules]]\nname = \"ok\"\npattern = \"fine\"\n\
             [[log_rules]]\nname = \"redis_timeout\"\npattern = \"timeout(.*redis\"\n",
        );
        let error = LogMiningBuilder::from_config(&config).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`log_rules[1].pattern`"), "{message}");
        assert!(message.contains("\"redis_timeout\""), "{message}");
        assert!(message.contains("unclosed group"), "{message}");
    }

    #[test]
    fn out_of_range_settings_name_the_field() {
        let config = config("[patterns]\nsimilarity_threshold = 1.5\n");
        let message = LogMiningBuilder::from_config(&config)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("`patterns.similarity_threshold`"),
            "{message}"
        );
    }

    #[test]
    fn mining_tags_rules_and_state_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(
            "[[log_rules]]\nname = \"redis_timeout\"\npattern = \"timeout.*redis\"\n\
             [[log_rules]]\nname = \"redis\"\npattern = \"redis\"\n",
        );
        let builder = LogMiningBuilder::from_config(&config).unwrap();
        let mining = builder.clone().open(dir.path()).unwrap();
        assert!(!mining.save().unwrap(), "nothing mined, nothing to save");
        let mut hits = mining.rule_hits();
        let mut ids = Vec::new();
        for (i, user) in ["alice", "bob", "carol", "dave", "erin"].iter().enumerate() {
            let body = format!("timeout talking to redis for user {user}");
            ids.push(mining.mine(&body, i as u64, &mut hits).template_id);
            assert_eq!(
                mining.rules().names_of(&hits).collect::<Vec<_>>(),
                ["redis_timeout", "redis"]
            );
        }
        mining.mine("all good", 9, &mut hits);
        assert!(hits.is_empty());
        // The plain-word position generalised: the first id is retired and
        // resolves to the last.
        let last = *ids.last().unwrap();
        assert_ne!(ids[0], last);
        assert_eq!(mining.resolve(&ids[0]), Some(last));
        assert!(mining.save().unwrap());
        assert!(!mining.save().unwrap(), "unchanged since the last save");
        assert!(dir.path().join(STATE_FILE).is_file());

        let reopened = builder.open(dir.path()).unwrap();
        assert_eq!(reopened.resolve(&ids[0]), Some(last));
        let mut hits = reopened.rule_hits();
        let again = reopened.mine("timeout talking to redis for user frank", 10, &mut hits);
        assert_eq!(again.template_id, last);
        let resolved = reopened.templates_resolved();
        assert!(
            resolved
                .iter()
                .any(|(t, current)| t.id == ids[0] && *current == Some(last))
        );
    }

    /// The logs converter fills `template_id`, `template` and `rules` with
    /// what [`LogMining::mine`] gives for the body's text.
    #[test]
    fn converted_logs_carry_templates_and_rules() {
        use arrow::array::{Array, AsArray, ListArray};
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{
            AnyValue, KeyValue, KeyValueList, any_value::Value,
        };
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        use prost::Message as _;

        use crate::{Encoding, Labeler, Signal, decode_and_convert};

        let record = |body: Option<Value>| LogRecord {
            time_unix_nano: 1_764_000_000_000_000_000,
            body: body.map(|value| AnyValue { value: Some(value) }),
            ..Default::default()
        };
        let kv = |key: &str, value: Value| KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            key_strindex: 0,
        };
        // Keys out of order, as an SDK's hash map sends them.
        let kvlist = Value::KvlistValue(KeyValueList {
            values: vec![
                kv(
                    "reason",
                    Value::StringValue("timeout talking to redis".into()),
                ),
                kv(
                    "attempt",
                    Value::KvlistValue(KeyValueList {
                        values: vec![kv("of", Value::IntValue(3)), kv("n", Value::IntValue(2))],
                    }),
                ),
            ],
        });
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(Some(Value::StringValue(
                            "disk 91% full on /dev/sda1".into(),
                        ))),
                        record(Some(kvlist)),
                        record(None),
                        record(Some(Value::StringValue(String::new()))),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let config = config(
            "[[log_rules]]\nname = \"redis_timeout\"\npattern = \"timeout.*redis\"\n\
             [[log_rules]]\nname = \"disk\"\npattern = \"disk\"\n",
        );
        let mining = LogMiningBuilder::from_config(&config).unwrap().in_memory();
        let body = request.encode_to_vec();
        let batch = decode_and_convert(
            Signal::Logs,
            Encoding::Protobuf,
            body.clone().into(),
            &Labeler::new(),
            Some(&mining),
        )
        .unwrap()
        .batch;
        let text = |name: &str| -> Vec<Option<String>> {
            batch
                .column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_owned))
                .collect()
        };
        let bodies = text("body");
        let templates = text("template");
        let ids = text("template_id");
        assert_eq!(templates[0].as_deref(), Some("disk <*> full on <*>"));
        assert_eq!(
            bodies[1].as_deref(),
            Some(r#"{"attempt":{"n":2,"of":3},"reason":"timeout talking to redis"}"#)
        );
        assert_eq!(templates[2], None);
        assert_eq!(ids[2], None);
        // The same text mined again gives the id the converter stored.
        let mut hits = mining.rule_hits();
        for row in [0, 1, 3] {
            let body = bodies[row].as_deref().unwrap();
            let mined = mining.mine(body, 0, &mut hits);
            assert_eq!(ids[row], Some(mined.template_id.to_string()), "row {row}");
            assert_eq!(templates[row].as_deref(), Some(&*mined.template));
        }
        let rules: &ListArray = batch.column_by_name("rules").unwrap().as_list();
        let names = |row: usize| -> Vec<String> {
            let values = rules.value(row);
            values
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap().to_owned())
                .collect()
        };
        assert_eq!(names(0), ["disk"]);
        assert_eq!(names(1), ["redis_timeout"]);
        assert!(names(2).is_empty() && names(3).is_empty());
        assert_eq!(rules.null_count(), 0);

        // Without a miner: nulls and empty lists, same schema.
        let plain = decode_and_convert(
            Signal::Logs,
            Encoding::Protobuf,
            body.clone().into(),
            &Labeler::new(),
            None,
        )
        .unwrap()
        .batch;
        assert_eq!(plain.schema(), batch.schema());
        assert_eq!(plain.column_by_name("template_id").unwrap().null_count(), 4);
    }

    #[test]
    fn a_damaged_state_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{not json").unwrap();
        let error = LogMiningBuilder::default().open(dir.path()).unwrap_err();
        assert!(error.to_string().contains("miner.json"), "{error}");
    }
}
