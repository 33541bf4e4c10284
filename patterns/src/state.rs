//! Persisting a miner: `save` and `load`.
//!
//! The state file is one JSON document, written atomically (a temporary file
//! in the same directory, flushed to disk, then renamed over the old file):
//!
//! ```json
//! {
//!   "format": "grayscope-patterns-state",
//!   "version": 1,
//!   "next_seq": 42,
//!   "next_retired_seq": 7,
//!   "stats": { "lines": 1000, ... },
//!   "templates": [
//!     { "id": "5a1c…", "template": "Received block <*> of size <*>",
//!       "count": 12, "first_seen": 0, "last_seen": 0,
//!       "shapes": [ { "seq": 3, "tokens": ["wReceived", "wblock", "v", …] } ] }
//!   ],
//!   "lineage": [
//!     { "id": "…", "template": "…", "count": 1, "first_seen": 0,
//!       "last_seen": 0, "parent_id": "…" }
//!   ]
//! }
//! ```
//!
//! `templates` are listed from least to most recently used and `lineage` from
//! oldest to newest, so a loaded miner evicts, drops and decides exactly as
//! the saved one would. A token is its kind — `w` word, `p` punctuation, `v`
//! variable, `g` dotted name with a variable middle (`com.apple.<*>`); upper
//! case when glued to the previous token — followed by its text. Ids are
//! checked against their text on load.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    config::MinerConfig,
    error::{Error, Result},
    miner::{Miner, MinerStats, Retired, Template},
    template::{TTok, TemplateId, render},
    tokenize::Kind,
};

const FORMAT: &str = "grayscope-patterns-state";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: String,
    version: u32,
    next_seq: u64,
    next_retired_seq: u64,
    stats: MinerStats,
    templates: Vec<TemplateState>,
    lineage: Vec<LineageState>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateState {
    id: TemplateId,
    template: String,
    count: u64,
    first_seen: u64,
    last_seen: u64,
    shapes: Vec<ShapeState>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapeState {
    seq: u64,
    tokens: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineageState {
    id: TemplateId,
    template: String,
    count: u64,
    first_seen: u64,
    last_seen: u64,
    parent_id: TemplateId,
}

fn encode_token(t: &TTok) -> String {
    let k = match (t.kind, t.glue) {
        (Kind::Word, false) => 'w',
        (Kind::Word, true) => 'W',
        (Kind::Punct, false) => 'p',
        (Kind::Punct, true) => 'P',
        (Kind::Var, false) => 'v',
        (Kind::Var, true) => 'V',
        (Kind::Glob, false) => 'g',
        (Kind::Glob, true) => 'G',
    };
    let mut s = String::with_capacity(1 + t.text.len());
    s.push(k);
    s.push_str(&t.text);
    s
}

fn decode_token(s: &str) -> Option<TTok> {
    let mut chars = s.chars();
    let k = chars.next()?;
    let text = chars.as_str();
    let (kind, glue) = match k {
        'w' => (Kind::Word, false),
        'W' => (Kind::Word, true),
        'p' => (Kind::Punct, false),
        'P' => (Kind::Punct, true),
        'v' => (Kind::Var, false),
        'V' => (Kind::Var, true),
        'g' => (Kind::Glob, false),
        'G' => (Kind::Glob, true),
        _ => return None,
    };
    if (kind == Kind::Var) != text.is_empty() || (kind == Kind::Glob && !text.contains("<*>")) {
        return None;
    }
    Some(TTok {
        kind,
        glue,
        text: text.into(),
    })
}

impl Miner {
    /// Writes the miner's state to `path` atomically: a temporary file in
    /// the same directory, flushed to disk, then renamed over `path`.
    ///
    /// The file is one JSON document (`"format": "grayscope-patterns-state"`,
    /// `"version": 1`): the live templates from least to most recently used,
    /// each with its text, id, counts, times and token shapes, then the
    /// lineage records from oldest to newest. A loaded miner continues
    /// exactly as the saved one would have.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut templates = Vec::with_capacity(self.templates.len());
        for t in self.lru.iter() {
            let Some(tpl) = self.templates.get(t) else {
                return Err(Error::Internal(format!(
                    "recency list holds unknown template {t}"
                )));
            };
            let mut shapes: Vec<ShapeState> = tpl
                .clusters
                .iter()
                .filter_map(|&c| self.clusters.get(c))
                .map(|c| ShapeState {
                    seq: c.seq,
                    tokens: c.toks.iter().map(encode_token).collect(),
                })
                .collect();
            shapes.sort_by_key(|s| s.seq);
            templates.push(TemplateState {
                id: tpl.id,
                template: tpl.text.to_string(),
                count: tpl.count,
                first_seen: tpl.first_seen,
                last_seen: tpl.last_seen,
                shapes,
            });
        }
        let lineage = self
            .retired_order
            .iter()
            .filter_map(|(id, seq)| {
                let r = self.retired.get(id).filter(|r| r.seq == *seq)?;
                Some(LineageState {
                    id: *id,
                    template: r.text.to_string(),
                    count: r.count,
                    first_seen: r.first_seen,
                    last_seen: r.last_seen,
                    parent_id: r.parent,
                })
            })
            .collect();
        let file = StateFile {
            format: FORMAT.to_string(),
            version: VERSION,
            next_seq: self.next_seq,
            next_retired_seq: self.next_retired_seq,
            stats: self.stats.clone(),
            templates,
            lineage,
        };
        let bytes = serde_json::to_vec(&file).map_err(|source| Error::EncodeState {
            path: path.to_path_buf(),
            source,
        })?;
        write_atomically(path, &bytes).map_err(|source| Error::SaveState {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a miner saved with [`Miner::save`], to run with `config`. If
    /// `config` allows fewer templates or lineage records than were saved, the
    /// least recently used templates and oldest records go (and are counted).
    pub fn load(path: &Path, config: MinerConfig) -> Result<Miner> {
        let bytes = fs::read(path).map_err(|source| Error::LoadState {
            path: path.to_path_buf(),
            source,
        })?;
        let file: StateFile =
            serde_json::from_slice(&bytes).map_err(|source| Error::DecodeState {
                path: path.to_path_buf(),
                source,
            })?;
        let invalid = |reason: String| Error::InvalidState {
            path: path.to_path_buf(),
            reason,
        };
        if file.format != FORMAT || file.version != VERSION {
            return Err(invalid(format!(
                "format {:?} version {} is not {FORMAT:?} version {VERSION}",
                file.format, file.version
            )));
        }
        let mut m = Miner::new(config);
        m.next_seq = file.next_seq;
        m.next_retired_seq = file.next_retired_seq;
        m.stats = file.stats;
        let mut shapes: Vec<(u64, u32, Box<[TTok]>)> = Vec::new();
        for t in file.templates {
            if TemplateId::of(&t.template) != t.id {
                return Err(invalid(format!(
                    "id {} does not match template {:?}",
                    t.id, t.template
                )));
            }
            if m.by_id.contains_key(&t.id) {
                return Err(invalid(format!("template {} listed twice", t.id)));
            }
            if t.shapes.is_empty() {
                return Err(invalid(format!("template {} has no shapes", t.id)));
            }
            let slot = m.templates.insert(Template {
                id: t.id,
                text: t.template.as_str().into(),
                count: t.count,
                first_seen: t.first_seen,
                last_seen: t.last_seen,
                clusters: Vec::new(),
            });
            m.by_id.insert(t.id, slot);
            m.lru.push(slot);
            for s in t.shapes {
                let toks: Option<Box<[TTok]>> = s.tokens.iter().map(|k| decode_token(k)).collect();
                let toks = toks
                    .ok_or_else(|| invalid(format!("template {} has a malformed token", t.id)))?;
                if render(&toks) != t.template {
                    return Err(invalid(format!(
                        "a shape of template {} renders differently",
                        t.id
                    )));
                }
                if s.seq >= m.next_seq {
                    return Err(invalid(format!("shape seq {} not below next_seq", s.seq)));
                }
                shapes.push((s.seq, slot, toks));
            }
        }
        // Shapes go back in creation order: the order candidates are tried.
        shapes.sort_by_key(|s| s.0);
        if shapes.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(invalid("two shapes share a seq".to_string()));
        }
        for (seq, template, toks) in shapes {
            let consts = crate::miner::constants(&toks);
            let c = m.clusters.insert(crate::miner::Cluster {
                seq,
                toks,
                template,
                consts,
            });
            if let Some(cl) = m.clusters.get(c) {
                m.tree.insert(c, &cl.toks);
            }
            if let Some(t) = m.templates.get_mut(template) {
                t.clusters.push(c);
            }
        }
        for r in file.lineage {
            if TemplateId::of(&r.template) != r.id {
                return Err(invalid(format!(
                    "lineage id {} does not match its template",
                    r.id
                )));
            }
            if m.by_id.contains_key(&r.id) {
                continue;
            }
            let seq = m.next_retired_seq;
            m.next_retired_seq += 1;
            m.retired.insert(
                r.id,
                Retired {
                    text: r.template.as_str().into(),
                    count: r.count,
                    first_seen: r.first_seen,
                    last_seen: r.last_seen,
                    parent: r.parent_id,
                    seq,
                },
            );
            m.retired_order.push_back((r.id, seq));
        }
        m.trim_lineage();
        if let Some(newest) = m.lru.iter().last() {
            m.evict_over_cap(newest);
        }
        Ok(m)
    }
}

impl Miner {
    /// [`Miner::load`] when `path` exists, a new miner when it does not (the
    /// first start); a file that exists but cannot be read or decoded is an
    /// error, not a silent fresh start.
    pub fn load_or_new(path: &Path, config: MinerConfig) -> Result<Miner> {
        match fs::metadata(path) {
            Ok(_) => Miner::load(path, config),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Miner::new(config)),
            Err(source) => Err(Error::LoadState {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_string());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable; not every platform can open a
        // directory, so this is best effort.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for (kind, glue, text) in [
            (Kind::Word, false, "Received"),
            (Kind::Word, true, "core.<*>"),
            (Kind::Punct, true, ":"),
            (Kind::Var, false, ""),
            (Kind::Var, true, ""),
        ] {
            let t = TTok {
                kind,
                glue,
                text: text.into(),
            };
            assert_eq!(decode_token(&encode_token(&t)), Some(t));
        }
        assert_eq!(decode_token("x"), None);
        assert_eq!(decode_token("vtext"), None);
        assert_eq!(decode_token(""), None);
    }
}
