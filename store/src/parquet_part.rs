//! Parquet parts: the immutable files a flushed memtable becomes.
//!
//! A part is written atomically — to a hidden temporary file, fsynced,
//! renamed into place, and the directory fsynced — so a crash leaves either
//! no part or a whole one. Each part carries, in its Parquet key-value
//! metadata under `grayscope.part`, a JSON [`PartMeta`]: which flush wrote
//! it, the highest write-ahead-log sequence number the flush covers (see
//! `recovery` for how that decides whether the flush committed), and, for a
//! part produced by compaction, the parts it replaces.
//!
//! Parts are never changed. A part that compaction replaced or retention
//! expired leaves the table at once but its file stays on disk for a grace
//! period, so queries planned before still read it (see `Store`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use grayscope_core::Table;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, ParquetMetaDataReader, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::partition::Partition;

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
/// - timestamps are written as deltas (`time` is sorted, `end_time`
///   nearly so), a few bits per row before compression;
/// - other 64-bit numbers (`duration_ns`, values, counters) plainly, and
///   compressed with LZ4, which decompresses several times faster than
///   zstd: nearly every aggregate reads them (zstd would shrink them by
///   about another fifth);
/// - trace and span ids (random hex) plainly;
/// - attribute maps without statistics: a query reads an attribute by key
///   (`attributes['http.route']`), which no min/max over all of a map's
///   keys or values can prune; computing them was 13 % of the CPU time of
///   writing a part of spans and 16 % for logs (`cargo bench -p
///   grayscope-ingest --bench part_write`).
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
                    properties =
                        properties.set_column_statistics_enabled(leaf, EnabledStatistics::None);
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

/// Writes `batches` (of `schema`, together sorted by time, all rows in
/// `partition`) as a part of `table_dir`, atomically, and returns it.
pub fn write_part(
    table_dir: &Path,
    partition: Partition,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = std::result::Result<RecordBatch, ArrowError>>,
    meta: PartMeta,
    options: &PartWriterOptions,
) -> Result<Arc<Part>> {
    let dir = partition.dir_in(table_dir);
    fs::create_dir_all(&dir).map_err(|source| Error::WritePart {
        path: dir.clone(),
        source: source.into(),
    })?;
    let path = dir.join(file_name(meta.id));
    let temp = dir.join(format!(".{}.tmp", file_name(meta.id)));
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| Error::WritePart {
            path,
            source: source.into(),
        }
    };

    let time_column = schema.index_of("time").ok();
    let mut properties = WriterProperties::builder().set_compression(Compression::ZSTD(
        ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default(),
    ));
    properties = column_encodings(&schema, properties);
    let properties = properties
        .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
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
            serde_json::to_string(&meta).unwrap_or_default(),
        )]))
        .build();

    let file = File::create(&temp).map_err(io_error(&temp))?;
    let parquet_error = |path: &Path| {
        let path = path.to_owned();
        move |source: parquet::errors::ParquetError| Error::WritePart {
            path,
            source: source.into(),
        }
    };
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(properties)).map_err(parquet_error(&temp))?;
    for batch in batches {
        let batch = batch.map_err(|source| Error::WritePart {
            path: temp.clone(),
            source: source.into(),
        })?;
        writer.write(&batch).map_err(parquet_error(&temp))?;
    }
    let file = writer.into_inner().map_err(parquet_error(&temp))?;
    file.sync_all().map_err(io_error(&temp))?;
    let size = file.metadata().map_err(io_error(&temp))?.len();
    drop(file);
    fs::rename(&temp, &path).map_err(io_error(&path))?;
    sync_dir(&dir)?;
    Ok(Arc::new(Part {
        path,
        partition,
        meta,
        size,
    }))
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
