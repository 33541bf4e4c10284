//! SQL over HTTP: formats, and errors that are the user's to fix.

use serde_json::json;

use super::harness::Server;

async fn post_sql(server: &Server, sql: &str, accept: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.sql_url())
        .header("content-type", "text/plain")
        .header("accept", accept)
        .body(sql.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_come_as_json_csv_or_arrow() {
    let server = Server::start();
    let sql = "SELECT 1 AS one, 'a,b' AS text, CAST(NULL AS VARCHAR) AS nothing";

    let response = post_sql(&server, sql, "application/json").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["rows"],
        json!([{"one": 1, "text": "a,b", "nothing": null}])
    );
    assert_eq!(body["columns"][0]["name"], json!("one"));
    assert_eq!(body["row_count"], json!(1));

    let response = post_sql(&server, sql, "text/csv").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        response.text().await.unwrap(),
        "one,text,nothing\n1,\"a,b\",\n"
    );

    let response = post_sql(&server, sql, "application/vnd.apache.arrow.stream").await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    let reader = arrow::ipc::reader::StreamReader::try_new(&bytes[..], None).unwrap();
    let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(batches[0].num_rows(), 1);
    assert_eq!(batches[0].schema().field(1).name(), "text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sql_gets_400_with_the_engines_message() {
    let server = Server::start();
    for (sql, needle) in [
        ("SELEC 1", "SELEC"),
        ("SELECT nope FROM spans", "nope"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("CREATE TABLE t (a INT)", "read-only"),
        ("", "empty"),
    ] {
        let (status, body) = server.sql_raw(sql).await;
        assert_eq!(status, 400, "{sql:?}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(needle), "{sql:?}: {message}");
    }
    let response = reqwest::Client::new()
        .post(server.sql_url())
        .header("content-type", "application/json")
        .body("{\"query\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Still serving.
    assert_eq!(server.count("SELECT count(*) AS n FROM spans").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_limits_hold_over_http() {
    let server = Server::start_with_sql("memory_limit = \"1MiB\"\ntimeout = \"2s\"\n", "");
    let (status, body) = server
        .sql_raw("SELECT value FROM generate_series(1, 1000000) ORDER BY value DESC")
        .await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("1MiB (sql.memory_limit)"), "{message}");

    let started = std::time::Instant::now();
    let (status, body) = server
        .sql_raw("SELECT count(*) FROM generate_series(1, 1000000000000)")
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"],
        json!("the query was cancelled after 2s (sql.timeout)")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Small queries still run.
    assert_eq!(server.count("SELECT count(*) AS n FROM spans").await, 0);
}
