//! Reloading the cohort rules without a restart: on SIGHUP, and on
//! `POST /api/v1/admin/reload`. `GET /api/v1/admin/cohorts` shows the rules
//! in use and what the trace join holds.
//!
//! A reload reads the whole configuration file again and validates it; an
//! invalid file changes nothing. `[[cohorts]]` and `[gray_flags]` apply to
//! every export request that starts afterwards; records already stored keep
//! their cohort. Other changes (addresses, the store, `[trace_join]`) are
//! reported as needing a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::{Router, http};
use grayscope_core::Config;
use grayscope_ingest::{Labeler, Labeling};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Reloads the cohort configuration of a running server.
#[derive(Debug)]
pub struct Reloader {
    path: Option<PathBuf>,
    labeling: Labeling,
    /// The configuration in use, to tell what a reload cannot apply.
    current: Mutex<Config>,
}

/// Why a reload changed nothing.
#[derive(Debug)]
enum ReloadError {
    /// The server started without a configuration file.
    NoFile,
    /// The file does not load.
    Invalid(anyhow::Error),
}

impl Reloader {
    /// A reloader for the server started from `path` with `config`.
    pub fn new(path: Option<PathBuf>, labeling: Labeling, config: Config) -> Reloader {
        Reloader {
            path,
            labeling,
            current: Mutex::new(config),
        }
    }

    /// Reads the file again and puts its rules in use.
    async fn reload(&self) -> Result<Value, ReloadError> {
        let path = self.path.clone().ok_or(ReloadError::NoFile)?;
        // The whole file must be valid, rule patterns too, or a restart
        // would fail where the reload succeeded.
        let config = tokio::task::spawn_blocking(move || crate::load_config(&path))
            .await
            .map_err(|e| ReloadError::Invalid(e.into()))?
            .map_err(ReloadError::Invalid)?
            .0;
        self.labeling.replace(Labeler::from_config(&config));
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let restart = sections_changed(&current, &config);
        current.cohorts = config.cohorts.clone();
        current.gray_flags = config.gray_flags.clone();
        tracing::info!(
            cohorts = config.cohorts.len(),
            gray_flags = config.gray_flags.len(),
            "cohort rules reloaded"
        );
        if !restart.is_empty() {
            tracing::warn!(
                sections = ?restart,
                "changes to these sections take effect on restart only"
            );
        }
        let mut answer = self.describe();
        answer["reloaded"] = json!(true);
        answer["restart_needed_for"] = json!(restart);
        Ok(answer)
    }

    /// The rules in use and the trace join's figures.
    fn describe(&self) -> Value {
        let labeler = self.labeling.labeler();
        let cohorts: Vec<Value> = labeler
            .cohorts()
            .iter()
            .map(|c| json!({"name": c.name, "rule": c.rule.source()}))
            .collect();
        let mut flags: BTreeMap<String, String> = BTreeMap::from([
            ("0x0001".to_owned(), "staging".to_owned()),
            ("0x0002".to_owned(), "canary".to_owned()),
        ]);
        flags.extend(
            labeler
                .gray_flags()
                .iter()
                .map(|(flag, name)| (flag.to_string(), name.clone())),
        );
        json!({
            "config_file": self.path.as_ref().map(|p| p.display().to_string()),
            "cohorts": cohorts,
            "gray_flags": flags,
            "trace_join": {
                "hold_window_ms": u64::try_from(self.labeling.hold_window().as_millis()).unwrap_or(u64::MAX),
                "stats": self.labeling.join_stats(),
            },
        })
    }

    /// `POST /api/v1/admin/reload` and `GET /api/v1/admin/cohorts`.
    pub fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/api/v1/admin/reload", post(reload_handler))
            .route(
                "/api/v1/admin/cohorts",
                get(|State(reloader): State<Arc<Reloader>>| async move {
                    Json(reloader.describe())
                }),
            )
            .with_state(self)
    }

    /// Reloads on every SIGHUP until `stop` is cancelled.
    pub async fn watch_sighup(self: Arc<Self>, stop: CancellationToken) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                received = hangups.recv() => {
                    if received.is_none() {
                        return Ok(());
                    }
                    match self.reload().await {
                        Ok(_) => {}
                        Err(ReloadError::NoFile) => tracing::warn!(
                            "SIGHUP: started without --config, nothing to reload"
                        ),
                        Err(ReloadError::Invalid(error)) => tracing::error!(
                            "SIGHUP: the configuration was not reloaded, the old rules stay: {error:#}"
                        ),
                    }
                }
            }
        }
    }
}

/// The top-level sections, other than the ones a reload applies, that
/// differ between two configurations.
fn sections_changed(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    new.iter()
        .filter(|(name, _)| !matches!(name.as_str(), "cohorts" | "gray_flags"))
        .filter(|(name, value)| old.get(*name) != Some(*value))
        .map(|(name, _)| name.clone())
        .collect()
}

async fn reload_handler(State(reloader): State<Arc<Reloader>>) -> Response {
    match reloader.reload().await {
        Ok(answer) => Json(answer).into_response(),
        Err(ReloadError::NoFile) => error(
            StatusCode::CONFLICT,
            "the server was started without --config: there is no file to reload".to_owned(),
        ),
        Err(ReloadError::Invalid(e)) => error(
            StatusCode::BAD_REQUEST,
            format!("the configuration was not reloaded, the old rules stay: {e:#}"),
        ),
    }
}

fn error(status: http::StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
