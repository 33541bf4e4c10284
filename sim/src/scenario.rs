//! Scenario files: a service's traffic, its baseline and canary cohorts,
//! the faults that start during the run, and the verdict a good judge
//! reaches.
//!
//! ```toml
//! name = "latency-shift"
//! description = "the canary answers 40% slower from 30 s on"
//! expect = "rollback"
//! duration = "3m"
//! requests_per_second = 1000
//! canary_share = 0.2
//!
//! [baseline]
//! latency = { median_ms = 60, spread = 0.35 }
//!
//! [[faults]]
//! target = "canary"
//! from = "30s"
//! latency_factor = 1.4
//! ```

use std::path::Path;

use grayscope_core::config::ConfigDuration;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a good judge concludes about a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// The canary is healthy: it must never be rolled back, and it should
    /// move on.
    Promote,
    /// Neither: not enough data, or everyone is degraded. It must never be
    /// rolled back.
    Hold,
    /// The canary is worse: it must be rolled back, after the fault starts
    /// and not before.
    Rollback,
}

/// A scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name.
    pub name: String,
    /// What happens, in words.
    #[serde(default)]
    pub description: String,
    /// The verdict a good judge reaches.
    pub expect: Expectation,
    /// How long the run lasts.
    pub duration: ConfigDuration,
    /// Seed of the random draws. Default 1.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The service name. Default `checkout`.
    #[serde(default = "default_service")]
    pub service: String,
    /// Requests per second, both cohorts together.
    pub requests_per_second: f64,
    /// Share of requests the canary serves. Default 0.2.
    #[serde(default = "default_share")]
    pub canary_share: f64,
    /// The baseline cohort.
    #[serde(default = "CohortProfile::baseline")]
    pub baseline: CohortProfile,
    /// The canary cohort; by default the same as the baseline, on a new
    /// version.
    #[serde(default)]
    pub canary: Option<CohortProfile>,
    /// Faults, each from a given time.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// How one cohort behaves when nothing is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CohortProfile {
    /// Its `service.version`. Default `1.0.0` (baseline), `1.1.0` (canary).
    pub version: String,
    /// Latency of its requests.
    pub latency: LatencyProfile,
    /// Share of requests that fail. Default 0.002.
    pub error_rate: f64,
    /// Log records per request (on average). Default 2.
    pub logs_per_request: f64,
    /// Share of requests that log a warning. Default 0.01.
    pub warn_rate: f64,
    /// Pods, each exporting its own kernel metrics. Default 3 (baseline),
    /// 1 (canary).
    pub pods: u32,
    /// TCP retransmits per second per pod. Default 2.
    pub retransmits_per_second: f64,
}

/// A log-normal latency distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyProfile {
    /// The median, in milliseconds. Default 60.
    pub median_ms: f64,
    /// The standard deviation of the logarithm. Default 0.35.
    pub spread: f64,
}

/// Which cohort a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// Only the canary.
    Canary,
    /// Only the baseline.
    Baseline,
    /// Everyone: a fleet-wide incident.
    All,
}

/// A change in behaviour from a given time on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Who it hits.
    pub target: FaultTarget,
    /// When it starts, from the beginning of the run.
    pub from: ConfigDuration,
    /// Latency multiplier. Default 1.
    #[serde(default = "one")]
    pub latency_factor: f64,
    /// Extra share of failing requests. Default 0.
    #[serde(default)]
    pub extra_error_rate: f64,
    /// A new kind of log line. Default none.
    #[serde(default)]
    pub log: Option<LogTemplate>,
    /// Retransmit multiplier. Default 1.
    #[serde(default = "one")]
    pub retransmit_factor: f64,
    /// Traffic multiplier (a canary losing its traffic). Default 1.
    #[serde(default = "one")]
    pub traffic_factor: f64,
}

/// A log line a fault makes the service write. Placeholders `{n}`, `{ms}`,
/// `{host}` and `{id}` take random values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogTemplate {
    /// The text.
    pub text: String,
    /// `debug`, `info`, `warn`, `error` or `fatal`. Default `error`.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// Share of requests that write it.
    pub per_request: f64,
}

fn one() -> f64 {
    1.0
}
fn default_seed() -> u64 {
    1
}
fn default_service() -> String {
    "checkout".to_owned()
}
fn default_share() -> f64 {
    0.2
}
fn default_severity() -> String {
    "error".to_owned()
}

impl Default for LatencyProfile {
    fn default() -> Self {
        LatencyProfile {
            median_ms: 60.0,
            spread: 0.35,
        }
    }
}

impl Default for CohortProfile {
    fn default() -> Self {
        CohortProfile::baseline()
    }
}

impl CohortProfile {
    /// The default baseline.
    pub fn baseline() -> CohortProfile {
        CohortProfile {
            version: "1.0.0".to_owned(),
            latency: LatencyProfile::default(),
            error_rate: 0.002,
            logs_per_request: 2.0,
            warn_rate: 0.01,
            pods: 3,
            retransmits_per_second: 2.0,
        }
    }
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses and validates a scenario's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario> {
        let scenario: Scenario = toml::from_str(text).map_err(|source| Error::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The canary's profile: its own, or the baseline's on version `1.1.0`.
    pub fn canary_profile(&self) -> CohortProfile {
        self.canary.clone().unwrap_or_else(|| CohortProfile {
            version: "1.1.0".to_owned(),
            pods: 1,
            ..self.baseline.clone()
        })
    }

    /// When the first fault that hits the canary starts.
    pub fn fault_start(&self) -> Option<std::time::Duration> {
        self.faults
            .iter()
            .filter(|f| f.target != FaultTarget::Baseline)
            .map(|f| f.from.get())
            .min()
    }

    fn validate(&self) -> Result<()> {
        let invalid = |reason: &str| Error::Invalid {
            name: self.name.clone(),
            reason: reason.to_owned(),
        };
        if self.requests_per_second.is_nan() || self.requests_per_second <= 0.0 {
            return Err(invalid("requests_per_second must be positive"));
        }
        if !(0.0..1.0).contains(&self.canary_share) || self.canary_share == 0.0 {
            return Err(invalid("canary_share must be in (0, 1)"));
        }
        if self.duration.get().is_zero() {
            return Err(invalid("duration must not be zero"));
        }
        let canary = self.canary_profile();
        if self.baseline.version == canary.version {
            return Err(invalid("baseline and canary need different versions"));
        }
        for profile in [&self.baseline, &canary] {
            if !(0.0..=1.0).contains(&profile.error_rate) || profile.latency.median_ms <= 0.0 {
                return Err(invalid(
                    "error rates must be in [0, 1] and medians positive",
                ));
            }
        }
        Ok(())
    }
}
