//! Recovery of the Parquet side on start: which parts are live, which are
//! leftovers of a flush or compaction that a crash interrupted, and how far
//! each table's write-ahead log is already in Parquet.
//!
//! The commit point of a flush is the state file (`store.json`): a flush
//! first writes all its parts (each atomically), then records in the state
//! file that the table is in Parquet up to the flush's last sequence
//! number, and only then lets the write-ahead log be truncated. So on
//! start, a part covering more than the state file says belongs to a flush
//! that never committed: it is deleted and the log replays its rows. A
//! compacted part names the parts it replaces; if those are still on disk
//! the crash came between the two steps, and they are deleted.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::parquet_part::{Part, read_part, sync_dir};
use crate::partition::Partition;
use crate::wal::Lsn;

/// What scanning one table's directory found.
#[derive(Debug, Default)]
pub struct FoundParts {
    /// Live parts.
    pub parts: Vec<Arc<Part>>,
    /// Highest part id seen (live or not), so new ids never collide.
    pub max_id: u64,
    /// Files removed or set aside, with why.
    pub discarded: Vec<(PathBuf, String)>,
}

fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::DataDir {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::DataDir {
            path: dir.to_owned(),
            source,
        })?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    out.sort();
    Ok(out)
}

/// Scans `table_dir`, deletes what a crash left half-done, and returns the
/// live parts. `committed` is how far the state file says the table's log
/// is in Parquet.
pub fn scan_table(table_dir: &Path, committed: Lsn) -> Result<FoundParts> {
    let mut found = FoundParts::default();
    let mut candidates = Vec::new();
    for (date, date_path) in list(table_dir)? {
        for (hour, hour_path) in list(&date_path)? {
            let Some(partition) = Partition::parse(&date, &hour) else {
                continue;
            };
            for (name, path) in list(&hour_path)? {
                if name.starts_with('.') && name.ends_with(".tmp") {
                    // A part whose write never completed.
                    remove(&path, "unfinished write", &mut found)?;
                } else if name.starts_with("part-") && name.ends_with(".parquet") {
                    match read_part(&path, partition) {
                        Ok(part) => candidates.push(part),
                        Err(error) => {
                            // Written in full and fsynced before it was
                            // renamed into place: damage, not a crash. Keep
                            // the bytes for inspection, out of the way.
                            let aside = path.with_extension("parquet.corrupt");
                            tracing::error!(%error, "setting aside an unreadable part");
                            fs::rename(&path, &aside).map_err(|source| Error::DataDir {
                                path: path.clone(),
                                source,
                            })?;
                            found.discarded.push((path, error.to_string()));
                        }
                    }
                }
            }
        }
    }

    found.max_id = candidates.iter().map(|p| p.meta().id).max().unwrap_or(0);
    let (committed_parts, uncommitted): (Vec<_>, Vec<_>) = candidates
        .into_iter()
        .partition(|p| p.meta().flush_lsn <= committed);
    for part in uncommitted {
        remove(
            part.path(),
            "part of a flush that did not commit",
            &mut found,
        )?;
    }
    let replaced: HashSet<u64> = committed_parts
        .iter()
        .flat_map(|p| p.meta().replaces.iter().copied())
        .collect();
    for part in committed_parts {
        if replaced.contains(&part.meta().id) {
            remove(part.path(), "replaced by a compacted part", &mut found)?;
        } else {
            found.parts.push(part);
        }
    }
    Ok(found)
}

fn remove(path: &Path, why: &str, found: &mut FoundParts) -> Result<()> {
    tracing::info!(path = %path.display(), why, "removing leftover file");
    fs::remove_file(path).map_err(|source| Error::DataDir {
        path: path.to_owned(),
        source,
    })?;
    found.discarded.push((path.to_owned(), why.to_owned()));
    Ok(())
}

/// The store's own small state file, `<data_dir>/store.json`: how far each
/// table's log is in Parquet, kept even when retention drops the parts
/// that said so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreState {
    /// Per table name, the highest sequence number in Parquet.
    pub flushed_lsn: BTreeMap<String, Lsn>,
}

impl StoreState {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("store.json")
    }

    /// Reads the state file; absent means nothing flushed yet.
    pub fn load(data_dir: &Path) -> Result<StoreState> {
        let path = Self::path(data_dir);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::ReadPart {
                path,
                reason: format!("corrupt store state: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreState::default()),
            Err(source) => Err(Error::DataDir { path, source }),
        }
    }

    /// Writes the state file atomically.
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        let path = Self::path(data_dir);
        let temp = data_dir.join(".store.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        let io = |source| Error::DataDir {
            path: temp.clone(),
            source,
        };
        {
            use std::io::Write as _;
            let mut file = fs::File::create(&temp).map_err(io)?;
            file.write_all(&bytes).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        fs::rename(&temp, &path).map_err(|source| Error::DataDir {
            path: path.clone(),
            source,
        })?;
        sync_dir(data_dir)
    }
}
