//! `[[cohorts]]`, `[gray_flags]` and `[trace_join]`: how each record's
//! cohort is decided at ingest, and how logs and exemplars join their
//! trace's cohort.
//!
//! ```toml
//! [[cohorts]]                # in order: the first rule that matches wins
//! name = "gray-a"
//! rule = '(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3")'
//! [[cohorts]]
//! name = "beta"
//! rule = 'baggage.group == "beta"'
//!
//! [gray_flags]               # trace-id flags beyond 0x0001 staging / 0x0002 canary
//! "0x0003" = "gray-b"
//!
//! [trace_join]
//! hold_window = "3s"
//! ```

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{ByteSize, ConfigDuration, invalid};
use crate::cohort;
use crate::error::Result;
use crate::gray_flag::GrayFlag;
use crate::rule::Rule;

/// One `[[cohorts]]` entry: a named cohort and the routing rule that selects
/// its records.
///
/// The rule is parsed when the configuration is read; a rule that does not
/// parse fails the whole file with the cohort's name and the line and column
/// inside the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCohortConfig")]
pub struct CohortConfig {
    /// The cohort's name, as it appears in the `cohort` column and in
    /// rollouts: letters, digits, `_`, `-`, `.`; at most 128 bytes. Names
    /// must be unique among `[[cohorts]]`.
    pub name: String,
    /// The routing rule, in the language of DESIGN §3 (see the rule module's
    /// docs): `geo == "华南" AND isp == "移动"`. Evaluated on the record's
    /// attributes, its resource's attributes and W3C baggage
    /// (`baggage.<key>`).
    pub rule: Rule,
}

/// A `[[cohorts]]` entry before its rule is parsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCohortConfig {
    name: String,
    rule: String,
}

impl TryFrom<RawCohortConfig> for CohortConfig {
    type Error = String;

    fn try_from(raw: RawCohortConfig) -> Result<CohortConfig, String> {
        match Rule::parse(&raw.rule) {
            Ok(rule) => Ok(CohortConfig {
                name: raw.name,
                rule,
            }),
            Err(error) => Err(format!(
                "cohort {:?}: invalid rule: {error}\n{}",
                raw.name,
                error.snippet(&raw.rule)
            )),
        }
    }
}

impl CohortConfig {
    /// A cohort from a name and rule text.
    pub fn new(
        name: impl Into<String>,
        rule: &str,
    ) -> Result<CohortConfig, crate::rule::RuleError> {
        Ok(CohortConfig {
            name: name.into(),
            rule: Rule::parse(rule)?,
        })
    }
}

/// Checks `[[cohorts]]` and `[gray_flags]` together.
pub(crate) fn validate(cohorts: &[CohortConfig], flags: &BTreeMap<GrayFlag, String>) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, cohort) in cohorts.iter().enumerate() {
        let field = format!("cohorts[{i}].name");
        cohort::check_name(&cohort.name).map_err(|reason| invalid(&field, reason))?;
        if !seen.insert(cohort.name.as_str()) {
            return Err(invalid(
                &field,
                format!(
                    "names cohort {:?} a second time; join the two rules with OR",
                    cohort.name
                ),
            ));
        }
    }
    for (flag, name) in flags {
        let field = format!("gray_flags.\"{flag}\"");
        if flag.is_built_in() {
            let meaning = match *flag {
                GrayFlag::NONE => "means no environment",
                GrayFlag::STAGING => "is built in as `staging`",
                _ => "is built in as `canary`",
            };
            return Err(invalid(
                &field,
                format!(
                    "{flag} {meaning} and cannot be remapped: routers and grayscope must agree on it; use a flag from 0x0003"
                ),
            ));
        }
        cohort::check_name(name).map_err(|reason| invalid(&field, reason))?;
        if name == cohort::BASELINE {
            return Err(invalid(
                &field,
                "a flag cannot name `baseline`: an unflagged trace id already is",
            ));
        }
    }
    Ok(())
}

/// `[trace_join]`: how a log record or metric exemplar takes the cohort of
/// its trace when a rule labelled that trace's spans.
///
/// At ingest, grayscope remembers the cohort of recently seen traces. A log
/// record or exemplar whose trace id carries no gray flag and whose own
/// attributes match no rule takes its trace's cohort (and, when its resource
/// has no `service.version`, its trace's version). If its trace has not been
/// seen yet, the export request is **held**, unanswered, until the trace's
/// spans arrive or `hold_window` passes, so that what is acknowledged is
/// stored durably with its final cohort. What the window misses is joined at
/// query time by the `logs_with_trace_cohort` and
/// `exemplars_with_trace_cohort` views (see `docs/cohorts.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceJoinConfig {
    /// Longest time an export request waits for the spans of traces its log
    /// records or exemplars need. `"0s"` turns holding off (records whose
    /// trace is not known yet are stored as their own rules say, and the
    /// views join them later). Keep it well below the clients' export
    /// timeout (10 s by default in the OpenTelemetry SDKs). At most `30s`.
    /// Default `3s`.
    pub hold_window: ConfigDuration,
    /// Request bytes that may be held at once, over all requests. A request
    /// that would exceed it is not held. Default `64MiB`.
    pub max_held_size: ByteSize,
    /// How many recently seen traces are remembered (with their cohort and
    /// version) for log records and exemplars that arrive after their spans;
    /// about 100 bytes each, oldest forgotten first. `0` turns joining at
    /// ingest off. Default 100000.
    pub remembered_traces: usize,
}

impl Default for TraceJoinConfig {
    fn default() -> Self {
        TraceJoinConfig {
            hold_window: ConfigDuration::from_secs(3),
            max_held_size: ByteSize(64 << 20),
            remembered_traces: 100_000,
        }
    }
}

impl TraceJoinConfig {
    /// The longest `hold_window` accepted.
    pub const MAX_HOLD_WINDOW: ConfigDuration = ConfigDuration::from_secs(30);

    pub(crate) fn validate(&self) -> Result<()> {
        if self.hold_window > Self::MAX_HOLD_WINDOW {
            return Err(invalid(
                "trace_join.hold_window",
                "must be at most 30s: clients time out and resend held exports",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn cohorts_parse_in_order_with_flags() {
        let text = r#"
[[cohorts]]
name = "gray-a"
rule = '(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3")'
[[cohorts]]
name = "beta"
rule = 'baggage.group == "beta"'

[gray_flags]
"0x0003" = "gray-b"
"0x10" = "gray-c"

[trace_join]
hold_window = "500ms"
remembered_traces = 10
"#;
        let config = Config::parse(text, None).unwrap();
        let names: Vec<_> = config.cohorts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gray-a", "beta"]);
        assert_eq!(
            config.cohorts[0].rule.attributes(),
            ["device.type", "geo", "isp", "tls.version"]
        );
        assert_eq!(config.gray_flags.len(), 2);
        assert_eq!(
            config.gray_flags[&crate::GrayFlag(0x10)],
            "gray-c".to_owned()
        );
        assert_eq!(config.trace_join.hold_window.get().as_millis(), 500);
        assert_eq!(config.trace_join.remembered_traces, 10);
        // Serializing gives back an equal configuration.
        let again = Config::parse(&toml::to_string(&config).unwrap(), None).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn a_bad_rule_names_its_cohort_and_position() {
        let text = "[[cohorts]]\nname = \"gray-a\"\nrule = 'geo = \"华南\"'\n";
        let err = Config::parse(text, None).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            source.contains("cohort \"gray-a\": invalid rule"),
            "{source}"
        );
        assert!(
            source.contains("line 1, column 5: expected a comparison operator"),
            "{source}"
        );
        assert!(source.contains("line 1"), "{source}");
    }

    #[test]
    fn unknown_cohort_fields_are_rejected() {
        let text = "[[cohorts]]\nname = \"a\"\nrule = 'x == 1'\nrules = 'y == 1'\n";
        let err = Config::parse(text, None).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("unknown field `rules`"), "{source}");
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let cases = [
            (
                "[[cohorts]]\nname = \"a b\"\nrule = 'x == 1'\n",
                "`cohorts[0].name`",
            ),
            (
                "[[cohorts]]\nname = \"a\"\nrule = 'x == 1'\n[[cohorts]]\nname = \"a\"\nrule = 'y == 1'\n",
                "second time",
            ),
            (
                "[gray_flags]\n\"0x0002\" = \"gray\"\n",
                "built in as `canary`",
            ),
            (
                "[gray_flags]\n\"0x0001\" = \"gray\"\n",
                "built in as `staging`",
            ),
            ("[gray_flags]\n\"0x0000\" = \"gray\"\n", "no environment"),
            (
                "[gray_flags]\n\"0x0003\" = \"baseline\"\n",
                "cannot name `baseline`",
            ),
            ("[trace_join]\nhold_window = \"31s\"\n", "at most 30s"),
        ];
        for (text, want) in cases {
            let err = Config::parse(text, None).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let err = Config::parse("[gray_flags]\n\"3\" = \"gray\"\n", None).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("hex with 0x"), "{source}");
    }
}
