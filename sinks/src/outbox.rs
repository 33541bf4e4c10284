//! The durable outbox every signal leaves from.
//!
//! `<data_dir>/signals/outbox.jsonl` holds one record per line,
//! `{"index":N,"signal":{…}}`, with `index` growing by one per signal across
//! every rollout. [`Outbox::append`] writes and syncs the lines before it
//! returns; the judge calls it (through [`SignalLog`]) before it saves the
//! rollout state that made the change, so a change the state knows of is
//! always in the outbox.
//!
//! Each destination is a named consumer with a cursor, the last index it
//! delivered, kept in `cursors.json` (written atomically after each
//! delivery). A restart resumes every consumer after its cursor: delivery
//! is at least once, and a receiver drops repeats by the signal's `id`.
//! Records every consumer has passed are dropped once more than `retain`
//! remain, so the outbox stays bounded; the `retain` newest stay for gRPC
//! watchers that resume from an older sequence.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use grayscope_core::signal::{Signal, SignalLog};
use serde::Deserialize;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// The outbox's directory under the data directory.
pub const DIR: &str = "signals";
const LOG_FILE: &str = "outbox.jsonl";
const CURSORS_FILE: &str = "cursors.json";

/// One signal in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its place in the outbox, from 1, across every rollout.
    pub index: u64,
    /// The signal.
    pub signal: Arc<Signal>,
}

#[derive(Deserialize)]
struct Line {
    index: u64,
    signal: Signal,
}

/// The outbox. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    dir: PathBuf,
    retain: usize,
    state: Mutex<State>,
    /// The last index appended.
    appended: watch::Sender<u64>,
}

struct State {
    file: File,
    lines_in_file: usize,
    entries: VecDeque<Entry>,
    next: u64,
    last_sequence: HashMap<(String, String), u64>,
    cursors: BTreeMap<String, u64>,
}

impl Outbox {
    /// Opens (or creates) the outbox in `<data_dir>/signals/`. A torn last
    /// line, from a crash in the middle of an append, is cut off: its
    /// signal's state was never saved, so the judge makes it again.
    pub fn open(data_dir: &Path, retain: usize) -> Result<Outbox> {
        let dir = data_dir.join(DIR);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Outbox { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(LOG_FILE);
        let mut entries = VecDeque::new();
        let mut last_sequence = HashMap::new();
        let mut good_len = 0u64;
        let mut lines_in_file = 0;
        if path.exists() {
            let file = File::open(&path).map_err(io(&path))?;
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            let mut number = 0;
            loop {
                line.clear();
                let read = reader.read_line(&mut line).map_err(io(&path))?;
                if read == 0 {
                    break;
                }
                number += 1;
                let parsed = line
                    .strip_suffix('\n')
                    .ok_or_else(|| "no newline".to_owned())
                    .and_then(|text| parse_line(text).map_err(|e| e.to_string()));
                match parsed {
                    Ok(entry) => {
                        good_len += read as u64;
                        lines_in_file += 1;
                        let key = (entry.signal.rollout.clone(), entry.signal.cohort.clone());
                        let seq = last_sequence.entry(key).or_insert(0);
                        *seq = (*seq).max(entry.signal.sequence);
                        entries.push_back(entry);
                    }
                    Err(reason) => {
                        // Only the last line may be torn.
                        let mut rest = String::new();
                        let more = reader.read_line(&mut rest).map_err(io(&path))?;
                        if more > 0 {
                            return Err(Error::DamagedOutbox {
                                path,
                                line: number,
                                reason,
                            });
                        }
                        tracing::warn!(path = %path.display(), line = number, %reason,
                            "dropping the torn last line of the signal outbox");
                        break;
                    }
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if file.metadata().map_err(io(&path))?.len() != good_len {
            file.set_len(good_len).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        let cursors_path = dir.join(CURSORS_FILE);
        let cursors: BTreeMap<String, u64> = match std::fs::read(&cursors_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::DamagedOutbox {
                path: cursors_path.clone(),
                line: 1,
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(Error::Outbox {
                    path: cursors_path,
                    source,
                });
            }
        };
        let next = entries.back().map_or(1, |e| e.index + 1);
        let (appended, _) = watch::channel(next - 1);
        Ok(Outbox {
            inner: Arc::new(Inner {
                dir,
                retain: retain.max(1),
                state: Mutex::new(State {
                    file,
                    lines_in_file,
                    entries,
                    next,
                    last_sequence,
                    cursors,
                }),
                appended,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-made:
        // every mutation is done after the fallible I/O.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends signals and syncs them; returns their entries.
    pub fn push(&self, signals: &[Signal]) -> Result<Vec<Entry>> {
        let path = self.inner.dir.join(LOG_FILE);
        let io = |source| Error::Outbox {
            path: path.clone(),
            source,
        };
        let mut state = self.state();
        let mut text = String::new();
        let mut made = Vec::with_capacity(signals.len());
        for (i, signal) in signals.iter().enumerate() {
            let index = state.next + i as u64;
            let json = serde_json::to_string(signal).map_err(|e| Error::Internal(e.to_string()))?;
            text.push_str(&format!("{{\"index\":{index},\"signal\":{json}}}\n"));
            made.push(Entry {
                index,
                signal: Arc::new(signal.clone()),
            });
        }
        state.file.write_all(text.as_bytes()).map_err(io)?;
        state.file.sync_data().map_err(io)?;
        state.next += signals.len() as u64;
        state.lines_in_file += signals.len();
        for entry in &made {
            let key = (entry.signal.rollout.clone(), entry.signal.cohort.clone());
            let seq = state.last_sequence.entry(key).or_insert(0);
            *seq = (*seq).max(entry.signal.sequence);
            state.entries.push_back(entry.clone());
        }
        let last = state.next - 1;
        drop(state);
        self.inner.appended.send_replace(last);
        Ok(made)
    }

    /// The last index appended (0 when none ever was).
    pub fn last_index(&self) -> u64 {
        self.state().next - 1
    }

    /// Up to `max` entries after `index`, oldest first. Entries already
    /// dropped are skipped: the first returned may be later than
    /// `index + 1`.
    pub fn read_after(&self, index: u64, max: usize) -> Vec<Entry> {
        let state = self.state();
        let first = state.entries.front().map_or(state.next, |e| e.index);
        let skip = index.saturating_add(1).saturating_sub(first) as usize;
        state.entries.iter().skip(skip).take(max).cloned().collect()
    }

    /// Every retained entry of one canary after its `sequence`, oldest
    /// first.
    pub fn read_canary_after(&self, rollout: &str, cohort: &str, sequence: u64) -> Vec<Entry> {
        self.state()
            .entries
            .iter()
            .filter(|e| {
                e.signal.rollout == rollout
                    && e.signal.cohort == cohort
                    && e.signal.sequence > sequence
            })
            .cloned()
            .collect()
    }

    /// Wakes when signals are appended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.appended.subscribe()
    }

    /// A destination's cursor: the last index it delivered. A destination
    /// seen for the first time starts after the last signal appended so
    /// far (it is not flooded with history).
    pub fn cursor(&self, consumer: &str) -> Result<u64> {
        let mut state = self.state();
        if let Some(cursor) = state.cursors.get(consumer) {
            return Ok(*cursor);
        }
        let start = state.next - 1;
        state.cursors.insert(consumer.to_owned(), start);
        self.save_cursors(&state)?;
        Ok(start)
    }

    /// Records that `consumer` delivered everything up to `index`, and
    /// drops what no destination needs any more.
    pub fn ack(&self, consumer: &str, index: u64) -> Result<()> {
        let mut state = self.state();
        let cursor = state.cursors.entry(consumer.to_owned()).or_insert(0);
        if index <= *cursor {
            return Ok(());
        }
        *cursor = index;
        self.save_cursors(&state)?;
        self.compact(&mut state)
    }

    fn save_cursors(&self, state: &State) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&state.cursors)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let path = self.inner.dir.join(CURSORS_FILE);
        write_atomically(&path, &bytes).map_err(|source| Error::Outbox { path, source })
    }

    fn compact(&self, state: &mut State) -> Result<()> {
        let delivered = state.cursors.values().copied().min().unwrap_or(0);
        while state.entries.len() > self.inner.retain
            && state.entries.front().is_some_and(|e| e.index <= delivered)
        {
            state.entries.pop_front();
        }
        // Rewrite the file once it holds twice what is kept.
        if state.lines_in_file <= 2 * self.inner.retain.max(state.entries.len()) {
            return Ok(());
        }
        let path = self.inner.dir.join(LOG_FILE);
        let io = |source| Error::Outbox {
            path: path.clone(),
            source,
        };
        let mut text = String::new();
        for entry in &state.entries {
            let json = serde_json::to_string(&*entry.signal)
                .map_err(|e| Error::Internal(e.to_string()))?;
            text.push_str(&format!(
                "{{\"index\":{},\"signal\":{json}}}\n",
                entry.index
            ));
        }
        write_atomically(&path, text.as_bytes()).map_err(io)?;
        state.file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        state.lines_in_file = state.entries.len();
        Ok(())
    }

    /// How many signals each destination has still to deliver.
    pub fn backlog(&self) -> BTreeMap<String, u64> {
        let state = self.state();
        let last = state.next - 1;
        state
            .cursors
            .iter()
            .map(|(name, cursor)| (name.clone(), last.saturating_sub(*cursor)))
            .collect()
    }
}

fn parse_line(text: &str) -> serde_json::Result<Entry> {
    let line: Line = serde_json::from_str(text)?;
    Ok(Entry {
        index: line.index,
        signal: Arc::new(line.signal),
    })
}

impl SignalLog for Outbox {
    fn append(&self, signals: &[Signal]) -> std::io::Result<()> {
        self.push(signals).map(drop).map_err(std::io::Error::other)
    }

    fn last_sequence(&self, rollout: &str, cohort: &str) -> Option<u64> {
        self.state()
            .last_sequence
            .get(&(rollout.to_owned(), cohort.to_owned()))
            .copied()
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = path.with_extension("tmp");
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signal;

    #[test]
    fn signals_survive_a_reopen_and_consumers_resume_after_their_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), 100).unwrap();
        assert_eq!(outbox.cursor("hook").unwrap(), 0);
        outbox
            .push(&[
                test_signal("a", 1),
                test_signal("b", 1),
                test_signal("a", 2),
            ])
            .unwrap();
        outbox.ack("hook", 2).unwrap();
        drop(outbox);

        let outbox = Outbox::open(dir.path(), 100).unwrap();
        assert_eq!(outbox.cursor("hook").unwrap(), 2);
        let rest = outbox.read_after(2, 10);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].signal.id, "a/canary/2");
        assert_eq!(outbox.last_sequence("a", "canary"), Some(2));
        assert_eq!(outbox.read_canary_after("a", "canary", 1).len(), 1);
        // A new consumer starts at the end.
        assert_eq!(outbox.cursor("late").unwrap(), 3);
        let more = outbox.push(&[test_signal("b", 2)]).unwrap();
        assert_eq!(more[0].index, 4);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_a_damaged_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), 100).unwrap();
        outbox
            .push(&[test_signal("a", 1), test_signal("a", 2)])
            .unwrap();
        drop(outbox);
        let path = dir.path().join(DIR).join(LOG_FILE);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"index\":3,\"sig").unwrap();
        drop(file);
        let outbox = Outbox::open(dir.path(), 100).unwrap();
        assert_eq!(outbox.last_index(), 2);
        outbox.push(&[test_signal("a", 3)]).unwrap();
        drop(outbox);
        let outbox = Outbox::open(dir.path(), 100).unwrap();
        assert_eq!(outbox.read_after(0, 10).len(), 3);
        drop(outbox);

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"index\":2", "\"index\":\"x\"", 1)).unwrap();
        let error = Outbox::open(dir.path(), 100).unwrap_err();
        assert!(
            matches!(error, Error::DamagedOutbox { line: 2, .. }),
            "{error}"
        );
    }

    #[test]
    fn delivered_signals_beyond_retain_are_dropped_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), 5).unwrap();
        outbox.cursor("slow").unwrap();
        outbox.cursor("fast").unwrap();
        for i in 1..=50 {
            outbox.push(&[test_signal("a", i)]).unwrap();
            outbox.ack("fast", i).unwrap();
        }
        // "slow" delivered nothing: everything stays.
        assert_eq!(outbox.read_after(0, 100).len(), 50);
        outbox.ack("slow", 50).unwrap();
        let kept = outbox.read_after(0, 100);
        assert_eq!(kept.len(), 5);
        assert_eq!(kept[0].index, 46);
        drop(outbox);
        let outbox = Outbox::open(dir.path(), 5).unwrap();
        assert_eq!(outbox.read_after(0, 100).len(), 5);
        assert_eq!(outbox.last_index(), 50);
        assert_eq!(outbox.backlog()["slow"], 0);
    }
}
