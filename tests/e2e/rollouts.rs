//! Rollouts end to end: the HTTP API that defines, inspects, steers and
//! deletes them, and `grayscope demo`, where a real server judges simulated
//! traffic sent over OTLP/HTTP and rolls back a canary that turns bad.

use std::process::Command;

use serde_json::{Value, json};

use super::harness::{Server, binary};

const COHORTS: &str = r#"
[[cohorts]]
name = "canary"
rule = 'service.version == "1.1.0"'
"#;

fn rollout() -> Value {
    json!({
        "name": "search-v7",
        "service": "search",
        "baseline": "baseline",
        "canary": ["canary"],
        "interval": "5m",
        "window": "5m",
        "stages": [
            { "name": "shadow", "min_duration": "1m", "passes": 3 },
            { "name": "full_takeover", "min_duration": "1m", "passes": 3 }
        ]
    })
}

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("reach the API");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn the_rollouts_api_defines_inspects_steers_and_deletes_rollouts() {
    use reqwest::Method;
    let server = Server::start_with_config(COHORTS);
    let url = |path: &str| server.api_url(path);

    let (status, body) = call(Method::POST, url("/api/v1/rollouts"), Some(rollout())).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["source"], "api");
    assert_eq!(body["canaries"][0]["status"], "running");
    let (status, body) = call(Method::POST, url("/api/v1/rollouts"), Some(rollout())).await;
    assert_eq!(status, 409, "a second rollout of the same name: {body}");
    let mut bad = rollout();
    bad["window"] = json!("soon");
    let (status, body) = call(Method::POST, url("/api/v1/rollouts"), Some(bad)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("invalid rollout"),
        "{body}"
    );

    let (status, body) = call(Method::GET, url("/api/v1/rollouts"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["rollouts"][0]["name"], "search-v7");
    assert_eq!(body["rollouts"][0]["canaries"][0]["stage"], "shadow");

    // Judged now: no telemetry yet, so the judge holds and says why.
    let (status, body) = call(
        Method::POST,
        url("/api/v1/rollouts/search-v7/evaluate"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let judgement = &body["judgements"][0];
    assert_eq!(judgement["verdict"], "hold");
    assert_eq!(judgement["reasons"][0], "not enough data to judge");
    assert!(
        judgement["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["outcome"] == "nodata" && !c["sql"][0].as_str().unwrap().is_empty()),
        "{judgement}"
    );

    // Operators' commands, each visible in the state.
    for (action, status_after) in [
        ("pause", "paused"),
        ("resume", "running"),
        ("freeze", "frozen"),
        ("resume", "running"),
    ] {
        let (status, body) = call(
            Method::POST,
            url(&format!(
                "/api/v1/rollouts/search-v7/{action}?cohort=canary"
            )),
            None,
        )
        .await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(body["canaries"][0]["status"], status_after, "{action}");
    }
    let (_, body) = call(
        Method::POST,
        url("/api/v1/rollouts/search-v7/promote"),
        None,
    )
    .await;
    assert_eq!(body["canaries"][0]["stage"], "full_takeover");
    let (_, body) = call(
        Method::POST,
        url("/api/v1/rollouts/search-v7/rollback"),
        None,
    )
    .await;
    assert_eq!(body["canaries"][0]["status"], "rolled_back");
    assert_eq!(body["canaries"][0]["verdict"], "rollback");
    let (status, body) = call(Method::POST, url("/api/v1/rollouts/search-v7/resume"), None).await;
    assert_eq!(status, 409, "nothing moves a rolled-back canary: {body}");

    // The whole state, with the last judgement, in one document.
    let (status, body) = call(Method::GET, url("/api/v1/rollouts/search-v7"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["config"]["service"], "search");
    assert_eq!(body["canaries"][0]["status"], "rolled_back");
    assert_eq!(body["last"]["canary"]["verdict"], "hold");

    // Every judgement and command is a row of the verdicts table.
    let rows = server
        .sql("SELECT verdict, status FROM verdicts WHERE rollout = 'search-v7' ORDER BY time")
        .await;
    assert_eq!(
        rows.len(),
        7,
        "1 evaluation + 6 commands carried out: {rows:?}"
    );
    assert_eq!(rows[0]["verdict"], "hold");
    assert_eq!(rows[6]["status"], "rolled_back");

    // What does not exist is a 404 that says so.
    let (status, _) = call(Method::GET, url("/api/v1/rollouts/nope"), None).await;
    assert_eq!(status, 404);
    let (status, body) = call(Method::POST, url("/api/v1/rollouts/search-v7/launch"), None).await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("pause, resume"),
        "{body}"
    );
    let (status, _) = call(
        Method::POST,
        url("/api/v1/rollouts/search-v7/pause?cohort=gray-b"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let (status, _) = call(Method::DELETE, url("/api/v1/rollouts/search-v7"), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(Method::GET, url("/api/v1/rollouts/search-v7"), None).await;
    assert_eq!(status, 404);
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM verdicts WHERE rollout = 'search-v7'")
            .await,
        7,
        "deleting a rollout keeps its history"
    );
}

#[test]
fn the_demo_rolls_back_its_bad_canary_with_evidence_and_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo");
    let output = Command::new(binary())
        .args(["demo", "--free-ports", "--exit", "--data-dir"])
        .arg(&data_dir)
        .env("GRAYSCOPE_LOG", "warn")
        .output()
        .expect("run grayscope demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The stages advanced while the canary was healthy, then it was rolled
    // back after the fault began at 35 s.
    assert!(stdout.contains(" promote "), "{stdout}");
    let rolled_back = stdout
        .lines()
        .find(|l| l.starts_with("Rolled back at "))
        .unwrap_or_else(|| panic!("no rollback in {stdout}"));
    let seconds: u64 = rolled_back["Rolled back at ".len()..]
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("seconds");
    assert!((36..=80).contains(&seconds), "{rolled_back}");
    // Evidence from L1 and L2, with trace ids.
    assert!(stdout.contains("L1 latency (high)"), "{stdout}");
    assert!(
        stdout.contains("redis timeout after <*> on <*>"),
        "{stdout}"
    );
    assert!(stdout.contains("(trace "), "{stdout}");
    // The signal document parses and says roll back.
    let start = stdout.find("\n{").expect("a signal document") + 1;
    let end = stdout[start..].find("\n}").expect("its end") + start + 2;
    let signal: Value = serde_json::from_str(&stdout[start..end]).expect("signal JSON");
    assert_eq!(signal["verdict"], "rollback");
    assert_eq!(signal["action"], "rollback");
    assert_eq!(signal["status"], "rolled_back");
    assert_eq!(
        signal["id"],
        format!("checkout-v2/canary/{}", signal["sequence"])
    );
    assert!(!signal["failing"].as_array().unwrap().is_empty());
    // And it tells the user how to ask SQL about it.
    assert!(stdout.contains("FROM verdicts"), "{stdout}");
    // A rerun may reuse the demo's own directory, never a stranger's.
    let stranger = dir.path().join("stranger");
    std::fs::create_dir(&stranger).unwrap();
    std::fs::write(stranger.join("precious.txt"), "keep me").unwrap();
    let refused = Command::new(binary())
        .args(["demo", "--free-ports", "--exit", "--data-dir"])
        .arg(&stranger)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not an earlier demo's"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(stranger.join("precious.txt").exists());
}
