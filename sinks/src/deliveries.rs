//! The state of every recent delivery, for `system.deliveries` and
//! `/metrics`: per destination and signal, where it stands, how many
//! attempts it took, the last answer, and how long it took.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampNanosecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use grayscope_core::signal::Signal;

use crate::error::{Error, Result};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Being attempted, or waiting for its next attempt.
    Pending,
    /// The destination accepted it.
    Delivered,
    /// Given up: its deadline passed, or the destination refused it for
    /// good (a 4xx other than 408 and 429).
    Failed,
}

impl DeliveryState {
    /// As SQL and metrics spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// One signal's delivery to one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The destination (`webhook:<name>`, `kafka`, `grafana`).
    pub destination: String,
    /// The signal's id.
    pub signal_id: String,
    /// The rollout.
    pub rollout: String,
    /// The canary cohort.
    pub cohort: String,
    /// The signal's sequence.
    pub sequence: u64,
    /// The signal's verdict.
    pub verdict: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last HTTP status received, if any.
    pub last_status: Option<u16>,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When the first attempt started (ns since the epoch).
    pub first_attempt: i64,
    /// When the next attempt is due, while pending after a failure.
    pub next_attempt: Option<i64>,
    /// When it was delivered or given up.
    pub finished: Option<i64>,
}

/// The recent deliveries, newest last, bounded. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Deliveries {
    inner: Arc<Mutex<VecDeque<Delivery>>>,
    capacity: usize,
}

impl Default for Deliveries {
    fn default() -> Self {
        Deliveries::new(10_000)
    }
}

impl Deliveries {
    /// Keeps the state of the last `capacity` deliveries.
    pub fn new(capacity: usize) -> Deliveries {
        Deliveries {
            inner: Arc::new(Mutex::new(VecDeque::new())),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Delivery>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts tracking the delivery of `signal` to `destination`.
    pub fn start(&self, destination: &str, signal: &Signal, now: i64) {
        let mut all = self.lock();
        if all.len() >= self.capacity {
            all.pop_front();
        }
        all.push_back(Delivery {
            destination: destination.to_owned(),
            signal_id: signal.id.clone(),
            rollout: signal.rollout.clone(),
            cohort: signal.cohort.clone(),
            sequence: signal.sequence,
            verdict: signal.verdict.to_string(),
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: None,
            first_attempt: now,
            next_attempt: None,
            finished: None,
        });
    }

    /// Updates the newest delivery of `signal_id` to `destination`.
    pub fn update(&self, destination: &str, signal_id: &str, change: impl FnOnce(&mut Delivery)) {
        let mut all = self.lock();
        if let Some(delivery) = all
            .iter_mut()
            .rev()
            .find(|d| d.destination == destination && d.signal_id == signal_id)
        {
            change(delivery);
        }
    }

    /// A copy of every tracked delivery, oldest first.
    pub fn snapshot(&self) -> Vec<Delivery> {
        self.lock().iter().cloned().collect()
    }

    /// The schema of `system.deliveries`.
    pub fn schema() -> SchemaRef {
        let time = || DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("destination", DataType::Utf8, false),
            Field::new("signal_id", DataType::Utf8, false),
            Field::new("rollout", DataType::Utf8, false),
            Field::new("cohort", DataType::Utf8, false),
            Field::new("sequence", DataType::UInt64, false),
            Field::new("verdict", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("attempts", DataType::Int64, false),
            Field::new("last_status", DataType::Int64, true),
            Field::new("last_error", DataType::Utf8, true),
            Field::new("first_attempt", time(), false),
            Field::new("next_attempt", time(), true),
            Field::new("finished", time(), true),
        ]))
    }

    /// Every tracked delivery as one `system.deliveries` batch.
    pub fn record_batch(&self) -> Result<RecordBatch> {
        let all = self.snapshot();
        let text = |f: fn(&Delivery) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(all.iter().map(f)))
        };
        let time = |f: fn(&Delivery) -> Option<i64>| -> ArrayRef {
            Arc::new(TimestampNanosecondArray::from_iter(all.iter().map(f)).with_timezone("UTC"))
        };
        let columns: Vec<ArrayRef> = vec![
            text(|d| &d.destination),
            text(|d| &d.signal_id),
            text(|d| &d.rollout),
            text(|d| &d.cohort),
            Arc::new(UInt64Array::from_iter_values(
                all.iter().map(|d| d.sequence),
            )),
            text(|d| &d.verdict),
            text(|d| d.state.as_str()),
            Arc::new(Int64Array::from_iter_values(
                all.iter().map(|d| i64::from(d.attempts)),
            )),
            Arc::new(Int64Array::from_iter(
                all.iter().map(|d| d.last_status.map(i64::from)),
            )),
            Arc::new(StringArray::from_iter(
                all.iter().map(|d| d.last_error.as_deref()),
            )),
            time(|d| Some(d.first_attempt)),
            time(|d| d.next_attempt),
            time(|d| d.finished),
        ];
        RecordBatch::try_new(Deliveries::schema(), columns)
            .map_err(|e| Error::Internal(e.to_string()))
    }
}
