//! Log templates and log rules end to end: records exported with the real
//! OTLP exporters come back from SQL with their template ids, templates and
//! rule names; the `templates` table answers with lineage; ids and lineage
//! survive restarts; `grayscope mine` gives the ids ingest gave; bad rules
//! and bad bodies are handled.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::TraceFlags;
use opentelemetry::{Key, StringValue};
use opentelemetry_otlp::{Protocol as OtlpProtocol, WithExportConfig as _};
use opentelemetry_sdk::logs::{InMemoryLogExporter, LogBatch, LogExporter as _, SdkLoggerProvider};
use serde_json::{Value, json};

use super::harness::{Protocol, Server, binary};
use super::telemetry::{T0_NS, at, resource, span_id, trace_id};

/// Two rules that overlap (a redis timeout matches both) and one for a
/// structured body.
const RULES: &str = "[trace_join]\nhold_window = \"0s\"\n\
    [[log_rules]]\nname = \"redis_timeout\"\npattern = \"timeout.*redis\"\n\
    [[log_rules]]\nname = \"redis\"\npattern = \"(?i)redis\"\n\
    [[log_rules]]\nname = \"oom\"\npattern = \"OOMKilled\"\n";

/// The id of the empty template (FNV-1a of no bytes).
const EMPTY_TEMPLATE_ID: &str = "cbf29ce484222325";

/// One log record to emit: its body (none: no body) and the gray flag of
/// its trace (none: no trace context).
struct Record {
    body: Option<AnyValue>,
    flag: Option<u16>,
}

fn text(body: impl Into<String>, flag: Option<u16>) -> Record {
    Record {
        body: Some(AnyValue::String(StringValue::from(body.into()))),
        flag,
    }
}

/// The OTLP log exporter of `opentelemetry-otlp` for `protocol`.
fn exporter(
    grpc: SocketAddr,
    http: SocketAddr,
    protocol: Protocol,
) -> opentelemetry_otlp::LogExporter {
    let builder = opentelemetry_otlp::LogExporter::builder();
    match protocol {
        Protocol::Grpc => builder
            .with_tonic()
            .with_endpoint(format!("http://{grpc}"))
            .build(),
        Protocol::HttpProtobuf | Protocol::HttpJson => builder
            .with_http()
            .with_protocol(if protocol == Protocol::HttpJson {
                OtlpProtocol::HttpJson
            } else {
                OtlpProtocol::HttpBinary
            })
            .with_endpoint(format!("http://{http}/v1/logs"))
            .build(),
    }
    .expect("log exporter")
}

/// Emits `records` with the SDK, in order and 1 µs apart from `offset_ns`,
/// and exports them in one request.
async fn export(
    (grpc, http): (SocketAddr, SocketAddr),
    protocol: Protocol,
    offset_ns: u64,
    records: Vec<Record>,
) {
    let memory = InMemoryLogExporter::default();
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource("checkout"))
        .with_simple_exporter(memory.clone())
        .build();
    let logger = provider.logger("checkout-logs");
    let count = records.len();
    for (i, record) in records.into_iter().enumerate() {
        let mut log = logger.create_log_record();
        log.set_timestamp(at(offset_ns + i as u64 * 1_000));
        log.set_severity_number(Severity::Info);
        if let Some(body) = record.body {
            log.set_body(body);
        }
        if let Some(flag) = record.flag {
            log.set_trace_context(
                trace_id(0x40 + (i % 64) as u8, flag),
                span_id(0x40),
                Some(TraceFlags::SAMPLED),
            );
        }
        logger.emit(log);
    }
    let emitted = memory.get_emitted_logs().expect("emitted logs");
    assert_eq!(emitted.len(), count);
    let batch: Vec<_> = emitted
        .iter()
        .map(|log| (&log.record, &log.instrumentation))
        .collect();
    let mut exporter = exporter(grpc, http, protocol);
    exporter.set_resource(&emitted[0].resource);
    exporter
        .export(LogBatch::new(&batch))
        .await
        .unwrap_or_else(|e| panic!("log export over {protocol:?} failed: {e}"));
}

fn ends(server: &Server) -> (SocketAddr, SocketAddr) {
    (server.grpc, server.http)
}

fn str_of<'a>(row: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    row[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not text in {row:?}"))
}

/// Four users logging in: the fourth distinct word generalises the user
/// position, retiring the three specific templates.
fn logins(flag: Option<u16>) -> Vec<Record> {
    ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|user| text(format!("user {user} logged in"), flag))
        .collect()
}

fn redis_timeout(n: u64, flag: Option<u16>) -> Record {
    text(
        format!(
            "timeout after {}s talking to redis at 10.0.{}.{}:6379",
            n % 30 + 1,
            n % 4,
            n + 10
        ),
        flag,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_get_templates_and_rules_queryable_per_cohort() {
    let server = Server::start_with_config(RULES);
    let canary = Some(0x0002);
    let baseline = None;

    let mut records: Vec<Record> = (0..3).map(|n| redis_timeout(n, canary)).collect();
    records.extend((0..4).map(|n| {
        text(
            format!("cache miss for key product:{}, loading from db", 100 + n),
            baseline,
        )
    }));
    records.push(Record {
        body: Some(AnyValue::Map(Box::new(
            [
                (
                    Key::from("event"),
                    AnyValue::String(StringValue::from("container web-1 OOMKilled")),
                ),
                (Key::from("exit_code"), AnyValue::Int(137)),
            ]
            .into_iter()
            .collect(),
        ))),
        flag: canary,
    });
    records.extend(logins(baseline));
    export(ends(&server), Protocol::Grpc, 0, records).await;
    // The same event over another protocol gets the same template.
    export(
        ends(&server),
        Protocol::HttpJson,
        1_000_000,
        (3..5).map(|n| redis_timeout(n, canary)).collect(),
    )
    .await;

    let rows = server
        .sql(
            "SELECT cohort, template, count(*) AS n FROM logs \
             WHERE body NOT LIKE 'user %' GROUP BY cohort, template ORDER BY cohort, template",
        )
        .await;
    let got: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                str_of(r, "cohort").to_owned(),
                str_of(r, "template").to_owned(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(
        got[0],
        (
            "baseline".to_owned(),
            "cache miss for key product:<*>, loading from db".to_owned(),
            4
        )
    );
    assert_eq!(
        (&*got[1].0, &*got[1].1, got[1].2),
        ("canary", "timeout after <*> talking to redis at <*>:<*>", 5)
    );
    // The key-value list body is mined as its JSON text, on its keys and
    // value shapes.
    assert_eq!(
        (&*got[2].0, &*got[2].1, got[2].2),
        (
            "canary",
            r#"{"event":"container <*> OOMKilled","exit_code":<*>}"#,
            1
        )
    );

    // Every rule a body matches, in configuration order.
    let rules = server
        .sql("SELECT DISTINCT template, rules FROM logs WHERE cardinality(rules) > 0 ORDER BY template")
        .await;
    let rules: Vec<(String, Value)> = rules
        .iter()
        .map(|r| (str_of(r, "template").to_owned(), r["rules"].clone()))
        .collect();
    assert_eq!(rules.len(), 2, "{rules:#?}");
    assert_eq!(rules[0].1, json!(["redis_timeout", "redis"]), "{rules:#?}");
    assert_eq!(rules[1].1, json!(["oom"]), "{rules:#?}");
    let timeouts = server
        .sql(
            "SELECT cohort, count(*) AS n FROM logs \
             WHERE array_has(rules, 'redis_timeout') GROUP BY cohort",
        )
        .await;
    assert_eq!(
        timeouts,
        vec![json_row(json!({"cohort": "canary", "n": 5}))]
    );
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM logs WHERE cardinality(rules) = 0")
            .await,
        8
    );

    // Every stored id is in the templates table.
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM logs l JOIN templates t ON l.template_id = t.id")
            .await,
        14
    );
    let by_template = server
        .sql(
            "SELECT l.cohort, t.template, count(*) AS n FROM logs l \
             JOIN templates t ON l.template_id = t.id \
             WHERE t.template LIKE 'timeout%' GROUP BY l.cohort, t.template",
        )
        .await;
    assert_eq!(by_template.len(), 1);
    assert_eq!(by_template[0]["n"], json!(5));

    // Lineage: the four logins were stored under four ids; three were
    // replaced by the general template, and all four lead to it.
    let logins = server
        .sql(
            "SELECT l.body, l.template_id, l.template, t.parent_id, t.current_id, \
                    CAST(l.time AS BIGINT) AS t \
             FROM logs l JOIN templates t ON l.template_id = t.id \
             WHERE l.body LIKE 'user %' ORDER BY l.time",
        )
        .await;
    assert_eq!(logins.len(), 4, "{logins:#?}");
    assert_eq!(str_of(&logins[0], "template"), "user alice logged in");
    assert_eq!(str_of(&logins[3], "template"), "user <*> logged in");
    let general = str_of(&logins[3], "template_id").to_owned();
    for login in &logins[..3] {
        assert_eq!(str_of(login, "parent_id"), general, "{login:?}");
        assert_eq!(str_of(login, "current_id"), general, "{login:?}");
    }
    assert_eq!(logins[3]["parent_id"], Value::Null);
    assert_eq!(str_of(&logins[3], "current_id"), general);
    let general_row = server
        .sql(&format!(
            "SELECT template, count, CAST(first_seen AS BIGINT) AS first_seen, \
                    CAST(last_seen AS BIGINT) AS last_seen \
             FROM templates WHERE id = '{general}'"
        ))
        .await;
    assert_eq!(
        general_row,
        vec![json_row(json!({
            "template": "user <*> logged in",
            "count": 4,
            "first_seen": logins[0]["t"],
            "last_seen": logins[3]["t"],
        }))]
    );
    let first_seen = logins[0]["t"].as_u64().unwrap();
    assert_eq!(first_seen, T0_NS + 8_000);
    let per_current = server
        .sql(
            "SELECT c.template, count(*) AS n FROM logs l \
             JOIN templates t ON l.template_id = t.id \
             JOIN templates c ON c.id = t.current_id \
             WHERE l.body LIKE 'user %' GROUP BY c.template",
        )
        .await;
    assert_eq!(
        per_current,
        vec![json_row(json!({"template": "user <*> logged in", "n": 4}))]
    );
}

fn json_row(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().expect("an object").clone()
}

/// Template id by body text.
async fn ids_of(node: &Server) -> HashMap<String, String> {
    let sql = "SELECT body, template_id FROM logs";
    let pairs = text_pairs(node, sql, "body", "template_id").await;
    pairs.into_iter().collect()
}

/// `(id, parent_id)` of every replaced template.
async fn lineage_of(node: &Server) -> Vec<(String, String)> {
    let sql = "SELECT id, parent_id FROM templates WHERE parent_id IS NOT NULL ORDER BY id";
    text_pairs(node, sql, "id", "parent_id").await
}

/// The text columns `a` and `b` of `sql`'s rows, in order.
async fn text_pairs(node: &Server, sql: &str, a: &str, b: &str) -> Vec<(String, String)> {
    node.sql(sql)
        .await
        .iter()
        .map(|row| (str_of(row, a).to_owned(), str_of(row, b).to_owned()))
        .collect()
}

/// Waits until the miner's state file (the JSON document of
/// `patterns/src/state.rs`) records `lines` mined lines: a save can fall
/// between two records of one request.
async fn wait_for_saved_lines(path: &Path, lines: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let saved = || -> Option<u64> {
        let state: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        state["stats"]["lines"].as_u64()
    };
    while saved() != Some(lines) {
        assert!(
            Instant::now() < deadline,
            "{} did not record {lines} lines within 30 s (it has {:?})",
            path.display(),
            saved()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_lineage_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("data/patterns/miner.json");

    // Saved periodically: a SIGKILL after a save loses nothing learned.
    let node = Server::start_in(dir.path(), "[patterns]\nsave_interval = \"1s\"\n");
    let mut records = logins(None);
    records.push(redis_timeout(1, Some(0x0002)));
    export((node.grpc, node.http), Protocol::HttpProtobuf, 0, records).await;
    let before = ids_of(&node).await;
    let lineage = lineage_of(&node).await;
    assert_eq!(lineage.len(), 3, "{lineage:?}");
    let general = before["user dave logged in"].clone();
    wait_for_saved_lines(&state, 5).await;
    node.kill();

    // Saved only at shutdown from here on.
    let quiet = "[patterns]\nsave_interval = \"1h\"\n";
    let node = Server::start_in(dir.path(), quiet);
    assert_eq!(lineage_of(&node).await, lineage, "lineage reloaded");
    assert_eq!(ids_of(&node).await, before, "stored rows keep their ids");
    // A new user takes the learned general template, which a fresh miner
    // would not know yet; a known event keeps its id.
    export(
        (node.grpc, node.http),
        Protocol::Grpc,
        1_000_000,
        vec![
            text("user erin logged in", None),
            redis_timeout(7, None),
            text("disk 91% full on /dev/sda1", None),
        ],
    )
    .await;
    let after = ids_of(&node).await;
    assert_eq!(after["user erin logged in"], general);
    assert_eq!(
        after["timeout after 8s talking to redis at 10.0.3.17:6379"],
        before["timeout after 2s talking to redis at 10.0.1.11:6379"]
    );
    let disk_id = after["disk 91% full on /dev/sda1"].clone();
    let counts = node
        .sql(&format!(
            "SELECT count FROM templates WHERE id = '{general}'"
        ))
        .await;
    assert_eq!(counts[0]["count"], json!(5));
    node.stop().await;

    // The shutdown save kept what was learned after the last periodic one.
    let node = Server::start_in(dir.path(), quiet);
    let templates: HashMap<String, i64> = node
        .sql("SELECT id, count FROM templates")
        .await
        .iter()
        .map(|r| (str_of(r, "id").to_owned(), r["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(templates.get(&disk_id), Some(&1), "{templates:?}");
    assert_eq!(templates.get(&general), Some(&5), "{templates:?}");
    assert_eq!(lineage_of(&node).await, lineage);
    assert_eq!(
        node.sql("SELECT count(*) AS n FROM logs l JOIN templates t ON l.template_id = t.id")
            .await[0]["n"],
        json!(8)
    );
    node.stop().await;
}

/// Runs `grayscope mine` with `args`, feeding `stdin`; returns stdout and
/// stderr.
fn run_mine(args: &[&str], stdin: Option<&[u8]>) -> (String, String) {
    let mut child = Command::new(binary())
        .arg("mine")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Splits one CSV record of three or four fields (quoted fields may hold
/// commas and doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mine_gives_the_ids_ingest_gave() {
    let server = Server::start_with_config(RULES);
    let mut bodies: Vec<String> = Vec::new();
    for n in 0..6 {
        bodies.push(format!(
            "GET /api/v1/orders/{} from 10.1.2.{} took {}ms",
            1_000 + n,
            n,
            20 + n
        ));
        bodies.push(format!("cache miss for key product:{n}, \"price\" stale"));
        bodies.push(format!(
            "{{\"level\":\"warn\",\"msg\":\"slow query\",\"table\":\"orders\",\"ms\":{}}}",
            300 + n
        ));
        bodies.push(format!("level=error msg=\"redis timeout\" after={n}s"));
        bodies.push(
            [
                "user alice logged in",
                "user bob logged in",
                "user carol logged in",
                "user dave logged in",
                "user erin logged in",
                "user frank logged in",
            ][n as usize]
                .to_owned(),
        );
    }
    bodies.push(String::new());
    export(
        ends(&server),
        Protocol::HttpProtobuf,
        0,
        bodies.iter().map(|b| text(b.clone(), None)).collect(),
    )
    .await;
    let stored: Vec<(String, String, Value)> = server
        .sql("SELECT template_id, template, rules FROM logs ORDER BY time")
        .await
        .iter()
        .map(|r| {
            (
                str_of(r, "template_id").to_owned(),
                str_of(r, "template").to_owned(),
                r["rules"].clone(),
            )
        })
        .collect();
    assert_eq!(stored.len(), bodies.len());
    assert_eq!(stored.last().unwrap().0, EMPTY_TEMPLATE_ID);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bodies.log");
    std::fs::write(&file, bodies.join("\n") + "\n").unwrap();
    let config = server.config_path.to_str().unwrap();

    // CSV from a file, with the server's rules.
    let (csv, summary) = run_mine(&[file.to_str().unwrap(), "--config", config], None);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("line,template_id,template,rules"));
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert_eq!(rows.len(), bodies.len());
    for (i, (row, (id, template, rules))) in rows.iter().zip(&stored).enumerate() {
        assert_eq!(row[0], (i + 1).to_string());
        assert_eq!(&row[1], id, "line {}: {:?}", i + 1, bodies[i]);
        assert_eq!(&row[2], template, "line {}", i + 1);
        let names: Vec<&str> = rules
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(row[3], names.join(";"), "line {}", i + 1);
    }
    assert!(summary.contains("31 lines"), "{summary}");
    assert!(
        summary.contains("       6  ") && summary.contains("user <*> logged in"),
        "{summary}"
    );
    assert!(summary.contains("rule hits:"), "{summary}");
    assert!(summary.contains("       6  redis\n"), "{summary}");

    // JSON lines from standard input.
    let input = bodies.join("\n");
    let (json_lines, _) = run_mine(
        &["-", "--format", "json", "--config", config],
        Some(input.as_bytes()),
    );
    let rows: Vec<Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // No newline after the last (empty) body: nothing to read there.
    assert_eq!(rows.len(), bodies.len() - 1);
    for (i, (row, (id, template, rules))) in rows.iter().zip(&stored).enumerate() {
        assert_eq!(row["line"], json!(i + 1));
        assert_eq!(row["template_id"], json!(id));
        assert_eq!(row["template"], json!(template));
        assert_eq!(&row["rules"], rules);
    }

    // Without a configuration: no rules column; the same ids.
    let (csv, _) = run_mine(&[file.to_str().unwrap()], None);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("line,template_id,template"));
    assert_eq!(csv_fields(lines.next().unwrap())[1], stored[0].0);
}

#[test]
fn a_bad_rule_pattern_is_a_configuration_error_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[log_rules]]\nname = \"oom\"\npattern = \"OOMKilled\"\n\
         [[log_rules]]\nname = \"redis_timeout\"\npattern = \"timeout(.*redis\"\n",
    )
    .unwrap();
    for args in [
        vec!["check-config", bad.to_str().unwrap()],
        vec!["serve", "--config", bad.to_str().unwrap()],
        vec!["mine", "--config", bad.to_str().unwrap(), "/dev/null"],
    ] {
        let output = Command::new(binary()).args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("`log_rules[1].pattern`") && stderr.contains("\"redis_timeout\""),
            "{args:?}: {stderr}"
        );
    }

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[patterns]\nmax_templates = 1000\n[[log_rules]]\nname = \"oom\"\npattern = \"(?i)oomkilled\"\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("log_rules oom"));

    let range = dir.path().join("range.toml");
    std::fs::write(&range, "[patterns]\nmax_tokens = 1\n").unwrap();
    let output = Command::new(binary())
        .args(["check-config"])
        .arg(&range)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`patterns.max_tokens`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_empty_and_missing_bodies_do_no_harm() {
    let server = Server::start();
    // 1 MB of words and numbers; 1 MB without a space; 1.2 MB of two-byte
    // characters (the miner's 64 KiB cut falls inside one); empty; none.
    let words: String = (0..)
        .map(|i| format!("chunk {i} of payload "))
        .take_while({
            let mut len = 0;
            move |s| {
                len += s.len();
                len <= 1_000_000
            }
        })
        .collect();
    let records = vec![
        text(words.clone(), None),
        text("x".repeat(1_000_000), None),
        text("é".repeat(600_000), None),
        text("", None),
        Record {
            body: None,
            flag: None,
        },
    ];
    export(ends(&server), Protocol::HttpProtobuf, 0, records).await;
    let rows = server
        .sql(
            "SELECT octet_length(body) AS body_bytes, template_id, octet_length(template) AS template_bytes, \
                    cardinality(rules) AS rules FROM logs ORDER BY time",
        )
        .await;
    assert_eq!(rows.len(), 5, "{rows:#?}");
    assert_eq!(
        rows[0]["body_bytes"],
        json!(words.len()),
        "the body is kept whole"
    );
    assert_eq!(rows[1]["body_bytes"], json!(1_000_000));
    assert_eq!(rows[2]["body_bytes"], json!(1_200_000));
    for row in &rows[..3] {
        let bytes = row["template_bytes"].as_i64().unwrap();
        assert!(bytes > 0 && bytes <= 64 * 1024, "{row:?}");
    }
    assert_eq!(rows[3]["template_id"], json!(EMPTY_TEMPLATE_ID));
    assert_eq!(rows[3]["template_bytes"], json!(0));
    assert_eq!(rows[4]["template_id"], Value::Null);
    assert_eq!(rows[4]["body_bytes"], Value::Null);
    assert!(rows.iter().all(|r| r["rules"] == json!(0)));

    // The server goes on mining.
    export(
        ends(&server),
        Protocol::Grpc,
        1_000_000,
        vec![text("disk 91% full on /dev/sda1", None)],
    )
    .await;
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM logs WHERE template = 'disk <*> full on <*>'")
            .await,
        1
    );
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM templates WHERE template = 'disk <*> full on <*>'")
            .await,
        1
    );
}
