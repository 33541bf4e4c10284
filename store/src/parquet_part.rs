//! Parquet parts: the immutable files a flushed memtable becomes.
//!
//! A part is written atomically — to a hidden temporary file, fsynced,
//! renamed into place, and the directory fsynced — so a crash leaves either
//! no part or a whole one. Its pages go to the disk as they are written
//! (`writeback`), not all at once at the fsync, so that the log's commits
//! do not queue behind a whole part.
//!
//! Each part carries, in its Parquet key-value metadata under
//! `grayscope.part`, a JSON [`PartMeta`]: which flush wrote it, the highest
//! write-ahead-log sequence number the flush covers (see `recovery` for how
//! that decides whether the flush committed), and, for a part produced by
//! compaction, the parts it replaces.
//!
//! Parts are never changed. A part that compaction replaced or retention
//! expired leaves the table at once but its file stays on disk for a grace
//! period, so queries planned before still read it (see `Store`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use grayscope_core::Table;
use grayscope_core::schema::MAP_KEYS;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{KeyValue, ParquetMetaData, ParquetMetaDataReader, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::partition::Partition;
use crate::writeback::WriteBack;

/// Key of the part metadata in the Parquet footer.
const META_KEY: &str = "grayscope.part";

/// What grayscope records about a part, in the part itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    /// The table the rows belong to.
    pub table: String,
    /// Unique id of the part within its table.
    pub id: u64,
    /// Id of the flush (or compaction) that wrote the part.
    pub flush_id: u64,
    /// The highest WAL sequence number whose rows the flush contains: every
    /// record of this table up to it is in Parquet.
    pub flush_lsn: u64,
    /// Ids of the parts this one replaces (compaction), else empty.
    #[serde(default)]
    pub replaces: Vec<u64>,
    /// Number of rows.
    pub rows: u64,
    /// Smallest `time` in the part, in nanoseconds since the epoch.
    pub min_time: i64,
    /// Largest `time` in the part.
    pub max_time: i64,
}

/// A part on disk.
#[derive(Debug)]
pub struct Part {
    path: PathBuf,
    partition: Partition,
    meta: PartMeta,
    size: u64,
}

impl Part {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its hour partition.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// Its metadata.
    pub fn meta(&self) -> &PartMeta {
        &self.meta
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether rows with times in `[from, to]` may be in this part.
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        self.meta.min_time <= to && self.meta.max_time >= from
    }
}

/// How parts are encoded.
#[derive(Debug, Clone)]
pub struct PartWriterOptions {
    /// Rows per row group.
    pub row_group_rows: usize,
}

/// The file name of part `id`.
pub fn file_name(id: u64) -> String {
    format!("part-{id:016x}.parquet")
}

/// Per-column encodings. Dictionary encoding pays off for the low-
/// cardinality text (`kind`, `service`, `cohort`, routes) that it is on
/// by default for; for columns whose values rarely repeat it only fills a
/// dictionary page and falls back, costing time when written and read:
/// - timestamps are written as deltas: rows arrive roughly in time order
///   (an SDK batch covers seconds), so deltas take a few bytes per row
///   before compression;
/// - other 64-bit numbers (`duration_ns`, values, counters) plainly, and
///   compressed with LZ4, which decompresses several times faster than
///   zstd: nearly every aggregate reads them (zstd would shrink them by
///   about another fifth);
/// - trace and span ids (random hex) plainly;
/// - attribute maps without statistics: a query reads an attribute by key
///   (`attributes['http.route']`), which no min/max over all of a map's
///   keys or values can prune; computing them was 13 % of the CPU time of
///   writing a part of spans and 16 % for logs (`cargo bench -p
///   grayscope-ingest --bench part_write`);
/// - attribute values plainly: one column holds every key's values, the
///   few repeated ones (methods, routes) beside the many that are not
///   (addresses, sizes, ids), and zstd finds the repeats by itself.
///   Interning every value into a dictionary was the largest cost of
///   writing a part; without it a part of spans took 20-30 % less CPU to
///   write and 2 % fewer bytes, logs 10-20 % less CPU and 0.2 % more bytes
///   (`part_write`, eleventh session). Keys keep their dictionary: a
///   handful of names repeated on every row.
fn column_encodings(
    schema: &arrow::datatypes::Schema,
    mut properties: parquet::file::properties::WriterPropertiesBuilder,
) -> parquet::file::properties::WriterPropertiesBuilder {
    use arrow::datatypes::DataType;
    use parquet::basic::Encoding;
    use parquet::schema::types::ColumnPath;
    for field in schema.fields() {
        let path = ColumnPath::from(field.name().as_str());
        match field.data_type() {
            DataType::Timestamp(..) => {
                properties = properties
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
            }
            DataType::Int64 | DataType::UInt64 | DataType::Float64 => {
                properties = properties
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_compression(path, Compression::LZ4_RAW);
            }
            DataType::Utf8 if field.name().ends_with("span_id") || field.name() == "trace_id" => {
                properties = properties.set_column_dictionary_enabled(path, false);
            }
            DataType::Map(entries, _) => {
                let DataType::Struct(children) = entries.data_type() else {
                    continue;
                };
                for child in children {
                    let leaf = ColumnPath::new(vec![
                        field.name().clone(),
                        entries.name().clone(),
                        child.name().clone(),
                    ]);
                    properties = properties
                        .set_column_statistics_enabled(leaf.clone(), EnabledStatistics::None);
                    if child.name() != MAP_KEYS {
                        properties = properties.set_column_dictionary_enabled(leaf, false);
                    }
                }
            }
            _ => {}
        }
    }
    properties
}

/// zstd's level for the columns not LZ4-compressed. Level 1 rather than 3:
/// merging 5M spans (`benches/compaction_memory.sh`) took 17 % less CPU
/// (8.3-8.4 s against 10.0-10.2 s) and wrote 7 % fewer bytes (196 and
/// 199 MB against 211 and 214 MB); zstd compression was 30 % of a merge's
/// profile. Reading costs the same at either level.
const ZSTD_LEVEL: i32 = 1;

/// The settings parts are written with. Row groups are balanced: a part of
/// `meta.rows` rows has as few row groups as `options.row_group_rows`
/// allows, of nearly equal sizes, so that no part ends in a runt row group
/// (which would stop [`concat_parts`] from taking it as it is). A `sorted`
/// part declares `time` as the sorting column of its row groups.
fn writer_properties(
    schema: &Schema,
    meta: &PartMeta,
    options: &PartWriterOptions,
    sorted: bool,
) -> WriterProperties {
    let max_rows = options.row_group_rows.max(1);
    let rows = usize::try_from(meta.rows).unwrap_or(usize::MAX).max(1);
    let row_groups = rows.div_ceil(max_rows);
    let row_group_rows = rows.div_ceil(row_groups);
    let time_column = schema.index_of("time").ok().filter(|_| sorted);
    let mut properties = WriterProperties::builder().set_compression(Compression::ZSTD(
        ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default(),
    ));
    properties = column_encodings(schema, properties);
    properties
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(time_column.map(|column| {
            vec![SortingColumn {
                column_idx: column as i32,
                descending: false,
                nulls_first: false,
            }]
        }))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            META_KEY.to_owned(),
            serde_json::to_string(meta).unwrap_or_default(),
        )]))
        .build()
}

/// A part file being written: under a hidden temporary name in its
/// partition's directory until [`PendingPart::commit`] makes it a part.
struct PendingPart {
    dir: PathBuf,
    path: PathBuf,
    temp: PathBuf,
}

impl PendingPart {
    fn create(table_dir: &Path, partition: Partition, id: u64) -> Result<(PendingPart, WriteBack)> {
        let dir = partition.dir_in(table_dir);
        fs::create_dir_all(&dir).map_err(|source| Error::WritePart {
            path: dir.clone(),
            source: source.into(),
        })?;
        let pending = PendingPart {
            path: dir.join(file_name(id)),
            temp: dir.join(format!(".{}.tmp", file_name(id))),
            dir,
        };
        let file = File::create(&pending.temp).map_err(pending.error())?;
        Ok((pending, WriteBack::new(file)))
    }

    /// For `map_err`: an I/O, Parquet or Arrow error writing this part.
    fn error<E>(&self) -> impl FnOnce(E) -> Error + use<E>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = self.temp.clone();
        move |source| Error::WritePart {
            path,
            source: source.into(),
        }
    }

    /// fsyncs the written `file`, renames it into place and fsyncs the
    /// directory: from here on the part survives a crash whole.
    fn commit(self, file: WriteBack, partition: Partition, meta: PartMeta) -> Result<Arc<Part>> {
        let file = file.into_inner();
        file.sync_all().map_err(self.error())?;
        let size = file.metadata().map_err(self.error())?.len();
        drop(file);
        fs::rename(&self.temp, &self.path).map_err(|source| Error::WritePart {
            path: self.path.clone(),
            source: source.into(),
        })?;
        sync_dir(&self.dir)?;
        Ok(Arc::new(Part {
            path: self.path,
            partition,
            meta,
            size,
        }))
    }
}

/// Writes `batches` (of `schema`, all rows in `partition`, `meta.rows` of
/// them) as a part of `table_dir`, atomically, and returns it. With
/// `sorted`, the rows come sorted by time and the part declares `time` as
/// its sorting column; flushes write rows in arrival order.
pub fn write_part(
    table_dir: &Path,
    partition: Partition,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = std::result::Result<RecordBatch, ArrowError>>,
    meta: PartMeta,
    options: &PartWriterOptions,
    sorted: bool,
) -> Result<Arc<Part>> {
    let properties = writer_properties(&schema, &meta, options, sorted);
    let (pending, file) = PendingPart::create(table_dir, partition, meta.id)?;
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(properties)).map_err(pending.error())?;
    for batch in batches {
        let batch = batch.map_err(pending.error())?;
        writer.write(&batch).map_err(pending.error())?;
    }
    let file = writer.into_inner().map_err(pending.error())?;
    pending.commit(file, partition, meta)
}

/// An existing part, opened to be copied by [`concat_parts`].
pub struct OpenPart<'a> {
    /// The part.
    pub part: &'a Part,
    /// Its file.
    pub file: &'a File,
    /// Its footer, with the page indexes.
    pub metadata: &'a ParquetMetaData,
}

/// Writes one part of `table_dir` holding the row groups of `inputs`, in
/// order, copied as they are encoded: no row is decoded, so this costs
/// little more than copying the bytes. The inputs must share one Parquet
/// schema (else [`Error::WritePart`]); the part keeps it, and the Arrow
/// schema they were written with. Each row group keeps its rows in their
/// order and its time statistics. Even when every row group is sorted by
/// time, the part as a whole is sorted only if the inputs cover disjoint,
/// increasing times, so it declares no sorting column: some readers (such
/// as DataFusion's listing tables) take the first row group's for the whole
/// file's.
pub fn concat_parts(
    table_dir: &Path,
    partition: Partition,
    inputs: &[OpenPart<'_>],
    meta: PartMeta,
    options: &PartWriterOptions,
) -> Result<Arc<Part>> {
    let failed = |path: &Path, reason: String| Error::WritePart {
        path: path.to_owned(),
        source: parquet::errors::ParquetError::General(reason).into(),
    };
    let Some(first) = inputs.first() else {
        return Err(failed(table_dir, "no parts to concatenate".to_owned()));
    };
    // The inputs' own Arrow schema (an older part may predate a column the
    // table has now), stored as ArrowWriter stores it.
    let first_meta = first.metadata.file_metadata();
    let schema = parquet::arrow::parquet_to_arrow_schema(
        first_meta.schema_descr(),
        first_meta.key_value_metadata(),
    )
    .map_err(|source| Error::WritePart {
        path: first.part.path().to_owned(),
        source: source.into(),
    })?;
    let mut properties = writer_properties(&schema, &meta, options, false);
    parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut properties);
    let (pending, file) = PendingPart::create(table_dir, partition, meta.id)?;
    let file_schema = first.metadata.file_metadata().schema_descr();
    let mut writer =
        SerializedFileWriter::new(file, file_schema.root_schema_ptr(), Arc::new(properties))
            .map_err(pending.error())?;
    for input in inputs {
        if input.metadata.file_metadata().schema_descr().root_schema() != file_schema.root_schema()
        {
            return Err(failed(
                &pending.temp,
                format!(
                    "{} has another schema than {}",
                    input.part.path().display(),
                    first.part.path().display()
                ),
            ));
        }
        let column_indexes = input.metadata.column_index();
        let offset_indexes = input.metadata.offset_index();
        for (index, row_group) in input.metadata.row_groups().iter().enumerate() {
            let mut out = writer.next_row_group().map_err(pending.error())?;
            for (column_index, column) in row_group.columns().iter().enumerate() {
                let chunk = ColumnCloseResult {
                    bytes_written: column.compressed_size().max(0) as u64,
                    rows_written: row_group.num_rows().max(0) as u64,
                    metadata: column.clone(),
                    bloom_filter: None,
                    column_index: page_index(column_indexes, index, column_index),
                    offset_index: page_index(offset_indexes, index, column_index),
                };
                out.append_column(input.file, chunk)
                    .map_err(pending.error())?;
            }
            out.close().map_err(pending.error())?;
        }
    }
    let file = writer.into_inner().map_err(pending.error())?;
    pending.commit(file, partition, meta)
}

/// The page index of one column chunk, if the footer has page indexes.
fn page_index<T: Clone>(
    indexes: Option<&Vec<Vec<T>>>,
    row_group: usize,
    column: usize,
) -> Option<T> {
    indexes?.get(row_group)?.get(column).cloned()
}

/// Reads a part's metadata from its footer.
pub fn read_part(path: &Path, partition: Partition) -> Result<Arc<Part>> {
    let corrupt = |reason: String| Error::ReadPart {
        path: path.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(|e| corrupt(e.to_string()))?;
    let size = file.metadata().map_err(|e| corrupt(e.to_string()))?.len();
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|e| corrupt(e.to_string()))?;
    let json = metadata
        .file_metadata()
        .key_value_metadata()
        .and_then(|kvs| kvs.iter().find(|kv| kv.key == META_KEY))
        .and_then(|kv| kv.value.clone())
        .ok_or_else(|| corrupt(format!("no {META_KEY} metadata")))?;
    let meta: PartMeta = serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?;
    Ok(Arc::new(Part {
        path: path.to_owned(),
        partition,
        meta,
        size,
    }))
}

/// fsyncs a directory, so that a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::WritePart {
            path: dir.to_owned(),
            source: source.into(),
        })
}

/// The directory of `table` under the data directory.
pub fn table_dir(data_dir: &Path, table: Table) -> PathBuf {
    data_dir.join(table.name())
}
