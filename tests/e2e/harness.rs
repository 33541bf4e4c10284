//! Starts a grayscope server on free ports and talks to it.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Map, Value};

/// A running `grayscope serve`, killed on drop.
pub struct Server {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub api: SocketAddr,
    /// The Arrow Flight SQL listener.
    pub flight: SocketAddr,
    /// The signals' gRPC Watch stream, when `signals.grpc_addr` is set.
    pub signals_grpc: Option<SocketAddr>,
    /// The PostgreSQL wire protocol listener.
    pub postgres: SocketAddr,
    /// The configuration file the server was started with.
    pub config_path: PathBuf,
    data: PathBuf,
    /// The temporary directory holding configuration and data, unless the
    /// test keeps its own ([`Server::start_in`]).
    _temp_dir: Option<tempfile::TempDir>,
}

/// The path of the binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_grayscope"))
}

impl Server {
    /// Starts a server with the default configuration on free ports.
    pub fn start() -> Server {
        Server::start_with("")
    }

    /// Starts a server with `extra` appended to its `[otlp]` table.
    pub fn start_with(otlp_extra: &str) -> Server {
        Server::start_configured(otlp_extra, "", "")
    }

    /// Starts a server whose configuration ends with `tables` (any tables
    /// but `[otlp]` and `[api]`, which hold the free ports).
    pub fn start_with_config(tables: &str) -> Server {
        Server::start_configured("", "", tables)
    }

    /// Starts a server with `sql_extra` appended to its `[sql]` table
    /// (which holds the free SQL ports) and `tables` at the end.
    pub fn start_with_sql(sql_extra: &str, tables: &str) -> Server {
        Server::start_configured("", sql_extra, tables)
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// The configuration text `start_with_config(tables)` writes, for a test
    /// that rewrites the file before a reload.
    pub fn config_text(&self, tables: &str) -> String {
        let dir = self.data.parent().expect("data is in a directory");
        Server::config(dir, "", "", tables)
    }

    /// Starts a server on `dir`, which the test keeps: its configuration
    /// (ending with `tables`) and data stay after the server is killed or
    /// stopped, for the next server started on it.
    pub fn start_in(dir: &std::path::Path, tables: &str) -> Server {
        Server::start_on(dir, None, "", "", tables)
    }

    /// Writes the configuration into `dir` and starts a server on it;
    /// `temp_dir` (when it is `dir`) lives as long as the server.
    fn start_on(
        dir: &std::path::Path,
        temp_dir: Option<tempfile::TempDir>,
        otlp_extra: &str,
        sql_extra: &str,
        tables: &str,
    ) -> Server {
        let config_path = dir.join("grayscope.toml");
        let config = Server::config(dir, otlp_extra, sql_extra, tables);
        std::fs::write(&config_path, config).expect("write config");
        Server::launch(temp_dir, dir.join("data"), config_path)
    }

    fn config(dir: &std::path::Path, otlp_extra: &str, sql_extra: &str, tables: &str) -> String {
        format!(
            "data_dir = {data:?}\n\
             [otlp]\n\
             grpc_addr = \"127.0.0.1:0\"\n\
             http_addr = \"127.0.0.1:0\"\n\
             {otlp_extra}\n\
             [api]\n\
             addr = \"127.0.0.1:0\"\n\
             [sql]\n\
             postgres_addr = \"127.0.0.1:0\"\n\
             flight_addr = \"127.0.0.1:0\"\n\
             {sql_extra}\n\
             {tables}\n",
            data = dir.join("data"),
        )
    }

    fn start_configured(otlp_extra: &str, sql_extra: &str, tables: &str) -> Server {
        let temp_dir = tempfile::tempdir().expect("temp dir");
        let dir = temp_dir.path().to_owned();
        Server::start_on(&dir, Some(temp_dir), otlp_extra, sql_extra, tables)
    }

    /// Kills the server (SIGKILL: no shutdown of any kind) and starts it
    /// again on the same data directory and configuration (new ports).
    pub fn restart(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let temp_dir = self._temp_dir.take();
        let (data, config_path) = (self.data.clone(), self.config_path.clone());
        drop(self);
        Server::launch(temp_dir, data, config_path)
    }

    /// SIGKILL: no shutdown of any kind, no final flush or save.
    pub fn kill(mut self) {
        self.child.kill().expect("kill grayscope");
        self.child.wait().expect("reap grayscope");
    }

    /// SIGTERM, and a clean exit within 30 s.
    pub async fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let exit = self.wait_exit(Duration::from_secs(30)).await;
        let exit = exit.expect("grayscope did not stop within 30 s");
        assert!(exit.success(), "grayscope exited with {exit}");
    }

    fn launch(temp_dir: Option<tempfile::TempDir>, data: PathBuf, config_path: PathBuf) -> Server {
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("GRAYSCOPE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start grayscope");

        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("listening ") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("grayscope did not report its addresses within 60 s");
            }
        };
        let addr = |key: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|part| part.strip_prefix(&format!("{key}=")))
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        };
        Server {
            grpc: addr("otlp_grpc"),
            http: addr("otlp_http"),
            api: addr("api"),
            flight: addr("flight"),
            signals_grpc: line
                .split_whitespace()
                .find_map(|part| part.strip_prefix("signals_grpc="))
                .and_then(|a| a.parse().ok()),
            postgres: addr("postgres"),
            child,
            config_path,
            data,
            _temp_dir: temp_dir,
        }
    }

    /// `http://` URL of the OTLP/gRPC receiver.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// URL of an OTLP/HTTP path (`/v1/traces`, …).
    pub fn otlp_http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// URL of the SQL endpoint.
    pub fn sql_url(&self) -> String {
        format!("http://{}/api/v1/sql", self.api)
    }

    /// Runs SQL through `/api/v1/sql` and returns the rows; panics on error.
    pub async fn sql(&self, sql: &str) -> Vec<Map<String, Value>> {
        let (status, body) = self.sql_raw(sql).await;
        assert_eq!(status, 200, "query {sql:?} failed: {body}");
        body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| row.as_object().expect("row object").clone())
            .collect()
    }

    /// Runs SQL and returns the status and the JSON body, whatever they are.
    pub async fn sql_raw(&self, sql: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(self.sql_url())
            .header("content-type", "application/json")
            .json(&serde_json::json!({ "sql": sql }))
            .send()
            .await
            .expect("reach the SQL endpoint");
        let status = response.status().as_u16();
        let body = response.json().await.expect("JSON body");
        (status, body)
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the server to exit by itself (after a
    /// signal): its exit status, or `None` while it still runs.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// URL of an HTTP API path (`/api/v1/admin/reload`, …).
    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{}", self.api, path)
    }

    /// The single number a `SELECT count(*) AS n …` returns.
    pub async fn count(&self, sql: &str) -> i64 {
        let rows = self.sql(sql).await;
        rows[0]["n"].as_i64().expect("a count")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The three ways an OpenTelemetry exporter reaches a collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson];

    /// A name usable in service names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http-protobuf",
            Protocol::HttpJson => "http-json",
        }
    }
}
