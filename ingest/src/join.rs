//! Joining by trace id at ingest: log records and metric exemplars take the
//! cohort a rule gave their trace's spans.
//!
//! [`TraceJoin`] remembers, for recently seen traces, what their spans were
//! labelled with (a rule's cohort, or none) and the span's
//! `service.version`: the earliest-starting rule-labelled span of a trace
//! wins, and a rule label always beats "seen, no rule". It is bounded: at
//! most `remembered_traces` entries, the oldest forgotten first.
//!
//! A log or metrics export whose records join traces not seen yet is
//! **held**: its answer waits until every such trace has been seen or the
//! hold window has passed, and only then is the request converted, stored
//! and acknowledged. So what a client hears "ok" for is durable with its
//! final cohort — at the price of answering later (see `docs/cohorts.md`).
//! Held requests are bounded too (`max_held_size` bytes of request bodies);
//! a request over the bound is not held, and the query-time views join its
//! records later. Only records that may still get spans are waited for: log
//! records with the W3C *sampled* flag, and exemplars.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use grayscope_core::config::TraceJoinConfig;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

/// What the spans of one trace said, as far as ingest has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceLabel {
    /// The cohort a rule gave one of its spans; `None` when spans were seen
    /// but no rule matched them.
    pub(crate) cohort: Option<Arc<str>>,
    /// That span's resource `service.version`.
    pub(crate) version: Option<Arc<str>>,
    /// That span's start, nanoseconds since the epoch.
    pub(crate) start: i64,
}

impl TraceLabel {
    /// Whether `self` should replace `old` as the trace's label.
    fn beats(&self, old: &TraceLabel) -> bool {
        match (&self.cohort, &old.cohort) {
            (Some(_), None) => true,
            (Some(_), Some(_)) => self.start < old.start,
            (None, _) => false,
        }
    }
}

/// One span's word on its trace.
#[derive(Debug, Clone)]
pub(crate) struct Sighting {
    pub(crate) key: u128,
    pub(crate) label: TraceLabel,
}

/// A trace id as a map key: `None` unless it is a valid id (16 bytes, not
/// all zero).
#[inline]
pub(crate) fn trace_key(trace_id: &[u8]) -> Option<u128> {
    let bytes: [u8; 16] = trace_id.try_into().ok()?;
    Some(u128::from_be_bytes(bytes)).filter(|k| *k != 0)
}

/// Trace ids are random already: fold the two halves instead of hashing.
#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, key: u128) {
        // The low bytes of a flagged id are constant, the high bytes of a
        // codec-built id are a timestamp; the middle is random.
        self.0 = ((key >> 64) as u64) ^ (key as u64).rotate_left(29);
    }
}

type TraceMap = HashMap<u128, TraceLabel, BuildHasherDefault<FoldHasher>>;

/// Figures for operators and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JoinStats {
    /// Traces remembered now.
    pub remembered_traces: usize,
    /// Export requests waiting for spans now.
    pub held_requests: usize,
    /// Their body bytes.
    pub held_bytes: usize,
    /// Requests that waited since start.
    pub held_total: u64,
    /// Requests that waited the whole window for at least one trace.
    pub expired_total: u64,
    /// Requests not held because `max_held_size` (or the bound on held
    /// requests) was reached.
    pub refused_total: u64,
}

#[derive(Debug, Default)]
struct State {
    traces: TraceMap,
    order: VecDeque<u128>,
    held_requests: usize,
    held_bytes: usize,
}

/// The memory of recently seen traces, and the requests waiting for them.
#[derive(Debug)]
pub struct TraceJoin {
    hold_window: Duration,
    max_held_bytes: usize,
    max_held_requests: AtomicUsize,
    capacity: usize,
    state: Mutex<State>,
    /// Bumped on every publish; waiters re-check when it moves.
    published: watch::Sender<u64>,
    held_total: AtomicU64,
    expired_total: AtomicU64,
    refused_total: AtomicU64,
}

impl TraceJoin {
    /// A join configured by `[trace_join]`.
    pub fn new(config: &TraceJoinConfig) -> TraceJoin {
        TraceJoin {
            hold_window: config.hold_window.get(),
            max_held_bytes: config.max_held_size.as_usize(),
            max_held_requests: AtomicUsize::new(usize::MAX),
            capacity: config.remembered_traces,
            state: Mutex::new(State::default()),
            published: watch::Sender::new(0),
            held_total: AtomicU64::new(0),
            expired_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
        }
    }

    /// Holds at most `requests` export requests at once. A held request
    /// keeps its receiver's request slot, so the server bounds this below
    /// its concurrent-request limit, leaving room for the spans that
    /// release them.
    pub fn limit_held_requests(&self, requests: usize) {
        self.max_held_requests.store(requests, Ordering::Relaxed);
    }

    /// The configured hold window.
    pub fn hold_window(&self) -> Duration {
        self.hold_window
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic (no invariant spans two
        // statements that could panic), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers what a stored batch of spans said about their traces, and
    /// wakes the requests waiting for them.
    pub(crate) fn publish(&self, sightings: Vec<Sighting>) {
        if sightings.is_empty() || self.capacity == 0 {
            return;
        }
        {
            let mut state = self.state();
            let State { traces, order, .. } = &mut *state;
            for Sighting { key, label } in sightings {
                match traces.get_mut(&key) {
                    Some(old) => {
                        if label.beats(old) {
                            *old = label;
                        }
                    }
                    None => {
                        traces.insert(key, label);
                        order.push_back(key);
                    }
                }
            }
            while traces.len() > self.capacity {
                match order.pop_front() {
                    Some(oldest) => {
                        traces.remove(&oldest);
                    }
                    None => break,
                }
            }
        }
        self.published.send_modify(|generation| *generation += 1);
    }

    /// Which of `keys` no span has been seen for.
    pub(crate) fn unknown(&self, keys: &[u128]) -> Vec<u128> {
        if keys.is_empty() || self.hold_window.is_zero() || self.capacity == 0 {
            return Vec::new();
        }
        let state = self.state();
        keys.iter()
            .copied()
            .filter(|k| !state.traces.contains_key(k))
            .collect()
    }

    /// What is known of each of `keys`.
    pub(crate) fn snapshot(&self, keys: &[u128]) -> HashMap<u128, TraceLabel> {
        let state = self.state();
        keys.iter()
            .filter_map(|k| state.traces.get(k).map(|label| (*k, label.clone())))
            .collect()
    }

    /// Waits until a span of each of `waiting` has been seen, or the hold
    /// window has passed; returns at once when holding `bytes` more would
    /// exceed the bound.
    pub(crate) async fn hold(&self, mut waiting: Vec<u128>, bytes: usize) {
        let Some(_held) = self.reserve(bytes) else {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                traces = waiting.len(),
                bytes,
                "not holding an export: the hold bound is reached"
            );
            return;
        };
        self.held_total.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + self.hold_window;
        let mut published = self.published.subscribe();
        loop {
            // Mark the current generation seen before checking, so that a
            // publish between the check and the wait is not missed.
            published.borrow_and_update();
            {
                let state = self.state();
                waiting.retain(|k| !state.traces.contains_key(k));
            }
            if waiting.is_empty() {
                return;
            }
            match tokio::time::timeout_at(deadline, published.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the join is being dropped.
                _ => {
                    self.expired_total.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        traces = waiting.len(),
                        "held export released without the spans of some traces"
                    );
                    return;
                }
            }
        }
    }

    fn reserve(&self, bytes: usize) -> Option<Held<'_>> {
        let mut state = self.state();
        if state.held_bytes.saturating_add(bytes) > self.max_held_bytes
            || state.held_requests >= self.max_held_requests.load(Ordering::Relaxed)
        {
            return None;
        }
        state.held_bytes += bytes;
        state.held_requests += 1;
        Some(Held { join: self, bytes })
    }

    /// How much is remembered and held now.
    pub fn stats(&self) -> JoinStats {
        let state = self.state();
        JoinStats {
            remembered_traces: state.traces.len(),
            held_requests: state.held_requests,
            held_bytes: state.held_bytes,
            held_total: self.held_total.load(Ordering::Relaxed),
            expired_total: self.expired_total.load(Ordering::Relaxed),
            refused_total: self.refused_total.load(Ordering::Relaxed),
        }
    }
}

/// A request's share of the hold budget, given back on drop (also when the
/// request is cancelled while waiting).
struct Held<'a> {
    join: &'a TraceJoin,
    bytes: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut state = self.join.state();
        state.held_bytes = state.held_bytes.saturating_sub(self.bytes);
        state.held_requests = state.held_requests.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use grayscope_core::config::{ByteSize, ConfigDuration};

    use super::*;

    fn join(window_ms: u64, capacity: usize, max_held: u64) -> Arc<TraceJoin> {
        Arc::new(TraceJoin::new(&TraceJoinConfig {
            hold_window: ConfigDuration::from_millis(window_ms),
            max_held_size: ByteSize(max_held),
            remembered_traces: capacity,
        }))
    }

    fn seen(key: u128, cohort: Option<&str>, start: i64) -> Sighting {
        Sighting {
            key,
            label: TraceLabel {
                cohort: cohort.map(Arc::from),
                version: Some(Arc::from("v")),
                start,
            },
        }
    }

    fn cohort_of(join: &TraceJoin, key: u128) -> Option<String> {
        join.snapshot(&[key])
            .get(&key)
            .and_then(|l| l.cohort.as_deref().map(str::to_owned))
    }

    #[test]
    fn rule_labels_beat_plain_sightings_and_earlier_spans_win() {
        let join = join(1000, 10, 1 << 20);
        join.publish(vec![seen(1, None, 5)]);
        assert_eq!(cohort_of(&join, 1), None);
        assert_eq!(join.unknown(&[1, 2]), vec![2]);
        join.publish(vec![seen(1, Some("late"), 9)]);
        assert_eq!(cohort_of(&join, 1).as_deref(), Some("late"));
        join.publish(vec![seen(1, Some("early"), 3), seen(1, None, 1)]);
        assert_eq!(cohort_of(&join, 1).as_deref(), Some("early"));
        join.publish(vec![seen(1, Some("later"), 4)]);
        assert_eq!(cohort_of(&join, 1).as_deref(), Some("early"));
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let join = join(1000, 3, 1 << 20);
        join.publish((1..=5).map(|k| seen(k, Some("a"), 0)).collect());
        assert_eq!(join.stats().remembered_traces, 3);
        assert_eq!(join.unknown(&[1, 2, 3, 4, 5]), vec![1, 2]);
    }

    #[test]
    fn zero_capacity_or_window_never_holds() {
        let join_off = join(1000, 0, 1 << 20);
        join_off.publish(vec![seen(1, Some("a"), 0)]);
        assert_eq!(join_off.stats().remembered_traces, 0);
        assert!(join_off.unknown(&[1]).is_empty());
        let no_window = join(0, 10, 1 << 20);
        assert!(no_window.unknown(&[1]).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_request_is_released_by_its_spans() {
        let join = join(3_000, 10, 1 << 20);
        let waiter = tokio::spawn({
            let join = join.clone();
            async move {
                let start = Instant::now();
                join.hold(vec![7, 8], 100).await;
                start.elapsed()
            }
        });
        // Let the waiter register.
        while join.stats().held_requests == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(join.stats().held_bytes, 100);
        join.publish(vec![seen(7, Some("a"), 0)]);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        join.publish(vec![seen(8, None, 0)]);
        let waited = waiter.await.unwrap();
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        let stats = join.stats();
        assert_eq!((stats.held_requests, stats.held_bytes), (0, 0));
        assert_eq!((stats.held_total, stats.expired_total), (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_request_gives_up_after_the_window() {
        let join = join(3_000, 10, 1 << 20);
        let start = Instant::now();
        join.hold(vec![7], 100).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(join.stats().expired_total, 1);
        assert_eq!(join.stats().held_requests, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn holding_is_bounded_by_bytes() {
        let join = join(3_000, 10, 150);
        let first = tokio::spawn({
            let join = join.clone();
            async move { join.hold(vec![7], 100).await }
        });
        while join.stats().held_requests == 0 {
            tokio::task::yield_now().await;
        }
        let start = Instant::now();
        join.hold(vec![8], 100).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "over the bound: not held");
        assert_eq!(join.stats().refused_total, 1);
        join.publish(vec![seen(7, None, 0)]);
        first.await.unwrap();
    }
}
