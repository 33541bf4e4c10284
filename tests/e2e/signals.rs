//! Signals as a router receives them: a webhook receiver on loopback that
//! verifies every signature as docs/signals.md tells routers to, answers
//! 500 before it accepts, goes down while grayscope is killed and
//! restarted, and still sees every signal once, in order, without gaps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::harness::Server;

const SECRET: &str = "router-secret";

/// A router's webhook endpoint.
#[derive(Default)]
pub struct Receiver {
    /// Attempts per signal id that get a 500 before one is accepted.
    fail_first: u32,
    /// While set, everything gets a 503.
    down: AtomicBool,
    /// Sleep this long before answering.
    delay: Duration,
    attempts: Mutex<HashMap<String, u32>>,
    /// Accepted signals, first delivery of each id only, in arrival order,
    /// with when they arrived.
    accepted: Mutex<Vec<(Value, Instant)>>,
    duplicates: AtomicUsize,
    bad_signatures: AtomicUsize,
}

fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let timestamp = header("x-grayscope-timestamp");
    let Ok(at) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - at).abs() > 300 {
        return false;
    }
    let Some(tag) = header("x-grayscope-signature")
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !rx.delay.is_zero() {
        tokio::time::sleep(rx.delay).await;
    }
    if !verify(&headers, &body) {
        rx.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let signal: Value = serde_json::from_slice(&body).unwrap();
    let id = signal["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["x-grayscope-signal-id"].to_str().unwrap(), id);
    let attempts = {
        let mut all = rx.attempts.lock().await;
        let n = all.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    if rx.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if attempts <= rx.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let mut accepted = rx.accepted.lock().await;
    if accepted.iter().any(|(s, _)| s["id"] == signal["id"]) {
        rx.duplicates.fetch_add(1, Ordering::SeqCst);
    } else {
        accepted.push((signal, Instant::now()));
    }
    StatusCode::OK
}

impl Receiver {
    /// Serves `self` on a free loopback port.
    pub async fn serve(self) -> (Arc<Receiver>, SocketAddr) {
        let rx = Arc::new(self);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(rx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (rx, addr)
    }

    /// Serves `self` over TLS (`https://`) with `tls` on a free loopback port.
    pub async fn serve_tls(
        self,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> (Arc<Receiver>, SocketAddr) {
        let rx = Arc::new(self);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(rx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = TlsListener {
            tcp: listener,
            acceptor: tokio_rustls::TlsAcceptor::from(tls),
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        (rx, addr)
    }

    /// Every accepted signal by id.
    pub async fn bodies(&self) -> HashMap<String, Value> {
        let accepted = self.accepted.lock().await;
        accepted
            .iter()
            .map(|(s, _)| (s["id"].as_str().unwrap().to_owned(), s.clone()))
            .collect()
    }

    async fn ids(&self) -> Vec<String> {
        let accepted = self.accepted.lock().await;
        accepted
            .iter()
            .map(|(s, _)| s["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The accepted ids, once there are `n` (or `within` passed).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let ids = self.ids().await;
            if ids.len() >= n || Instant::now() > deadline {
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A TLS listener for axum: accepts TCP, then the TLS handshake (one at a
/// time: enough for a test's receiver).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

pub fn webhook(name: &str, addr: SocketAddr, extra: &str) -> String {
    format!(
        "[[signals.webhooks]]\nname = {name:?}\nurl = \"http://{addr}/hook\"\nsecret = {SECRET:?}\n\
         initial_backoff = \"20ms\"\nmax_backoff = \"100ms\"\n{extra}\n"
    )
}

pub fn rollout() -> Value {
    json!({
        "name": "search-v7", "service": "search", "baseline": "baseline",
        "canary": ["canary"], "interval": "5m", "window": "5m",
    })
}

/// Applies an operator command: a change of the canary, so a signal.
pub async fn command(server: &Server, action: &str) -> Instant {
    let response = reqwest::Client::new()
        .post(server.api_url(&format!("/api/v1/rollouts/search-v7/{action}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "{action}: {}",
        response.text().await.unwrap()
    );
    Instant::now()
}

pub async fn create(server: &Server) {
    let response = reqwest::Client::new()
        .post(server.api_url("/api/v1/rollouts"))
        .json(&rollout())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_webhook_sees_every_signal_once_in_order_after_500s_and_a_restart() {
    let (rx, addr) = Receiver {
        fail_first: 2,
        ..Receiver::default()
    }
    .serve()
    .await;
    let server = Server::start_with_config(&webhook("router", addr, ""));
    create(&server).await;
    for action in ["pause", "resume", "freeze"] {
        command(&server, action).await;
    }
    let ids = rx.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(
        ids,
        [
            "search-v7/canary/1",
            "search-v7/canary/2",
            "search-v7/canary/3"
        ]
    );

    // The router goes down; two more changes wait in the outbox, the first
    // retried again and again; then grayscope is killed.
    rx.down.store(true, Ordering::SeqCst);
    command(&server, "resume").await;
    command(&server, "pause").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx
        .attempts
        .lock()
        .await
        .get("search-v7/canary/4")
        .copied()
        .unwrap_or(0)
        < 3
    {
        assert!(Instant::now() < deadline, "signal 4 was not retried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server = server.restart();
    rx.down.store(false, Ordering::SeqCst);
    // After the restart the pending signals arrive, and the next change
    // continues the sequence.
    command(&server, "resume").await;
    let ids = rx.wait_for(6, Duration::from_secs(20)).await;
    let expected: Vec<String> = (1..=6).map(|n| format!("search-v7/canary/{n}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(rx.bad_signatures.load(Ordering::SeqCst), 0);
    let accepted = rx.accepted.lock().await;
    let sequences: Vec<u64> = accepted
        .iter()
        .map(|(s, _)| s["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5, 6]);
    assert_eq!(accepted[4].0["status"], "paused");
    assert_eq!(accepted[5].0["status"], "running");
    drop(accepted);
    // Every signal took retries: the 500s (and, for 4 and 5, the outage).
    for id in &expected {
        assert!(rx.attempts.lock().await[id] >= 3, "{id}");
    }
    // The delivery state is in SQL.
    let rows = server
        .sql(
            "SELECT signal_id, state, attempts, last_status FROM system.deliveries \
             WHERE destination = 'webhook:router' ORDER BY sequence",
        )
        .await;
    // The restarted server tracked what it delivered itself: 4, 5, 6.
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["signal_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "search-v7/canary/4",
            "search-v7/canary/5",
            "search-v7/canary/6"
        ]
    );
    for row in &rows {
        assert_eq!(row["state"], "delivered", "{row:?}");
        assert_eq!(row["last_status"], 200, "{row:?}");
    }
    assert!(rows[2]["attempts"].as_i64().unwrap() >= 3, "{rows:?}");
}

#[tokio::test]
async fn a_dead_a_slow_and_a_failing_endpoint_hold_back_neither_the_others_nor_the_judge() {
    let (good, good_addr) = Receiver::default().serve().await;
    let (slow, slow_addr) = Receiver {
        delay: Duration::from_secs(5),
        ..Receiver::default()
    }
    .serve()
    .await;
    let (failing, failing_addr) = Receiver {
        fail_first: u32::MAX,
        ..Receiver::default()
    }
    .serve()
    .await;
    let dead_addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = [
        webhook("good", good_addr, ""),
        webhook("slow", slow_addr, "timeout = \"300ms\""),
        webhook("failing", failing_addr, ""),
        webhook("dead", dead_addr, ""),
    ]
    .concat();
    let server = Server::start_with_config(&config);
    create(&server).await;
    let mut latencies = Vec::new();
    for (i, action) in ["pause", "resume", "freeze", "resume", "pause"]
        .iter()
        .enumerate()
    {
        let asked = Instant::now();
        let done = command(&server, action).await;
        assert!(
            done - asked < Duration::from_secs(1),
            "the judge was held back: {:?}",
            done - asked
        );
        good.wait_for(i + 1, Duration::from_secs(5)).await;
        let accepted = good.accepted.lock().await;
        let (signal, at) = accepted
            .get(i)
            .unwrap_or_else(|| panic!("signal {} missing", i + 1));
        assert_eq!(signal["sequence"], i as u64 + 1);
        // From before the command (the change happens inside it) to receipt:
        // an upper bound of change → webhook.
        latencies.push(at.duration_since(asked));
    }
    for latency in &latencies {
        assert!(*latency < Duration::from_secs(1), "{latencies:?}");
    }
    // BENCHMARKS.md quotes this line.
    eprintln!("change → webhook latency on loopback: {latencies:?}");
    // The failing endpoint is being retried (its back-off may not have
    // come round yet when the good one has everything).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempts = failing
            .attempts
            .lock()
            .await
            .get("search-v7/canary/1")
            .copied()
            .unwrap_or(0);
        if attempts >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failing endpoint was tried {attempts} times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(slow.ids().await.len(), 0);
    let sql = "SELECT destination, state, attempts, last_error FROM system.deliveries \
               WHERE sequence = 1 ORDER BY destination";
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = server.sql(sql).await;
        let retried = rows.len() == 4
            && rows
                .iter()
                .all(|r| r["attempts"].as_i64() >= Some(2) || r["state"] == "delivered");
        if retried || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let by: HashMap<&str, &serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| (r["destination"].as_str().unwrap(), r))
        .collect();
    assert_eq!(by["webhook:good"]["state"], "delivered");
    for pending in ["webhook:slow", "webhook:failing", "webhook:dead"] {
        assert_eq!(by[pending]["state"], "pending", "{pending}: {rows:?}");
        assert!(
            by[pending]["attempts"].as_i64().unwrap() >= 2,
            "{pending}: {rows:?}"
        );
        assert!(!by[pending]["last_error"].as_str().unwrap().is_empty());
    }
}
