//! The command line: `check-config`, `sql`, exit codes.

use std::process::Command;

use super::harness::{Server, binary};

#[test]
fn check_config_accepts_a_good_file_and_explains_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[otlp]\ngrpc_addr = \"127.0.0.1:14317\"\n").unwrap();
    let output = Command::new(binary())
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("127.0.0.1:14317"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "data_dir = \"x\"\n[otlp]\ngrpc_adress = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("unknown field `grpc_adress`"), "{stderr}");

    let output = Command::new(binary())
        .args(["check-config", "/nonexistent/grayscope.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn serve_refuses_a_bad_config_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[api]\naddr = \"not an address\"\n").unwrap();
    let output = Command::new(binary())
        .arg("serve")
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_prints_a_readable_table_and_fails_on_bad_sql() {
    let server = Server::start();
    let url = format!("http://{}", server.api);
    let output = tokio::process::Command::new(binary())
        .args(["sql", "--url", &url, "SELECT 'canary' AS cohort, 42 AS n"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("| cohort | n  |"), "{table}");
    assert!(table.contains("| canary | 42 |"), "{table}");

    let output = tokio::process::Command::new(binary())
        .args(["sql", "--url", &url, "--format", "csv", "SELECT 1 AS x"])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "x\n1\n");

    let output = tokio::process::Command::new(binary())
        .args(["sql", "--url", &url, "SELEC 1"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SELEC"));
}
