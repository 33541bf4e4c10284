//! The rollouts API on the HTTP API server: define, inspect, steer and
//! delete rollouts.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /api/v1/rollouts` | every rollout, with each canary's stage, status and verdict |
//! | `POST /api/v1/rollouts` | start verifying a rollout (body: the `[[rollouts]]` fields as JSON) |
//! | `GET /api/v1/rollouts/{name}` | one rollout, with each canary's last judgement and its evidence |
//! | `DELETE /api/v1/rollouts/{name}` | stop verifying it (its verdicts stay in SQL) |
//! | `POST /api/v1/rollouts/{name}/{pause,resume,freeze,promote,rollback}` | an operator's command, for every canary or `?cohort=` one |
//! | `POST /api/v1/rollouts/{name}/evaluate` | judge it now instead of at its next interval |

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use grayscope_analyze::rollouts::{RolloutState, Rollouts, now_nanos};
use grayscope_analyze::stage::Command;
use grayscope_core::config::RolloutConfig;
use serde::Deserialize;
use serde_json::json;

/// The rollouts routes.
pub fn router(rollouts: Rollouts) -> Router {
    Router::new()
        .route("/api/v1/rollouts", get(list).post(create))
        .route("/api/v1/rollouts/{name}", get(show).delete(remove))
        .route("/api/v1/rollouts/{name}/{action}", post(act))
        .with_state(rollouts)
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn failure(e: grayscope_analyze::Error) -> Response {
    use grayscope_analyze::Error;
    let status = match &e {
        Error::NoSuchRollout(_) | Error::NoSuchCanary { .. } => StatusCode::NOT_FOUND,
        Error::RolloutExists(_) | Error::Refused(_) => StatusCode::CONFLICT,
        Error::InvalidRollout(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e)
}

/// A rollout as the list shows it.
fn summary(rollout: &RolloutState) -> serde_json::Value {
    json!({
        "name": rollout.config.name,
        "service": rollout.config.service,
        "baseline": rollout.config.baseline,
        "source": rollout.source,
        "canaries": rollout.canaries.iter().map(|c| json!({
            "cohort": c.cohort,
            "stage": c.stage_name(&rollout.config.stages),
            "status": c.status,
            "verdict": c.verdict,
            "action": c.action,
            "sequence": c.sequence,
            "score": rollout.last.get(&c.cohort).map(|j| j.score),
        })).collect::<Vec<_>>(),
    })
}

async fn list(State(rollouts): State<Rollouts>) -> Response {
    let all: Vec<_> = rollouts.list().await.iter().map(summary).collect();
    Json(json!({ "rollouts": all })).into_response()
}

async fn create(State(rollouts): State<Rollouts>, body: axum::body::Bytes) -> Response {
    let config: RolloutConfig = match serde_json::from_slice(&body) {
        Ok(config) => config,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid rollout: {e}")),
    };
    match rollouts.create(config, now_nanos()).await {
        Ok(rollout) => (StatusCode::CREATED, Json(rollout)).into_response(),
        Err(e) => failure(e),
    }
}

async fn show(State(rollouts): State<Rollouts>, Path(name): Path<String>) -> Response {
    match rollouts.get(&name).await {
        Some(rollout) => Json(rollout).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no rollout named {name:?}")),
    }
}

async fn remove(State(rollouts): State<Rollouts>, Path(name): Path<String>) -> Response {
    match rollouts.delete(&name).await {
        Ok(rollout) => Json(summary(&rollout)).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
struct Target {
    cohort: Option<String>,
}

async fn act(
    State(rollouts): State<Rollouts>,
    Path((name, action)): Path<(String, String)>,
    Query(target): Query<Target>,
) -> Response {
    let command = match action.as_str() {
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "freeze" => Command::Freeze,
        "promote" => Command::Promote,
        "rollback" => Command::Rollback,
        "evaluate" => {
            return match rollouts.evaluate(&name, now_nanos()).await {
                Ok(judgements) => Json(json!({ "judgements": judgements })).into_response(),
                Err(e) => failure(e),
            };
        }
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "no action {other:?}: use pause, resume, freeze, promote, rollback or evaluate"
                ),
            );
        }
    };
    match rollouts
        .command(&name, target.cohort.as_deref(), command, now_nanos())
        .await
    {
        Ok(rollout) => Json(summary(&rollout)).into_response(),
        Err(e) => failure(e),
    }
}
