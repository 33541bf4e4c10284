//! The store: the write path (write-ahead log, then memtable), the
//! background work (flushes, retention, compaction) and recovery on open.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use grayscope_core::Table;
use grayscope_core::config::{StoreConfig, SyncMode};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::compaction;
use crate::error::{Error, Result};
use crate::flush::write_flush;
use crate::parquet_part::{Part, PartWriterOptions, table_dir};
use crate::recovery::{StoreState, scan_table};
use crate::table::{TableData, TableStats};
use crate::table_provider::StoreTableProvider;
use crate::wal::{Apply, Damage, Lsn, Rebuild, SyncPolicy, Wal, WalOptions, WalStats};

/// How long a part replaced by compaction or expired by retention stays on
/// disk, so that queries planned before it left still find it.
const OBSOLETE_GRACE: Duration = Duration::from_secs(600);
/// How often retention and compaction run.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// Retry hint given with back-pressure.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest an append waits for a flush while flushes lag
/// ([`StoreConfig::stall_memtables`]); then it goes on, and the memory
/// limit decides.
const STALL_AT_MOST: Duration = Duration::from_secs(1);

/// What opening the store found and repaired.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    /// Live Parquet parts, all tables.
    pub parts: usize,
    /// Files removed or set aside (half-written or replaced parts), with why.
    pub discarded: Vec<(PathBuf, String)>,
    /// WAL records replayed into memtables.
    pub replayed: u64,
    /// WAL records already in Parquet, not replayed.
    pub already_flushed: u64,
    /// Damaged WAL ranges skipped; each is also logged.
    pub wal_damage: Vec<Damage>,
}

/// Counters of the store's own health.
#[derive(Debug, Default)]
struct Counters {
    rejected: AtomicU64,
    stalled: AtomicU64,
    flushes: AtomicU64,
    flush_errors: AtomicU64,
    compactions: AtomicU64,
    expired_parts: AtomicU64,
    last_flush_millis: AtomicU64,
}

/// Health figures of the whole store.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// Bytes held by memtables, all tables.
    pub memory_bytes: usize,
    /// The configured cap on that.
    pub memory_limit: usize,
    /// Appends refused with back-pressure since start.
    pub rejected_appends: u64,
    /// Appends that waited for a flush since start, because
    /// `stall_memtables` memtables were waiting for theirs.
    pub stalled_appends: u64,
    /// Flushes completed since start.
    pub flushes: u64,
    /// Flushes that failed (and were retried) since start.
    pub flush_errors: u64,
    /// Compactions since start.
    pub compactions: u64,
    /// Parts dropped by retention since start.
    pub expired_parts: u64,
    /// Age of the oldest unflushed batch: how far Parquet lags behind.
    pub flush_lag: Duration,
    /// Milliseconds since the epoch of the last completed flush (0: none).
    pub last_flush_unix_millis: u64,
    /// The write-ahead log.
    pub wal: WalStats,
}

/// Every table's data, durable. Cheap to clone; clones share the store.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    data_dir: PathBuf,
    config: StoreConfig,
    /// Opened with a [`Rebuild`]: source records may be logged.
    rebuilds_sources: bool,
    tables: Vec<Arc<TableData>>,
    wal: Wal,
    memory: Arc<AtomicUsize>,
    /// Bytes of appends accepted but not yet in a memtable.
    reserved: AtomicUsize,
    applied: Arc<AtomicU64>,
    next_part_id: AtomicU64,
    flush_wanted: Arc<Notify>,
    /// Notified (all waiters) whenever a flush completes.
    flushed: Notify,
    counters: Counters,
    graveyard: Mutex<Vec<(Instant, Arc<Part>)>>,
    /// Serialises flushes (and writes of the state file).
    flush_lock: tokio::sync::Mutex<()>,
    /// Serialises compactions, so two never plan the same parts.
    compaction_lock: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
    maintenance: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn index(table: Table) -> usize {
    Table::ALL
        .iter()
        .position(|t| *t == table)
        .unwrap_or_default()
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Puts committed batches into memtables, in log order.
struct Applier {
    tables: Vec<Arc<TableData>>,
    memory: Arc<AtomicUsize>,
    applied: Arc<AtomicU64>,
    flush_size: usize,
    flush_wanted: Arc<Notify>,
}

impl Apply for Applier {
    fn apply(&self, lsn: Lsn, table: Table, batch: RecordBatch) {
        let data = &self.tables[index(table)];
        let bytes = data.insert(lsn, batch);
        self.memory.fetch_add(bytes, Ordering::AcqRel);
        self.applied.fetch_max(lsn, Ordering::AcqRel);
        if data.active_size().0 >= self.flush_size {
            // Freeze here rather than when the flush starts: while one
            // flush runs, the next memtable stops at `flush_size` instead
            // of growing with everything that arrives meanwhile, so every
            // flush writes a bounded amount.
            data.freeze();
            self.flush_wanted.notify_one();
        }
    }
}

impl Store {
    /// Opens (creating) the store in `data_dir`: recovers parts and the
    /// write-ahead log, then starts background flushing. Must be called
    /// inside a tokio runtime.
    pub async fn open(data_dir: &Path, config: StoreConfig) -> Result<(Store, RecoveryReport)> {
        Store::open_with_rebuild(data_dir, config, None).await
    }

    /// Like [`Store::open`], replaying the records that
    /// [`Store::append_source`] logged with `rebuild`. A store whose log
    /// holds such records does not open without one.
    pub async fn open_with_rebuild(
        data_dir: &Path,
        config: StoreConfig,
        rebuild: Option<Arc<dyn Rebuild>>,
    ) -> Result<(Store, RecoveryReport)> {
        let data_dir = data_dir.to_owned();
        let (inner, report) =
            tokio::task::spawn_blocking(move || open_blocking(data_dir, config, rebuild))
                .await
                .map_err(|_| Error::Closed)??;
        let inner = Arc::new(inner);
        let task = tokio::spawn(maintain(
            Arc::downgrade(&inner),
            inner.shutdown.clone(),
            inner.flush_wanted.clone(),
        ));
        *inner
            .maintenance
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(task);
        Ok((Store { inner }, report))
    }

    /// Refuses with [`Error::Backpressure`] when `incoming` more bytes
    /// would take the memtables and the appends in flight past the memory
    /// limit. Receivers call it with a request's encoded size before
    /// decoding it, so that a request the store would refuse costs no
    /// decoding; [`Store::append`] checks again with the batch's real size.
    pub fn check_pressure(&self, incoming: usize) -> Result<()> {
        let limit = self.inner.config.memory_limit.as_usize();
        let used = self.inner.memory.load(Ordering::Acquire);
        let reserved = self.inner.reserved.load(Ordering::Acquire);
        if used + reserved + incoming <= limit {
            return Ok(());
        }
        self.inner.counters.rejected.fetch_add(1, Ordering::Relaxed);
        self.inner.flush_wanted.notify_one();
        Err(Error::Backpressure {
            used,
            limit,
            retry_after: RETRY_AFTER,
        })
    }

    /// Appends a batch to `table`. When this returns `Ok`, the batch is in
    /// the write-ahead log (durable as `[store.wal] sync` says) and visible
    /// to every query that starts afterwards. When the memtables are over
    /// their memory limit it returns [`Error::Backpressure`] at once,
    /// having written nothing.
    pub async fn append(&self, table: Table, batch: RecordBatch) -> Result<()> {
        self.append_logged(table, batch, None).await
    }

    /// Like [`Store::append`], but the write-ahead log keeps `source`
    /// instead of the batch: bytes the caller already holds (the request
    /// the batch was converted from) that the [`Rebuild`] given to
    /// [`Store::open_with_rebuild`] turns back into exactly `batch`. It
    /// saves encoding the batch and, for OTLP spans, about half the bytes
    /// logged.
    ///
    /// On a store opened without a [`Rebuild`], whose log could not be
    /// opened again, the batch is logged itself instead.
    pub async fn append_source(
        &self,
        table: Table,
        batch: RecordBatch,
        source: Vec<Bytes>,
    ) -> Result<()> {
        let source = self.inner.rebuilds_sources.then_some(source);
        self.append_logged(table, batch, source).await
    }

    async fn append_logged(
        &self,
        table: Table,
        batch: RecordBatch,
        source: Option<Vec<Bytes>>,
    ) -> Result<()> {
        if batch.schema() != table.schema() {
            return Err(Error::SchemaMismatch { table });
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.stall_while_flushes_lag().await;
        // Reserve the batch's memory before writing it, so that memtables
        // plus appends in flight never exceed the limit.
        // A logged source is held until its commit too.
        let size =
            batch.get_array_memory_size() + source.iter().flatten().map(Bytes::len).sum::<usize>();
        let limit = self.inner.config.memory_limit.as_usize();
        let reserved = self.inner.reserved.fetch_add(size, Ordering::AcqRel) + size;
        let used = self.inner.memory.load(Ordering::Acquire);
        if used + reserved > limit {
            self.inner.reserved.fetch_sub(size, Ordering::AcqRel);
            self.inner.counters.rejected.fetch_add(1, Ordering::Relaxed);
            self.inner.flush_wanted.notify_one();
            return Err(Error::Backpressure {
                used,
                limit,
                retry_after: RETRY_AFTER,
            });
        }
        let appended = match source {
            Some(source) => self.inner.wal.append_source(table, batch, source).await,
            None => self.inner.wal.append(table, batch).await,
        };
        // Applied (now counted in `memory`) or failed: either way no longer
        // in flight.
        self.inner.reserved.fetch_sub(size, Ordering::AcqRel);
        appended?;
        Ok(())
    }

    /// Waits while [`StoreConfig::stall_memtables`] memtables wait for
    /// their flush, for one flush at a time, at most [`STALL_AT_MOST`] in
    /// all. Slowing intake to the pace of flushes keeps the backlog, and
    /// the memory it would fault in, small; refusing only comes at the
    /// memory limit.
    async fn stall_while_flushes_lag(&self) {
        let inner = &self.inner;
        let limit = inner.config.stall_memtables;
        if limit == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + STALL_AT_MOST;
        let mut counted = false;
        loop {
            // Registered before the check, so no flush in between is missed.
            let flushed = inner.flushed.notified();
            let frozen: usize = inner.tables.iter().map(|t| t.frozen_count()).sum();
            if frozen < limit {
                return;
            }
            if !counted {
                inner.counters.stalled.fetch_add(1, Ordering::Relaxed);
                inner.flush_wanted.notify_one();
                counted = true;
            }
            if tokio::time::timeout_at(deadline, flushed).await.is_err() {
                return;
            }
        }
    }

    /// Whether this store was opened with a [`Rebuild`], so that
    /// [`Store::append_source`] may be used: a log holding source records
    /// opens only with one.
    pub fn rebuilds_sources(&self) -> bool {
        self.inner.rebuilds_sources
    }

    /// The DataFusion table provider of `table`.
    pub fn provider(&self, table: Table) -> Arc<StoreTableProvider> {
        Arc::new(StoreTableProvider::new(
            self.inner.tables[index(table)].clone(),
        ))
    }

    /// Size figures of `table`.
    pub fn stats(&self, table: Table) -> TableStats {
        self.inner.tables[index(table)].stats()
    }

    /// The batches of `table` still in memory (not yet in Parquet parts):
    /// after a restart, what the write-ahead log replayed.
    pub fn memory_batches(&self, table: Table) -> Vec<RecordBatch> {
        self.inner.tables[index(table)]
            .snapshot()
            .memory
            .into_iter()
            .map(|m| m.batch)
            .collect()
    }

    /// The live parts of `table`.
    pub fn parts(&self, table: Table) -> Vec<Arc<Part>> {
        self.inner.tables[index(table)].parts()
    }

    /// Health figures of the whole store.
    pub fn store_stats(&self) -> StoreStats {
        let inner = &self.inner;
        let flush_lag = inner
            .tables
            .iter()
            .filter_map(|t| t.active_size().1)
            .map(|created| created.elapsed())
            .max()
            .unwrap_or_default();
        StoreStats {
            memory_bytes: inner.memory.load(Ordering::Acquire),
            memory_limit: inner.config.memory_limit.as_usize(),
            rejected_appends: inner.counters.rejected.load(Ordering::Relaxed),
            stalled_appends: inner.counters.stalled.load(Ordering::Relaxed),
            flushes: inner.counters.flushes.load(Ordering::Relaxed),
            flush_errors: inner.counters.flush_errors.load(Ordering::Relaxed),
            compactions: inner.counters.compactions.load(Ordering::Relaxed),
            expired_parts: inner.counters.expired_parts.load(Ordering::Relaxed),
            flush_lag,
            last_flush_unix_millis: inner.counters.last_flush_millis.load(Ordering::Relaxed),
            wal: inner.wal.stats(),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Flushes every memtable to Parquet now, whatever its size.
    pub async fn flush(&self) -> Result<()> {
        self.inner.flush(true).await
    }

    /// Runs retention and compaction (of finished hours too) now, as if
    /// `now_nanos` were the time.
    pub async fn housekeeping_at(&self, now_nanos: i64) -> Result<()> {
        self.inner.retain(now_nanos);
        self.inner.compact(now_nanos, true).await?;
        self.inner.dig_up(Instant::now());
        Ok(())
    }

    /// Stops background work, flushes what it can and closes the log.
    pub async fn close(self) -> Result<()> {
        self.inner.shutdown.cancel();
        let task = self
            .inner
            .maintenance
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        if let Err(error) = self.inner.flush(true).await {
            // Nothing is lost: the log still holds what did not flush.
            tracing::warn!(%error, "final flush failed; the write-ahead log will replay it");
        }
        self.inner.wal.clone().close().await
    }
}

fn open_blocking(
    data_dir: PathBuf,
    config: StoreConfig,
    rebuild: Option<Arc<dyn Rebuild>>,
) -> Result<(Inner, RecoveryReport)> {
    std::fs::create_dir_all(&data_dir).map_err(|source| Error::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let state = StoreState::load(&data_dir)?;
    let mut report = RecoveryReport::default();
    let mut max_id = 0;
    let tables = Table::ALL.map(|table| {
        let dir = table_dir(&data_dir, table);
        let committed = state.flushed_lsn.get(table.name()).copied().unwrap_or(0);
        let found = scan_table(&dir, committed);
        (table, dir, committed, found)
    });
    let mut datas = Vec::with_capacity(3);
    for (table, dir, committed, found) in tables {
        let found = found?;
        report.parts += found.parts.len();
        report.discarded.extend(found.discarded);
        max_id = max_id.max(found.max_id);
        datas.push(Arc::new(TableData::new(table, dir, found.parts, committed)));
    }
    let tables: Vec<Arc<TableData>> = datas;

    let memory = Arc::new(AtomicUsize::new(0));
    let flushed = tables.iter().map(|t| t.flushed_lsn()).max().unwrap_or(0);
    let applied = Arc::new(AtomicU64::new(flushed));
    let flush_wanted = Arc::new(Notify::new());
    let applier = Arc::new(Applier {
        tables: tables.clone(),
        memory: memory.clone(),
        applied: applied.clone(),
        flush_size: config.flush_size.as_usize(),
        flush_wanted: flush_wanted.clone(),
    });
    let options = WalOptions {
        sync: match config.wal.sync {
            SyncMode::Commit => SyncPolicy::EveryCommit,
            SyncMode::Interval => SyncPolicy::Interval(config.wal.sync_interval.get()),
        },
        segment_size: config.wal.segment_size.0,
        recycle_segments: config.wal.recycle_segments,
        direct_io: config.wal.direct_io,
        // Never reuse a number the parts already cover, even if the log
        // directory was lost.
        min_next_lsn: flushed + 1,
        rebuild: rebuild.clone(),
        ..WalOptions::default()
    };
    let rebuilds_sources = rebuild.is_some();
    let (wal, recovery) = Wal::open(&data_dir.join("wal"), options, applier.clone())?;
    for damage in &recovery.damage {
        tracing::warn!(%damage, "write-ahead log damage skipped during recovery");
    }
    report.wal_damage = recovery.damage;
    for record in recovery.records {
        let data = &tables[index(record.table)];
        if record.lsn > data.flushed_lsn() {
            applier.apply(record.lsn, record.table, record.batch);
            report.replayed += 1;
        } else {
            report.already_flushed += 1;
        }
    }
    tracing::info!(
        parts = report.parts,
        replayed = report.replayed,
        already_flushed = report.already_flushed,
        discarded = report.discarded.len(),
        wal_damage = report.wal_damage.len(),
        "store recovered"
    );
    let inner = Inner {
        data_dir,
        config,
        rebuilds_sources,
        tables,
        wal,
        memory,
        reserved: AtomicUsize::new(0),
        applied,
        next_part_id: AtomicU64::new(max_id + 1),
        flush_wanted,
        flushed: Notify::new(),
        counters: Counters::default(),
        graveyard: Mutex::new(Vec::new()),
        flush_lock: tokio::sync::Mutex::new(()),
        compaction_lock: tokio::sync::Mutex::new(()),
        shutdown: CancellationToken::new(),
        maintenance: Mutex::new(None),
    };
    Ok((inner, report))
}

/// Background work: flushes, then compaction on a task of its own (so a
/// long merge never holds up a flush), and every [`HOUSEKEEPING_EVERY`]
/// retention, compaction of finished hours and deletion of obsolete files.
/// Holds the store only while working, so that dropping every `Store`
/// handle stops it (and releases the log).
async fn maintain(store: std::sync::Weak<Inner>, shutdown: CancellationToken, wanted: Arc<Notify>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_housekeeping = Instant::now();
    let mut compaction: Option<tokio::task::JoinHandle<bool>> = None;
    // After a failed compaction (a part that cannot be read, a full disk),
    // the next waits for housekeeping rather than retrying every second.
    let mut compaction_after = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wanted.notified() => {}
            _ = tick.tick() => {}
        }
        let Some(inner) = store.upgrade() else {
            break;
        };
        if let Err(error) = inner.flush(false).await {
            tracing::warn!(%error, "flush failed; will retry");
        }
        if let Some(done) = compaction.take_if(|task| task.is_finished())
            && !done.await.unwrap_or(false)
        {
            compaction_after = Instant::now() + HOUSEKEEPING_EVERY;
        }
        if compaction.is_some() {
            continue;
        }
        let finished_hours = last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY;
        if finished_hours {
            last_housekeeping = Instant::now();
            inner.retain(now_nanos());
            // Unlinks, which can take tens of milliseconds each: on the
            // blocking pool, as in `flush`.
            let digger = inner.clone();
            let _ = tokio::task::spawn_blocking(move || digger.dig_up(Instant::now())).await;
        } else if Instant::now() < compaction_after {
            continue;
        }
        // A task only when there is work: an idle store holds itself in no
        // task, so dropping it releases the log at once.
        if !inner.compaction_due(now_nanos(), finished_hours) {
            continue;
        }
        compaction = Some(tokio::spawn(async move {
            match inner.compact(now_nanos(), finished_hours).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(%error, "compaction failed; will retry");
                    false
                }
            }
        }));
    }
    if let Some(task) = compaction {
        let _ = task.await;
    }
}

impl Inner {
    fn part_options(&self) -> PartWriterOptions {
        PartWriterOptions {
            row_group_rows: self.config.row_group_rows,
        }
    }

    /// Freezes memtables that are due (all non-empty ones with `force`),
    /// writes every frozen memtable as parts, commits, truncates the log.
    async fn flush(self: &Arc<Self>, force: bool) -> Result<()> {
        let _serial = self.flush_lock.lock().await;
        let flush_size = self.config.flush_size.as_usize();
        let flush_interval = self.config.flush_interval.get();
        let over_memory =
            self.memory.load(Ordering::Acquire) >= self.config.memory_limit.as_usize() / 2;
        for table in &self.tables {
            let (bytes, created) = table.active_size();
            let old = created.is_some_and(|c| c.elapsed() >= flush_interval);
            if bytes > 0 && (force || bytes >= flush_size || old || over_memory) {
                table.freeze();
            }
        }
        let mut first_error = None;
        for table in &self.tables {
            for frozen in table.pending_flushes() {
                let started = Instant::now();
                let inner = self.clone();
                let data = table.clone();
                let job = frozen.clone();
                let written = tokio::task::spawn_blocking(move || {
                    write_flush(&data, &job, &inner.next_part_id, &inner.part_options())
                })
                .await
                .map_err(|_| Error::Closed)
                .and_then(|r| r);
                let parts = match written {
                    Ok(parts) => parts,
                    Err(error) => {
                        self.counters.flush_errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(error);
                        // Later memtables of this table must wait: parts
                        // commit in log order.
                        break;
                    }
                };
                // Commit point: the state file says the table is in Parquet
                // up to this memtable's last record.
                let mut state = self.state();
                if let Some(lsn) = frozen.last_lsn() {
                    state
                        .flushed_lsn
                        .insert(table.table().name().to_owned(), lsn);
                }
                let data_dir = self.data_dir.clone();
                let saved = tokio::task::spawn_blocking(move || state.save(&data_dir))
                    .await
                    .map_err(|_| Error::Closed)
                    .and_then(|r| r);
                if let Err(error) = saved {
                    // The parts stay uncommitted; recovery would delete them
                    // and replay the log. Retry the whole flush later.
                    for part in &parts {
                        let _ = std::fs::remove_file(part.path());
                    }
                    self.counters.flush_errors.fetch_add(1, Ordering::Relaxed);
                    first_error.get_or_insert(error);
                    break;
                }
                let rows = frozen.rows();
                let count = parts.len();
                table.complete_flush(&frozen, parts);
                self.memory.fetch_sub(frozen.bytes(), Ordering::AcqRel);
                self.flushed.notify_waiters();
                self.counters.flushes.fetch_add(1, Ordering::Relaxed);
                let millis = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or_default();
                self.counters
                    .last_flush_millis
                    .store(millis, Ordering::Relaxed);
                tracing::debug!(table = %table.table(), rows, parts = count, elapsed_ms = started.elapsed().as_millis() as u64, "flushed");
            }
        }
        // Only the segment being written: nothing to truncate, and no
        // reason to hold the store across an await (a dropped store
        // releases its log as soon as no task holds it).
        if self.wal.stats().segments > 1 {
            // Renames, fsyncs and perhaps an unlink (7 ms for a 64 MiB
            // segment, 20-40 ms on a file system mounted with `discard`):
            // not on a worker that answers requests.
            let inner = self.clone();
            tokio::task::spawn_blocking(move || inner.truncate_wal())
                .await
                .map_err(|_| Error::Closed)??;
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The state file's content: every table's committed sequence number.
    fn state(&self) -> StoreState {
        StoreState {
            flushed_lsn: self
                .tables
                .iter()
                .map(|t| (t.table().name().to_owned(), t.flushed_lsn()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    /// Drops log segments whose every record is in Parquet.
    fn truncate_wal(&self) -> Result<()> {
        // Records past `applied` may be written but not yet in a memtable:
        // never truncate past them.
        let in_flight = self.applied.load(Ordering::Acquire) + 1;
        let oldest = self
            .tables
            .iter()
            .filter_map(|t| t.oldest_unflushed_lsn())
            .min()
            .unwrap_or(in_flight);
        self.wal.truncate_before(oldest.min(in_flight))
    }

    /// Retention: drops the parts of expired hour partitions.
    fn retain(&self, now: i64) {
        for table in &self.tables {
            let retention = self.config.retention_of(table.table()).get();
            let horizon =
                now.saturating_sub(i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX));
            let expired = table.drop_parts(|part| part.partition().end_nanos() <= horizon);
            if !expired.is_empty() {
                tracing::info!(table = %table.table(), parts = expired.len(), "retention dropped parts");
                self.counters
                    .expired_parts
                    .fetch_add(expired.len() as u64, Ordering::Relaxed);
                self.bury(expired);
            }
        }
    }

    fn compaction_rules(&self, finished_hours: bool) -> compaction::Rules {
        compaction::Rules {
            target: self.config.compact_below.0,
            finished_hours,
            copy_rows: compaction::copyable_rows(self.config.row_group_rows),
        }
    }

    /// Whether some merge is due now (see `compaction::plan`).
    fn compaction_due(&self, now: i64, finished_hours: bool) -> bool {
        let rules = self.compaction_rules(finished_hours);
        self.tables
            .iter()
            .any(|table| !compaction::plan(table, now, &rules).is_empty())
    }

    /// Merges small parts until no merge is due (see `compaction::plan`);
    /// `finished_hours` also merges what is left of hours that are over.
    async fn compact(self: &Arc<Self>, now: i64, finished_hours: bool) -> Result<()> {
        let _serial = self.compaction_lock.lock().await;
        let rules = self.compaction_rules(finished_hours);
        for table in &self.tables {
            // Each round merges at least two parts into one, so this ends.
            loop {
                let groups = compaction::plan(table, now, &rules);
                let mut merged_any = false;
                for group in groups {
                    if self.shutdown.is_cancelled() {
                        return Ok(());
                    }
                    let started = Instant::now();
                    let inner = self.clone();
                    let data = table.clone();
                    let parts = group.clone();
                    let merged = compaction::at_low_priority(move || {
                        compaction::merge(&data, &parts, &inner.next_part_id, &inner.part_options())
                    })
                    .await??;
                    if merged {
                        merged_any = true;
                        tracing::debug!(
                            table = %table.table(),
                            parts = group.len(),
                            rows = group.iter().map(|p| p.meta().rows).sum::<u64>(),
                            bytes = group.iter().map(|p| p.size()).sum::<u64>(),
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "compacted"
                        );
                        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
                        self.bury(group);
                    }
                }
                if !merged_any {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Keeps obsolete parts' files for the grace period.
    fn bury(&self, parts: Vec<Arc<Part>>) {
        let mut graveyard = self.graveyard.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        graveyard.extend(parts.into_iter().map(|part| (now, part)));
    }

    /// Deletes obsolete files whose grace period is over, and directories
    /// left empty.
    fn dig_up(&self, now: Instant) {
        let due: Vec<Arc<Part>> = {
            let mut graveyard = self.graveyard.lock().unwrap_or_else(|p| p.into_inner());
            let (due, keep): (Vec<_>, Vec<_>) = graveyard
                .drain(..)
                .partition(|(since, _)| now.duration_since(*since) >= OBSOLETE_GRACE);
            *graveyard = keep;
            due.into_iter().map(|(_, part)| part).collect()
        };
        for part in due {
            match std::fs::remove_file(part.path()) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(path = %part.path().display(), %error, "cannot delete an obsolete part")
                }
            }
            // Remove the hour and date directories if now empty.
            if let Some(hour_dir) = part.path().parent()
                && std::fs::remove_dir(hour_dir).is_ok()
                && let Some(date_dir) = hour_dir.parent()
            {
                let _ = std::fs::remove_dir(date_dir);
            }
        }
    }
}
