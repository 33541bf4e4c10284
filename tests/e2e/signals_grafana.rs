//! Grafana annotations: a loopback server that answers like Grafana's
//! `POST /api/annotations` checks the path, the bearer token and the body
//! of every annotation grayscope posts, one per change of verdict.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::harness::Server;
use super::signals::{command, create};

const TOKEN: &str = "glsa_test_token";

#[derive(Default)]
struct Grafana {
    annotations: Mutex<Vec<Value>>,
    refused: Mutex<Vec<String>>,
    /// Answer 503 to this many requests first.
    unavailable: Mutex<u32>,
}

async fn annotate(
    State(grafana): State<Arc<Grafana>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {TOKEN}") {
        grafana.refused.lock().await.push(auth.to_owned());
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Unauthorized"})),
        );
    }
    {
        let mut unavailable = grafana.unavailable.lock().await;
        if *unavailable > 0 {
            *unavailable -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
        }
    }
    let mut all = grafana.annotations.lock().await;
    all.push(body);
    let id = all.len();
    (
        StatusCode::OK,
        Json(json!({"message": "Annotation added", "id": id})),
    )
}

async fn serve(grafana: Grafana) -> (Arc<Grafana>, SocketAddr) {
    let grafana = Arc::new(grafana);
    let app = axum::Router::new()
        .route("/grafana/api/annotations", axum::routing::post(annotate))
        .with_state(grafana.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (grafana, addr)
}

#[tokio::test]
async fn every_verdict_change_and_only_those_becomes_a_grafana_annotation() {
    let (grafana, addr) = serve(Grafana {
        unavailable: Mutex::new(2),
        ..Grafana::default()
    })
    .await;
    // A sub-path URL (Grafana behind a proxy), with a trailing slash.
    let server = Server::start_with_config(&format!(
        "[signals.grafana]\nurl = \"http://{addr}/grafana/\"\ntoken = {TOKEN:?}\ntags = [\"grayscope\", \"prod\"]\n"
    ));
    create(&server).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Status changes keep the verdict (hold); the rollback changes it.
    for action in ["pause", "resume", "freeze", "resume", "rollback"] {
        command(&server, action).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while grafana.annotations.lock().await.is_empty() {
        assert!(Instant::now() < deadline, "no annotation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let annotations = grafana.annotations.lock().await.clone();
    assert_eq!(annotations.len(), 1, "{annotations:?}");
    let annotation = &annotations[0];
    assert_eq!(
        annotation["tags"],
        json!(["grayscope", "prod", "search-v7", "canary", "rollback"])
    );
    let time = annotation["time"].as_i64().expect("time in ms");
    assert!(
        (before - 1000..before + 60_000).contains(&time),
        "{time} vs {before}"
    );
    let text = annotation["text"].as_str().unwrap();
    assert!(text.starts_with("search-v7/canary: rollback"), "{text}");
    assert!(grafana.refused.lock().await.is_empty());

    // It was retried through the 503s, and shows in SQL and /metrics.
    let rows = server
        .sql(
            "SELECT signal_id, state, attempts, last_status FROM system.deliveries \
             WHERE destination = 'grafana'",
        )
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["signal_id"], "search-v7/canary/5");
    assert_eq!(rows[0]["state"], "delivered");
    assert_eq!(rows[0]["attempts"], 3);
    assert_eq!(rows[0]["last_status"], 200);
    let metrics = reqwest::get(server.api_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("grayscope_grafana_annotations_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
}
