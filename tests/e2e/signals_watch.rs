//! The gRPC `Watch` stream as a router uses it: a tonic client generated
//! from `proto/grayscope/signals/v1/signals.proto` subscribes, goes away,
//! misses changes (and a grayscope restart), and resumes from the last
//! sequence it saw: exactly the missing signals arrive, then the live ones.

use std::time::Duration;

use grayscope_sinks::watch::proto::signals_client::SignalsClient;
use grayscope_sinks::watch::proto::{Position, Signal, Verdict, WatchRequest};
use tonic::Streaming;

use super::harness::Server;
use super::signals::{command, create};

const CONFIG: &str = "[signals]\ngrpc_addr = \"127.0.0.1:0\"\n";

async fn subscribe(server: &Server, request: WatchRequest) -> Streaming<Signal> {
    let addr = server
        .signals_grpc
        .expect("signals_grpc on the listening line");
    let mut client = SignalsClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    client.watch(request).await.unwrap().into_inner()
}

async fn next(stream: &mut Streaming<Signal>) -> Signal {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("a signal within 20 s")
        .expect("the stream is healthy")
        .expect("the stream is open")
}

/// Asserts nothing more arrives for a while (no duplicate, nothing extra).
async fn quiet(stream: &mut Streaming<Signal>) {
    let more = tokio::time::timeout(Duration::from_millis(700), stream.message()).await;
    assert!(more.is_err(), "unexpected: {more:?}");
}

#[tokio::test]
async fn a_router_resumes_the_watch_stream_from_its_last_sequence_without_gaps_or_duplicates() {
    let server = Server::start_with_config(CONFIG);
    create(&server).await;
    let mut stream = subscribe(&server, WatchRequest::default()).await;
    command(&server, "pause").await;
    command(&server, "resume").await;
    let first = next(&mut stream).await;
    let second = next(&mut stream).await;
    assert_eq!((first.sequence, second.sequence), (1, 2));
    assert_eq!(first.id, "search-v7/canary/1");
    assert_eq!(first.status, "paused");
    assert_eq!(second.status, "running");
    assert_eq!(first.verdict(), Verdict::Hold);
    let document: serde_json::Value = serde_json::from_str(&second.json).unwrap();
    assert_eq!(document["id"], second.id);
    assert_eq!(document["sequence"], 2);

    // The router goes away; two changes and a grayscope restart happen.
    drop(stream);
    command(&server, "freeze").await;
    command(&server, "resume").await;
    let server = server.restart();

    let resume = WatchRequest {
        rollouts: vec!["search-v7".into()],
        after: vec![Position {
            rollout: "search-v7".into(),
            cohort: "canary".into(),
            sequence: second.sequence,
        }],
        only_new: false,
    };
    let mut stream = subscribe(&server, resume).await;
    let missed: Vec<u64> = vec![
        next(&mut stream).await.sequence,
        next(&mut stream).await.sequence,
    ];
    assert_eq!(missed, [3, 4]);
    quiet(&mut stream).await;
    // Then it follows live.
    command(&server, "rollback").await;
    let live = next(&mut stream).await;
    assert_eq!(live.sequence, 5);
    assert_eq!(live.verdict(), Verdict::Rollback);
    assert_eq!(live.status, "rolled_back");
    quiet(&mut stream).await;

    // Another rollout's filter sees none of it; a new subscriber that asks
    // only for new signals gets none of the history.
    let mut other = subscribe(
        &server,
        WatchRequest {
            rollouts: vec!["cart-v2".into()],
            ..WatchRequest::default()
        },
    )
    .await;
    quiet(&mut other).await;
    let mut fresh = subscribe(
        &server,
        WatchRequest {
            only_new: true,
            ..WatchRequest::default()
        },
    )
    .await;
    quiet(&mut fresh).await;
    let mut all = subscribe(&server, WatchRequest::default()).await;
    for sequence in 1..=5 {
        assert_eq!(next(&mut all).await.sequence, sequence);
    }
}

#[tokio::test]
async fn the_watch_stream_is_not_served_unless_configured() {
    let server = Server::start();
    assert_eq!(server.signals_grpc, None);
}

#[tokio::test]
async fn with_tokens_the_watch_stream_asks_for_the_query_role() {
    const QUERY: &str = "query-token-0123456789";
    const INGEST: &str = "ingest-token-0123456789";
    let server = Server::start_with_config(&format!(
        "{CONFIG}[[auth.tokens]]\nname = \"router\"\ntoken = \"{QUERY}\"\nroles = [\"query\"]\n\
         [[auth.tokens]]\nname = \"collector\"\ntoken = \"{INGEST}\"\nroles = [\"ingest\"]\n"
    ));
    let addr = server.signals_grpc.unwrap();
    let mut client = SignalsClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let watch = |token: Option<&str>| {
        let mut request = tonic::Request::new(WatchRequest {
            only_new: true,
            ..WatchRequest::default()
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };
    let refused = client.watch(watch(None)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let refused = client.watch(watch(Some(INGEST))).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let mut stream = client.watch(watch(Some(QUERY))).await.unwrap().into_inner();
    quiet(&mut stream).await;
}
