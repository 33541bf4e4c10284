//! `dashboards/` as Grafana would run them. Grafana itself cannot be
//! installed here, so every dashboard is checked the way Grafana reads it:
//! its JSON structure and the provisioned data sources it names; then every
//! query it holds is run — each SQL (`rawSql`, with Grafana's PostgreSQL
//! macros expanded as Grafana's PostgreSQL data source expands them)
//! through grayscope's HTTP SQL API, and each PromQL `expr` against a real
//! Prometheus that scraped grayscope — after a simulated canary was sent
//! through Kafka and judged, and must come back with data.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use serde_json::Value;

use super::harness::Server;
use super::prometheus::Prometheus;

const PROMETHEUS_UID: &str = "grayscope-prometheus";
const SQL_UID: &str = "grayscope-sql";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every dashboard file, by name.
fn dashboards() -> Vec<(String, Value)> {
    let mut all: Vec<(String, Value)> = std::fs::read_dir(root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), json)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// One query of a dashboard.
#[derive(Debug, Clone)]
enum Query {
    Sql(String),
    PromQl(String),
    /// A Prometheus variable: `label_values(selector, label)`.
    LabelValues(String, String),
}

#[derive(Debug, Clone)]
struct Located {
    panel: String,
    query: Query,
}

fn uid(datasource: &Value) -> &str {
    datasource["uid"].as_str().unwrap_or("")
}

/// Every panel with its queries, checking the structure on the way.
fn queries(file: &str, dashboard: &Value) -> Vec<Located> {
    let mut found = Vec::new();
    let at = |panel: &str, query| Located {
        panel: panel.to_owned(),
        query,
    };
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let name = variable["name"].as_str().expect("a variable name");
        let where_ = format!("variable {name}");
        match uid(&variable["datasource"]) {
            SQL_UID => found.push(at(
                &where_,
                Query::Sql(variable["query"].as_str().unwrap().to_owned()),
            )),
            PROMETHEUS_UID => {
                let query = variable["query"]["query"].as_str().unwrap();
                let inner = query
                    .strip_prefix("label_values(")
                    .and_then(|q| q.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("{file} {where_}: {query}"));
                let (selector, label) = inner.rsplit_once(',').unwrap();
                found.push(at(
                    &where_,
                    Query::LabelValues(selector.trim().to_owned(), label.trim().to_owned()),
                ));
            }
            other => panic!("{file} {where_}: unprovisioned data source {other:?}"),
        }
    }
    let mut ids = HashSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().expect("a panel title");
        assert!(!title.is_empty(), "{file}: a panel without a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("a panel id")),
            "{file}: duplicate id"
        );
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && grid["h"].as_u64().unwrap() > 0,
            "{file} {title}: {grid}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert!(panel["type"].is_string(), "{file} {title}: no type");
        let source = uid(&panel["datasource"]);
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{file} {title}: no targets");
        let mut refs = HashSet::new();
        for target in targets {
            assert!(refs.insert(target["refId"].as_str().expect("a refId")));
            assert_eq!(uid(&target["datasource"]), source, "{file} {title}");
            match source {
                SQL_UID => {
                    let format = target["format"].as_str().unwrap_or("");
                    assert!(
                        ["table", "time_series"].contains(&format),
                        "{file} {title}: format {format:?}"
                    );
                    found.push(at(
                        title,
                        Query::Sql(target["rawSql"].as_str().expect("rawSql").to_owned()),
                    ));
                }
                PROMETHEUS_UID => found.push(at(
                    title,
                    Query::PromQl(target["expr"].as_str().expect("expr").to_owned()),
                )),
                other => panic!("{file} {title}: unprovisioned data source {other:?}"),
            }
        }
    }
    found
}

/// The text of every query.
fn text(query: &Query) -> &str {
    match query {
        Query::Sql(q) | Query::PromQl(q) | Query::LabelValues(q, _) => q,
    }
}

/// Grafana's built-in variables the dashboards may use.
const BUILT_IN: [&str; 2] = ["__interval", "__rate_interval"];

#[test]
fn every_dashboard_is_grafana_json_over_the_provisioned_data_sources_and_known_metrics() {
    let all = dashboards();
    assert!(all.len() >= 4, "{all:?}");
    let mut uids = HashSet::new();
    for (file, dashboard) in &all {
        let uid = dashboard["uid"].as_str().expect("a uid");
        assert!(!uid.is_empty() && uid.len() <= 40, "{file}: uid {uid:?}");
        assert!(uids.insert(uid.to_owned()), "{file}: uid {uid} used twice");
        assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(dashboard["schemaVersion"].as_u64().is_some(), "{file}");
        let variables: HashSet<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .chain(BUILT_IN)
            .collect();
        let found = queries(file, dashboard);
        assert!(found.len() >= 3, "{file}");
        for located in &found {
            for used in used_variables(text(&located.query)) {
                assert!(
                    variables.contains(used.as_str()),
                    "{file} {}: ${used} is not a variable of the dashboard",
                    located.panel
                );
            }
        }
        // The verdict changes Grafana is annotated with show on it.
        let annotations = dashboard["annotations"]["list"].as_array().unwrap();
        assert!(
            annotations
                .iter()
                .any(|a| a["target"]["tags"] == serde_json::json!(["grayscope"])),
            "{file}: no annotation query on the grayscope tag"
        );
    }
    for expected in [
        "grayscope-fleet",
        "grayscope-rollout",
        "grayscope-logs",
        "grayscope-health",
    ] {
        assert!(uids.contains(expected), "{expected} missing");
    }

    // The provisioned data sources are the ones the dashboards name.
    let datasources =
        std::fs::read_to_string(root().join("provisioning/datasources/grayscope.yaml")).unwrap();
    for needle in [
        "uid: grayscope-prometheus",
        "type: prometheus",
        "uid: grayscope-sql",
        "type: grafana-postgresql-datasource",
        "url: 127.0.0.1:7632",
    ] {
        assert!(datasources.contains(needle), "datasources: no {needle:?}");
    }
    let providers =
        std::fs::read_to_string(root().join("provisioning/dashboards/grayscope.yaml")).unwrap();
    assert!(providers.contains("type: file") && providers.contains("path: "));

    // Every metric a dashboard reads is one grayscope exposes.
    let exposed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sinks/src/metrics.rs"))
            .unwrap();
    let mut names = BTreeSet::new();
    for (file, dashboard) in &all {
        for located in queries(file, dashboard) {
            if let Query::PromQl(q) | Query::LabelValues(q, _) = &located.query {
                names.extend(metric_names(q));
            }
        }
    }
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| exposed.contains(&format!("\"{b}\"")))
            .unwrap_or(name);
        assert!(
            exposed.contains(&format!("\"{base}\"")),
            "{name} is not a metric of sinks/src/metrics.rs"
        );
    }
}

/// `grayscope_…` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("grayscope_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Variables (`$name`, `${name}`) a query uses, Grafana's macros aside.
fn used_variables(query: &str) -> Vec<String> {
    let mut used = Vec::new();
    let mut rest = query;
    while let Some(at) = rest.find('$') {
        let tail = &rest[at + 1..];
        let (name, after) = match tail.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}').unwrap();
                (&braced[..end], &braced[end + 1..])
            }
            None => {
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                (&tail[..end], &tail[end..])
            }
        };
        // A macro is a name followed by its arguments.
        if !(name.starts_with("__") && after.starts_with('(')) {
            used.push(name.to_owned());
        }
        rest = after;
    }
    used
}

/// Replaces the variables, as Grafana's front end does before the query
/// reaches the data source.
fn substitute(query: &str, variables: &HashMap<&str, &str>) -> String {
    let mut names: Vec<&&str> = variables.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut out = query.to_owned();
    for name in names {
        let value = variables[*name];
        out = out.replace(&format!("${{{name}}}"), value);
        let needle = format!("${name}");
        let mut replaced = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find(&needle) {
            let after = &rest[at + needle.len()..];
            let boundary = !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            replaced.push_str(&rest[..at]);
            replaced.push_str(if boundary { value } else { &needle });
            rest = after;
        }
        replaced.push_str(rest);
        out = replaced;
    }
    out
}

/// A Grafana interval (`30s`, `1m`, `1h`) in seconds.
fn interval_seconds(text: &str) -> f64 {
    let text = text.trim().trim_matches(|c| c == '\'' || c == '"');
    let (number, unit) = text.split_at(text.find(|c: char| c.is_alphabetic()).unwrap());
    let n: f64 = number.parse().unwrap();
    n * match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => panic!("interval unit {other}"),
    }
}

/// Expands Grafana's PostgreSQL macros as its data source does (without
/// TimescaleDB): `$__timeFilter(c)` → `c BETWEEN 'from' AND 'to'`,
/// `$__timeFrom()`, `$__timeTo()`, `$__timeGroup(c, i)` →
/// `floor(extract(epoch from c)/s)*s`, and `$__timeGroupAlias` the same
/// `AS "time"`.
fn expand_macros(sql: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find("$__") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 3..];
        let open = tail.find('(').expect("a macro's arguments");
        let name = &tail[..open];
        let close = tail[open..].find(')').unwrap() + open;
        let args: Vec<&str> = tail[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        let group = |args: &[&str]| {
            let seconds = interval_seconds(args[1]);
            format!("floor(extract(epoch from {})/{seconds})*{seconds}", args[0])
        };
        out.push_str(&match name {
            "timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", args[0]),
            "timeFrom" => format!("'{from}'"),
            "timeTo" => format!("'{to}'"),
            "timeGroup" => group(&args),
            "timeGroupAlias" => group(&args) + " AS \"time\"",
            other => panic!("the test does not expand ${other}: use a macro it knows"),
        });
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn macros_expand_as_grafanas_postgresql_data_source_does() {
    let variables = HashMap::from([("rollout", "checkout-v2"), ("__interval", "30s")]);
    let sql = "SELECT $__timeGroupAlias(time, $__interval), count(*) FROM verdicts \
               WHERE $__timeFilter(time) AND rollout = '${rollout}' AND x = '$rollout_x'";
    let expanded = expand_macros(
        &substitute(sql, &variables),
        "2026-11-26T10:00:00Z",
        "2026-11-26T11:00:00Z",
    );
    assert_eq!(
        expanded,
        "SELECT floor(extract(epoch from time)/30)*30 AS \"time\", count(*) FROM verdicts \
         WHERE time BETWEEN '2026-11-26T10:00:00Z' AND '2026-11-26T11:00:00Z' \
         AND rollout = 'checkout-v2' AND x = '$rollout_x'"
    );
    assert_eq!(used_variables(sql), ["__interval", "rollout", "rollout_x"]);
}

const CONFIG: &str = r#"
[[cohorts]]
name = "canary"
rule = 'service.version == "1.1.0"'

[[rollouts]]
name = "checkout-v2"
service = "checkout"
baseline = "baseline"
canary = ["canary"]
interval = "5m"
window = "5m"
failures_to_rollback = 1

[[rollouts.checks.kernel]]
metric = "tcp.retransmits"
"#;

/// A canary that is slower, fails more, logs a new error and retransmits.
const SCENARIO: &str = r#"
name = "dashboards"
description = "a bad canary for the dashboards"
expect = "rollback"
duration = "90s"
seed = 7
requests_per_second = 200
canary_share = 0.3

[[faults]]
target = "canary"
from = "0s"
latency_factor = 1.8
extra_error_rate = 0.05
retransmit_factor = 10.0
log = { text = "redis timeout after {ms}ms on {host}", severity = "error", per_request = 0.05 }
"#;

/// Sends the scenario through Kafka, as an OpenTelemetry Collector's Kafka
/// exporter would.
async fn produce_scenario(bootstrap: &str) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .create()
        .unwrap();
    let scenario = grayscope_sim::Scenario::parse(SCENARIO, Path::new("dashboards.toml")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut generator = grayscope_sim::Generator::new(&scenario, now - 100_000_000_000);
    while !generator.done() {
        let slice = generator.next_slice(Duration::from_secs(5));
        for (topic, payload) in [
            ("otlp_spans", slice.traces.encode_to_vec()),
            ("otlp_logs", slice.logs.encode_to_vec()),
            ("otlp_metrics", slice.metrics.encode_to_vec()),
        ] {
            producer
                .send(
                    FutureRecord::<(), [u8]>::to(topic).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    }
}

async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ready().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn every_dashboard_query_returns_data_from_a_judged_grayscope() {
    let mock = MockCluster::<DefaultProducerContext>::new(1).unwrap();
    for topic in [
        "otlp_spans",
        "otlp_logs",
        "otlp_metrics",
        "grayscope_dead_letters",
        "grayscope.signals",
    ] {
        mock.create_topic(topic, 1, 1).unwrap();
    }
    let bootstrap = mock.bootstrap_servers();
    let server = Server::start_with_config(&format!(
        "{CONFIG}\n[kafka]\nbrokers = {bootstrap:?}\ninitial_offset = \"earliest\"\n\
         commit_interval = \"200ms\"\n\n[signals.kafka]\nbrokers = {bootstrap:?}\n"
    ));
    produce_scenario(&bootstrap).await;
    for table in ["spans", "logs", "metrics"] {
        wait_until(&format!("{table} ingested from Kafka"), async || {
            server
                .count(&format!("SELECT count(*) AS n FROM {table}"))
                .await
                > 0
        })
        .await;
    }
    // Ingest goes on while we wait for the last messages to land.
    wait_until("every Kafka message consumed", async || {
        let rows = server
            .sql("SELECT count(*) AS n FROM system.kafka_partitions WHERE lag = 0")
            .await;
        rows[0]["n"].as_i64() == Some(3)
    })
    .await;
    let judge = reqwest::Client::new();
    wait_until("the judge rolls the canary back", async || {
        let response = judge
            .post(server.api_url("/api/v1/rollouts/checkout-v2/evaluate"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let state: Value = reqwest::get(server.api_url("/api/v1/rollouts/checkout-v2"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state["canaries"][0]["status"] == "rolled_back"
    })
    .await;
    // A query, so the SQL metrics have samples.
    server.sql("SELECT 1 AS one").await;
    let prometheus = Prometheus::start(server.api);

    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let from = grayscope_core::signal::rfc3339(now_ns - 3_600_000_000_000);
    let to = grayscope_core::signal::rfc3339(now_ns + 60_000_000_000);
    let variables = HashMap::from([
        ("rollout", "checkout-v2"),
        ("cohort", "canary"),
        ("baseline", "baseline"),
        ("__interval", "10s"),
        ("__rate_interval", "1m"),
    ]);
    let mut empty = Vec::new();
    let mut ran = 0;
    for (file, dashboard) in dashboards() {
        for located in queries(&file, &dashboard) {
            ran += 1;
            let query = substitute(text(&located.query), &variables);
            let answered = match &located.query {
                Query::Sql(_) => {
                    let sql = expand_macros(&query, &from, &to);
                    let (status, body) = server.sql_raw(&sql).await;
                    assert_eq!(status, 200, "{file} {}: {sql}\n{body}", located.panel);
                    !body["rows"].as_array().unwrap().is_empty()
                }
                Query::PromQl(_) => !prometheus.series(&query).await.is_empty(),
                Query::LabelValues(_, label) => prometheus
                    .series(&query)
                    .await
                    .iter()
                    .any(|s| s["metric"][label.as_str()].is_string()),
            };
            if !answered {
                empty.push(format!("{file} / {}: {query}", located.panel));
            }
        }
    }
    assert!(ran >= 40, "{ran} queries");
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );
}
