//! `/metrics` as Prometheus sees it: the exposition passes `promtool check
//! metrics`, and a real Prometheus server (the Debian package, which
//! scripts/test installs) scrapes grayscope and answers the per-cohort
//! series through its HTTP API.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::Server;
use super::signals::{command, create};

/// A Prometheus server on a free loopback port, killed on drop.
pub struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts one that scrapes `target` every second.
    pub fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: grayscope\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "the prometheus server (Debian package `prometheus`; scripts/test installs it)",
            );
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// Runs an instant query until it returns series (or 30 s pass).
    pub async fn series(&self, query: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = reqwest::Client::new()
                .post(format!("{}/api/v1/query", self.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("query={}", percent_encode(query)))
                .send()
                .await;
            if let Ok(response) = answer
                && let Ok(body) = response.json::<Value>().await
                && let Some(result) = body["data"]["result"].as_array()
                && !result.is_empty()
            {
                return result.clone();
            }
            if Instant::now() > deadline {
                return Vec::new();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `promtool check metrics` on an exposition.
pub fn promtool_check(exposition: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn prometheus_scrapes_per_cohort_series_and_promtool_accepts_them() {
    let server = Server::start();
    create(&server).await;
    // A judgement (no telemetry: every check says nodata), then a change.
    let evaluated = reqwest::Client::new()
        .post(server.api_url("/api/v1/rollouts/search-v7/evaluate"))
        .send()
        .await
        .unwrap();
    assert_eq!(evaluated.status(), 200);
    command(&server, "freeze").await;
    server.sql("SELECT count(*) AS n FROM spans").await;

    let exposition = reqwest::get(server.api_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "grayscope_rollout_verdict{cohort=\"canary\",rollout=\"search-v7\",verdict=\"hold\"} 1",
        "grayscope_rollout_status{cohort=\"canary\",rollout=\"search-v7\",status=\"frozen\"} 1",
        "grayscope_check_outcome{check=\"latency\",cohort=\"canary\",level=\"L1\",outcome=\"nodata\",rollout=\"search-v7\"} 1",
        "grayscope_store_rows{table=\"spans\",tier=\"memory\"}",
        "grayscope_sql_queries_total{outcome=\"ok\"} 1",
        "grayscope_signals_total{cohort=\"canary\",rollout=\"search-v7\",verdict=\"hold\"} 1",
    ] {
        assert!(
            exposition.contains(name),
            "{name} missing from:\n{exposition}"
        );
    }
    let (ok, report) = promtool_check(&exposition);
    assert!(ok, "promtool check metrics:\n{report}");

    let prometheus = Prometheus::start(server.api);
    for query in [
        r#"grayscope_rollout_verdict{rollout="search-v7",cohort="canary",verdict="hold"} == 1"#,
        r#"grayscope_rollout_stage{rollout="search-v7",cohort="canary",stage="shadow"}"#,
        r#"grayscope_check_outcome{rollout="search-v7",cohort="canary",outcome="nodata"} == 1"#,
        r#"grayscope_check_samples{rollout="search-v7",cohort="canary",side="baseline"}"#,
        r#"up{job="grayscope"} == 1"#,
    ] {
        let series = prometheus.series(query).await;
        assert!(!series.is_empty(), "no series for {query}");
    }
    let checks = prometheus
        .series(r#"count by (check) (grayscope_check_outcome{cohort="canary"})"#)
        .await;
    assert!(checks.len() >= 3, "{checks:?}");
}
