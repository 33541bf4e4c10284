//! The endpoints routers call as they are: Argo Rollouts' `web` metric
//! reads `GET /api/v1/rollouts/{name}/verdict`; Flagger posts its own
//! webhook payload to `/api/v1/flagger/{hook}` and reads only the status.

use serde_json::{Value, json};

use super::harness::Server;
use super::signals::{command, create};

async fn get(server: &Server, path: &str) -> (u16, Value) {
    let response = reqwest::get(server.api_url(path)).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Flagger's webhook body, as Flagger's `CanaryWebhookPayload` marshals it.
fn flagger_payload(phase: &str, metadata: Value) -> Value {
    json!({
        "name": "search",
        "namespace": "shop",
        "phase": phase,
        "checksum": "6b86b273ff34fce19d6b804eff5a3f57",
        "metadata": metadata,
    })
}

async fn flagger(server: &Server, hook: &str, payload: &Value) -> u16 {
    reqwest::Client::new()
        .post(server.api_url(&format!("/api/v1/flagger/{hook}")))
        .header("content-type", "application/json")
        .body(payload.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn argo_and_flagger_read_the_verdict_as_it_moves() {
    let server = Server::start();
    let (status, _) = get(&server, "/api/v1/rollouts/search-v7/verdict").await;
    assert_eq!(status, 404);
    create(&server).await;
    let meta = json!({ "rollout": "search-v7" });

    // Just started: hold, healthy.
    let (status, body) = get(&server, "/api/v1/rollouts/search-v7/verdict").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "hold");
    assert_eq!(body["healthy"], true);
    assert_eq!(body["stage"], "shadow");
    let (status, _) = get(&server, "/api/v1/rollouts/search-v7/verdict?cohort=nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        flagger(
            &server,
            "pre-rollout",
            &flagger_payload("Progressing", meta.clone())
        )
        .await,
        200
    );
    assert_eq!(
        flagger(
            &server,
            "rollout",
            &flagger_payload("Progressing", meta.clone())
        )
        .await,
        200
    );
    assert_eq!(
        flagger(
            &server,
            "confirm-promotion",
            &flagger_payload("WaitingPromotion", meta.clone())
        )
        .await,
        412
    );
    assert_eq!(
        flagger(
            &server,
            "rollback",
            &flagger_payload("Progressing", meta.clone())
        )
        .await,
        412
    );

    // Promoted through every stage: promote.
    for _ in 0..4 {
        command(&server, "promote").await;
    }
    let (_, body) = get(&server, "/api/v1/rollouts/search-v7/verdict?cohort=canary").await;
    assert_eq!(body["verdict"], "promote", "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(
        flagger(
            &server,
            "confirm-promotion",
            &flagger_payload("WaitingPromotion", meta.clone())
        )
        .await,
        200
    );

    // Rolled back (a new rollout of the same name): every hook says so.
    reqwest::Client::new()
        .delete(server.api_url("/api/v1/rollouts/search-v7"))
        .send()
        .await
        .unwrap();
    create(&server).await;
    command(&server, "rollback").await;
    let (_, body) = get(&server, "/api/v1/rollouts/search-v7/verdict").await;
    assert_eq!(body["verdict"], "rollback", "{body}");
    assert_eq!(body["healthy"], false);
    assert_eq!(body["rollback"], true);
    assert_eq!(
        flagger(
            &server,
            "rollback",
            &flagger_payload("Progressing", meta.clone())
        )
        .await,
        200
    );
    assert_eq!(
        flagger(
            &server,
            "rollout",
            &flagger_payload("Progressing", meta.clone())
        )
        .await,
        412
    );
    assert_eq!(
        flagger(
            &server,
            "pre-rollout",
            &flagger_payload("Progressing", meta.clone())
        )
        .await,
        412
    );

    // Without metadata the Canary's name is the rollout; unknown → 404.
    assert_eq!(
        flagger(
            &server,
            "rollout",
            &flagger_payload("Progressing", json!({}))
        )
        .await,
        404
    );
    // Flagger may omit metadata entirely.
    let mut bare = flagger_payload("Progressing", json!({}));
    bare.as_object_mut().unwrap().remove("metadata");
    assert_eq!(flagger(&server, "rollout", &bare).await, 404);
    // Not Flagger's payload, or not a hook: refused, nothing else happens.
    let response = reqwest::Client::new()
        .post(server.api_url("/api/v1/flagger/rollout"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        flagger(&server, "launch", &flagger_payload("Progressing", meta)).await,
        404
    );
}
