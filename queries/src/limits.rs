//! The limits every query runs under, whichever front end it came through
//! (HTTP, the PostgreSQL wire protocol, Flight SQL): memory per query, time
//! per query, and queries at once.
//!
//! - Memory: each query gets its own DataFusion memory pool of
//!   `sql.memory_limit` bytes, so one query that sorts or aggregates too much
//!   fails with [`Error::MemoryLimit`] while the others keep their memory.
//!   Spilling to disk is off: a query cannot fill the disk instead.
//! - Time: the result stream ends with [`Error::Timeout`] at `sql.timeout`
//!   after the query got its slot, and the work stops then (dropping a
//!   DataFusion stream cancels its tasks).
//! - Concurrency: `sql.max_concurrent_queries` slots; a query waits for one
//!   at most `sql.timeout`, then fails with [`Error::Busy`]. A slot is held
//!   until the result stream ends or is dropped.

use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use futures::{Stream, StreamExt as _};
use grayscope_core::config::{ByteSize, SqlConfig};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::error::{Error, Result};

/// `[sql]`'s limits, shared by every clone of an engine.
#[derive(Debug)]
pub(crate) struct QueryLimits {
    memory_limit: usize,
    timeout: Duration,
    max_concurrent: usize,
    slots: Arc<Semaphore>,
}

/// What a query holds while it runs: its slot, its deadline, its memory.
pub(crate) struct Admission {
    _permit: OwnedSemaphorePermit,
    deadline: Instant,
    timeout: Duration,
    timeout_setting: &'static str,
    memory_limit: usize,
}

/// A time limit a client asked for, shorter than `sql.timeout` (a
/// PostgreSQL client's `statement_timeout`); a longer one has no effect.
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeout {
    /// The limit.
    pub timeout: Duration,
    /// Its name, for the error (`statement_timeout`).
    pub setting: &'static str,
}

impl QueryLimits {
    pub(crate) fn new(config: &SqlConfig) -> QueryLimits {
        QueryLimits {
            memory_limit: config.memory_limit.as_usize(),
            timeout: config.timeout.get(),
            max_concurrent: config.max_concurrent_queries,
            slots: Arc::new(Semaphore::new(config.max_concurrent_queries)),
        }
    }

    /// `sql.memory_limit`, in bytes.
    pub(crate) fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// Waits for a free slot, at most `timeout`; the query then has
    /// `timeout`, or the client's own limit when that is shorter.
    pub(crate) async fn admit(&self, client: Option<ClientTimeout>) -> Result<Admission> {
        let permit = tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Error::Busy {
                waited: self.timeout,
                max_concurrent: self.max_concurrent,
            })?
            .map_err(|_| Error::Internal("the query slots were closed".to_owned()))?;
        let (timeout, timeout_setting) = match client {
            Some(client) if client.timeout < self.timeout => (client.timeout, client.setting),
            _ => (self.timeout, "sql.timeout"),
        };
        Ok(Admission {
            _permit: permit,
            deadline: Instant::now() + timeout,
            timeout,
            timeout_setting,
            memory_limit: self.memory_limit,
        })
    }
}

impl Admission {
    /// When the query must be done.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The error a query gets at its deadline.
    pub(crate) fn timeout_error(&self) -> Error {
        Error::Timeout {
            after: self.timeout,
            limit: self.timeout_setting,
        }
    }

    /// A runtime like `base` (same object stores and caches) with the
    /// query's own memory pool and no spilling to disk.
    pub(crate) fn runtime(&self, base: &RuntimeEnv) -> Result<Arc<RuntimeEnv>> {
        let pool = TrackConsumersPool::new(
            GreedyMemoryPool::new(self.memory_limit),
            NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
        );
        Ok(RuntimeEnvBuilder::from_runtime_env(base)
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()?)
    }

    /// `stream`, ended with [`Error::Timeout`] at the deadline, with memory
    /// errors named as the limit's, holding the slot until it ends.
    pub(crate) fn limit(self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        Box::pin(LimitedStream {
            schema: stream.schema(),
            inner: Some(stream),
            deadline: Box::pin(tokio::time::sleep_until(self.deadline)),
            admission: Some(self),
        })
    }
}

/// A query's result as it is computed: its schema, and its record batches
/// as a stream that holds the query's slot until it ends or is dropped
/// (dropping it cancels the query).
pub struct QueryStream {
    /// The result's schema (also when there are no rows).
    pub schema: SchemaRef,
    /// The rows. An error item ends the stream; [`Error::from`] turns it
    /// back into this crate's error ([`Error::Timeout`],
    /// [`Error::MemoryLimit`], …).
    pub batches: SendableRecordBatchStream,
    /// Under limits, the most a collected result may hold: `sql.memory_limit`.
    pub(crate) collect_limit: Option<usize>,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl QueryStream {
    /// Reads the whole result. Under limits, a result bigger than
    /// `sql.memory_limit` is not held: the query stops with
    /// [`Error::MemoryLimit`] (the streaming front ends, PostgreSQL and
    /// Flight SQL, have no such bound: they never hold the whole result).
    pub async fn collect(mut self) -> Result<crate::QueryResult> {
        let mut batches = Vec::new();
        let mut held = 0usize;
        while let Some(batch) = self.batches.next().await {
            let batch = batch?;
            held = held.saturating_add(batch.get_array_memory_size());
            if let Some(limit) = self.collect_limit
                && held > limit
            {
                return Err(Error::MemoryLimit {
                    limit: ByteSize(limit as u64),
                    message: format!(
                        "the result reached {} before its end; add a LIMIT or an aggregate, or \
                         read it through PostgreSQL or Flight SQL, which stream results",
                        ByteSize(held as u64)
                    ),
                });
            }
            batches.push(batch);
        }
        Ok(crate::QueryResult {
            schema: self.schema,
            batches,
        })
    }
}

struct LimitedStream {
    schema: SchemaRef,
    /// `None` once the stream ended: the query's work is dropped.
    inner: Option<SendableRecordBatchStream>,
    deadline: Pin<Box<Sleep>>,
    admission: Option<Admission>,
}

impl LimitedStream {
    fn end(&mut self) {
        self.inner = None;
        self.admission = None;
    }
}

impl Stream for LimitedStream {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.deadline.as_mut().poll(cx).is_ready() {
            let error = this
                .admission
                .as_ref()
                .map(Admission::timeout_error)
                .unwrap_or_else(|| Error::Internal("no admission".to_owned()));
            this.end();
            return Poll::Ready(Some(Err(error.into_datafusion())));
        }
        match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Err(error))) => {
                let error = match (&this.admission, error.find_root()) {
                    (Some(admission), DataFusionError::ResourcesExhausted(message)) => {
                        Error::MemoryLimit {
                            limit: ByteSize(admission.memory_limit as u64),
                            message: message.clone(),
                        }
                        .into_datafusion()
                    }
                    _ => error,
                };
                this.end();
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                this.end();
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

impl RecordBatchStream for LimitedStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(memory: u64, timeout: Duration, slots: usize) -> SqlConfig {
        SqlConfig {
            memory_limit: ByteSize(memory),
            timeout: grayscope_core::config::ConfigDuration(timeout),
            max_concurrent_queries: slots,
            ..SqlConfig::default()
        }
    }

    #[tokio::test]
    async fn a_query_waits_for_a_slot_at_most_the_timeout() {
        let limits = QueryLimits::new(&config(1 << 20, Duration::from_millis(200), 1));
        let first = limits.admit(None).await.unwrap();
        let started = std::time::Instant::now();
        let error = limits.admit(None).await.err().unwrap();
        assert!(
            matches!(
                error,
                Error::Busy {
                    max_concurrent: 1,
                    ..
                }
            ),
            "{error}"
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(
            error.to_string().contains("sql.max_concurrent_queries"),
            "{error}"
        );
        drop(first);
        limits.admit(None).await.unwrap();
    }
}
