//! Spans delivered again are not stored twice: a bounded memory of the
//! (trace id, span id) pairs stored through Kafka.
//!
//! Kafka delivers at least once: after a crash, or a partition that moved
//! before its offsets were committed, messages arrive again. A span is
//! identified by its trace id and span id, so a span already stored is
//! dropped from the batch (and counted). Log records and data points carry
//! no such identity and are stored again.
//!
//! Claims are taken before the append and released when it fails, so two
//! batches carrying the same span at once store it once, and a batch that
//! is retried does not find its own spans taken.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;

/// A span's identity: trace id and span id.
type SpanKey = (u128, u64);

/// The (trace id, span id) pairs stored lately, at most `capacity`, the
/// oldest forgotten first.
#[derive(Debug)]
pub(crate) struct SpanDedup {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashSet<SpanKey>,
    order: VecDeque<SpanKey>,
}

/// What [`SpanDedup::claim`] found in a batch.
#[derive(Debug)]
pub(crate) struct Claim {
    /// The batch without the spans stored before.
    pub(crate) batch: RecordBatch,
    /// Spans dropped as already stored (or repeated within the batch).
    pub(crate) duplicates: usize,
    /// The pairs this batch claimed; released if its append fails.
    claimed: Vec<SpanKey>,
}

impl Claim {
    /// A batch stored as it is.
    pub(crate) fn unfiltered(batch: RecordBatch) -> Claim {
        Claim {
            batch,
            duplicates: 0,
            claimed: Vec::new(),
        }
    }
}

impl SpanDedup {
    /// A memory of `capacity` spans; 0 remembers nothing.
    pub(crate) fn new(capacity: usize) -> SpanDedup {
        SpanDedup {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the spans of `batch` (in the `spans` schema) and drops
    /// those remembered already.
    pub(crate) fn claim(&self, batch: RecordBatch) -> Claim {
        let Some(keys) = (self.capacity > 0).then(|| span_keys(&batch)).flatten() else {
            return Claim::unfiltered(batch);
        };
        let mut keep = Vec::with_capacity(keys.len());
        let mut claimed = Vec::with_capacity(keys.len());
        {
            let mut inner = self.lock();
            for key in keys {
                let new = key.is_none_or(|key| inner.seen.insert(key));
                keep.push(new);
                if let (true, Some(key)) = (new, key) {
                    claimed.push(key);
                    inner.order.push_back(key);
                }
            }
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.seen.remove(&old);
                }
            }
        }
        let duplicates = keep.iter().filter(|k| !**k).count();
        let batch = if duplicates == 0 {
            batch
        } else {
            // The mask has the batch's length: filtering cannot fail.
            filter_record_batch(&batch, &BooleanArray::from(keep))
                .unwrap_or_else(|_| RecordBatch::new_empty(batch.schema()))
        };
        Claim {
            batch,
            duplicates,
            claimed,
        }
    }

    /// Forgets what `claim` remembered: its batch was not stored.
    pub(crate) fn release(&self, claim: Claim) {
        if claim.claimed.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for key in &claim.claimed {
            inner.seen.remove(key);
        }
    }

    /// Remembers spans stored before (the store's memtables after a
    /// restart), without filtering anything.
    pub(crate) fn remember(&self, batch: &RecordBatch) {
        if self.capacity == 0 {
            return;
        }
        let Some(keys) = span_keys(batch) else {
            return;
        };
        let mut inner = self.lock();
        for key in keys.into_iter().flatten() {
            if inner.seen.insert(key) {
                inner.order.push_back(key);
            }
        }
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.seen.remove(&old);
            }
        }
    }

    /// Spans remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().seen.len()
    }
}

/// Each row's (trace id, span id), `None` where they are not hex ids;
/// `None` for a batch without the columns.
fn span_keys(batch: &RecordBatch) -> Option<Vec<Option<SpanKey>>> {
    let trace = batch.column_by_name("trace_id")?.as_string_opt::<i32>()?;
    let span = batch.column_by_name("span_id")?.as_string_opt::<i32>()?;
    Some(
        (0..batch.num_rows())
            .map(|row| {
                if trace.is_null(row) || span.is_null(row) {
                    return None;
                }
                let trace = u128::from_str_radix(trace.value(row), 16).ok()?;
                let span = u64::from_str_radix(span.value(row), 16).ok()?;
                Some((trace, span))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(ids: &[(&str, &str)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("span_id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from_iter_values(ids.iter().map(|i| i.0))),
                Arc::new(StringArray::from_iter_values(ids.iter().map(|i| i.1))),
                Arc::new(Int64Array::from_iter_values(0..ids.len() as i64)),
            ],
        )
        .unwrap()
    }

    const T1: &str = "0af7651916cd43dd8448eb211c80319c";
    const T2: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn a_span_seen_before_is_dropped_and_counted() {
        let dedup = SpanDedup::new(100);
        let first = dedup.claim(batch(&[(T1, "00f067aa0ba902b7"), (T2, "00f067aa0ba902b7")]));
        assert_eq!((first.batch.num_rows(), first.duplicates), (2, 0));
        let again = dedup.claim(batch(&[(T2, "00f067aa0ba902b7"), (T2, "00f067aa0ba902b8")]));
        assert_eq!((again.batch.num_rows(), again.duplicates), (1, 1));
        let kept = again.batch.column(1).as_string::<i32>().value(0).to_owned();
        assert_eq!(kept, "00f067aa0ba902b8");
    }

    #[test]
    fn repeats_within_one_batch_are_stored_once() {
        let dedup = SpanDedup::new(100);
        let claim = dedup.claim(batch(&[(T1, "0000000000000001"), (T1, "0000000000000001")]));
        assert_eq!((claim.batch.num_rows(), claim.duplicates), (1, 1));
    }

    #[test]
    fn a_released_claim_is_forgotten() {
        let dedup = SpanDedup::new(100);
        let claim = dedup.claim(batch(&[(T1, "0000000000000001")]));
        dedup.release(claim);
        let retry = dedup.claim(batch(&[(T1, "0000000000000001")]));
        assert_eq!((retry.batch.num_rows(), retry.duplicates), (1, 0));
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let dedup = SpanDedup::new(2);
        for span in ["0000000000000001", "0000000000000002", "0000000000000003"] {
            dedup.claim(batch(&[(T1, span)]));
        }
        assert_eq!(dedup.len(), 2);
        let oldest = dedup.claim(batch(&[(T1, "0000000000000001")]));
        assert_eq!(oldest.duplicates, 0, "forgotten, so stored again");
        let newest = dedup.claim(batch(&[(T1, "0000000000000003")]));
        assert_eq!(newest.duplicates, 1);
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let dedup = SpanDedup::new(0);
        dedup.claim(batch(&[(T1, "0000000000000001")]));
        let again = dedup.claim(batch(&[(T1, "0000000000000001")]));
        assert_eq!(again.duplicates, 0);
    }
}
