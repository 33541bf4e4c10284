//! Signals on a Kafka topic, as a router's consumer reads them: librdkafka's
//! mock cluster runs in this process on loopback; grayscope produces to it
//! and a real rdkafka consumer reads the topic, across a broker outage and a
//! SIGKILL of grayscope in the middle.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};

use super::harness::Server;
use super::signals::{Receiver, webhook};

const TOPIC: &str = "router.signals";

/// One signal as the consumer saw it.
#[derive(Debug)]
struct Consumed {
    key: String,
    partition: i32,
    headers: HashMap<String, String>,
    signal: Value,
}

fn consumed(message: &BorrowedMessage<'_>) -> Consumed {
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
                    (h.key.to_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    Consumed {
        key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
        partition: message.partition(),
        headers,
        signal: serde_json::from_slice(message.payload().expect("a payload")).expect("JSON"),
    }
}

/// Reads until `total` messages are in `seen`, or `within` passes.
async fn read(consumer: &StreamConsumer, seen: &mut Vec<Consumed>, total: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while seen.len() < total {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => seen.push(consumed(&message)),
            // The broker's outage shows as errors; the consumer reconnects.
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => return,
        }
    }
}

async fn act(server: &Server, rollout: &str, action: &str) {
    let response = reqwest::Client::new()
        .post(server.api_url(&format!("/api/v1/rollouts/{rollout}/{action}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{rollout} {action}");
}

async fn create(server: &Server, name: &str) {
    let response = reqwest::Client::new()
        .post(server.api_url("/api/v1/rollouts"))
        .json(&json!({
            "name": name, "service": name, "baseline": "baseline",
            "canary": ["canary"], "interval": "5m", "window": "5m",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// Waits until the outbox says `destination` has nothing left to deliver
/// (its cursor is saved), through `/metrics`.
async fn wait_for_empty_backlog(server: &Server, destination: &str) {
    let line = format!("grayscope_signal_outbox_backlog{{destination=\"{destination}\"}} 0");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = reqwest::get(server.api_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "{destination} kept a backlog");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kafka_config(brokers: &str, extra: &str) -> String {
    format!("[signals.kafka]\nbrokers = {brokers:?}\ntopic = {TOPIC:?}\n{extra}\n")
}

#[tokio::test]
async fn a_kafka_consumer_sees_every_signal_once_in_order_per_rollout_across_a_restart() {
    let mock = MockCluster::<DefaultProducerContext>::new(1).unwrap();
    mock.create_topic(TOPIC, 3, 1).unwrap();
    let (hook, hook_addr) = Receiver::default().serve().await;
    let config = kafka_config(&mock.bootstrap_servers(), "") + &webhook("router", hook_addr, "");
    let server = Server::start_with_config(&config);
    // Partitions assigned by hand (no group): the broker's outage below
    // cannot make the consumer itself read anything twice.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", "router")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..3 {
        partitions
            .add_partition_offset(TOPIC, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&partitions).unwrap();

    create(&server, "search-v7").await;
    create(&server, "cart-v2").await;
    for (rollout, action) in [
        ("search-v7", "pause"),
        ("cart-v2", "pause"),
        ("search-v7", "resume"),
        ("search-v7", "freeze"),
        ("cart-v2", "rollback"),
    ] {
        act(&server, rollout, action).await;
    }
    let mut seen = Vec::new();
    read(&consumer, &mut seen, 5, Duration::from_secs(60)).await;
    assert_eq!(seen.len(), 5, "{seen:?}");

    // The broker goes down once it has acknowledged everything; the next
    // change waits in the outbox, being retried, when grayscope is killed
    // (no shutdown of any kind). The broker comes back, grayscope restarts,
    // and the sequence goes on.
    wait_for_empty_backlog(&server, "kafka").await;
    mock.broker_down(1).unwrap();
    act(&server, "search-v7", "resume").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = server
            .sql(
                "SELECT state FROM system.deliveries \
                 WHERE destination = 'kafka' AND signal_id = 'search-v7/canary/4'",
            )
            .await;
        if rows.first().is_some_and(|r| r["state"] == "pending") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "signal 4 is not being tried: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    read(&consumer, &mut seen, 6, Duration::from_millis(500)).await;
    assert_eq!(
        seen.len(),
        5,
        "nothing reached the topic while the broker was down"
    );
    let server = server.restart();
    mock.broker_up(1).unwrap();
    act(&server, "search-v7", "rollback").await;
    read(&consumer, &mut seen, 7, Duration::from_secs(60)).await;
    // Nothing more comes: no duplicate of an acknowledged signal.
    read(&consumer, &mut seen, 8, Duration::from_secs(2)).await;
    assert_eq!(seen.len(), 7, "{seen:#?}");

    let mut per_rollout: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut partition_of = HashMap::new();
    for message in &seen {
        let signal = &message.signal;
        let rollout = signal["rollout"].as_str().unwrap();
        assert_eq!(message.key, rollout, "keyed by rollout");
        let partition = *partition_of.entry(rollout).or_insert(message.partition);
        assert_eq!(message.partition, partition, "one rollout, one partition");
        assert_eq!(message.headers["grayscope-signal-id"], signal["id"]);
        assert_eq!(
            message.headers["grayscope-sequence"],
            signal["sequence"].to_string()
        );
        assert_eq!(message.headers["grayscope-verdict"], signal["verdict"]);
        assert_eq!(message.headers["content-type"], "application/json");
        per_rollout
            .entry(rollout)
            .or_default()
            .push(signal["sequence"].as_u64().unwrap());
    }
    assert_eq!(per_rollout["search-v7"], [1, 2, 3, 4, 5]);
    assert_eq!(per_rollout["cart-v2"], [1, 2]);
    let last = seen
        .iter()
        .rfind(|m| m.signal["rollout"] == "search-v7")
        .unwrap();
    assert_eq!(last.signal["verdict"], "rollback");
    assert_eq!(last.signal["status"], "rolled_back");

    // The same document as the webhook's body.
    let hooked = hook.wait_for(7, Duration::from_secs(20)).await;
    assert_eq!(hooked.len(), 7);
    let bodies = hook.bodies().await;
    for message in &seen {
        let id = message.signal["id"].as_str().unwrap();
        assert_eq!(&bodies[id], &message.signal, "{id}");
    }

    // The restarted server's deliveries are in SQL.
    let rows = server
        .sql(
            "SELECT signal_id, state, attempts FROM system.deliveries \
             WHERE destination = 'kafka' ORDER BY first_attempt",
        )
        .await;
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["signal_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["search-v7/canary/4", "search-v7/canary/5"]);
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:?}");
}

#[tokio::test]
async fn an_unreachable_broker_holds_back_neither_webhooks_nor_the_judge() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (hook, hook_addr) = Receiver::default().serve().await;
    let config = kafka_config(&dead.to_string(), "delivery_timeout = \"1h\"")
        + &webhook("router", hook_addr, "");
    let server = Server::start_with_config(&config);
    create(&server, "search-v7").await;
    for action in ["pause", "resume", "freeze"] {
        let asked = Instant::now();
        act(&server, "search-v7", action).await;
        assert!(asked.elapsed() < Duration::from_secs(1), "the judge waited");
    }
    let ids = hook.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(ids.len(), 3, "{ids:?}");
    let rows = server
        .sql(
            "SELECT destination, state FROM system.deliveries \
             WHERE destination = 'kafka'",
        )
        .await;
    assert_eq!(rows.len(), 1, "one signal at a time: {rows:?}");
    assert_eq!(rows[0]["state"], "pending");
}
