//! The consumer thread: polls librdkafka, hands messages out in chunks,
//! pauses on back-pressure, commits what is durable, and makes rebalances
//! safe.
//!
//! One OS thread owns the consumer, because librdkafka's rebalance
//! callback runs inside `poll` and must be allowed to block: before a
//! partition is given up, the messages of it being stored are waited for
//! and their offsets committed, so its next owner starts exactly where
//! this one stopped. Messages polled but not yet handed out when their
//! partition is revoked are forgotten (never stored, never committed).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use grayscope_core::config::{KafkaConfig, KafkaTopicConfig};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::message::KafkaMessage;
use super::offsets::PartitionOffsets;
use super::status::{PartitionStatus, SourceCounters};
use crate::error::{Error, Result};

/// How long a revoked partition's messages being stored are waited for.
const REVOKE_GRACE: Duration = Duration::from_secs(30);
/// How long shutdown waits for messages being stored...
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// ...and then for the consumer to leave its group (together within the
/// server's own shutdown grace).
const CLOSE_GRACE: Duration = Duration::from_secs(4);
/// A chunk is handed out at this many messages...
const CHUNK_MESSAGES: usize = 1024;
/// ...or this many bytes (at most a quarter of `max_in_flight_size` and a
/// 32nd of the store's memory limit, so that a chunk's batch fits), or when
/// the local queue is empty.
const CHUNK_BYTES: usize = 8 << 20;
/// The same consumer error is logged at most this often.
const ERROR_EVERY: Duration = Duration::from_secs(60);
/// Poll timeout while nothing waits to be handed out.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// A configured topic.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) name: Arc<str>,
    pub(crate) config: KafkaTopicConfig,
}

/// Messages of one topic handed out together: decoded one by one, stored
/// in one append.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) route: usize,
    pub(crate) messages: Vec<KafkaMessage>,
    pub(crate) bytes: usize,
}

/// (topic index, partition).
type Key = (usize, i32);

/// What the consumer thread, the context's callbacks and the storing tasks
/// share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) routes: Vec<Route>,
    state: Mutex<State>,
    /// Signalled whenever a message finishes.
    finished: Condvar,
    /// Payload bytes handed out and not finished.
    in_flight_bytes: AtomicUsize,
    max_in_flight_bytes: usize,
    chunk_bytes: usize,
    /// Chunks waiting for the store to accept them.
    backpressured: AtomicUsize,
    /// Set once shutdown began: commits no longer wait for the broker.
    stopping: AtomicBool,
    pub(crate) counters: SourceCounters,
}

#[derive(Debug, Default)]
struct State {
    assigned: HashMap<Key, Assigned>,
    /// Per partition ever seen; survives revocation.
    totals: BTreeMap<Key, Totals>,
    /// Polled, not handed out yet, per topic.
    pending: HashMap<usize, Chunk>,
    next_epoch: u64,
    /// Set by a rebalance: pausing must be applied to the new assignment.
    assignment_changed: bool,
    paused: bool,
}

#[derive(Debug)]
struct Assigned {
    epoch: u64,
    offsets: PartitionOffsets,
}

#[derive(Debug, Default, Clone)]
struct Totals {
    messages: u64,
    dead_letters: u64,
    redelivered: u64,
    /// One past the highest offset handed out, over all assignments.
    seen_until: Option<i64>,
    committed: Option<i64>,
    high_watermark: Option<i64>,
}

/// How a handed-out message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Durable in the store.
    Stored,
    /// In the dead-letter topic (or refused by it for good).
    DeadLettered,
    /// Given up on (shutdown): not stored, never to be committed past.
    Abandoned,
}

impl Shared {
    /// The shared state of a source consuming as `config` says into a store
    /// whose memtables may hold `store_memory` bytes.
    pub(crate) fn new(config: &KafkaConfig, store_memory: usize) -> Shared {
        Shared {
            routes: config
                .topics
                .iter()
                .map(|t| Route {
                    name: Arc::from(t.topic.as_str()),
                    config: t.clone(),
                })
                .collect(),
            state: Mutex::new(State::default()),
            finished: Condvar::new(),
            in_flight_bytes: AtomicUsize::new(0),
            max_in_flight_bytes: config.max_in_flight_size.as_usize(),
            chunk_bytes: (config.max_in_flight_size.as_usize() / 4)
                .min(store_memory / 32)
                .clamp(1, CHUNK_BYTES),
            backpressured: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            counters: SourceCounters::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn route(&self, topic: &str) -> Option<usize> {
        self.routes.iter().position(|r| &*r.name == topic)
    }

    /// A chunk is waiting for the store (or stopped waiting).
    pub(crate) fn set_backpressured(&self, waiting: bool) {
        if waiting {
            self.backpressured.fetch_add(1, Ordering::AcqRel);
        } else {
            self.backpressured.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn should_pause(&self) -> bool {
        self.backpressured.load(Ordering::Acquire) > 0
            || self.in_flight_bytes.load(Ordering::Acquire) >= self.max_in_flight_bytes
    }

    /// The messages of `chunk` ended as `finish`.
    pub(crate) fn finish(&self, messages: &[KafkaMessage], finish: Finish) {
        let mut state = self.lock();
        let mut bytes = 0;
        for message in messages {
            bytes += message.payload.len();
            let key = (message.route, message.partition);
            if let Some(assigned) = state.assigned.get_mut(&key)
                && assigned.epoch == message.epoch
            {
                match finish {
                    Finish::Stored | Finish::DeadLettered => {
                        assigned.offsets.complete(message.offset)
                    }
                    Finish::Abandoned => assigned.offsets.abandon(message.offset),
                }
            }
            if finish == Finish::DeadLettered {
                state.totals.entry(key).or_default().dead_letters += 1;
            }
        }
        drop(state);
        self.in_flight_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.finished.notify_all();
    }

    /// Adds a polled message to its topic's pending chunk; returns the
    /// chunk when it is full.
    fn push(&self, message: KafkaMessage) -> Option<Chunk> {
        let mut state = self.lock();
        let route = message.route;
        let chunk = state.pending.entry(route).or_insert_with(|| Chunk {
            route,
            messages: Vec::new(),
            bytes: 0,
        });
        chunk.bytes += message.payload.len();
        chunk.messages.push(message);
        if chunk.messages.len() >= CHUNK_MESSAGES || chunk.bytes >= self.chunk_bytes {
            state.pending.remove(&route)
        } else {
            None
        }
    }

    fn has_pending(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    fn take_pending(&self) -> Vec<Chunk> {
        self.lock().pending.drain().map(|(_, c)| c).collect()
    }

    /// Registers a chunk's messages as handed out.
    fn dispatch(&self, chunk: &Chunk) {
        let mut state = self.lock();
        for message in &chunk.messages {
            let key = (message.route, message.partition);
            if let Some(assigned) = state.assigned.get_mut(&key) {
                assigned.offsets.dispatch(message.offset);
            }
            let totals = state.totals.entry(key).or_default();
            totals.messages += 1;
            if totals
                .seen_until
                .is_some_and(|until| message.offset < until)
            {
                totals.redelivered += 1;
                self.counters
                    .redelivered_messages
                    .fetch_add(1, Ordering::Relaxed);
            }
            totals.seen_until = Some(
                totals
                    .seen_until
                    .map_or(message.offset + 1, |u| u.max(message.offset + 1)),
            );
        }
        drop(state);
        self.in_flight_bytes
            .fetch_add(chunk.bytes, Ordering::AcqRel);
        self.counters
            .messages
            .fetch_add(chunk.messages.len() as u64, Ordering::Relaxed);
    }

    /// The current epoch of a partition's assignment, if assigned.
    fn epoch(&self, route: usize, partition: i32) -> Option<u64> {
        self.lock()
            .assigned
            .get(&(route, partition))
            .map(|a| a.epoch)
    }

    /// Offsets to commit now, for the partitions in `only` (all when
    /// `None`).
    fn committable(&self, only: Option<&[Key]>) -> Vec<(Key, i64)> {
        let state = self.lock();
        state
            .assigned
            .iter()
            .filter(|(key, _)| only.is_none_or(|keys| keys.contains(key)))
            .filter_map(|(key, a)| a.offsets.committable().map(|offset| (*key, offset)))
            .collect()
    }

    /// `offset` was handed to librdkafka to commit.
    fn stored(&self, key: Key, offset: i64) {
        if let Some(assigned) = self.lock().assigned.get_mut(&key) {
            assigned.offsets.stored(offset);
        }
    }

    fn assign(&self, keys: &[Key]) {
        let mut state = self.lock();
        for key in keys {
            state.next_epoch += 1;
            let epoch = state.next_epoch;
            state.assigned.insert(
                *key,
                Assigned {
                    epoch,
                    offsets: PartitionOffsets::default(),
                },
            );
            state.totals.entry(*key).or_default();
        }
        state.assignment_changed = true;
    }

    /// Forgets polled messages of `keys` not handed out yet.
    fn purge_pending(&self, keys: &[Key]) {
        let mut state = self.lock();
        for chunk in state.pending.values_mut() {
            chunk.messages.retain(|m| {
                let keep = !keys.contains(&(m.route, m.partition));
                if !keep {
                    chunk.bytes -= m.payload.len();
                }
                keep
            });
        }
        state.pending.retain(|_, c| !c.messages.is_empty());
    }

    /// Waits until no message of `keys` (all when `None`) is being stored,
    /// or `grace` has passed; true when none is.
    fn wait_finished(&self, keys: Option<&[Key]>, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        let mut state = self.lock();
        loop {
            let busy = state
                .assigned
                .iter()
                .filter(|(key, _)| keys.is_none_or(|keys| keys.contains(key)))
                .any(|(_, a)| a.offsets.in_flight() > 0);
            let now = Instant::now();
            if !busy {
                return true;
            }
            if now >= deadline {
                return false;
            }
            state = self
                .finished
                .wait_timeout(state, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn unassign(&self, keys: &[Key]) {
        let mut state = self.lock();
        for key in keys {
            state.assigned.remove(key);
        }
        state.assignment_changed = true;
    }

    fn set_offsets(&self, key: Key, high: i64, committed: i64) {
        if let Some(totals) = self.lock().totals.get_mut(&key) {
            if high >= 0 {
                totals.high_watermark = Some(high);
            }
            if committed >= 0 {
                totals.committed = Some(committed);
            }
        }
    }

    fn set_paused(&self, paused: bool) {
        self.lock().paused = paused;
    }

    fn take_assignment_changed(&self) -> bool {
        std::mem::take(&mut self.lock().assignment_changed)
    }

    /// Every partition seen, with its offsets and lag now.
    pub(crate) fn partitions(&self) -> Vec<PartitionStatus> {
        let state = self.lock();
        state
            .totals
            .iter()
            .map(|(key, totals)| {
                let assigned = state.assigned.get(key);
                let route = &self.routes[key.0];
                let committed = totals.committed;
                PartitionStatus {
                    topic: route.name.to_string(),
                    partition: key.1,
                    signal: route.config.signal.name(),
                    encoding: route.config.encoding.name(),
                    assigned: assigned.is_some(),
                    paused: assigned.is_some() && state.paused,
                    committed_offset: committed,
                    position: assigned.and_then(|a| a.offsets.next()),
                    high_watermark: totals.high_watermark,
                    lag: match (totals.high_watermark, committed) {
                        (Some(high), Some(committed)) => Some((high - committed).max(0)),
                        _ => None,
                    },
                    in_flight: assigned.map_or(0, |a| a.offsets.in_flight() as u64),
                    messages: totals.messages,
                    dead_letters: totals.dead_letters,
                    redelivered: totals.redelivered,
                }
            })
            .collect()
    }

    pub(crate) fn paused(&self) -> bool {
        self.lock().paused
    }

    pub(crate) fn in_flight_bytes(&self) -> usize {
        self.in_flight_bytes.load(Ordering::Acquire)
    }
}

/// librdkafka's callbacks.
pub(crate) struct SourceContext {
    shared: Arc<Shared>,
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            let Some(route) = self.shared.route(topic) else {
                continue;
            };
            for (partition, p) in &stats.partitions {
                if *partition >= 0 {
                    self.shared
                        .set_offsets((route, *partition), p.hi_offset, p.committed_offset);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, "Kafka client: {reason}");
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let keys = self.keys(list);
        self.shared.purge_pending(&keys);
        if consumer.assignment_lost() {
            // Another member may own them already: committing could move
            // its offsets back.
            tracing::warn!(
                partitions = keys.len(),
                "Kafka partitions lost; their uncommitted messages will be delivered again"
            );
        } else {
            if !self.shared.wait_finished(Some(&keys), REVOKE_GRACE) {
                tracing::warn!(
                    grace = ?REVOKE_GRACE,
                    "revoked Kafka partitions still had messages being stored; \
                     they will be delivered again to the next owner"
                );
            }
            // Synchronously, so the next owner starts after it — unless
            // this is the shutdown, when the broker may be away.
            let sync = !self.shared.stopping.load(Ordering::Acquire);
            commit(consumer, &self.shared, Some(&keys), sync);
        }
        self.shared.unassign(&keys);
        tracing::info!(partitions = keys.len(), "Kafka partitions revoked");
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let keys = self.keys(list);
                self.shared.assign(&keys);
                tracing::info!(partitions = keys.len(), "Kafka partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "Kafka rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(error) = result {
            tracing::warn!(%error, "committing Kafka offsets failed; will retry");
        }
    }
}

impl SourceContext {
    fn keys(&self, list: &TopicPartitionList) -> Vec<Key> {
        list.elements()
            .iter()
            .filter_map(|e| Some((self.shared.route(e.topic())?, e.partition())))
            .collect()
    }
}

/// Hands librdkafka the offsets of what is durable, for `only` those
/// partitions or all, to commit: by itself every `commit_interval` (its
/// auto-commit of stored offsets), and at once when `now`.
///
/// Only offsets stored here are ever committed, so auto-commit keeps the
/// at-least-once promise. (rdkafka 0.39 does not report the outcome of an
/// asynchronous manual commit, so the committed offsets shown come from
/// librdkafka's statistics instead.)
fn commit(
    consumer: &BaseConsumer<SourceContext>,
    shared: &Shared,
    only: Option<&[Key]>,
    now: bool,
) {
    let offsets = shared.committable(only);
    if !offsets.is_empty() {
        let mut list = TopicPartitionList::with_capacity(offsets.len());
        for ((route, partition), offset) in &offsets {
            if let Err(error) = list.add_partition_offset(
                &shared.routes[*route].name,
                *partition,
                Offset::Offset(*offset),
            ) {
                tracing::warn!(%error, "cannot list a Kafka offset to commit");
            }
        }
        tracing::trace!(?offsets, "storing Kafka offsets to commit");
        match consumer.store_offsets(&list) {
            Ok(()) => {
                for (key, offset) in offsets {
                    shared.stored(key, offset);
                }
            }
            Err(error) => tracing::debug!(%error, "cannot store Kafka offsets; will retry"),
        }
    }
    // librdkafka's timer commits stored offsets too (and does on revocation
    // and close); committing here as well bounds the uncommitted window by
    // our own interval, whatever that timer does.
    let (mode, sync) = if now {
        (CommitMode::Sync, true)
    } else {
        (CommitMode::Async, false)
    };
    match consumer.commit_consumer_state(mode) {
        // Nothing stored since the last commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) | Ok(()) => {}
        Err(error) if sync => tracing::warn!(%error, "committing Kafka offsets failed"),
        Err(error) => tracing::debug!(%error, "committing Kafka offsets failed; will retry"),
    }
}

/// The consumer, subscribed, with its callbacks wired to `shared`.
pub(crate) fn create(
    config: &KafkaConfig,
    shared: Arc<Shared>,
) -> Result<BaseConsumer<SourceContext>> {
    let commit_interval = config.commit_interval.get();
    let mut client = ClientConfig::new();
    let queued_kbytes = (config.max_in_flight_size.as_usize() / 1024).clamp(1024, 2_097_151);
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("client.id", "grayscope")
        // librdkafka commits what `commit` stores, and nothing else.
        .set("enable.auto.commit", "true")
        .set(
            "auto.commit.interval.ms",
            commit_interval
                .as_millis()
                .clamp(1, i32::MAX as u128)
                .to_string(),
        )
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", config.initial_offset.name())
        .set("statistics.interval.ms", "1000")
        .set("queued.max.messages.kbytes", queued_kbytes.to_string());
    for (key, value) in &config.librdkafka_options {
        client.set(key, value);
    }
    let consumer: BaseConsumer<SourceContext> = client
        .create_with_context(SourceContext {
            shared: shared.clone(),
        })
        .map_err(|source| Error::Kafka {
            action: "create",
            client: "consumer",
            source,
        })?;
    let topics: Vec<&str> = shared.routes.iter().map(|r| &*r.name).collect();
    consumer.subscribe(&topics).map_err(|source| Error::Kafka {
        action: "subscribe",
        client: "consumer",
        source,
    })?;
    Ok(consumer)
}

/// The consumer thread's loop, until `cancel`; `spawn` hands a chunk to a
/// storing task.
pub(crate) fn run(
    consumer: BaseConsumer<SourceContext>,
    shared: Arc<Shared>,
    commit_interval: Duration,
    cancel: CancellationToken,
    spawn: impl Fn(Chunk),
) {
    let mut paused = false;
    let mut last_commit = Instant::now();
    let mut last_error: Option<(String, Instant)> = None;
    let hand_out = |chunk: Chunk| {
        if tracing::enabled!(tracing::Level::TRACE) {
            for m in &chunk.messages {
                tracing::trace!(topic = %m.topic, partition = m.partition, offset = m.offset, "handed out");
            }
        }
        shared.dispatch(&chunk);
        spawn(chunk);
    };
    while !cancel.is_cancelled() {
        let want_pause = shared.should_pause();
        let changed = shared.take_assignment_changed();
        if want_pause != paused || (paused && changed) {
            match consumer.assignment() {
                Ok(assignment) => {
                    let result = if want_pause {
                        consumer.pause(&assignment)
                    } else {
                        consumer.resume(&assignment)
                    };
                    match result {
                        Ok(()) => {
                            if want_pause && !paused {
                                shared.counters.pauses.fetch_add(1, Ordering::Relaxed);
                                tracing::info!(
                                    "Kafka consumption paused: the store applies back-pressure \
                                     or too much is being stored"
                                );
                            } else if !want_pause {
                                tracing::info!("Kafka consumption resumed");
                            }
                            paused = want_pause;
                            shared.set_paused(paused);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "cannot pause or resume Kafka partitions")
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the Kafka assignment"),
            }
        }
        let timeout = if shared.has_pending() {
            Duration::ZERO
        } else {
            IDLE_POLL
        };
        match consumer.poll(timeout) {
            Some(Ok(message)) => {
                let Some(route) = shared.route(message.topic()) else {
                    continue;
                };
                let Some(epoch) = shared.epoch(route, message.partition()) else {
                    // Not (or no longer) ours.
                    continue;
                };
                let name = shared.routes[route].name.clone();
                let copy = KafkaMessage::copy(&message, route, name, epoch);
                drop(message);
                if let Some(chunk) = shared.push(copy) {
                    hand_out(chunk);
                }
            }
            Some(Err(error)) => {
                // The same complaint (a topic that does not exist, a broker
                // away) comes back at every poll: say it once a minute.
                let text = error.to_string();
                if last_error
                    .as_ref()
                    .is_none_or(|(said, at): &(String, Instant)| {
                        *said != text || at.elapsed() >= ERROR_EVERY
                    })
                {
                    tracing::warn!(error = %text, "Kafka consumer error");
                    last_error = Some((text, Instant::now()));
                }
                shared.take_pending().into_iter().for_each(hand_out);
            }
            None => shared.take_pending().into_iter().for_each(hand_out),
        }
        if last_commit.elapsed() >= commit_interval {
            commit(&consumer, &shared, None, false);
            last_commit = Instant::now();
        }
    }
    shared.stopping.store(true, Ordering::Release);
    // Shutdown: what was polled but not handed out is delivered again
    // later; what is being stored is waited for and committed.
    drop(shared.take_pending());
    if !shared.wait_finished(None, SHUTDOWN_GRACE) {
        tracing::warn!("Kafka messages still being stored at shutdown will be delivered again");
    }
    // Asynchronously: a synchronous commit would wait for ever for a broker
    // that is away. Closing (dropping) the consumer commits what is stored
    // once more and leaves the group.
    commit(&consumer, &shared, None, false);
    let _ = consumer.poll(Duration::from_millis(200));
    // Closing waits for the group coordinator, for ever if it is away: close
    // on a thread of its own, and give up waiting after a while (the process
    // is stopping; the group will expire the member by its session timeout).
    let (closed, is_closed) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name("grayscope-kafka-close".to_owned())
        .spawn(move || {
            drop(consumer);
            let _ = closed.send(());
        });
    if closing.is_ok() && is_closed.recv_timeout(CLOSE_GRACE).is_err() {
        tracing::warn!(
            grace = ?CLOSE_GRACE,
            "the Kafka consumer could not leave its group in time (is the broker away?); \
             stopping without"
        );
    }
}
