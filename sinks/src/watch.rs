//! The gRPC `Watch` stream (`proto/grayscope/signals/v1/signals.proto`):
//! a router subscribes once and receives the signals the outbox retains
//! after the positions it names, then every new one as it is appended.
//!
//! Resuming without gaps or duplicates: the stream subscribes to the
//! outbox's appends *before* it reads what is there, walks the outbox by
//! its global index (so nothing appended meanwhile is missed), and per
//! canary sends only sequences above the last one sent (so nothing is sent
//! twice). A router that reconnects with, per canary, the last sequence it
//! received gets exactly the ones it missed.
//!
//! The service is a plain tonic service ([`routes`]): the binary serves it
//! on `signals.grpc_addr`, and can wrap it in the same layers (auth, TLS)
//! as its other listeners.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;

use grayscope_core::signal::Signal as SignalDocument;
use grayscope_core::verdict::{Action as CoreAction, Verdict as CoreVerdict};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::metrics::SinkMetrics;
use crate::outbox::{Entry, Outbox};

/// The generated protobuf types and tonic service of
/// `grayscope.signals.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("grayscope.signals.v1");
}

use proto::signals_server::{Signals, SignalsServer};

/// Signals buffered per stream before it waits for the client (a slow
/// router holds back only its own stream).
const BUFFER: usize = 64;
/// Outbox entries read at a time.
const BATCH: usize = 256;

/// The `Signals` service over an outbox.
#[derive(Debug, Clone)]
pub struct WatchService {
    outbox: Outbox,
    metrics: SinkMetrics,
    shutdown: CancellationToken,
}

/// The service as tonic routes, ready for `Server::builder().add_routes`.
/// Every stream ends when `shutdown` is cancelled.
pub fn routes(
    outbox: Outbox,
    metrics: SinkMetrics,
    shutdown: CancellationToken,
) -> tonic::service::Routes {
    tonic::service::Routes::new(server(outbox, metrics, shutdown))
}

/// The service as a tonic server, for callers that add their own layers.
pub fn server(
    outbox: Outbox,
    metrics: SinkMetrics,
    shutdown: CancellationToken,
) -> SignalsServer<WatchService> {
    SignalsServer::new(WatchService {
        outbox,
        metrics,
        shutdown,
    })
}

/// Which signals one stream sends.
#[derive(Debug)]
struct Selection {
    rollouts: HashSet<String>,
    /// Per canary, the last sequence sent (or the router already has).
    sent: HashMap<(String, String), u64>,
    /// For a canary not in `sent`: everything retained, or only what comes
    /// after `start`.
    only_new: bool,
    start: u64,
}

impl Selection {
    fn new(request: proto::WatchRequest, last_index: u64) -> Selection {
        Selection {
            rollouts: request.rollouts.into_iter().collect(),
            sent: request
                .after
                .into_iter()
                .map(|p| ((p.rollout, p.cohort), p.sequence))
                .collect(),
            only_new: request.only_new,
            start: last_index,
        }
    }

    /// Whether to send `entry`, noting it as sent.
    fn take(&mut self, entry: &Entry) -> bool {
        let signal = &entry.signal;
        if !self.rollouts.is_empty() && !self.rollouts.contains(&signal.rollout) {
            return false;
        }
        let key = (signal.rollout.clone(), signal.cohort.clone());
        match self.sent.get_mut(&key) {
            Some(last) if signal.sequence <= *last => false,
            Some(last) => {
                *last = signal.sequence;
                true
            }
            None if self.only_new && entry.index <= self.start => false,
            None => {
                self.sent.insert(key, signal.sequence);
                true
            }
        }
    }
}

#[tonic::async_trait]
impl Signals for WatchService {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<proto::Signal, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<proto::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        if request
            .after
            .iter()
            .any(|p| p.rollout.is_empty() || p.cohort.is_empty())
        {
            return Err(Status::invalid_argument(
                "every position in `after` needs a rollout and a cohort",
            ));
        }
        // Subscribe before reading: an append between the two wakes us.
        let appended = self.outbox.subscribe();
        let selection = Selection::new(request, self.outbox.last_index());
        let (tx, rx) = mpsc::channel(BUFFER);
        let (outbox, metrics, shutdown) = (
            self.outbox.clone(),
            self.metrics.clone(),
            self.shutdown.clone(),
        );
        tokio::spawn(async move {
            metrics.watchers(1);
            follow(outbox, selection, appended, tx, shutdown).await;
            metrics.watchers(-1);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Sends the selected signals, oldest first, until the client leaves or
/// `shutdown`.
async fn follow(
    outbox: Outbox,
    mut selection: Selection,
    mut appended: tokio::sync::watch::Receiver<u64>,
    tx: mpsc::Sender<Result<proto::Signal, Status>>,
    shutdown: CancellationToken,
) {
    let mut index = 0;
    loop {
        let entries = outbox.read_after(index, BATCH);
        if entries.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                changed = appended.changed() => if changed.is_err() { return },
            }
            continue;
        }
        for entry in entries {
            index = entry.index;
            if !selection.take(&entry) {
                continue;
            }
            let message = Ok(to_proto(&entry.signal));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                sent = tx.send(message) => if sent.is_err() { return },
            }
        }
    }
}

/// The protobuf form of a signal, with its JSON document.
pub fn to_proto(signal: &SignalDocument) -> proto::Signal {
    let verdict = match signal.verdict {
        CoreVerdict::Promote => proto::Verdict::Promote,
        CoreVerdict::Hold => proto::Verdict::Hold,
        CoreVerdict::Rollback => proto::Verdict::Rollback,
    };
    let action = match signal.action {
        CoreAction::Promote => proto::Action::Promote,
        CoreAction::Hold => proto::Action::Hold,
        CoreAction::Rollback => proto::Action::Rollback,
        CoreAction::ScaleOut => proto::Action::ScaleOut,
        CoreAction::DegradedPath => proto::Action::DegradedPath,
        CoreAction::RateLimit => proto::Action::RateLimit,
    };
    proto::Signal {
        id: signal.id.clone(),
        rollout: signal.rollout.clone(),
        cohort: signal.cohort.clone(),
        baseline: signal.baseline.clone(),
        sequence: signal.sequence,
        time: signal.time.clone(),
        stage: signal.stage.clone(),
        status: signal.status.clone(),
        verdict: verdict.into(),
        action: action.into(),
        score: signal.score,
        reasons: signal.reasons.clone(),
        window: Some(proto::Window {
            start: signal.window.start.clone(),
            end: signal.window.end.clone(),
        }),
        failing: signal
            .failing
            .iter()
            .map(|f| proto::FailingCheck {
                check: f.check.clone(),
                level: f.level.to_string(),
                outcome: f.outcome.to_string(),
                reason: f.reason.clone(),
                evidence: f
                    .evidence
                    .iter()
                    .map(|e| proto::Evidence {
                        kind: e.kind.clone(),
                        summary: e.summary.clone(),
                        trace_id: e.trace_id.clone().unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
        json: serde_json::to_string(signal).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signal;
    use proto::signals_client::SignalsClient;

    async fn serve(outbox: Outbox) -> (String, CancellationToken) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let routes = routes(outbox, SinkMetrics::detached(), stop.clone());
        let shutdown = stop.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    shutdown.cancelled_owned(),
                )
                .await
        });
        (format!("http://{addr}"), stop)
    }

    async fn next(stream: &mut tonic::Streaming<proto::Signal>) -> proto::Signal {
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await
            .expect("a signal within 10 s")
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn a_watcher_gets_history_then_live_signals_and_resumes_from_its_positions() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), 100).unwrap();
        outbox
            .push(&[
                test_signal("a", 1),
                test_signal("b", 1),
                test_signal("a", 2),
            ])
            .unwrap();
        let (url, stop) = serve(outbox.clone()).await;
        let mut client = SignalsClient::connect(url.clone()).await.unwrap();

        let mut only_a = client
            .watch(proto::WatchRequest {
                rollouts: vec!["a".into()],
                after: vec![proto::Position {
                    rollout: "a".into(),
                    cohort: "canary".into(),
                    sequence: 1,
                }],
                only_new: false,
            })
            .await
            .unwrap()
            .into_inner();
        let first = next(&mut only_a).await;
        assert_eq!(first.id, "a/canary/2");
        assert_eq!(first.verdict(), proto::Verdict::Rollback);
        let document: serde_json::Value = serde_json::from_str(&first.json).unwrap();
        assert_eq!(document["id"], "a/canary/2");

        let mut new_only = client
            .watch(proto::WatchRequest {
                only_new: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        outbox
            .push(&[test_signal("b", 2), test_signal("a", 3)])
            .unwrap();
        assert_eq!(next(&mut only_a).await.id, "a/canary/3");
        assert_eq!(next(&mut new_only).await.id, "b/canary/2");
        assert_eq!(next(&mut new_only).await.id, "a/canary/3");

        let refused = client
            .watch(proto::WatchRequest {
                after: vec![proto::Position::default()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);

        // Shutdown ends the open streams.
        stop.cancel();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), only_a.message())
            .await
            .expect("the stream ends on shutdown");
        assert!(!matches!(ended, Ok(Some(_))), "{ended:?}");
    }
}
