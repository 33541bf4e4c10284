//! The rollouts under verification, their canaries' states, and the loop
//! that judges them every interval.
//!
//! State lives in `<data_dir>/rollouts.json` (written atomically after
//! every change), so a restart resumes each canary in its stage with its
//! counts and its signal sequence. Every judgement becomes a row of the
//! `verdicts` table; every change of a canary's verdict, stage or status is
//! also published as a [`Change`] for the sinks to deliver.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use grayscope_core::Table;
use grayscope_core::config::RolloutConfig;
use grayscope_core::signal::{Signal, SignalLog};
use grayscope_core::verdict::{Action, Judgement, Verdict};
use grayscope_queries::QueryEngine;
use grayscope_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, broadcast};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::judge::assess_with;
use crate::slices::SliceCache;
use crate::stage::{Canary, Command, Event, Rules, Status};
use crate::verdict_rows::{VerdictRow, batch};

/// Where a rollout was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// In the configuration file: it follows the file across restarts.
    Config,
    /// Through the HTTP API: it stays until deleted.
    Api,
}

/// A rollout, its canaries and their last judgements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    /// The definition.
    pub config: RolloutConfig,
    /// Where it was defined.
    pub source: Source,
    /// When it started (nanoseconds since the epoch).
    pub created_at: i64,
    /// One state per canary cohort.
    pub canaries: Vec<Canary>,
    /// The last judgement of each canary, by cohort.
    #[serde(default)]
    pub last: BTreeMap<String, Judgement>,
    /// When the next evaluation is due.
    #[serde(default)]
    pub next_due: i64,
}

impl RolloutState {
    fn new(config: RolloutConfig, source: Source, now: i64) -> RolloutState {
        let canaries = config
            .canary
            .iter()
            .map(|c| Canary::start(c, now))
            .collect();
        // The first judgement comes after one interval of telemetry.
        let next_due = now + config.interval.get().as_nanos() as i64;
        RolloutState {
            config,
            source,
            created_at: now,
            canaries,
            last: BTreeMap::new(),
            next_due,
        }
    }
}

/// The stage machine's rules for a rollout's definition.
fn rules(config: &RolloutConfig) -> Rules<'_> {
    Rules {
        stages: &config.stages,
        failures_to_rollback: config.failures_to_rollback,
        nodata_fails: config.nodata == grayscope_core::config::NoDataPolicy::Rollback,
    }
}

/// A change of a canary: a new verdict, stage or status. The sinks turn
/// each into a signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The judgement behind it (for a command, a judgement without checks).
    pub judgement: Judgement,
    /// The canary's status after it.
    pub status: Status,
    /// The canary's sequence number after it: strictly increasing per
    /// canary, across restarts.
    pub sequence: u64,
    /// When (nanoseconds since the epoch).
    pub time: i64,
}

impl Change {
    /// The signal document routers receive for this change.
    pub fn signal(&self) -> Signal {
        Signal::new(
            &self.judgement,
            self.status.as_str(),
            self.sequence,
            self.time,
        )
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    rollouts: BTreeMap<String, RolloutState>,
}

/// The rollouts under verification. Cheap to clone.
#[derive(Clone)]
pub struct Rollouts {
    inner: Arc<Inner>,
}

struct Inner {
    engine: QueryEngine,
    store: Store,
    path: PathBuf,
    state: Mutex<Persisted>,
    changes: broadcast::Sender<Change>,
    /// The sinks' durable outbox: every change is appended (and synced)
    /// before the state that made it is saved.
    log: std::sync::OnceLock<Arc<dyn SignalLog>>,
    /// Per rollout, the interval slices its evaluations keep.
    slices: std::sync::Mutex<std::collections::HashMap<String, SliceCache>>,
}

impl std::fmt::Debug for Rollouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollouts")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

impl Rollouts {
    /// Loads the saved state from `data_dir` and reconciles it with the
    /// rollouts of the configuration: new ones start, changed ones keep
    /// their canaries' states under the new definition, ones that left the
    /// file are dropped (API-defined ones stay).
    pub async fn open(
        data_dir: &Path,
        engine: QueryEngine,
        store: Store,
        configured: &[RolloutConfig],
        now: i64,
    ) -> Result<Rollouts> {
        let path = data_dir.join("rollouts.json");
        let mut persisted: Persisted = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::State {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
            Err(e) => {
                return Err(Error::State {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        persisted.rollouts.retain(|name, r| {
            r.source == Source::Api || configured.iter().any(|c| &c.name == name)
        });
        for config in configured {
            match persisted.rollouts.get_mut(&config.name) {
                Some(existing) => {
                    for cohort in &config.canary {
                        if !existing.canaries.iter().any(|c| &c.cohort == cohort) {
                            existing.canaries.push(Canary::start(cohort, now));
                        }
                    }
                    existing
                        .canaries
                        .retain(|c| config.canary.contains(&c.cohort));
                    existing.config = config.clone();
                    existing.source = Source::Config;
                }
                None => {
                    persisted.rollouts.insert(
                        config.name.clone(),
                        RolloutState::new(config.clone(), Source::Config, now),
                    );
                }
            }
        }
        let (changes, _) = broadcast::channel(1024);
        let rollouts = Rollouts {
            inner: Arc::new(Inner {
                engine,
                store,
                path,
                state: Mutex::new(persisted),
                changes,
                log: std::sync::OnceLock::new(),
                slices: Default::default(),
            }),
        };
        let state = rollouts.inner.state.lock().await;
        rollouts.save(&state).await?;
        drop(state);
        Ok(rollouts)
    }

    /// Makes every later change durable in `log` before the state is saved,
    /// and raises each canary's sequence past what `log` already holds (a
    /// change appended just before a crash keeps its id). Once only.
    pub async fn attach_log(&self, log: Arc<dyn SignalLog>) -> Result<()> {
        let mut state = self.inner.state.lock().await;
        let mut raised = false;
        for rollout in state.rollouts.values_mut() {
            for canary in &mut rollout.canaries {
                if let Some(last) = log.last_sequence(&rollout.config.name, &canary.cohort)
                    && last > canary.sequence
                {
                    canary.sequence = last;
                    raised = true;
                }
            }
        }
        self.inner
            .log
            .set(log)
            .map_err(|_| Error::Internal("a signal log is already attached".into()))?;
        if raised {
            self.save(&state).await?;
        }
        Ok(())
    }

    /// Subscribes to changes of every canary.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    async fn save(&self, state: &Persisted) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| Error::Internal(e.to_string()))?;
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// Every rollout's state.
    pub async fn list(&self) -> Vec<RolloutState> {
        self.inner
            .state
            .lock()
            .await
            .rollouts
            .values()
            .cloned()
            .collect()
    }

    /// One rollout's state.
    pub async fn get(&self, name: &str) -> Option<RolloutState> {
        self.inner.state.lock().await.rollouts.get(name).cloned()
    }

    /// Starts verifying a rollout defined through the API.
    pub async fn create(&self, config: RolloutConfig, now: i64) -> Result<RolloutState> {
        config
            .validate("rollout")
            .map_err(|e| Error::InvalidRollout(e.to_string()))?;
        let mut state = self.inner.state.lock().await;
        if state.rollouts.contains_key(&config.name) {
            return Err(Error::RolloutExists(config.name));
        }
        let rollout = RolloutState::new(config, Source::Api, now);
        state
            .rollouts
            .insert(rollout.config.name.clone(), rollout.clone());
        self.save(&state).await?;
        Ok(rollout)
    }

    /// Stops verifying a rollout. Its verdicts stay in the `verdicts` table.
    pub async fn delete(&self, name: &str) -> Result<RolloutState> {
        let mut state = self.inner.state.lock().await;
        let removed = state
            .rollouts
            .remove(name)
            .ok_or_else(|| Error::NoSuchRollout(name.to_owned()))?;
        self.save(&state).await?;
        self.slices_of(name, true);
        Ok(removed)
    }

    /// Applies an operator's command to one canary (or all of them).
    pub async fn command(
        &self,
        name: &str,
        cohort: Option<&str>,
        command: Command,
        now: i64,
    ) -> Result<RolloutState> {
        let mut state = self.inner.state.lock().await;
        let rollout = state
            .rollouts
            .get_mut(name)
            .ok_or_else(|| Error::NoSuchRollout(name.to_owned()))?;
        if let Some(cohort) = cohort
            && !rollout.canaries.iter().any(|c| c.cohort == cohort)
        {
            return Err(Error::NoSuchCanary {
                rollout: name.to_owned(),
                cohort: cohort.to_owned(),
            });
        }
        let config = rollout.config.clone();
        let rules = rules(&config);
        let mut rows = Vec::new();
        for canary in rollout.canaries.iter_mut() {
            if cohort.is_some_and(|c| c != canary.cohort) {
                continue;
            }
            let changed = canary
                .apply(Event::Command { command, at: now }, &rules)
                .map_err(|e| Error::Refused(e.to_string()))?;
            let judgement = Judgement {
                rollout: config.name.clone(),
                cohort: canary.cohort.clone(),
                baseline: config.baseline.clone(),
                stage: canary.stage_name(&config.stages).to_owned(),
                verdict: canary.verdict,
                action: canary.action,
                score: rollout.last.get(&canary.cohort).map_or(0.0, |j| j.score),
                reasons: vec![format!("operator command: {command:?}").to_lowercase()],
                checks: Vec::new(),
                window_start: now,
                window_end: now,
            };
            rows.push((judgement, canary.clone(), changed));
        }
        let snapshot = rollout.clone();
        self.record(&rows).await?;
        self.save(&state).await?;
        Ok(snapshot)
    }

    /// Evaluates every rollout whose interval has come, at `now`.
    pub async fn evaluate_due(&self, now: i64) -> Result<()> {
        let due: Vec<String> = {
            let state = self.inner.state.lock().await;
            state
                .rollouts
                .values()
                .filter(|r| r.next_due <= now && r.canaries.iter().any(|c| !c.status.is_final()))
                .map(|r| r.config.name.clone())
                .collect()
        };
        for name in due {
            if let Err(error) = self.evaluate(&name, now).await {
                tracing::warn!(rollout = %name, %error, "evaluation failed; will retry next interval");
            }
        }
        Ok(())
    }

    /// The slices kept for the rollout `name` (forgotten with `forget`).
    fn slices_of(&self, name: &str, forget: bool) -> SliceCache {
        let mut all = self.inner.slices.lock().unwrap_or_else(|e| e.into_inner());
        if forget {
            all.remove(name);
            return SliceCache::new();
        }
        all.entry(name.to_owned()).or_default().clone()
    }

    /// Evaluates every canary of one rollout at `now`, moves their stages,
    /// records the judgements and publishes the changes.
    pub async fn evaluate(&self, name: &str, now: i64) -> Result<Vec<Judgement>> {
        let config = {
            let mut state = self.inner.state.lock().await;
            let rollout = state
                .rollouts
                .get_mut(name)
                .ok_or_else(|| Error::NoSuchRollout(name.to_owned()))?;
            rollout.next_due = now + rollout.config.interval.get().as_nanos() as i64;
            rollout.config.clone()
        };
        // Judge outside the lock: queries take time.
        let slices = self.slices_of(name, false);
        let mut assessed = Vec::new();
        for cohort in &config.canary {
            assessed.push(assess_with(&self.inner.engine, &config, cohort, now, &slices).await?);
        }
        let mut state = self.inner.state.lock().await;
        let Some(rollout) = state.rollouts.get_mut(name) else {
            return Ok(Vec::new()); // deleted meanwhile
        };
        let rules_config = rollout.config.clone();
        let rules = rules(&rules_config);
        let mut rows = Vec::new();
        for assessment in assessed {
            let Some(canary) = rollout
                .canaries
                .iter_mut()
                .find(|c| c.cohort == assessment.judgement.cohort)
            else {
                continue;
            };
            if canary.status.is_final() || canary.status == Status::Paused {
                continue;
            }
            let changed = canary
                .apply(
                    Event::Evaluated {
                        evaluation: assessment.evaluation,
                        at: now,
                    },
                    &rules,
                )
                .unwrap_or(false);
            let mut judgement = assessment.judgement;
            judgement.stage = canary.stage_name(&rules_config.stages).to_owned();
            judgement.verdict = canary.verdict;
            judgement.action = canary.action;
            if canary.status == Status::Frozen {
                judgement
                    .reasons
                    .insert(0, "frozen by an operator: the stage does not move".into());
            }
            rollout
                .last
                .insert(canary.cohort.clone(), judgement.clone());
            rows.push((judgement, canary.clone(), changed));
        }
        let judgements = rows.iter().map(|(j, _, _)| j.clone()).collect();
        self.record(&rows).await?;
        self.save(&state).await?;
        Ok(judgements)
    }

    /// Appends judgements to the `verdicts` table and publishes changes.
    async fn record(&self, rows: &[(Judgement, Canary, bool)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let verdict_rows: Vec<VerdictRow<'_>> = rows
            .iter()
            .map(|(judgement, canary, changed)| VerdictRow {
                judgement,
                canary,
                changed: *changed,
            })
            .collect();
        let batch = batch(&verdict_rows)?;
        self.inner
            .store
            .append(Table::Verdicts, batch)
            .await
            .map_err(|source| Error::Store { source })?;
        let changes: Vec<Change> = rows
            .iter()
            .filter(|(_, _, changed)| *changed)
            .map(|(judgement, canary, _)| Change {
                judgement: judgement.clone(),
                status: canary.status,
                sequence: canary.sequence,
                time: canary.changed_at,
            })
            .collect();
        if let Some(log) = self.inner.log.get().cloned()
            && !changes.is_empty()
        {
            let signals: Vec<Signal> = changes.iter().map(Change::signal).collect();
            tokio::task::spawn_blocking(move || log.append(&signals))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| Error::SignalLog(e.to_string()))?;
        }
        for change in changes {
            // No subscriber is not an error: nobody listens yet.
            let _ = self.inner.changes.send(change);
        }
        Ok(())
    }

    /// Judges every due rollout once a second until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(error) = self.evaluate_due(now_nanos()).await {
                tracing::warn!(%error, "judging rollouts failed");
            }
        }
    }
}

/// The verdict a router should act on now for a canary.
pub fn current(canary: &Canary) -> (Verdict, Action) {
    (canary.verdict, canary.action)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let temp = path.with_extension("json.tmp");
    let io = |e: std::io::Error| Error::State {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut file = std::fs::File::create(&temp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}
