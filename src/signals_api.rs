//! What routers and Prometheus call on the HTTP API server.
//!
//! | method and path | for |
//! |---|---|
//! | `GET /api/v1/rollouts/{name}/verdict[?cohort=]` | Argo Rollouts' `web` metric (docs/signals.md has the AnalysisTemplate) |
//! | `POST /api/v1/flagger/{pre-rollout,rollout,confirm-promotion,rollback}` | Flagger's webhooks, with Flagger's own payload (docs/signals.md has the Canary) |
//! | `GET /metrics` | Prometheus |
//!
//! The verdict endpoint and Flagger's hooks answer from the rollout state
//! as it is now: they never wait for a judgement.

use std::time::Instant;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use grayscope_analyze::rollouts::{RolloutState, Rollouts};
use grayscope_analyze::stage::Status;
use grayscope_core::Table;
use grayscope_core::verdict::{Action, Verdict};
use grayscope_sinks::Outbox;
use grayscope_sinks::metrics::{CanaryView, HealthFigures, Metrics};
use grayscope_store::Store;
use serde::Deserialize;
use serde_json::{Value, json};

/// What the routes read.
#[derive(Clone)]
pub struct SignalsApi {
    /// The rollouts' state.
    pub rollouts: Rollouts,
    /// The metrics registry.
    pub metrics: Metrics,
    /// The store, for its health figures.
    pub store: Store,
    /// The outbox, for the destinations' backlogs.
    pub outbox: Outbox,
}

/// The routes.
pub fn router(api: SignalsApi) -> Router {
    Router::new()
        .route("/api/v1/rollouts/{name}/verdict", get(verdict))
        .route("/api/v1/flagger/{hook}", post(flagger))
        .route("/metrics", get(metrics))
        .with_state(api)
}

/// Counts and times SQL requests for `/metrics`.
pub async fn count_queries(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let outcome = match response.status() {
        s if s.is_success() => "ok",
        s if s.is_client_error() => "user_error",
        _ => "error",
    };
    metrics.queries.with_label_values(&[outcome]).inc();
    metrics
        .query_seconds
        .with_label_values::<&str>(&[])
        .observe(started.elapsed().as_secs_f64());
    response
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

#[derive(Deserialize)]
struct CohortQuery {
    cohort: Option<String>,
}

/// The verdict a router acts on, for one canary or all of a rollout's.
/// With several canaries: `rollback` if any is rolled back, `promote` only
/// if all are promoted, else `hold`.
fn verdict_document(rollout: &RolloutState, cohort: Option<&str>) -> Option<Value> {
    let canaries: Vec<_> = rollout
        .canaries
        .iter()
        .filter(|c| cohort.is_none_or(|k| c.cohort == k))
        .collect();
    if canaries.is_empty() {
        return None;
    }
    let effective = |c: &grayscope_analyze::stage::Canary| match c.status {
        Status::RolledBack => Verdict::Rollback,
        Status::Completed => Verdict::Promote,
        _ => c.verdict,
    };
    let verdict = if canaries.iter().any(|c| effective(c) == Verdict::Rollback) {
        Verdict::Rollback
    } else if canaries.iter().all(|c| effective(c) == Verdict::Promote) {
        Verdict::Promote
    } else {
        Verdict::Hold
    };
    let action = if canaries.len() == 1 {
        canaries[0].action
    } else {
        match verdict {
            Verdict::Rollback => Action::Rollback,
            Verdict::Promote => Action::Promote,
            Verdict::Hold => Action::Hold,
        }
    };
    let per_canary: Vec<Value> = canaries
        .iter()
        .map(|c| {
            let last = rollout.last.get(&c.cohort);
            json!({
                "cohort": c.cohort,
                "stage": c.stage_name(&rollout.config.stages),
                "status": c.status,
                "verdict": effective(c),
                "action": c.action,
                "sequence": c.sequence,
                "score": last.map(|j| j.score),
                "reasons": last.map(|j| j.reasons.clone()).unwrap_or_default(),
            })
        })
        .collect();
    let first = &per_canary[0];
    Some(json!({
        "rollout": rollout.config.name,
        "cohort": cohort,
        "verdict": verdict,
        "action": action,
        "promote": verdict == Verdict::Promote,
        "hold": verdict == Verdict::Hold,
        "rollback": verdict == Verdict::Rollback,
        "healthy": verdict != Verdict::Rollback,
        "stage": first["stage"],
        "status": first["status"],
        "score": canaries.iter().filter_map(|c| rollout.last.get(&c.cohort).map(|j| j.score)).reduce(f64::min),
        "sequence": canaries.iter().map(|c| c.sequence).max(),
        "reasons": per_canary.iter().flat_map(|c| c["reasons"].as_array().cloned().unwrap_or_default()).collect::<Vec<_>>(),
        "canaries": per_canary,
    }))
}

async fn verdict(
    State(api): State<SignalsApi>,
    Path(name): Path<String>,
    Query(query): Query<CohortQuery>,
) -> Response {
    let Some(rollout) = api.rollouts.get(&name).await else {
        return error(StatusCode::NOT_FOUND, format!("no rollout named {name:?}"));
    };
    match verdict_document(&rollout, query.cohort.as_deref()) {
        Some(doc) => Json(doc).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("rollout {name:?} has no canary {:?}", query.cohort),
        ),
    }
}

/// The body Flagger posts to every webhook.
#[derive(Debug, Deserialize)]
struct FlaggerPayload {
    name: String,
    namespace: String,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    #[allow(dead_code)]
    checksum: String,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
}

async fn flagger(
    State(api): State<SignalsApi>,
    Path(hook): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let payload: FlaggerPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("not a Flagger webhook payload: {e}"),
            );
        }
    };
    // The rollout is the webhook's `metadata.rollout`, else the Canary's name.
    let name = payload
        .metadata
        .get("rollout")
        .cloned()
        .unwrap_or_else(|| payload.name.clone());
    let cohort = payload.metadata.get("cohort").cloned();
    let Some(rollout) = api.rollouts.get(&name).await else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no rollout named {name:?} (Canary {}/{}; set metadata.rollout)",
                payload.namespace, payload.name
            ),
        );
    };
    let Some(doc) = verdict_document(&rollout, cohort.as_deref()) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("rollout {name:?} has no canary {cohort:?}"),
        );
    };
    let verdict = doc["verdict"].as_str().unwrap_or("hold").to_owned();
    // Flagger reads only the status: 2xx is yes.
    let yes = match hook.as_str() {
        // Ready to take traffic: judged and not rolled back.
        "pre-rollout" | "rollout" | "confirm-rollout" | "confirm-traffic-increase" => {
            verdict != "rollback"
        }
        "confirm-promotion" => verdict == "promote",
        // A 2xx makes Flagger roll back.
        "rollback" => verdict == "rollback",
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "no Flagger hook {other:?}: use pre-rollout, rollout, confirm-rollout, confirm-traffic-increase, confirm-promotion or rollback"
                ),
            );
        }
    };
    tracing::debug!(%hook, rollout = %name, phase = %payload.phase, %verdict, yes, "Flagger webhook");
    let status = if yes {
        StatusCode::OK
    } else {
        StatusCode::PRECONDITION_FAILED
    };
    (
        status,
        Json(json!({ "hook": hook, "answer": yes, "verdict": doc })),
    )
        .into_response()
}

async fn metrics(State(api): State<SignalsApi>) -> Response {
    let rollouts = api.rollouts.list().await;
    let views: Vec<CanaryView<'_>> = rollouts
        .iter()
        .flat_map(|r| {
            r.canaries.iter().map(move |c| CanaryView {
                rollout: &r.config.name,
                cohort: &c.cohort,
                stages: r.config.stages.iter().map(|s| s.name.as_str()).collect(),
                stage: c.stage,
                status: c.status.as_str(),
                verdict: c.verdict,
                sequence: c.sequence,
                last: r.last.get(&c.cohort),
            })
        })
        .collect();
    let store = api.store.store_stats();
    let health = HealthFigures {
        tables: Table::ALL
            .iter()
            .map(|t| {
                let s = api.store.stats(*t);
                (
                    t.name(),
                    s.memory_rows as u64,
                    s.part_rows,
                    s.memory_bytes as u64,
                    s.part_bytes,
                )
            })
            .collect(),
        memory_bytes: store.memory_bytes as u64,
        memory_limit: store.memory_limit as u64,
        rejected_appends: store.rejected_appends,
        flushes: store.flushes,
        flush_errors: store.flush_errors,
        flush_lag: store.flush_lag,
        wal_bytes: store.wal.bytes_on_disk,
        wal_records: store.wal.appended_records,
        wal_fsyncs: store.wal.fsyncs,
    };
    let backlog: Vec<(String, u64)> = api.outbox.backlog().into_iter().collect();
    match api.metrics.render(&views, &health, &backlog) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
