//! OTLP requests → Arrow record batches, one function per signal.
//!
//! Each converter walks a decoded export request once, validates every
//! record, labels it with its cohort and appends it to column builders laid
//! out exactly as the table's schema in `grayscope_core::schema`. Records
//! that cannot be stored (a trace id of the wrong length, a data point
//! without a value) are rejected one by one and reported back to the client
//! as an OTLP partial success; the rest of the request is kept.

mod attributes;
mod columns;
mod logs;
mod metrics;
mod resource;
mod spans;

use arrow::record_batch::RecordBatch;

pub use logs::convert_logs;
pub use metrics::convert_metrics;
pub use spans::convert_spans;

/// At most this many rejection reasons are reported per request.
const MAX_REASONS: usize = 5;

/// The result of converting one export request.
#[derive(Debug)]
pub struct Converted {
    /// The accepted records, in the table's schema.
    pub batch: RecordBatch,
    /// How many records (spans, log records, data points) were rejected.
    pub rejected: i64,
    /// Why, for the first few rejected records.
    pub reasons: Vec<String>,
}

impl Converted {
    /// A single message summarising the rejections, for `partial_success`.
    pub fn error_message(&self) -> String {
        let mut message = self.reasons.join("; ");
        let unexplained = self.rejected - self.reasons.len() as i64;
        if unexplained > 0 {
            message.push_str(&format!("; and {unexplained} more"));
        }
        message
    }
}

/// Collects rejections while a request is converted.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    count: i64,
    reasons: Vec<String>,
}

impl Rejections {
    pub(crate) fn reject(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(reason());
        }
    }

    pub(crate) fn into_converted(self, batch: RecordBatch) -> Converted {
        Converted {
            batch,
            rejected: self.count,
            reasons: self.reasons,
        }
    }
}

/// Nanoseconds since the epoch as Arrow's signed timestamp. OTLP's `fixed64`
/// exceeds `i64` only past the year 2262; such times are clamped.
pub(crate) fn nanos(unix_nano: u64) -> i64 {
    i64::try_from(unix_nano).unwrap_or(i64::MAX)
}
