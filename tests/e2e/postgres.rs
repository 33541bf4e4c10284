//! The PostgreSQL wire protocol, driven by clients nobody here wrote:
//! `psql` (the binary), the Rust `tokio-postgres` driver and Python's
//! `psycopg`. A grayscope populated over OTLP answers them exactly; it
//! refuses writes, bad tokens and plain text where TLS is required; and
//! its memory and time limits hold over the wire.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use super::harness::Server;
use super::telemetry::T0_NS;

// ---------------------------------------------------------------- data ---

/// A trace id of `seed` bytes whose gray flag is `flag` (2 = canary).
fn trace(seed: u8, flag: u16) -> String {
    format!("{}{flag:04x}", hex::encode([seed; 14]))
}

fn span_id(seed: u8) -> String {
    hex::encode([seed; 8])
}

fn nanos(offset_ms: u64) -> String {
    (T0_NS + offset_ms * 1_000_000).to_string()
}

fn resource(version: &str) -> Value {
    json!({"attributes": [
        {"key": "service.name", "value": {"stringValue": "checkout"}},
        {"key": "service.version", "value": {"stringValue": version}},
    ]})
}

/// The spans of the data set: (trace seed, gray flag, start ms after T0,
/// duration ms, error).
const SPANS: [(u8, u16, u64, u64, bool); 6] = [
    (0x61, 0, 0, 10, false),
    (0x62, 0, 10_000, 20, false),
    (0x63, 0, 70_000, 40, false),
    (0x71, 2, 5_000, 100, true),
    (0x72, 2, 15_000, 200, false),
    (0x77, 2, 75_000, 900, true),
];

/// The logs: (trace seed, gray flag, ms after T0, severity number and
/// text, body).
const LOGS: [(u8, u16, u64, i32, &str, &str); 5] = [
    (0x61, 0, 5, 9, "INFO", "cart loaded in 10ms"),
    (
        0x71,
        2,
        5_050,
        17,
        "ERROR",
        "redis timeout after 90ms on cache-2",
    ),
    (0x77, 2, 75_100, 13, "WARN", "retrying redis on cache-1"),
    (
        0x77,
        2,
        75_850,
        17,
        "ERROR",
        "redis timeout after 850ms on cache-1",
    ),
    (0x77, 2, 75_900, 9, "INFO", "cart loaded in 900ms"),
];

/// Sends the data set over OTLP/HTTP (JSON): a checkout service whose
/// canary (version 1.1.0, gray flag 0x0002) is slow and fails.
pub async fn populate(server: &Server) {
    let version = |flag: u16| if flag == 2 { "1.1.0" } else { "1.0.0" };
    let mut resource_spans = Vec::new();
    for (seed, flag, start, duration, error) in SPANS {
        resource_spans.push(json!({
            "resource": resource(version(flag)),
            "scopeSpans": [{"scope": {"name": "shop"}, "spans": [{
                "traceId": trace(seed, flag),
                "spanId": span_id(seed),
                "name": "GET /cart",
                "kind": 2,
                "startTimeUnixNano": nanos(start),
                "endTimeUnixNano": nanos(start + duration),
                "status": {"code": if error { 2 } else { 1 }},
            }]}],
        }));
    }
    let mut resource_logs = Vec::new();
    for (seed, flag, time, severity, text, body) in LOGS {
        resource_logs.push(json!({
            "resource": resource(version(flag)),
            "scopeLogs": [{"scope": {"name": "shop"}, "logRecords": [{
                "timeUnixNano": nanos(time),
                "severityNumber": severity,
                "severityText": text,
                "body": {"stringValue": body},
                "traceId": trace(seed, flag),
                "spanId": span_id(seed),
            }]}],
        }));
    }
    let http = reqwest::Client::new();
    for (path, body) in [
        ("/v1/traces", json!({ "resourceSpans": resource_spans })),
        ("/v1/logs", json!({ "resourceLogs": resource_logs })),
    ] {
        let response = http
            .post(server.otlp_http_url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{path}: {}",
            response.text().await.unwrap()
        );
    }
    // An answered export is stored and visible.
    assert_eq!(server.count("SELECT count(*) AS n FROM spans").await, 6);
    assert_eq!(server.count("SELECT count(*) AS n FROM logs").await, 5);
}

// ------------------------------------------------------------- clients ---

/// Runs `psql` with `commands` (as `-c` options) against `conninfo`.
pub async fn psql(conninfo: &str, password: Option<&str>, commands: &[&str]) -> Output {
    let mut command = tokio::process::Command::new("psql");
    command
        .arg("-X")
        .arg("-q")
        .args(["-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"])
        .arg(conninfo)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGPASSWORD");
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    for sql in commands {
        command.arg("-c").arg(sql);
    }
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("psql finished within a minute")
        .expect("run psql (Debian package postgresql-client; scripts/test installs it)")
}

pub fn conninfo(server: &Server) -> String {
    format!(
        "host=127.0.0.1 port={} user=grafana dbname=grayscope sslmode=disable",
        server.postgres.port()
    )
}

pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "psql failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

async fn connect(server: &Server, password: Option<&str>) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(server.postgres.port())
        .user("grafana")
        .dbname("grayscope")
        .connect_timeout(Duration::from_secs(10));
    if let Some(password) = password {
        config.password(password);
    }
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The SQLSTATE and message of a failed statement.
fn db_error(error: &tokio_postgres::Error) -> (SqlState, String) {
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {error:?}"));
    (db.code().clone(), db.message().to_owned())
}

fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("GRAYSCOPE_PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with psycopg: run scripts/test (it creates target/venv), or set GRAYSCOPE_PYTHON"
    );
    venv
}

// --------------------------------------------------------------- tests ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_lists_the_tables_and_describes_their_columns() {
    let server = Server::start();
    populate(&server).await;
    let conninfo = conninfo(&server);

    let tables = stdout(&psql(&conninfo, None, &["\\dt"]).await);
    for table in ["logs", "metrics", "spans", "verdicts"] {
        assert!(
            tables.contains(&format!(" public | {table:<8} | table |")),
            "{table} missing from \\dt:\n{tables}"
        );
    }
    let spans = stdout(&psql(&conninfo, None, &["\\d spans"]).await);
    assert!(spans.contains("Table \"public.spans\""), "{spans}");
    for line in [
        " time                | timestamp with time zone |           | not null |",
        " duration_ns         | bigint                   |           | not null |",
        " trace_id            | text                     |           | not null |",
        " cohort              | text                     |           | not null |",
    ] {
        assert!(
            spans.contains(line),
            "{line:?} missing from \\d spans:\n{spans}"
        );
    }

    // Every column of every table crosses the wire, nested ones included.
    for table in [
        "spans",
        "logs",
        "metrics",
        "verdicts",
        "templates",
        "trace_cohorts",
        "logs_with_trace_cohort",
        "system.tables",
        "system.parts",
        "system.store",
    ] {
        stdout(&psql(&conninfo, None, &[&format!("SELECT * FROM {table}")]).await);
    }
    let versions = stdout(
        &psql(
            &conninfo,
            None,
            &[
                "SELECT resource_attributes['service.version'] AS version, count(*) AS n \
               FROM spans GROUP BY 1 ORDER BY 1",
            ],
        )
        .await,
    );
    assert!(
        versions.contains(" 1.0.0   | 3\n 1.1.0   | 3\n"),
        "{versions}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_binds_parameters_to_prepared_statements() {
    let server = Server::start();
    populate(&server).await;
    let client = connect(&server, None).await.unwrap();

    let slow = client
        .prepare(
            "SELECT trace_id, duration_ns FROM spans \
             WHERE cohort = $1 AND duration_ns >= $2 ORDER BY duration_ns",
        )
        .await
        .unwrap();
    let rows = client
        .query(&slow, &[&"canary", &150_000_000i64])
        .await
        .unwrap();
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![(trace(0x72, 2), 200_000_000), (trace(0x77, 2), 900_000_000)]
    );
    // The same statement, other values.
    let rows = client
        .query(&slow, &[&"baseline", &15_000_000i64])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);

    let logs = client
        .query(
            "SELECT severity_text, body FROM logs WHERE trace_id = $1 ORDER BY time",
            &[&trace(0x77, 2)],
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = logs.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            ("WARN".to_owned(), "retrying redis on cache-1".to_owned()),
            (
                "ERROR".to_owned(),
                "redis timeout after 850ms on cache-1".to_owned()
            ),
            ("INFO".to_owned(), "cart loaded in 900ms".to_owned()),
        ]
    );
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM spans WHERE status_code = $1",
            &[&"error"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_queries_with_bound_parameters() {
    let server = Server::start();
    populate(&server).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/psycopg_query.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .arg(format!(
            "host=127.0.0.1 port={} user=analyst dbname=grayscope",
            server.postgres.port()
        ))
        .arg(
            "SELECT cohort, count(*) AS spans, max(duration_ns) AS slowest_ns FROM spans \
             WHERE service = %s AND duration_ns >= %s GROUP BY cohort ORDER BY cohort",
        )
        .arg(json!(["checkout", 10_000_000]).to_string())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        rows,
        json!([["baseline", 3, 40_000_000], ["canary", 3, 900_000_000]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_refused_by_name_and_the_connection_stays_usable() {
    let server = Server::start();
    let client = connect(&server, None).await.unwrap();
    for (sql, refused) in [
        ("CREATE TABLE t (a INT)", "CREATE TABLE"),
        ("INSERT INTO spans SELECT * FROM spans", "INSERT INTO"),
        ("COPY spans TO '/tmp/grayscope-spans.csv'", "COPY"),
        ("DROP TABLE spans", "DROP TABLE"),
        ("SET datafusion.execution.batch_size = 1", "SET"),
        (
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "CREATE EXTERNAL TABLE",
        ),
    ] {
        // Simple protocol (as psql sends it) and extended (prepared).
        let simple = client.simple_query(sql).await.unwrap_err();
        let extended = client.execute(sql, &[]).await.unwrap_err();
        for error in [simple, extended] {
            let (code, message) = db_error(&error);
            assert_eq!(
                code,
                SqlState::READ_ONLY_SQL_TRANSACTION,
                "{sql}: {message}"
            );
            assert!(
                message.starts_with(&format!("{refused} is refused"))
                    && message.contains("read-only"),
                "{sql}: {message}"
            );
        }
        let one: i64 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1, "the connection still answers after {sql}");
    }
    assert!(!Path::new("/tmp/grayscope-spans.csv").exists());
    // Nothing was created or dropped.
    let messages = client
        .simple_query("SELECT count(*) FROM spans")
        .await
        .unwrap();
    assert!(matches!(&messages[1], SimpleQueryMessage::Row(row) if row.get(0) == Some("0")));
    // What drivers send to set up a session still works.
    client
        .batch_execute("SET application_name = 'grafana'; BEGIN; COMMIT")
        .await
        .unwrap();
}

const QUERY_TOKEN: &str = "grafana-0123456789abcdef";
const INGEST_TOKEN: &str = "collector-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_refused_with_53300_until_one_closes() {
    let server = Server::start_with_sql("max_connections = 2\n", "");
    let first = connect(&server, None).await.unwrap();
    let second = connect(&server, None).await.unwrap();

    let Err(error) = connect(&server, None).await else {
        panic!("a third connection was let in");
    };
    let (code, message) = db_error(&error);
    assert_eq!(code, SqlState::TOO_MANY_CONNECTIONS, "{message}");
    assert!(message.contains("max_connections"), "{message}");
    // The two connections in keep being served.
    for client in [&first, &second] {
        let one: i64 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
    }

    // Once one closes, its slot is free again.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let third = loop {
        match connect(&server, None).await {
            Ok(client) => break client,
            Err(error) if std::time::Instant::now() < deadline => {
                assert_eq!(db_error(&error).0, SqlState::TOO_MANY_CONNECTIONS);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the freed slot was never reused: {error}"),
        }
    };
    let one: i64 = third.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_need_a_token_with_the_query_role() {
    let server = Server::start_with_config(&format!(
        "[[auth.tokens]]\nname = \"grafana\"\ntoken = \"{QUERY_TOKEN}\"\nroles = [\"query\"]\n\
         [[auth.tokens]]\nname = \"collector\"\ntoken = \"{INGEST_TOKEN}\"\nroles = [\"ingest\"]\n"
    ));
    let client = connect(&server, Some(QUERY_TOKEN)).await.unwrap();
    let one: i64 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    for (password, code, needle) in [
        ("", SqlState::INVALID_PASSWORD, "authentication required"),
        (
            "grafana-0123456789abcdeF",
            SqlState::INVALID_PASSWORD,
            "not valid",
        ),
        (
            INGEST_TOKEN,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            "does not have the query role",
        ),
    ] {
        let Err(error) = connect(&server, Some(password)).await else {
            panic!("{password:?} was let in");
        };
        let (got, message) = db_error(&error);
        assert_eq!(got, code, "{password:?}: {message}");
        assert!(message.contains(needle), "{password:?}: {message}");
    }
    // psql without a password cannot log in; with the token it can.
    let conninfo = conninfo(&server);
    let refused = psql(&conninfo, None, &["SELECT 1"]).await;
    assert!(!refused.status.success());
    let output = stdout(&psql(&conninfo, Some(QUERY_TOKEN), &["SELECT 1 AS one"]).await);
    assert!(output.contains(" one \n-----\n   1\n(1 row)"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_uses_the_configured_certificate_and_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start_with_config(&format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n"));
    let port = server.postgres.port();

    // verify-full checks the chain against our root and the host name.
    let verified = format!(
        "host=localhost hostaddr=127.0.0.1 port={port} user=u dbname=grayscope \
         sslmode=verify-full sslrootcert={}",
        cert.display()
    );
    let output = stdout(
        &psql(
            &verified,
            None,
            &["SELECT ssl FROM (SELECT true AS ssl)", "\\conninfo"],
        )
        .await,
    );
    assert!(
        output.contains("SSL connection (protocol: TLSv1.3"),
        "{output}"
    );

    // A client that does not switch to TLS is refused before it logs in.
    let plain = format!("host=127.0.0.1 port={port} user=u dbname=grayscope sslmode=disable");
    let refused = psql(&plain, None, &["SELECT 1"]).await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("accepts only TLS connections"), "{stderr}");

    // A certificate for another name fails verification.
    let wrong_name = verified.replace("host=localhost", "host=grayscope.invalid");
    let refused = psql(&wrong_name, None, &["SELECT 1"]).await;
    assert!(!refused.status.success());

    // And a server without [tls] cannot satisfy a client that requires it.
    let plain_server = Server::start();
    let required = format!(
        "host=127.0.0.1 port={} user=u dbname=grayscope sslmode=require",
        plain_server.postgres.port()
    );
    let refused = psql(&required, None, &["SELECT 1"]).await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("server does not support SSL"), "{stderr}");
}

/// Sorting a million integers needs several MiB.
const BIG_SORT: &str = "SELECT value FROM generate_series(1, 1000000) ORDER BY value DESC";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_and_time_limits_hold_over_the_wire() {
    let server = Server::start_with_sql("memory_limit = \"1MiB\"\ntimeout = \"2s\"\n", "");
    populate(&server).await;
    let (greedy, modest) = (
        connect(&server, None).await.unwrap(),
        connect(&server, None).await.unwrap(),
    );
    let (big, small) = tokio::join!(
        greedy.query(BIG_SORT, &[]),
        modest.query("SELECT cohort, count(*) FROM spans GROUP BY cohort", &[])
    );
    let (code, message) = db_error(&big.unwrap_err());
    assert_eq!(code, SqlState::OUT_OF_MEMORY, "{message}");
    assert!(message.contains("1MiB (sql.memory_limit)"), "{message}");
    assert_eq!(small.unwrap().len(), 2);
    // The greedy client's connection is still good.
    let n: i64 = greedy
        .query_one("SELECT count(*) FROM logs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 5);

    let started = Instant::now();
    let error = greedy
        .query(
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            &[],
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let (code, message) = db_error(&error);
    assert_eq!(code, SqlState::QUERY_CANCELED, "{message}");
    assert_eq!(message, "the query was cancelled after 2s (sql.timeout)");
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(10),
        "cancelled late: {elapsed:?}"
    );
    let one: i64 = greedy.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    // A client may ask for less time, not more.
    greedy
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let started = Instant::now();
    let error = greedy
        .query(
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            &[],
        )
        .await
        .unwrap_err();
    let (code, message) = db_error(&error);
    assert_eq!(code, SqlState::QUERY_CANCELED, "{message}");
    assert_eq!(
        message,
        "the query was cancelled after 300ms (statement_timeout)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    greedy
        .batch_execute("SET statement_timeout = '1h'")
        .await
        .unwrap();
    let error = greedy
        .query(
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        db_error(&error).1,
        "the query was cancelled after 2s (sql.timeout)"
    );
}

/// The catalog queries of Grafana's PostgreSQL datasource, verbatim (its
/// table picker, and its column picker for the table `public.spans`).
const GRAFANA_TABLES: &str = r#"SELECT
        CASE WHEN
              quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              )
          THEN quote_ident(table_name)
          ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
        END AS "table"
        FROM information_schema.tables
        WHERE quote_ident(table_schema) NOT IN ('information_schema',
                                 'pg_catalog',
                                 '_timescaledb_cache',
                                 '_timescaledb_catalog',
                                 '_timescaledb_internal',
                                 '_timescaledb_config',
                                 'timescaledb_information',
                                 'timescaledb_experimental')
        ORDER BY CASE WHEN
              quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              ) THEN 0 ELSE 1 END, 1"#;

const GRAFANA_COLUMNS: &str = r#"SELECT quote_ident(column_name) AS "column", data_type AS "type"
        FROM information_schema.columns
        WHERE
          CASE WHEN array_length(parse_ident('public.spans'),1) = 2
            THEN quote_ident(table_schema) = (parse_ident('public.spans'))[1]
              AND quote_ident(table_name) = (parse_ident('public.spans'))[2]
            ELSE quote_ident(table_name) = 'public.spans'
              AND
              quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              )
          END"#;

/// The rows of a simple-protocol answer, as text.
fn text_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<String>> {
    messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafanas_catalog_and_time_series_queries_are_answered() {
    let server = Server::start();
    populate(&server).await;
    let client = connect(&server, None).await.unwrap();

    // The datasource's table picker.
    let tables = client.simple_query(GRAFANA_TABLES).await.unwrap();
    let tables: Vec<String> = text_rows(&tables)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    for table in [
        "public.logs",
        "public.metrics",
        "public.spans",
        "public.verdicts",
        "system.parts",
    ] {
        assert!(
            tables.contains(&table.to_owned()),
            "{table} not in {tables:?}"
        );
    }
    let mut sorted = tables.clone();
    sorted.sort();
    assert_eq!(tables, sorted);

    // Its column picker, for the table picked.
    let columns = client.simple_query(GRAFANA_COLUMNS).await.unwrap();
    let columns = text_rows(&columns);
    assert_eq!(columns.len(), 26, "{columns:?}");
    for (column, kind) in [
        ("time", "Timestamp(ns, \"UTC\")"),
        ("duration_ns", "Int64"),
        // The store's string columns are scanned as views.
        ("cohort", "Utf8View"),
    ] {
        assert!(
            columns.iter().any(|c| c[0] == column && c[1] == kind),
            "{column} {kind} not in {columns:?}"
        );
    }

    // A time series panel, as Grafana sends it once it expanded
    // `$__timeGroupAlias(time, 1m)` and `$__timeFilter(time)`.
    let series = client
        .simple_query(
            "SELECT floor(extract(epoch from time)/60)*60 AS \"time\", cohort AS metric, \
               count(*) AS value \
             FROM spans \
             WHERE time BETWEEN '2025-11-24T16:00:00Z' AND '2025-11-24T17:00:00Z' \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await
        .unwrap();
    let series: Vec<(f64, String, i64)> = text_rows(&series)
        .into_iter()
        .map(|r| (r[0].parse().unwrap(), r[1].clone(), r[2].parse().unwrap()))
        .collect();
    let t0 = (T0_NS / 1_000_000_000) as f64;
    assert_eq!(
        series,
        vec![
            (t0, "baseline".to_owned(), 2),
            (t0, "canary".to_owned(), 2),
            (t0 + 60.0, "baseline".to_owned(), 1),
            (t0 + 60.0, "canary".to_owned(), 1),
        ]
    );
    let setting = client
        .simple_query("SELECT current_setting('search_path')")
        .await
        .unwrap();
    assert_eq!(text_rows(&setting), vec![vec!["public".to_owned()]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_do_not_hold_up_a_graceful_shutdown() {
    let mut server = Server::start();
    let idle = connect(&server, None).await.unwrap();
    let busy = connect(&server, None).await.unwrap();
    let running = tokio::spawn(async move {
        busy.query(
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            &[],
        )
        .await
    });
    // A round trip on the other connection gives the slow query time to
    // reach the server (if it has not, it is cut all the same).
    let one: i64 = idle.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait_exit(Duration::from_secs(8)).await;
    let exit = exit.expect("grayscope exited within 8 s of SIGTERM");
    assert!(exit.success(), "{exit:?}");
    assert!(
        running.await.unwrap().is_err(),
        "the cut query reports an error"
    );
    assert!(idle.query_one("SELECT 1", &[]).await.is_err());
}
