//! Merging inputs by time: compaction's k-way merge. Inputs sorted by time
//! (parts written before flushes switched to arrival order, and merges of
//! them) come out as one sorted stream; inputs in arrival order are
//! interleaved by the time of each one's next row. Either way every row
//! comes out once.
//!
//! It holds one batch per input and one output chunk at a time, so merging
//! parts costs memory in proportion to how many there are, not to how big
//! they are.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use arrow::array::{Array as _, TimestampNanosecondArray};
use arrow::compute::interleave_record_batch;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// Rows gathered per output batch: small enough to stay in cache, large
/// enough for the column encoders.
pub(crate) const CHUNK_ROWS: usize = 16 * 1024;

type BatchResult = std::result::Result<RecordBatch, ArrowError>;

/// The rows of several inputs, always taking the input whose next row has
/// the smallest time, as batches of at most [`CHUNK_ROWS`]: in time order
/// when every input is sorted. Rows with equal times come in input order,
/// and every input's rows keep their order.
pub(crate) struct SortedMerge<I> {
    inputs: Vec<Input<I>>,
    /// `(time of the input's next row, input)`, smallest first.
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    started: bool,
    failed: bool,
}

struct Input<I> {
    source: I,
    current: Option<Current>,
}

/// The batch an input is in, and where.
struct Current {
    batch: RecordBatch,
    times: TimestampNanosecondArray,
    row: usize,
    /// Its index among the batches the chunk being built gathers from.
    pinned: usize,
}

impl Current {
    fn time(&self) -> i64 {
        // `time` is never null in our schemas; a null would sort first.
        if self.times.is_null(self.row) {
            i64::MIN
        } else {
            self.times.value(self.row)
        }
    }
}

impl<I: Iterator<Item = BatchResult>> Input<I> {
    /// Moves to the input's next non-empty batch; false at its end.
    fn advance(&mut self) -> std::result::Result<bool, ArrowError> {
        self.current = None;
        for batch in self.source.by_ref() {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let times = batch
                .column_by_name("time")
                .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
                .cloned()
                .ok_or_else(|| {
                    ArrowError::SchemaError("rows to merge have no nanosecond `time`".to_owned())
                })?;
            self.current = Some(Current {
                batch,
                times,
                row: 0,
                pinned: 0,
            });
            return Ok(true);
        }
        Ok(false)
    }
}

impl<I: Iterator<Item = BatchResult>> SortedMerge<I> {
    /// Merges `inputs` (in time order if each is sorted by `time`).
    pub(crate) fn new(inputs: impl IntoIterator<Item = I>) -> SortedMerge<I> {
        let inputs: Vec<Input<I>> = inputs
            .into_iter()
            .map(|source| Input {
                source,
                current: None,
            })
            .collect();
        SortedMerge {
            heap: BinaryHeap::with_capacity(inputs.len()),
            inputs,
            started: false,
            failed: false,
        }
    }

    fn next_chunk(&mut self) -> std::result::Result<Option<RecordBatch>, ArrowError> {
        let SortedMerge {
            inputs,
            heap,
            started,
            ..
        } = self;
        if !*started {
            *started = true;
            for (i, input) in inputs.iter_mut().enumerate() {
                if input.advance()?
                    && let Some(current) = &input.current
                {
                    heap.push(Reverse((current.time(), i)));
                }
            }
        }
        if heap.is_empty() {
            return Ok(None);
        }
        // The chunk gathers from the batches the inputs are in now, and
        // from those they move on to while it is built.
        let mut pinned: Vec<RecordBatch> = Vec::with_capacity(inputs.len());
        for current in inputs.iter_mut().filter_map(|i| i.current.as_mut()) {
            current.pinned = pinned.len();
            pinned.push(current.batch.clone());
        }
        let mut positions = Vec::with_capacity(CHUNK_ROWS);
        while positions.len() < CHUNK_ROWS {
            let Some(mut top) = heap.peek_mut() else {
                break;
            };
            let Reverse((_, i)) = *top;
            let input = &mut inputs[i];
            let Some(current) = input.current.as_mut() else {
                PeekMut::pop(top);
                continue;
            };
            positions.push((current.pinned, current.row));
            current.row += 1;
            if current.row == current.batch.num_rows()
                && input.advance()?
                && let Some(current) = input.current.as_mut()
            {
                current.pinned = pinned.len();
                pinned.push(current.batch.clone());
            }
            match &input.current {
                // Replacing the top and letting it sink costs one sift, not
                // a pop and a push.
                Some(current) => *top = Reverse((current.time(), i)),
                None => {
                    PeekMut::pop(top);
                }
            }
        }
        let batches: Vec<&RecordBatch> = pinned.iter().collect();
        interleave_record_batch(&batches, &positions).map(Some)
    }
}

impl<I: Iterator<Item = BatchResult>> Iterator for SortedMerge<I> {
    type Item = BatchResult;

    fn next(&mut self) -> Option<BatchResult> {
        if self.failed {
            return None;
        }
        match self.next_chunk() {
            Ok(chunk) => chunk.map(Ok),
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::compute::concat_batches;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    /// A batch of `(time, n)` rows.
    fn batch(rows: &[(i64, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("n", DataType::Int64, false),
        ]));
        let time: ArrayRef = Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.0))
                .with_timezone("UTC"),
        );
        let n: ArrayRef = Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1)));
        RecordBatch::try_new(schema, vec![time, n]).unwrap()
    }

    fn input(batches: Vec<RecordBatch>) -> std::vec::IntoIter<BatchResult> {
        batches.into_iter().map(Ok).collect::<Vec<_>>().into_iter()
    }

    fn merged(inputs: Vec<Vec<RecordBatch>>) -> (Vec<usize>, Vec<(i64, i64)>) {
        let chunks: Vec<RecordBatch> = SortedMerge::new(inputs.into_iter().map(input))
            .map(|chunk| chunk.unwrap())
            .collect();
        let sizes = chunks.iter().map(RecordBatch::num_rows).collect();
        if chunks.is_empty() {
            return (sizes, Vec::new());
        }
        let all = concat_batches(&chunks[0].schema(), &chunks).unwrap();
        let time = all.column(0).as_any();
        let time = time.downcast_ref::<TimestampNanosecondArray>().unwrap();
        let n = all.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        let rows = time
            .values()
            .iter()
            .copied()
            .zip(n.values().iter().copied());
        (sizes, rows.collect())
    }

    #[test]
    fn sorted_inputs_come_out_as_one_sorted_stream_ties_in_input_order() {
        let a = vec![batch(&[(1, 10), (5, 11)]), batch(&[(5, 12), (9, 13)])];
        let b = vec![batch(&[(0, 20), (5, 21)]), batch(&[]), batch(&[(7, 22)])];
        let c = vec![batch(&[(5, 30)])];
        let (_, rows) = merged(vec![a, b, c]);
        assert_eq!(
            rows,
            vec![
                (0, 20),
                (1, 10),
                (5, 11),
                (5, 12),
                (5, 21),
                (5, 30),
                (7, 22),
                (9, 13)
            ]
        );
    }

    #[test]
    fn the_output_comes_in_chunks_of_bounded_size_across_input_batches() {
        // Two interleaved inputs of many small batches: every chunk gathers
        // from batches the inputs moved past while it was built.
        let total = CHUNK_ROWS as i64 * 2 + 7;
        // Rows `(t, t)` for every other `t` from `first`, `per_batch` a batch.
        let every_other = |first: i64, per_batch: usize| -> Vec<RecordBatch> {
            let times: Vec<i64> = (first..total).step_by(2).collect();
            times
                .chunks(per_batch)
                .map(|ts| batch(&ts.iter().map(|&t| (t, t)).collect::<Vec<_>>()))
                .collect()
        };
        let (sizes, rows) = merged(vec![every_other(0, 100), every_other(1, 333)]);
        assert_eq!(sizes, vec![CHUNK_ROWS, CHUNK_ROWS, 7]);
        let expected: Vec<(i64, i64)> = (0..total).map(|t| (t, t)).collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn no_inputs_and_empty_inputs_merge_to_nothing() {
        assert_eq!(merged(vec![]).0, Vec::<usize>::new());
        assert_eq!(
            merged(vec![vec![], vec![batch(&[])]]).0,
            Vec::<usize>::new()
        );
    }

    #[test]
    fn an_input_that_fails_ends_the_merge_with_its_error() {
        let failing = vec![
            Ok(batch(&[(1, 1)])),
            Err(ArrowError::ParquetError("bad page".to_owned())),
        ];
        let fine = input(vec![batch(&[(0, 0), (2, 2)])]);
        let mut merge = SortedMerge::new([failing.into_iter(), fine]);
        let error = merge.next().unwrap().unwrap_err();
        assert!(error.to_string().contains("bad page"), "{error}");
        assert!(merge.next().is_none());
    }
}
