//! The stage machine of one canary of one rollout: where it stands, and how
//! each evaluation or operator command moves it.
//!
//! ```text
//!            pass × stage.passes, and stage.min_duration elapsed
//!  stage 0 ───────────────────────────────────────────────► stage 1 ─► … ─► completed
//!     │  ▲
//!     │  └─ hold: not enough passes or time yet, no data, everyone degraded
//!     └──── fail × failures_to_rollback (from any stage) ──► rolled_back
//! ```
//!
//! Operators can pause (no evaluations count), resume, freeze (evaluations
//! run and are reported, but never move the stage), unfreeze, promote (the
//! next stage now) and roll back (now). A completed or rolled-back canary
//! stays so until its rollout is recreated.
//!
//! [`Canary::apply`] is a pure function of the state and the event; the
//! caller persists the state after each change, so a restart resumes in the
//! middle of a rollout.

use grayscope_core::config::StageConfig;
use grayscope_core::verdict::{Action, Level, Verdict};
use serde::{Deserialize, Serialize};

/// Where a canary stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being judged; evaluations move it.
    Running,
    /// An operator paused it: evaluations are not counted.
    Paused,
    /// An operator froze it: evaluations are reported but never move it.
    Frozen,
    /// Promoted out of the last stage: the rollout is done.
    Completed,
    /// Rolled back.
    RolledBack,
}

impl Status {
    /// Whether nothing will move this canary any more.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::RolledBack)
    }

    /// The status as the API and signals spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Frozen => "frozen",
            Status::Completed => "completed",
            Status::RolledBack => "rolled_back",
        }
    }
}

/// The state of one canary cohort of one rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    /// The canary cohort.
    pub cohort: String,
    /// Where it stands.
    pub status: Status,
    /// Index of the current stage.
    pub stage: usize,
    /// When it entered the current stage (nanoseconds since the epoch).
    pub stage_since: i64,
    /// Passing evaluations in a row, in this stage.
    pub passes: u32,
    /// Failing evaluations in a row.
    pub failures: u32,
    /// The last verdict given.
    pub verdict: Verdict,
    /// The action that went with it.
    pub action: Action,
    /// Bumped on every change of verdict, stage or status: the order of the
    /// signals this canary emits.
    pub sequence: u64,
    /// When the state last changed.
    pub changed_at: i64,
}

/// What one evaluation concluded, before the stage machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// The canary is as good as the baseline.
    Pass,
    /// The canary is worse than the baseline (or over a limit the baseline
    /// keeps).
    Fail,
    /// Not enough data to judge.
    NoData,
    /// Both cohorts are degraded alike at this level: not the canary's
    /// fault; hold and remediate.
    Degraded(Level),
}

/// An operator's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Stop counting evaluations.
    Pause,
    /// Count them again (also ends a freeze).
    Resume,
    /// Keep the stage whatever the evaluations say.
    Freeze,
    /// Move to the next stage now.
    Promote,
    /// Roll back now.
    Rollback,
}

/// What moves a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The judge evaluated the canary at `at`.
    Evaluated {
        /// The conclusion.
        evaluation: Evaluation,
        /// Nanoseconds since the epoch.
        at: i64,
    },
    /// An operator's command at `at`.
    Command {
        /// The command.
        command: Command,
        /// Nanoseconds since the epoch.
        at: i64,
    },
}

/// How the rollout's rules bound the machine.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The stages.
    pub stages: &'a [StageConfig],
    /// Failing evaluations in a row that roll back.
    pub failures_to_rollback: u32,
    /// Whether no data counts as a failure.
    pub nodata_fails: bool,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {command} a canary that is {status}")]
pub struct Refused {
    /// The command.
    pub command: String,
    /// The state it was in.
    pub status: String,
}

impl Canary {
    /// A canary starting the first stage at `at`.
    pub fn start(cohort: &str, at: i64) -> Canary {
        Canary {
            cohort: cohort.to_owned(),
            status: Status::Running,
            stage: 0,
            stage_since: at,
            passes: 0,
            failures: 0,
            verdict: Verdict::Hold,
            action: Action::Hold,
            sequence: 0,
            changed_at: at,
        }
    }

    /// The name of the current stage.
    pub fn stage_name<'a>(&self, stages: &'a [StageConfig]) -> &'a str {
        stages
            .get(self.stage.min(stages.len().saturating_sub(1)))
            .map(|s| s.name.as_str())
            .unwrap_or_default()
    }

    /// Applies an event; returns whether the verdict, stage or status
    /// changed (a change is a new signal).
    pub fn apply(&mut self, event: Event, rules: &Rules<'_>) -> Result<bool, Refused> {
        let before = (self.verdict, self.action, self.stage, self.status);
        match event {
            Event::Evaluated { evaluation, at } => self.evaluated(evaluation, at, rules),
            Event::Command { command, at } => self.command(command, at, rules)?,
        }
        let changed = before != (self.verdict, self.action, self.stage, self.status);
        if changed {
            self.sequence += 1;
            self.changed_at = match event {
                Event::Evaluated { at, .. } | Event::Command { at, .. } => at,
            };
        }
        Ok(changed)
    }

    fn evaluated(&mut self, evaluation: Evaluation, at: i64, rules: &Rules<'_>) {
        match self.status {
            Status::Paused | Status::Completed | Status::RolledBack => return,
            Status::Running | Status::Frozen => {}
        }
        let frozen = self.status == Status::Frozen;
        let evaluation = match evaluation {
            Evaluation::NoData if rules.nodata_fails => Evaluation::Fail,
            other => other,
        };
        match evaluation {
            Evaluation::Fail => {
                self.passes = 0;
                self.failures = self.failures.saturating_add(1);
                if self.failures >= rules.failures_to_rollback && !frozen {
                    self.status = Status::RolledBack;
                    self.set(Verdict::Rollback, Action::Rollback);
                } else {
                    self.set(Verdict::Hold, Action::Hold);
                }
            }
            Evaluation::NoData => {
                // Neither a pass nor a failure: the counts stand.
                self.set(Verdict::Hold, Action::Hold);
            }
            Evaluation::Degraded(level) => {
                self.passes = 0;
                self.failures = 0;
                self.set(Verdict::Hold, Action::remediation(level));
            }
            Evaluation::Pass => {
                self.failures = 0;
                self.passes = self.passes.saturating_add(1);
                let stage = &rules.stages[self.stage.min(rules.stages.len() - 1)];
                let long_enough = at.saturating_sub(self.stage_since)
                    >= stage.min_duration.get().as_nanos() as i64;
                if self.passes >= stage.passes && long_enough && !frozen {
                    self.advance(at, rules);
                    self.set(Verdict::Promote, Action::Promote);
                } else {
                    self.set(Verdict::Hold, Action::Hold);
                }
            }
        }
    }

    fn command(&mut self, command: Command, at: i64, rules: &Rules<'_>) -> Result<(), Refused> {
        let refuse = |status: Status| Refused {
            command: format!("{command:?}").to_lowercase(),
            status: format!("{status:?}").to_lowercase(),
        };
        if self.status.is_final() {
            return Err(refuse(self.status));
        }
        match command {
            Command::Pause => {
                self.status = Status::Paused;
                self.set(Verdict::Hold, Action::Hold);
            }
            Command::Freeze => {
                self.status = Status::Frozen;
                self.set(Verdict::Hold, Action::Hold);
            }
            Command::Resume => {
                self.status = Status::Running;
                // Passes counted before the pause are not trusted: the
                // canary may have changed meanwhile.
                self.passes = 0;
                self.failures = 0;
            }
            Command::Promote => {
                self.advance(at, rules);
                if self.status != Status::Completed {
                    self.status = Status::Running;
                }
                self.set(Verdict::Promote, Action::Promote);
            }
            Command::Rollback => {
                self.status = Status::RolledBack;
                self.set(Verdict::Rollback, Action::Rollback);
            }
        }
        Ok(())
    }

    fn advance(&mut self, at: i64, rules: &Rules<'_>) {
        self.passes = 0;
        self.failures = 0;
        if self.stage + 1 >= rules.stages.len() {
            self.status = Status::Completed;
        } else {
            self.stage += 1;
            self.stage_since = at;
        }
    }

    fn set(&mut self, verdict: Verdict, action: Action) {
        self.verdict = verdict;
        self.action = action;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grayscope_core::config::ConfigDuration;

    const S: i64 = 1_000_000_000;

    fn stages() -> Vec<StageConfig> {
        ["shadow", "read_split", "full"]
            .map(|name| StageConfig {
                name: name.to_owned(),
                min_duration: ConfigDuration::from_secs(60),
                passes: 3,
            })
            .to_vec()
    }

    fn rules(stages: &[StageConfig]) -> Rules<'_> {
        Rules {
            stages,
            failures_to_rollback: 2,
            nodata_fails: false,
        }
    }

    fn eval(canary: &mut Canary, evaluation: Evaluation, at: i64, rules: &Rules<'_>) -> bool {
        canary
            .apply(Event::Evaluated { evaluation, at }, rules)
            .unwrap()
    }

    #[test]
    fn enough_passes_and_time_promote_one_stage() {
        let stages = stages();
        let rules = rules(&stages);
        let mut canary = Canary::start("canary", 0);
        for t in [10, 20, 30] {
            eval(&mut canary, Evaluation::Pass, t * S, &rules);
            assert_eq!(canary.verdict, Verdict::Hold, "too early at {t}s");
        }
        assert_eq!(canary.passes, 3);
        assert!(eval(&mut canary, Evaluation::Pass, 60 * S, &rules));
        assert_eq!((canary.stage, canary.verdict), (1, Verdict::Promote));
        assert_eq!(canary.stage_name(&stages), "read_split");
        assert_eq!(canary.passes, 0);
        assert_eq!(canary.stage_since, 60 * S);
    }

    #[test]
    fn promotion_from_the_last_stage_completes() {
        let stages = stages();
        let rules = rules(&stages);
        let mut canary = Canary::start("canary", 0);
        let mut t = 0;
        while canary.status == Status::Running {
            t += 30 * S;
            eval(&mut canary, Evaluation::Pass, t, &rules);
        }
        assert_eq!(canary.status, Status::Completed);
        assert_eq!(canary.verdict, Verdict::Promote);
        assert_eq!(canary.stage, 2);
        // Nothing moves it afterwards.
        assert!(!eval(&mut canary, Evaluation::Fail, t + S, &rules));
        assert!(
            canary
                .apply(
                    Event::Command {
                        command: Command::Rollback,
                        at: t
                    },
                    &rules
                )
                .is_err()
        );
    }

    #[test]
    fn one_failure_holds_and_consecutive_failures_roll_back() {
        let stages = stages();
        let rules = rules(&stages);
        let mut canary = Canary::start("canary", 0);
        eval(&mut canary, Evaluation::Pass, S, &rules);
        eval(&mut canary, Evaluation::Fail, 2 * S, &rules);
        assert_eq!(
            (canary.verdict, canary.passes, canary.failures),
            (Verdict::Hold, 0, 1)
        );
        // A pass in between resets the count: noise does not add up.
        eval(&mut canary, Evaluation::Pass, 3 * S, &rules);
        eval(&mut canary, Evaluation::Fail, 4 * S, &rules);
        assert_eq!(canary.status, Status::Running);
        eval(&mut canary, Evaluation::Fail, 5 * S, &rules);
        assert_eq!(canary.status, Status::RolledBack);
        assert_eq!(
            (canary.verdict, canary.action),
            (Verdict::Rollback, Action::Rollback)
        );
    }

    #[test]
    fn rollback_can_happen_from_any_stage() {
        let stages = stages();
        let rules = rules(&stages);
        let mut canary = Canary::start("canary", 0);
        canary
            .apply(
                Event::Command {
                    command: Command::Promote,
                    at: S,
                },
                &rules,
            )
            .unwrap();
        assert_eq!(canary.stage, 1);
        eval(&mut canary, Evaluation::Fail, 2 * S, &rules);
        eval(&mut canary, Evaluation::Fail, 3 * S, &rules);
        assert_eq!(canary.status, Status::RolledBack);
        assert_eq!(canary.stage, 1);
    }

    #[test]
    fn no_data_holds_without_counting_unless_the_policy_says_fail() {
        let stages = stages();
        let mut rules = rules(&stages);
        let mut canary = Canary::start("canary", 0);
        eval(&mut canary, Evaluation::Pass, S, &rules);
        for t in 2..10 {
            eval(&mut canary, Evaluation::NoData, t * S, &rules);
        }
        assert_eq!(
            (canary.status, canary.passes, canary.failures),
            (Status::Running, 1, 0)
        );
        rules.nodata_fails = true;
        eval(&mut canary, Evaluation::NoData, 11 * S, &rules);
        eval(&mut canary, Evaluation::NoData, 12 * S, &rules);
        assert_eq!(canary.status, Status::RolledBack);
    }

    #[test]
    fn fleet_wide_degradation_holds_with_the_levels_remediation() {
        let stages = stages();
        let rules = rules(&stages);
        let mut canary = Canary::start("canary", 0);
        for (level, action) in [
            (Level::L1, Action::ScaleOut),
            (Level::L2, Action::DegradedPath),
            (Level::L3, Action::RateLimit),
        ] {
            eval(&mut canary, Evaluation::Degraded(level), S, &rules);
            assert_eq!((canary.verdict, canary.action), (Verdict::Hold, action));
            assert_eq!(canary.status, Status::Running);
        }
    }

    #[test]
    fn pause_ignores_evaluations_and_resume_starts_counting_afresh() {
        let stages = stages();
        let rules = rules(&stages);
        let mut canary = Canary::start("canary", 0);
        eval(&mut canary, Evaluation::Pass, S, &rules);
        canary
            .apply(
                Event::Command {
                    command: Command::Pause,
                    at: 2 * S,
                },
                &rules,
            )
            .unwrap();
        for t in 3..10 {
            assert!(!eval(&mut canary, Evaluation::Fail, t * S, &rules));
        }
        assert_eq!(canary.status, Status::Paused);
        canary
            .apply(
                Event::Command {
                    command: Command::Resume,
                    at: 10 * S,
                },
                &rules,
            )
            .unwrap();
        assert_eq!(
            (canary.status, canary.passes, canary.failures),
            (Status::Running, 0, 0)
        );
    }

    #[test]
    fn freeze_reports_but_never_moves() {
        let stages = stages();
        let rules = rules(&stages);
        let mut canary = Canary::start("canary", 0);
        canary
            .apply(
                Event::Command {
                    command: Command::Freeze,
                    at: 0,
                },
                &rules,
            )
            .unwrap();
        for t in 1..10 {
            eval(&mut canary, Evaluation::Pass, t * 60 * S, &rules);
        }
        assert_eq!((canary.status, canary.stage), (Status::Frozen, 0));
        for t in 10..15 {
            eval(&mut canary, Evaluation::Fail, t * 60 * S, &rules);
        }
        assert_eq!((canary.status, canary.stage), (Status::Frozen, 0));
        assert_eq!(canary.failures, 5);
        canary
            .apply(
                Event::Command {
                    command: Command::Resume,
                    at: 0,
                },
                &rules,
            )
            .unwrap();
        assert_eq!(canary.status, Status::Running);
    }

    #[test]
    fn manual_rollback_and_promote_act_at_once_and_count_as_changes() {
        let stages = stages();
        let rules = rules(&stages);
        let mut canary = Canary::start("canary", 0);
        let seq = canary.sequence;
        canary
            .apply(
                Event::Command {
                    command: Command::Promote,
                    at: S,
                },
                &rules,
            )
            .unwrap();
        assert_eq!((canary.stage, canary.verdict), (1, Verdict::Promote));
        assert_eq!(canary.sequence, seq + 1);
        canary
            .apply(
                Event::Command {
                    command: Command::Rollback,
                    at: 2 * S,
                },
                &rules,
            )
            .unwrap();
        assert_eq!(canary.status, Status::RolledBack);
        assert_eq!(canary.sequence, seq + 2);
    }

    #[test]
    fn state_round_trips_through_json_for_restarts() {
        let stages = stages();
        let rules = rules(&stages);
        let mut canary = Canary::start("gray-a", 5);
        eval(&mut canary, Evaluation::Pass, 70 * S, &rules);
        let json = serde_json::to_string(&canary).unwrap();
        let back: Canary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, canary);
    }
}
