//! The judge against real telemetry: simulated services (grayscope-sim)
//! ingested through the real pipeline into a real store, judged by the
//! rollouts registry, with the state persisted and reopened.
//!
//! Each test reads as a specification of one promise of DESIGN §6.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use grayscope_analyze::Error;
use grayscope_analyze::rollouts::{Rollouts, Source};
use grayscope_analyze::stage::{Command, Status};
use grayscope_core::Config;
use grayscope_core::config::RolloutConfig;
use grayscope_core::verdict::{Action, Judgement, Outcome, Verdict};
use grayscope_ingest::{
    Encoding, Labeler, Labeling, LogMiningBuilder, Pipeline, Signal, SourceRebuild,
};
use grayscope_queries::QueryEngine;
use grayscope_sim::{Generator, Scenario};
use grayscope_store::Store;
use prost::Message as _;
use tempfile::TempDir;

const SECOND: i64 = 1_000_000_000;

/// The configuration every test judges with: the canary is version 1.1.0,
/// judged every 10 s over the last minute, two stages of 20 s and two passes
/// each, two failures in a row roll back.
const CONFIG: &str = r#"
[[cohorts]]
name = "canary"
rule = 'service.version == "1.1.0"'

[[rollouts]]
name = "checkout-v2"
service = "checkout"
baseline = "baseline"
canary = ["canary"]
interval = "10s"
window = "1m"
failures_to_rollback = 2

[rollouts.limits]
p99_ms = 250
error_rate = 0.02

[[rollouts.checks.kernel]]
metric = "tcp.retransmits"

[[rollouts.stages]]
name = "shadow"
min_duration = "20s"
passes = 2

[[rollouts.stages]]
name = "full_takeover"
min_duration = "20s"
passes = 2
"#;

/// A scenario of `seconds` at 400 requests/s, a quarter to the canary,
/// with extra TOML (faults) appended.
fn scenario(seconds: u64, extra: &str) -> Scenario {
    let text = format!(
        "name = \"test\"\nexpect = \"promote\"\nduration = \"{seconds}s\"\nseed = 7\n\
         requests_per_second = 400\ncanary_share = 0.25\n{extra}"
    );
    toml::from_str(&text).expect("scenario")
}

/// One grayscope instance without listeners: store, pipeline, SQL, rollouts.
struct Instance {
    config: Config,
    store: Store,
    pipeline: Pipeline,
    engine: QueryEngine,
    rollouts: Rollouts,
}

impl Instance {
    async fn open(dir: &TempDir, config_text: &str, now: i64) -> Instance {
        let mut config = Config::parse(config_text, None).expect("config");
        config.data_dir = dir.path().to_owned();
        // As the server opens it: spans are logged as their requests.
        let rebuild = SourceRebuild::shared(Labeler::from_config(&config));
        let (store, _) =
            Store::open_with_rebuild(&config.data_dir, config.store.clone(), Some(rebuild))
                .await
                .expect("store");
        let mining = LogMiningBuilder::from_config(&config)
            .expect("miner")
            .in_memory();
        let labeling = Labeling::new(Labeler::from_config(&config), &config.trace_join);
        let pipeline = Pipeline::new(store.clone(), labeling).with_mining(mining);
        let engine = QueryEngine::new(store.clone()).expect("engine");
        let rollouts = Rollouts::open(
            &config.data_dir,
            engine.clone(),
            store.clone(),
            &config.rollouts,
            now,
        )
        .await
        .expect("rollouts");
        Instance {
            config,
            store,
            pipeline,
            engine,
            rollouts,
        }
    }

    async fn close(self) {
        self.store.close().await.expect("close");
    }

    /// Ingests the whole scenario, starting at `start`, through the pipeline.
    async fn ingest(&self, scenario: &Scenario, start: i64) {
        let mut generator = Generator::new(scenario, start);
        while !generator.done() {
            let slice = generator.next_slice(Duration::from_secs(1));
            for (signal, body) in [
                (Signal::Traces, slice.traces.encode_to_vec()),
                (Signal::Logs, slice.logs.encode_to_vec()),
                (Signal::Metrics, slice.metrics.encode_to_vec()),
            ] {
                self.pipeline
                    .export(signal, Encoding::Protobuf, body.into())
                    .await
                    .expect("export");
            }
        }
    }

    async fn evaluate(&self, at: i64) -> Judgement {
        let mut judgements = self.rollouts.evaluate("checkout-v2", at).await.unwrap();
        assert_eq!(judgements.len(), 1, "one canary, one judgement");
        judgements.remove(0)
    }

    async fn canary_status(&self) -> (Status, usize, u32) {
        let state = self.rollouts.get("checkout-v2").await.expect("rollout");
        let c = &state.canaries[0];
        (c.status, c.stage, c.passes)
    }

    async fn sql_count(&self, sql: &str) -> i64 {
        let answer = self
            .engine
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let column = answer.batches[0].column(0);
        arrow::array::cast::AsArray::as_primitive::<arrow::datatypes::Int64Type>(column).value(0)
    }
}

fn check<'a>(judgement: &'a Judgement, name: &str) -> &'a grayscope_core::verdict::CheckResult {
    judgement
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:?}", judgement.checks))
}

fn now() -> i64 {
    grayscope_analyze::rollouts::now_nanos()
}

#[tokio::test]
async fn a_healthy_canary_passes_every_check_and_is_promoted_through_the_stages() {
    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    instance.ingest(&scenario(120, ""), start).await;

    let mut verdicts = Vec::new();
    for tick in 6..=12 {
        let mut judgements = instance
            .rollouts
            .evaluate("checkout-v2", start + tick * 10 * SECOND)
            .await
            .unwrap();
        let Some(judgement) = judgements.pop() else {
            break; // completed: nothing left to judge
        };
        verdicts.push(judgement.verdict);
        if tick == 6 {
            for c in &judgement.checks {
                assert!(
                    !c.outcome.fails(c.direction),
                    "a healthy canary fails {}: {}",
                    c.name,
                    c.reason
                );
                assert!(!c.sql.is_empty(), "{} must show the SQL it ran", c.name);
            }
            let latency = check(&judgement, "latency");
            assert_eq!(latency.outcome, Outcome::Pass, "{}", latency.reason);
            assert!(latency.p_value.is_some() && latency.interval.is_some());
            // 60 s of 300 baseline and 100 canary requests a second.
            assert!(latency.baseline.samples > 15_000, "{:?}", latency.baseline);
            assert!(latency.canary.samples > 5_000, "{:?}", latency.canary);
            assert_eq!(judgement.score, 100.0, "{:?}", judgement.reasons);
        }
    }
    // Two passes and 20 s in each of two stages: hold, promote, hold, promote.
    assert_eq!(
        verdicts,
        [
            Verdict::Hold,
            Verdict::Promote,
            Verdict::Hold,
            Verdict::Promote
        ]
    );
    assert_eq!(instance.canary_status().await.0, Status::Completed);
    instance.close().await;
}

#[tokio::test]
async fn a_slower_canary_fails_latency_with_its_slowest_traces_as_evidence_and_rolls_back() {
    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    let slow = "[[faults]]\ntarget = \"canary\"\nfrom = \"0s\"\nlatency_factor = 1.5\n";
    instance.ingest(&scenario(70, slow), start).await;

    let first = instance.evaluate(start + 60 * SECOND).await;
    let latency = check(&first, "latency");
    assert_eq!(latency.outcome, Outcome::High, "{}", latency.reason);
    assert_eq!(first.verdict, Verdict::Hold, "one failure holds");
    let (low, high) = latency.interval.expect("HL interval");
    assert!(
        low > 0.0 && high > low,
        "shift interval {low}..{high} must be above zero"
    );
    assert!(latency.p_value.unwrap() < 0.01);
    assert!(latency.canary.value.unwrap() > latency.baseline.value.unwrap());
    // The evidence names real slow canary requests.
    assert!(!latency.evidence.is_empty(), "no evidence");
    for evidence in &latency.evidence {
        let trace = evidence.trace_id.as_deref().expect("trace id");
        let found = instance
            .sql_count(&format!(
                "SELECT count(*) FROM spans WHERE trace_id = '{trace}' AND cohort = 'canary'"
            ))
            .await;
        assert!(found >= 1, "evidence trace {trace} is not a canary span");
    }

    let second = instance.evaluate(start + 70 * SECOND).await;
    assert_eq!(second.verdict, Verdict::Rollback, "{:?}", second.reasons);
    assert_eq!(second.action, Action::Rollback);
    assert_eq!(instance.canary_status().await.0, Status::RolledBack);
    // A rolled-back canary is not judged again.
    assert!(
        instance
            .rollouts
            .evaluate("checkout-v2", start + 80 * SECOND)
            .await
            .unwrap()
            .is_empty()
    );
    instance.close().await;
}

#[tokio::test]
async fn a_new_error_template_fails_l2_with_the_template_and_three_example_lines() {
    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    let fault = "[[faults]]\ntarget = \"canary\"\nfrom = \"0s\"\n\
                 log = { text = \"redis timeout after {ms}ms on {host}\", severity = \"error\", per_request = 0.02 }\n";
    instance.ingest(&scenario(60, fault), start).await;

    let judgement = instance.evaluate(start + 60 * SECOND).await;
    let templates = check(&judgement, "templates");
    assert_eq!(templates.outcome, Outcome::High, "{}", templates.reason);
    assert!(
        templates.reason.contains("redis timeout after"),
        "{}",
        templates.reason
    );
    let lines: Vec<_> = templates
        .evidence
        .iter()
        .filter(|e| e.summary.contains("redis timeout after") && e.trace_id.is_some())
        .collect();
    assert!(
        lines.len() >= 3,
        "three example lines with trace ids: {:?}",
        templates.evidence
    );
    instance.close().await;
}

#[tokio::test]
async fn without_data_the_judge_holds_and_never_passes() {
    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    for tick in 1..=4 {
        let judgement = instance.evaluate(start + tick * 10 * SECOND).await;
        assert_eq!(judgement.verdict, Verdict::Hold);
        assert!(
            judgement
                .checks
                .iter()
                .all(|c| c.outcome == Outcome::NoData),
            "{:?}",
            judgement.checks
        );
        assert!(judgement.reasons[0].contains("not enough data"));
    }
    assert_eq!(instance.canary_status().await, (Status::Running, 0, 0));
    instance.close().await;
}

#[tokio::test]
async fn when_everyone_degrades_the_judge_holds_and_names_the_remediation() {
    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    // Healthy for a minute, then everyone four times as slow (p99 far over
    // the 250 ms limit) — a fleet problem, not the canary's.
    let fleet = "[[faults]]\ntarget = \"all\"\nfrom = \"60s\"\nlatency_factor = 4.0\n";
    instance.ingest(&scenario(120, fleet), start).await;

    let judgement = instance.evaluate(start + 120 * SECOND).await;
    assert_eq!(judgement.verdict, Verdict::Hold, "{:?}", judgement.reasons);
    assert_eq!(
        judgement.action,
        Action::ScaleOut,
        "{:?}",
        judgement.reasons
    );
    assert!(judgement.reasons[0].contains("everyone is degraded"));
    instance.close().await;
}

#[tokio::test]
async fn every_judgement_is_a_row_of_the_verdicts_table() {
    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    instance.ingest(&scenario(60, ""), start).await;
    instance.evaluate(start + 50 * SECOND).await;
    instance.evaluate(start + 60 * SECOND).await;
    assert_eq!(
        instance
            .sql_count(
                "SELECT count(*) FROM verdicts WHERE rollout = 'checkout-v2' AND cohort = 'canary'"
            )
            .await,
        2
    );
    assert_eq!(
        instance
            .sql_count("SELECT count(*) FROM verdicts WHERE verdict = 'hold' AND stage = 'shadow'")
            .await,
        1,
        "the first pass holds (two are needed), the second promotes"
    );
    instance.close().await;
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_rollout_resumes_where_it_stood() {
    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    instance.ingest(&scenario(90, ""), start).await;
    instance.evaluate(start + 60 * SECOND).await;
    instance.evaluate(start + 70 * SECOND).await;
    instance.evaluate(start + 80 * SECOND).await;
    let before = instance.rollouts.get("checkout-v2").await.unwrap();
    assert_eq!(
        before.canaries[0].stage, 1,
        "promoted into the second stage"
    );
    assert_eq!(before.canaries[0].passes, 1);
    instance.close().await;

    // A new process: the same data directory and configuration.
    let instance = Instance::open(&dir, CONFIG, start + 200 * SECOND).await;
    let after = instance.rollouts.get("checkout-v2").await.unwrap();
    assert_eq!(
        after.canaries, before.canaries,
        "the canary's state survives"
    );
    assert_eq!(after.created_at, start, "the rollout is not restarted");
    assert_eq!(instance.sql_count("SELECT count(*) FROM verdicts").await, 3);
    // It goes on counting from there: one more pass completes the stage.
    instance.evaluate(start + 90 * SECOND).await;
    assert_eq!(instance.canary_status().await.0, Status::Completed);
    instance.close().await;
}

#[tokio::test]
async fn operators_pause_freeze_promote_and_roll_back() {
    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    instance.ingest(&scenario(90, ""), start).await;
    let rollouts = &instance.rollouts;
    let at = |s: i64| start + s * SECOND;

    // Paused: evaluations are reported but not counted.
    rollouts
        .command("checkout-v2", None, Command::Pause, at(55))
        .await
        .unwrap();
    assert!(
        instance
            .rollouts
            .evaluate("checkout-v2", at(60))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(instance.canary_status().await, (Status::Paused, 0, 0));
    rollouts
        .command("checkout-v2", None, Command::Resume, at(61))
        .await
        .unwrap();

    // Frozen: judged, never moved.
    rollouts
        .command("checkout-v2", Some("canary"), Command::Freeze, at(62))
        .await
        .unwrap();
    for s in [70, 80, 90] {
        let judgement = instance.evaluate(at(s)).await;
        assert!(
            judgement.reasons[0].contains("frozen"),
            "{:?}",
            judgement.reasons
        );
    }
    let (status, stage, _) = instance.canary_status().await;
    assert_eq!((status, stage), (Status::Frozen, 0));

    // Promote now, then roll back now; nothing moves a rolled-back canary.
    let state = rollouts
        .command("checkout-v2", None, Command::Promote, at(91))
        .await
        .unwrap();
    assert_eq!(state.canaries[0].stage, 1);
    let state = rollouts
        .command("checkout-v2", None, Command::Rollback, at(92))
        .await
        .unwrap();
    assert_eq!(state.canaries[0].status, Status::RolledBack);
    assert_eq!(state.canaries[0].verdict, Verdict::Rollback);
    let refused = rollouts
        .command("checkout-v2", None, Command::Resume, at(93))
        .await;
    assert!(matches!(refused, Err(Error::Refused(_))), "{refused:?}");

    // Naming what does not exist is an error, not a silent no-op.
    assert!(matches!(
        rollouts.command("nope", None, Command::Pause, at(94)).await,
        Err(Error::NoSuchRollout(_))
    ));
    assert!(matches!(
        rollouts
            .command("checkout-v2", Some("gray-b"), Command::Pause, at(94))
            .await,
        Err(Error::NoSuchCanary { .. })
    ));
    // Every command is a row of the verdicts table too.
    assert_eq!(
        instance
            .sql_count("SELECT count(*) FROM verdicts WHERE reasons[1] LIKE 'operator command%'")
            .await,
        5
    );
    instance.close().await;
}

#[tokio::test]
async fn rollouts_created_through_the_api_stay_and_configured_ones_follow_the_file() {
    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    let mut api: RolloutConfig = instance.config.rollouts[0].clone();
    api.name = "search-v7".into();
    api.service = "search".into();
    let created = instance.rollouts.create(api.clone(), start).await.unwrap();
    assert_eq!(created.source, Source::Api);
    assert!(matches!(
        instance.rollouts.create(api.clone(), start).await,
        Err(Error::RolloutExists(_))
    ));
    let mut bad = api.clone();
    bad.name = "bad".into();
    bad.canary.clear();
    assert!(matches!(
        instance.rollouts.create(bad, start).await,
        Err(Error::InvalidRollout(_))
    ));
    instance.close().await;

    // Restart with a file that no longer defines checkout-v2.
    let instance = Instance::open(&dir, "", start + 10 * SECOND).await;
    let names: Vec<String> = instance
        .rollouts
        .list()
        .await
        .into_iter()
        .map(|r| r.config.name)
        .collect();
    assert_eq!(names, ["search-v7"]);
    let deleted = instance.rollouts.delete("search-v7").await.unwrap();
    assert_eq!(deleted.config.name, "search-v7");
    assert!(instance.rollouts.list().await.is_empty());
    instance.close().await;
}

#[tokio::test]
async fn evaluations_that_keep_interval_slices_judge_exactly_as_a_fresh_one() {
    use grayscope_analyze::SliceCache;
    use grayscope_analyze::judge::{assess, assess_with};

    let dir = TempDir::new().unwrap();
    let start = now() - 300 * SECOND;
    let instance = Instance::open(&dir, CONFIG, start).await;
    // Healthy for a minute, then slower and failing: the judgements change
    // while the slices are reused.
    let faults = "[[faults]]\ntarget = \"canary\"\nfrom = \"60s\"\nlatency_factor = 1.4\nextra_error_rate = 0.05\n";
    instance.ingest(&scenario(150, faults), start).await;
    let rollout = &instance.config.rollouts[0];
    let slices = SliceCache::new();
    // Ends on and off the interval grid, as a real clock gives them.
    for offset_ms in [
        60_000, 70_000, 80_250, 90_250, 100_900, 110_900, 120_000, 140_000,
    ] {
        let at = start + offset_ms * 1_000_000;
        let kept = assess_with(&instance.engine, rollout, "canary", at, &slices)
            .await
            .unwrap()
            .judgement;
        let fresh = assess(&instance.engine, rollout, "canary", at)
            .await
            .unwrap()
            .judgement;
        // Everything but the example rows (`LIMIT 3` without an order may
        // pick other rows each time it runs).
        let figures = |judgement: &Judgement| {
            judgement
                .checks
                .iter()
                .map(|check| {
                    let mut check = serde_json::to_value(check).unwrap();
                    check.as_object_mut().unwrap().remove("evidence");
                    check
                })
                .collect::<Vec<_>>()
        };
        for (kept, fresh) in figures(&kept).into_iter().zip(figures(&fresh)) {
            assert_eq!(kept, fresh, "at +{offset_ms} ms");
        }
        assert_eq!(kept.score, fresh.score);
    }
    assert!(!slices.is_empty(), "no slice was kept");
    instance.close().await;
}
