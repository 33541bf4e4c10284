//! `[[rollouts]]`: what the judge verifies — a service, its baseline and
//! canary cohorts, the checks and their thresholds, and the stages.
//!
//! ```toml
//! [[rollouts]]
//! name = "checkout-v2"
//! service = "checkout"
//! baseline = "baseline"
//! canary = ["canary"]
//! interval = "10s"
//! window = "2m"
//!
//! [rollouts.limits]
//! p99_ms = 850
//! error_rate = 0.01
//!
//! [rollouts.checks.latency]
//! min_relative_shift = 0.1
//!
//! [[rollouts.checks.kernel]]
//! metric = "tcp.retransmits"
//! ```
//!
//! Everything but `name` and `service` has a default; the defaults judge
//! L1 (request rate, errors, latency) and L2 (log templates, rule hits,
//! error logs) and walk the four stages of DESIGN §6.

use serde::{Deserialize, Serialize};

use super::{ConfigDuration, invalid};
use crate::error::Result;
use crate::verdict::Direction;

/// One rollout under verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// Unique name, used in the API path and in signals.
    pub name: String,
    /// The service (resource `service.name`) whose telemetry is judged.
    pub service: String,
    /// The cohort the canaries are compared with. Default `baseline`.
    #[serde(default = "default_baseline")]
    pub baseline: String,
    /// The canary cohort(s); each is judged on its own. Default `["canary"]`.
    #[serde(default = "default_canary")]
    pub canary: Vec<String>,
    /// How often the judge evaluates. Default `10s`.
    #[serde(default = "default_interval")]
    pub interval: ConfigDuration,
    /// The sliding window of telemetry each evaluation compares. Default `2m`.
    #[serde(default = "default_window")]
    pub window: ConfigDuration,
    /// The stages, in order. The rollout starts in the first; promotion
    /// from the last completes it. Default: shadow, read_split,
    /// primary_switch, full_takeover.
    #[serde(default = "default_stages")]
    pub stages: Vec<StageConfig>,
    /// What too little data means. Default `hold` (never a silent pass).
    #[serde(default)]
    pub nodata: NoDataPolicy,
    /// Consecutive failing evaluations before a rollback, so that one noisy
    /// interval does not roll back. Critical checks count too. Default 2.
    #[serde(default = "default_failures")]
    pub failures_to_rollback: u32,
    /// Family-wise significance level across the rollout's checks (Holm
    /// correction). Default 0.01.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Weighted share of passing checks (0–100) below which the canary
    /// fails even when no critical check did. Default 75.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    /// Absolute limits for both cohorts.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The checks and their thresholds.
    #[serde(default)]
    pub checks: ChecksConfig,
}

/// One stage of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The stage's name (reported to routers).
    pub name: String,
    /// Shortest time in the stage before promotion. Default `1m`.
    #[serde(default = "default_stage_duration")]
    pub min_duration: ConfigDuration,
    /// Consecutive passing evaluations needed to move on. Default 3.
    #[serde(default = "default_passes")]
    pub passes: u32,
}

/// What the judge does when a check has fewer samples than it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    /// Hold the current stage until there is enough data.
    #[default]
    Hold,
    /// Treat missing canary data as a failure (e.g. a canary that crashed
    /// and serves nothing).
    Rollback,
}

/// Absolute limits; either cohort over one fails the check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Highest acceptable p99 latency of server spans, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Highest acceptable error rate of server spans (0.01 = 1%).
    pub error_rate: Option<f64>,
}

/// The checks of a rollout. Each can be turned off with `enabled = false`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// L1: requests per second reaching the canary, against its share.
    pub request_rate: RequestRateCheck,
    /// L1: share of failed requests.
    pub error_rate: ErrorRateCheck,
    /// L1: the latency distribution of server spans.
    pub latency: LatencyCheck,
    /// L2: log templates the canary writes and the baseline does not (or far
    /// less), and templates whose rate grew.
    pub templates: TemplateCheck,
    /// L2: hits of the `[[log_rules]]` per log line.
    pub rule_hits: RateCheck,
    /// L2: error and fatal log records per log line.
    pub error_logs: RateCheck,
    /// L3: kernel metrics from eBPF agents, one entry per metric.
    pub kernel: Vec<KernelCheck>,
}

/// `checks.request_rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestRateCheck {
    /// Whether the check runs. Default true.
    pub enabled: bool,
    /// The canary's request rate may fall this far below its rate
    /// earlier in the rollout before the check fails (0.5 = half). The
    /// canary serving nothing at all is always caught. Default 0.5.
    pub max_drop: f64,
    /// Weight in the score. Default 1.
    pub weight: f64,
}

/// `checks.error_rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorRateCheck {
    /// Whether the check runs. Default true.
    pub enabled: bool,
    /// Requests each cohort needs in the window. Default 100.
    pub min_samples: u64,
    /// Smallest increase of the error rate that matters, in absolute terms
    /// (0.005 = half a percentage point). Default 0.005.
    pub min_increase: f64,
    /// Whether failing this check alone fails the canary. Default true.
    pub critical: bool,
    /// Weight in the score. Default 3.
    pub weight: f64,
}

/// `checks.latency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyCheck {
    /// Whether the check runs. Default true.
    pub enabled: bool,
    /// Requests each cohort needs in the window. Default 100.
    pub min_samples: u64,
    /// Smallest shift of the distribution that matters, relative to the
    /// baseline median (0.1 = 10%). Default 0.1.
    pub min_relative_shift: f64,
    /// Smallest shift that matters in milliseconds. Default 2.
    pub min_absolute_shift_ms: f64,
    /// Which way is worse. Default `higher_is_worse`.
    pub direction: Direction,
    /// Whether failing this check alone fails the canary. Default true.
    pub critical: bool,
    /// Weight in the score. Default 3.
    pub weight: f64,
}

/// `checks.templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateCheck {
    /// Whether the check runs. Default true.
    pub enabled: bool,
    /// Log lines each cohort needs in the window. Default 200.
    pub min_samples: u64,
    /// A template counts as new or grown only if the canary wrote it at
    /// least this often in the window. Default 5.
    pub min_count: u64,
    /// Smallest ratio of the canary's rate to the baseline's that matters.
    /// Default 3.
    pub min_ratio: f64,
    /// Only templates of log records at or above this severity number
    /// (9 info, 13 warn, 17 error) count. Default 13.
    pub min_severity: i32,
    /// Whether failing this check alone fails the canary. Default true.
    pub critical: bool,
    /// Weight in the score. Default 2.
    pub weight: f64,
}

/// A check comparing the rate of some events per unit of exposure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateCheck {
    /// Whether the check runs. Default true.
    pub enabled: bool,
    /// Exposure (log lines) each cohort needs in the window. Default 200.
    pub min_samples: u64,
    /// Smallest ratio of the canary's rate to the baseline's that matters.
    /// Default 2.
    pub min_ratio: f64,
    /// Events the canary must show at least, for a failure. Default 5.
    pub min_count: u64,
    /// Whether failing this check alone fails the canary. Default true.
    pub critical: bool,
    /// Weight in the score. Default 1.
    pub weight: f64,
}

/// One kernel metric compared per cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelCheck {
    /// The metric's name as the agent exports it (`tcp.retransmits`,
    /// `runqueue.latency`, `oom.kills`, …).
    pub metric: String,
    /// Which way is worse. Default `higher_is_worse`.
    #[serde(default)]
    pub direction: Direction,
    /// Smallest ratio (canary over baseline) of the metric's rate or level
    /// that matters. Default 2.
    #[serde(default = "default_kernel_ratio")]
    pub min_ratio: f64,
    /// Data points each cohort needs in the window. Default 5.
    #[serde(default = "default_kernel_samples")]
    pub min_samples: u64,
    /// Whether failing this check alone fails the canary. Default true.
    #[serde(default = "default_true")]
    pub critical: bool,
    /// Weight in the score. Default 1.
    #[serde(default = "default_weight")]
    pub weight: f64,
}

fn default_baseline() -> String {
    crate::cohort::BASELINE.to_owned()
}
fn default_canary() -> Vec<String> {
    vec![crate::cohort::CANARY.to_owned()]
}
fn default_interval() -> ConfigDuration {
    ConfigDuration::from_secs(10)
}
fn default_window() -> ConfigDuration {
    ConfigDuration::from_secs(120)
}
fn default_failures() -> u32 {
    2
}
fn default_alpha() -> f64 {
    0.01
}
fn default_true() -> bool {
    true
}
fn default_min_score() -> f64 {
    75.0
}
fn default_stage_duration() -> ConfigDuration {
    ConfigDuration::from_secs(60)
}
fn default_passes() -> u32 {
    3
}
fn default_weight() -> f64 {
    1.0
}
fn default_kernel_ratio() -> f64 {
    2.0
}
fn default_kernel_samples() -> u64 {
    5
}

/// The stages of DESIGN §6: shadow → read split → primary switch → full
/// takeover.
pub fn default_stages() -> Vec<StageConfig> {
    ["shadow", "read_split", "primary_switch", "full_takeover"]
        .into_iter()
        .map(|name| StageConfig {
            name: name.to_owned(),
            min_duration: default_stage_duration(),
            passes: default_passes(),
        })
        .collect()
}

impl Default for RequestRateCheck {
    fn default() -> Self {
        RequestRateCheck {
            enabled: true,
            max_drop: 0.5,
            weight: 1.0,
        }
    }
}

impl Default for ErrorRateCheck {
    fn default() -> Self {
        ErrorRateCheck {
            enabled: true,
            min_samples: 100,
            min_increase: 0.005,
            critical: true,
            weight: 3.0,
        }
    }
}

impl Default for LatencyCheck {
    fn default() -> Self {
        LatencyCheck {
            enabled: true,
            min_samples: 100,
            min_relative_shift: 0.1,
            min_absolute_shift_ms: 2.0,
            direction: Direction::HigherIsWorse,
            critical: true,
            weight: 3.0,
        }
    }
}

impl Default for TemplateCheck {
    fn default() -> Self {
        TemplateCheck {
            enabled: true,
            min_samples: 200,
            min_count: 5,
            min_ratio: 3.0,
            min_severity: 13,
            critical: true,
            weight: 2.0,
        }
    }
}

impl Default for RateCheck {
    fn default() -> Self {
        RateCheck {
            enabled: true,
            min_samples: 200,
            min_ratio: 2.0,
            min_count: 5,
            critical: true,
            weight: 1.0,
        }
    }
}

impl RolloutConfig {
    /// A rollout of `service` with every default.
    pub fn new(name: &str, service: &str) -> RolloutConfig {
        RolloutConfig {
            name: name.to_owned(),
            service: service.to_owned(),
            baseline: default_baseline(),
            canary: default_canary(),
            interval: default_interval(),
            window: default_window(),
            stages: default_stages(),
            nodata: NoDataPolicy::default(),
            failures_to_rollback: default_failures(),
            alpha: default_alpha(),
            min_score: default_min_score(),
            limits: LimitsConfig::default(),
            checks: ChecksConfig::default(),
        }
    }

    /// Checks what the types alone cannot; `at` names the rollout in errors.
    pub fn validate(&self, at: &str) -> Result<()> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid_name {
            return Err(invalid(
                &format!("{at}.name"),
                "must be letters, digits, '-', '_' or '.' (it appears in URLs)",
            ));
        }
        if self.service.is_empty() {
            return Err(invalid(&format!("{at}.service"), "must not be empty"));
        }
        if self.canary.is_empty() {
            return Err(invalid(&format!("{at}.canary"), "must name a cohort"));
        }
        if self.canary.contains(&self.baseline) {
            return Err(invalid(
                &format!("{at}.canary"),
                "must not contain the baseline cohort",
            ));
        }
        if self.stages.is_empty() {
            return Err(invalid(&format!("{at}.stages"), "must not be empty"));
        }
        if self.interval.get().is_zero() || self.window.get() < self.interval.get() {
            return Err(invalid(
                &format!("{at}.window"),
                "must be at least the (non-zero) interval",
            ));
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(invalid(&format!("{at}.alpha"), "must be in (0, 0.5)"));
        }
        if self.failures_to_rollback == 0 {
            return Err(invalid(
                &format!("{at}.failures_to_rollback"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_rollout_gets_every_default() {
        let rollout: RolloutConfig =
            toml::from_str("name = \"checkout-v2\"\nservice = \"checkout\"\n").unwrap();
        assert_eq!(rollout, RolloutConfig::new("checkout-v2", "checkout"));
        assert_eq!(rollout.stages.len(), 4);
        assert_eq!(rollout.stages[0].name, "shadow");
        assert_eq!(rollout.nodata, NoDataPolicy::Hold);
        rollout.validate("rollouts[0]").unwrap();
    }

    #[test]
    fn thresholds_and_kernel_metrics_are_configurable() {
        let rollout: RolloutConfig = toml::from_str(
            "name = \"r\"\nservice = \"s\"\ncanary = [\"gray-a\", \"gray-b\"]\n\
             [limits]\np99_ms = 850\nerror_rate = 0.01\n\
             [checks.latency]\nmin_relative_shift = 0.2\n\
             [[checks.kernel]]\nmetric = \"tcp.retransmits\"\n\
             [[stages]]\nname = \"only\"\npasses = 1\n",
        )
        .unwrap();
        assert_eq!(rollout.limits.p99_ms, Some(850.0));
        assert_eq!(rollout.checks.latency.min_relative_shift, 0.2);
        assert!(rollout.checks.error_rate.enabled);
        assert_eq!(rollout.checks.kernel[0].min_ratio, 2.0);
        assert_eq!(rollout.stages.len(), 1);
        assert_eq!(
            rollout.stages[0].min_duration,
            ConfigDuration::from_secs(60)
        );
    }

    #[test]
    fn bad_rollouts_name_the_field() {
        let mut rollout = RolloutConfig::new("has space", "s");
        let err = rollout.validate("rollouts[0]").unwrap_err().to_string();
        assert!(err.contains("rollouts[0].name"), "{err}");
        rollout.name = "ok".into();
        rollout.canary = vec!["baseline".into()];
        let err = rollout.validate("rollouts[0]").unwrap_err().to_string();
        assert!(err.contains("rollouts[0].canary"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err =
            toml::from_str::<RolloutConfig>("name = \"r\"\nservice = \"s\"\nwindw = \"1m\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `windw`"), "{err}");
    }
}
