//! grayscope's store: where accepted telemetry lives and where SQL reads it.
//!
//! - [`Store`] owns one [`MemTable`] per [`Table`](grayscope_core::Table).
//!   [`Store::append`] adds a record batch; once it returns, the rows are
//!   visible to every query that starts afterwards.
//! - [`StoreTableProvider`] is the DataFusion `TableProvider` of one table:
//!   a query scans a consistent snapshot of the table's batches.
//!
//! ```
//! # tokio_test_shim::block_on(async {
//! use grayscope_core::Table;
//! use grayscope_store::Store;
//!
//! let store = Store::in_memory();
//! let empty = arrow::record_batch::RecordBatch::new_empty(Table::Spans.schema());
//! store.append(Table::Spans, empty).await.unwrap();
//! assert_eq!(store.stats(Table::Spans).rows, 0);
//! # });
//! # mod tokio_test_shim { pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) } }
//! ```
//!
//! Today the store is memory only; the write-ahead log, Parquet parts and
//! recovery of DESIGN §4 build on this same interface.

mod error;
mod memtable;
mod store;
mod table_provider;

pub use error::{Error, Result};
pub use memtable::{MemTable, TableStats};
pub use store::Store;
pub use table_provider::StoreTableProvider;
