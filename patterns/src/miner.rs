//! The online template miner (see [`Miner`]).

use std::{collections::VecDeque, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::{
    config::MinerConfig,
    hashing::{FastMap, fingerprint},
    lru::Lru,
    slab::Slab,
    structured::{self, Shape},
    template::{TTok, TemplateId, TemplateInfo, dotted_glob, glob_matches, render},
    tokenize::{Kind, Limits, Line},
    tree::Tree,
};

/// The result of mining one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mined {
    /// The id of the line's template.
    pub template_id: TemplateId,
    /// The template text (cheap to clone).
    pub template: Arc<str>,
}

/// Counters describing a miner's work and memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinerStats {
    /// Lines mined.
    pub lines: u64,
    /// Live templates.
    pub templates: usize,
    /// Template shapes (a template has one per distinct token layout; almost
    /// always exactly one).
    pub shapes: usize,
    /// Lineage records kept (retired template → its replacement).
    pub lineage: usize,
    /// Templates created.
    pub created: u64,
    /// Generalisations (shapes merged into a more general template).
    pub merges: u64,
    /// Templates evicted because `max_templates` was reached.
    pub evictions: u64,
    /// Lineage records dropped because `max_lineage` was reached.
    pub lineage_dropped: u64,
    /// Lines cut at `max_tokens` or `max_line_bytes`.
    pub truncated_lines: u64,
    /// Lines given as bytes that were not valid UTF-8 (decoded lossily).
    pub invalid_utf8_lines: u64,
    /// Empty or whitespace-only lines (template `""`).
    pub empty_lines: u64,
    /// Lines read as JSON objects.
    pub json_lines: u64,
    /// Lines read as logfmt.
    pub logfmt_lines: u64,
    /// Multi-line bodies mined on their first line.
    pub multiline_lines: u64,
    /// Lines answered from the cache of masked lines.
    pub cache_hits: u64,
}

/// One token layout of a template, as stored in the prefix tree.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// Creation order; decides candidate order and ties.
    pub seq: u64,
    pub toks: Box<[TTok]>,
    /// Handle of the owning template.
    pub template: u32,
    /// Number of non-variable tokens (specificity).
    pub consts: u32,
}

/// A live template.
#[derive(Debug)]
pub(crate) struct Template {
    pub id: TemplateId,
    pub text: Arc<str>,
    pub count: u64,
    pub first_seen: u64,
    pub last_seen: u64,
    /// Handles of its shapes.
    pub clusters: Vec<u32>,
}

/// A retired template: what it was, and what replaced it.
#[derive(Debug, Clone)]
pub(crate) struct Retired {
    pub text: Arc<str>,
    pub count: u64,
    pub first_seen: u64,
    pub last_seen: u64,
    pub parent: TemplateId,
    /// Position in the retirement order, to tell a record from a newer one
    /// of the same id.
    pub seq: u64,
}

#[derive(Clone, Copy, Debug)]
struct CacheEntry {
    cluster: u32,
    len: u32,
    epoch: u32,
}

/// The online template miner.
///
/// For each line: tokenize and mask it, then look its masked text up in a
/// cache of recent lines. On a miss, descend the prefix tree to the shapes of
/// the same token count and leading tokens and take the most specific one
/// that matches exactly. If none does, compare the line with every shape of
/// its token count, position by position: a shape whose punctuation is
/// identical and of whose constant words more than `similarity_threshold` are
/// the same is a candidate to generalise, turning the differing positions
/// into `<*>`. Generalising happens only with evidence
/// that the positions hold values: one side already holds a variable there, or
/// the shapes that would merge show `min_distinct_values` different words at
/// each such position. Otherwise the line starts a new template.
///
/// Templates are keyed by their text, so their ids are stable; a template that
/// is generalised is retired with a pointer to the template that replaced it
/// (its lineage), and [`Miner::resolve`] follows those pointers. Memory is
/// bounded by `max_templates` (least recently used templates are evicted),
/// `max_lineage`, `cache_capacity`, and the per-line token and byte limits.
///
/// `Send` and `Sync`; mining needs `&mut self`, so share it behind a mutex.
pub struct Miner {
    pub(crate) config: MinerConfig,
    limits: Limits,
    line: Line,
    pub(crate) clusters: Slab<Cluster>,
    pub(crate) templates: Slab<Template>,
    pub(crate) by_id: FastMap<TemplateId, u32>,
    pub(crate) retired: FastMap<TemplateId, Retired>,
    pub(crate) retired_order: VecDeque<(TemplateId, u64)>,
    pub(crate) lru: Lru,
    pub(crate) tree: Tree,
    /// Masked line fingerprint → shape.
    cache: FastMap<u128, CacheEntry>,
    pub(crate) next_seq: u64,
    pub(crate) next_retired_seq: u64,
    pub(crate) stats: MinerStats,
    // Scratch buffers of the slow path.
    cands: Vec<u32>,
    similar: Vec<(u32, u32, u32)>,
    diffs: Vec<u32>,
    instances: Vec<u32>,
}

impl std::fmt::Debug for Miner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Miner")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Miner {
    /// A miner with no templates. Out-of-range configuration values are moved
    /// to the nearest valid value (use [`MinerConfig::validate`] to report
    /// them instead).
    pub fn new(config: MinerConfig) -> Miner {
        let config = config.clamped();
        Miner {
            limits: Limits {
                max_tokens: config.max_tokens,
                max_token_bytes: config.max_token_bytes,
            },
            tree: Tree::new(config.tree_depth),
            config,
            line: Line::default(),
            clusters: Slab::default(),
            templates: Slab::default(),
            by_id: FastMap::default(),
            retired: FastMap::default(),
            retired_order: VecDeque::new(),
            lru: Lru::default(),
            cache: FastMap::default(),
            next_seq: 0,
            next_retired_seq: 0,
            stats: MinerStats::default(),
            cands: Vec::new(),
            similar: Vec::new(),
            diffs: Vec::new(),
            instances: Vec::new(),
        }
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    /// Mines one log body observed at `time_unix_nano`, returning its
    /// template. Never fails and never panics on any input.
    pub fn mine(&mut self, body: &str, time_unix_nano: u64) -> Mined {
        self.stats.lines += 1;
        let mut cut = false;
        let body = if body.len() > self.config.max_line_bytes {
            cut = true;
            let mut k = self.config.max_line_bytes;
            while !body.is_char_boundary(k) {
                k -= 1;
            }
            &body[..k]
        } else {
            body
        };
        self.line.reset(self.limits);
        let (body, more) = match self.config.first_line_only {
            true => first_line(body),
            false => (body, false),
        };
        match structured::push_body(&mut self.line, body, self.config.structured) {
            Shape::Json => self.stats.json_lines += 1,
            Shape::Logfmt => self.stats.logfmt_lines += 1,
            Shape::Text => {}
        }
        if more {
            self.stats.multiline_lines += 1;
            self.line.push(Kind::Var, false, "");
        }
        if cut {
            self.line.truncated = true;
        }
        self.line.finish();
        if self.line.truncated {
            self.stats.truncated_lines += 1;
        }
        if self.line.toks.is_empty() {
            self.stats.empty_lines += 1;
        }
        let n = self.line.toks.len();
        let key = fingerprint(self.line.text.as_bytes());
        let cached = self
            .cache
            .get(&key)
            .filter(|e| e.len as usize == n && e.epoch == self.tree.epoch(n))
            .map(|e| e.cluster);
        let cluster = match cached {
            Some(c) => {
                self.stats.cache_hits += 1;
                c
            }
            None => {
                let c = self.place(time_unix_nano);
                if let Some(t) = self.clusters.get(c).map(|c| c.template) {
                    self.evict_over_cap(t);
                }
                if self.cache.len() >= self.config.cache_capacity {
                    self.cache.clear();
                }
                if self.config.cache_capacity > 0 {
                    let entry = CacheEntry {
                        cluster: c,
                        len: n as u32,
                        epoch: self.tree.epoch(n),
                    };
                    self.cache.insert(key, entry);
                }
                c
            }
        };
        match self.clusters.get(cluster).map(|c| c.template) {
            Some(t) => self.hit(t, time_unix_nano),
            // Unreachable by construction; answer with the line's own text
            // rather than fail ingest.
            None => Mined {
                template_id: TemplateId::of(&self.line.text),
                template: Arc::from(self.line.text.as_str()),
            },
        }
    }

    /// Like [`Miner::mine`] for bytes that may not be UTF-8: invalid
    /// sequences become U+FFFD (and the line is counted).
    pub fn mine_bytes(&mut self, body: &[u8], time_unix_nano: u64) -> Mined {
        match String::from_utf8_lossy(body) {
            std::borrow::Cow::Borrowed(s) => self.mine(s, time_unix_nano),
            std::borrow::Cow::Owned(s) => {
                self.stats.invalid_utf8_lines += 1;
                self.mine(&s, time_unix_nano)
            }
        }
    }

    /// Every template the miner knows: the live ones, then retired ones with
    /// their `parent_id`.
    pub fn templates(&self) -> impl Iterator<Item = TemplateInfo> + '_ {
        let live = self.templates.iter().map(|(_, t)| TemplateInfo {
            id: t.id,
            template: t.text.clone(),
            first_seen: t.first_seen,
            last_seen: t.last_seen,
            count: t.count,
            parent_id: None,
        });
        let retired = self.retired_order.iter().filter_map(|(id, seq)| {
            let r = self.retired.get(id).filter(|r| r.seq == *seq)?;
            Some(TemplateInfo {
                id: *id,
                template: r.text.clone(),
                first_seen: r.first_seen,
                last_seen: r.last_seen,
                count: r.count,
                parent_id: Some(r.parent),
            })
        });
        live.chain(retired)
    }

    /// What the miner knows about template `id`, live or retired.
    pub fn template(&self, id: &TemplateId) -> Option<TemplateInfo> {
        if let Some(t) = self.by_id.get(id).and_then(|&t| self.templates.get(t)) {
            return Some(TemplateInfo {
                id: t.id,
                template: t.text.clone(),
                first_seen: t.first_seen,
                last_seen: t.last_seen,
                count: t.count,
                parent_id: None,
            });
        }
        self.retired.get(id).map(|r| TemplateInfo {
            id: *id,
            template: r.text.clone(),
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            count: r.count,
            parent_id: Some(r.parent),
        })
    }

    /// The current template for `id`: itself when live, else the end of its
    /// lineage. `None` when the id is unknown or its line of descent was
    /// evicted or dropped.
    pub fn resolve(&self, id: &TemplateId) -> Option<TemplateId> {
        let mut cur = *id;
        for _ in 0..=self.retired.len() {
            if self.by_id.contains_key(&cur) {
                return Some(cur);
            }
            cur = self.retired.get(&cur)?.parent;
        }
        None
    }

    /// Counters describing the miner's work and memory.
    pub fn stats(&self) -> MinerStats {
        MinerStats {
            templates: self.templates.len(),
            shapes: self.clusters.len(),
            lineage: self.retired.len(),
            ..self.stats.clone()
        }
    }

    fn hit(&mut self, t: u32, time: u64) -> Mined {
        self.lru.touch(t);
        match self.templates.get_mut(t) {
            Some(tpl) => {
                tpl.count += 1;
                tpl.first_seen = tpl.first_seen.min(time);
                tpl.last_seen = tpl.last_seen.max(time);
                Mined {
                    template_id: tpl.id,
                    template: tpl.text.clone(),
                }
            }
            None => Mined {
                template_id: TemplateId::of(&self.line.text),
                template: Arc::from(self.line.text.as_str()),
            },
        }
    }

    /// Finds or makes the shape for the current line (the slow path).
    fn place(&mut self, time: u64) -> u32 {
        self.cands.clear();
        self.tree.candidates(&self.line, &mut self.cands);
        let mut best: Option<(u32, u64, u32)> = None;
        for &c in &self.cands {
            let Some(cl) = self.clusters.get(c) else {
                continue;
            };
            if !matches(&self.line, &cl.toks) {
                continue;
            }
            let better = match best {
                None => true,
                Some((consts, seq, _)) => {
                    cl.consts > consts || (cl.consts == consts && cl.seq < seq)
                }
            };
            if better {
                best = Some((cl.consts, cl.seq, c));
            }
        }
        if let Some((_, _, c)) = best {
            return c;
        }
        if let Some(c) = self.generalise(time) {
            return c;
        }
        let toks: Box<[TTok]> = self
            .line
            .toks
            .iter()
            .map(|t| TTok {
                kind: t.kind,
                glue: t.glue,
                text: match t.kind {
                    Kind::Var => "".into(),
                    _ => self.line.text_of(t).into(),
                },
            })
            .collect();
        self.add_cluster(toks, time)
    }

    /// Tries to merge the current line with similar shapes into a more
    /// general one; returns the new shape.
    fn generalise(&mut self, time: u64) -> Option<u32> {
        let n = self.line.toks.len();
        let bucket = self.tree.bucket(n)?;
        self.similar.clear();
        self.diffs.clear();
        let newest = bucket
            .shapes
            .len()
            .saturating_sub(self.config.max_merge_candidates);
        for &c in &bucket.shapes[newest..] {
            let Some(cl) = self.clusters.get(c) else {
                continue;
            };
            let from = self.diffs.len() as u32;
            if compare(
                &self.line,
                &cl.toks,
                self.config.similarity_threshold,
                &mut self.diffs,
            ) {
                self.similar.push((c, from, self.diffs.len() as u32));
            } else {
                self.diffs.truncate(from as usize);
            }
        }
        // Best generalisation: fewest variables, then most shapes merged,
        // then the oldest base shape.
        let mut best: Option<(usize, usize, u64, usize)> = None;
        for (k, &(base, from, to)) in self.similar.iter().enumerate() {
            let Some(base_cl) = self.clusters.get(base) else {
                continue;
            };
            let extra = &self.diffs[from as usize..to as usize];
            self.instances.clear();
            for &(other, _, _) in &self.similar {
                if let Some(o) = self.clusters.get(other)
                    && is_instance(&o.toks, &base_cl.toks, extra)
                {
                    self.instances.push(other);
                }
            }
            if !self.has_evidence(extra) {
                continue;
            }
            let wild = base_cl.toks.len() - base_cl.consts as usize + extra.len();
            let cand = (wild, self.instances.len(), base_cl.seq, k);
            let better = match best {
                None => true,
                Some((w, i, s, _)) => {
                    wild < w || (wild == w && (cand.1 > i || (cand.1 == i && cand.2 < s)))
                }
            };
            if better {
                best = Some(cand);
            }
        }
        let (_, _, _, k) = best?;
        let (base, from, to) = self.similar[k];
        let extra: Vec<u32> = self.diffs[from as usize..to as usize].to_vec();
        let base_toks = self.clusters.get(base)?.toks.clone();
        // Recompute the instances of the chosen generalisation.
        let members: Vec<u32> = self
            .similar
            .iter()
            .filter(|&&(o, _, _)| {
                self.clusters
                    .get(o)
                    .is_some_and(|c| is_instance(&c.toks, &base_toks, &extra))
            })
            .map(|&(o, _, _)| o)
            .collect();
        let mut general = base_toks.into_vec();
        for &p in &extra {
            // Dotted names that share leading or trailing parts keep them:
            // `com.apple.<*>`, `c.e.<*>.OrderService`.
            let mut values: Vec<&str> = Vec::with_capacity(members.len() + 1);
            if let Some(t) = self
                .line
                .toks
                .get(p as usize)
                .filter(|t| t.kind == Kind::Word)
            {
                values.push(self.line.text_of(t));
            }
            for &m in &members {
                match self.clusters.get(m).and_then(|c| c.toks.get(p as usize)) {
                    Some(t) if t.kind == Kind::Word => values.push(&t.text),
                    _ => values.push(""),
                }
            }
            let glob = if values.len() == members.len() + 1 {
                dotted_glob(&values)
            } else {
                None
            };
            if let Some(t) = general.get_mut(p as usize) {
                match glob {
                    Some(g) => {
                        t.kind = Kind::Glob;
                        t.text = g.into();
                    }
                    None => {
                        t.kind = Kind::Var;
                        t.text = "".into();
                    }
                }
            }
        }
        Some(self.replace(&members, general.into_boxed_slice(), time))
    }

    /// Whether every position in `extra` shows it holds values, judged over
    /// the current line and `self.instances`.
    fn has_evidence(&self, extra: &[u32]) -> bool {
        let need = self.config.min_distinct_values;
        let mut seen: Vec<&str> = Vec::with_capacity(need);
        for &p in extra {
            let p = p as usize;
            let Some(lt) = self.line.toks.get(p) else {
                return false;
            };
            if lt.kind == Kind::Var {
                continue;
            }
            let line_text = self.line.text_of(lt);
            seen.clear();
            seen.push(line_text);
            let mut var = false;
            let mut all_enum = is_enum_constant(line_text);
            for &i in &self.instances {
                let Some(t) = self.clusters.get(i).and_then(|c| c.toks.get(p)) else {
                    continue;
                };
                if matches!(t.kind, Kind::Var | Kind::Glob) {
                    var = true;
                    break;
                }
                all_enum &= is_enum_constant(t.text());
                if !seen.contains(&t.text()) {
                    seen.push(t.text());
                }
            }
            // Upper-case identifiers (`NEW`, `FAIL_TASK_CLEANUP`) are states
            // and event types: however many there are, they tell events apart.
            if !var && (all_enum || seen.len() < need) {
                return false;
            }
        }
        true
    }

    /// Replaces the shapes `members` by the shape `general`; templates left
    /// without shapes are retired with lineage to the new template. Returns
    /// the new shape.
    fn replace(&mut self, members: &[u32], general: Box<[TTok]>, time: u64) -> u32 {
        let mut old_templates: Vec<u32> = Vec::new();
        for &m in members {
            if let Some(cl) = self.clusters.remove(m) {
                self.tree.remove(m, &cl.toks);
                if let Some(t) = self.templates.get_mut(cl.template) {
                    t.clusters.retain(|&c| c != m);
                }
                if !old_templates.contains(&cl.template) {
                    old_templates.push(cl.template);
                }
            }
        }
        let c = self.add_cluster(general, time);
        let Some(new_t) = self.clusters.get(c).map(|c| c.template) else {
            return c;
        };
        let Some(new_id) = self.templates.get(new_t).map(|t| t.id) else {
            return c;
        };
        let (mut count, mut first, mut last) = (0u64, u64::MAX, 0u64);
        for t in old_templates {
            if t == new_t || self.templates.get(t).is_none_or(|t| !t.clusters.is_empty()) {
                continue;
            }
            if let Some(old) = self.retire(t, new_id) {
                count += old.count;
                first = first.min(old.first_seen);
                last = last.max(old.last_seen);
            }
        }
        if let Some(t) = self.templates.get_mut(new_t) {
            t.count += count;
            t.first_seen = t.first_seen.min(first);
            t.last_seen = t.last_seen.max(last);
        }
        self.stats.merges += 1;
        c
    }

    /// Removes live template `t`, recording that `parent` replaced it.
    fn retire(&mut self, t: u32, parent: TemplateId) -> Option<Retired> {
        let tpl = self.templates.remove(t)?;
        self.by_id.remove(&tpl.id);
        self.lru.remove(t);
        let seq = self.next_retired_seq;
        self.next_retired_seq += 1;
        let r = Retired {
            text: tpl.text,
            count: tpl.count,
            first_seen: tpl.first_seen,
            last_seen: tpl.last_seen,
            parent,
            seq,
        };
        self.retired.insert(tpl.id, r.clone());
        self.retired_order.push_back((tpl.id, seq));
        self.trim_lineage();
        Some(r)
    }

    pub(crate) fn trim_lineage(&mut self) {
        while self.retired.len() > self.config.max_lineage {
            let Some((id, seq)) = self.retired_order.pop_front() else {
                break;
            };
            if self.retired.get(&id).is_some_and(|r| r.seq == seq) {
                self.retired.remove(&id);
                self.stats.lineage_dropped += 1;
            }
        }
        // Forget queue entries whose record was superseded.
        while let Some(&(id, seq)) = self.retired_order.front() {
            if self.retired.get(&id).is_some_and(|r| r.seq == seq) {
                break;
            }
            self.retired_order.pop_front();
        }
    }

    /// Stores a new shape, attaching it to the template with its text (made
    /// if needed). Returns the shape's handle.
    pub(crate) fn add_cluster(&mut self, toks: Box<[TTok]>, time: u64) -> u32 {
        let text = render(&toks);
        let id = TemplateId::of(&text);
        let t = match self.by_id.get(&id) {
            Some(&t) => t,
            None => {
                // A template that comes back is live again, not retired.
                self.retired.remove(&id);
                let t = self.templates.insert(Template {
                    id,
                    text: Arc::from(text),
                    count: 0,
                    first_seen: time,
                    last_seen: time,
                    clusters: Vec::new(),
                });
                self.by_id.insert(id, t);
                self.lru.push(t);
                self.stats.created += 1;
                t
            }
        };
        let consts = constants(&toks);
        let seq = self.next_seq;
        self.next_seq += 1;
        let c = self.clusters.insert(Cluster {
            seq,
            toks,
            template: t,
            consts,
        });
        if let Some(cl) = self.clusters.get(c) {
            self.tree.insert(c, &cl.toks);
        }
        if let Some(tpl) = self.templates.get_mut(t) {
            tpl.clusters.push(c);
        }
        c
    }

    /// Evicts least recently used templates until the cap holds, never
    /// `keep`.
    pub(crate) fn evict_over_cap(&mut self, keep: u32) {
        while self.templates.len() > self.config.max_templates {
            let Some(old) = self.lru.oldest() else {
                break;
            };
            if old == keep {
                self.lru.touch(keep);
                if self.lru.oldest() == Some(keep) {
                    break;
                }
                continue;
            }
            self.evict(old);
        }
    }

    fn evict(&mut self, t: u32) {
        self.lru.remove(t);
        let Some(tpl) = self.templates.remove(t) else {
            return;
        };
        self.by_id.remove(&tpl.id);
        for c in tpl.clusters {
            if let Some(cl) = self.clusters.remove(c) {
                self.tree.remove(c, &cl.toks);
            }
        }
        self.stats.evictions += 1;
    }
}

/// The first non-empty line of a multi-line body, and whether non-blank lines
/// follow. A JSON object is returned whole.
fn first_line(body: &str) -> (&str, bool) {
    let Some(nl) = find_newline(body.as_bytes()) else {
        return (body, false);
    };
    let t = body.trim_ascii_start();
    if t.starts_with('{') {
        return (body, false);
    }
    if body[..nl].trim_ascii().is_empty() {
        // Leading blank lines: start at the first non-blank one.
        let start = body.len() - t.len();
        let line_start = body[..start].rfind('\n').map_or(0, |p| p + 1);
        let rest = &body[line_start..];
        return match rest.find('\n') {
            Some(k) => (&rest[..k], !rest[k..].trim_ascii().is_empty()),
            None => (rest, false),
        };
    }
    (&body[..nl], !body[nl..].trim_ascii().is_empty())
}

/// Position of the first `\n`, eight bytes at a time (inlined: cheaper than a
/// library call for the short strings that log lines are).
#[inline]
fn find_newline(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w) ^ (ONES * u64::from(b'\n'));
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            return c.iter().position(|&y| y == b'\n').map(|p| at + p);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&y| y == b'\n')
        .map(|p| at + p)
}

/// Number of tokens that are template text (specificity).
pub(crate) fn constants(toks: &[TTok]) -> u32 {
    toks.iter()
        .filter(|t| matches!(t.kind, Kind::Word | Kind::Punct))
        .count() as u32
}

/// An upper-case identifier such as `RUNNING` or `CONTAINER_REMOTE_LAUNCH`.
fn is_enum_constant(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() >= 2
        && b.iter().filter(|c| c.is_ascii_uppercase()).count() >= 2
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// Whether `line` fits shape `toks` exactly.
#[inline]
fn matches(line: &Line, toks: &[TTok]) -> bool {
    line.toks.len() == toks.len()
        && line.toks.iter().zip(toks.iter()).all(|(l, t)| {
            l.glue == t.glue
                && match t.kind {
                    Kind::Var => l.kind != Kind::Punct,
                    Kind::Glob => l.kind == Kind::Word && glob_matches(&t.text, line.text_of(l)),
                    _ => l.kind == t.kind && line.text_of(l) == &*t.text,
                }
        })
}

/// Compares `line` with a same-length shape: `true` when punctuation and
/// spacing agree, and more than `threshold` of the constant words are
/// shared; the differing positions are appended to `diffs`.
fn compare(line: &Line, toks: &[TTok], threshold: f64, diffs: &mut Vec<u32>) -> bool {
    let from = diffs.len();
    let mut equal = 0usize;
    for (p, (l, t)) in line.toks.iter().zip(toks.iter()).enumerate() {
        if l.glue != t.glue {
            return false;
        }
        match (l.kind, t.kind) {
            (Kind::Punct, Kind::Punct) => {
                if line.text_of(l) != &*t.text {
                    return false;
                }
            }
            (Kind::Punct, _) | (_, Kind::Punct) => return false,
            (_, Kind::Var) => {}
            (Kind::Word, Kind::Glob) if glob_matches(&t.text, line.text_of(l)) => {}
            (lk, _) => {
                if lk == Kind::Word && line.text_of(l) == &*t.text {
                    equal += 1;
                } else {
                    diffs.push(p as u32);
                }
            }
        }
    }
    let differ = diffs.len() - from;
    differ > 0 && equal > 0 && (equal as f64) > threshold * ((equal + differ) as f64)
}

/// Whether shape `inst` is an instance of `base` with positions `extra` made
/// variables.
fn is_instance(inst: &[TTok], base: &[TTok], extra: &[u32]) -> bool {
    inst.len() == base.len()
        && inst.iter().zip(base.iter()).enumerate().all(|(p, (i, b))| {
            i.glue == b.glue
                && if b.kind == Kind::Var || extra.contains(&(p as u32)) {
                    i.kind != Kind::Punct
                } else if b.kind == Kind::Glob && i.kind == Kind::Word {
                    glob_matches(&b.text, &i.text)
                } else {
                    i.kind == b.kind && i.text == b.text
                }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine_all(m: &mut Miner, lines: &[&str]) -> Vec<String> {
        lines
            .iter()
            .map(|l| m.mine(l, 0).template.to_string())
            .collect()
    }

    #[test]
    fn multi_line_bodies_are_mined_on_their_first_line() {
        let mut m = Miner::new(MinerConfig::default());
        let trace = |depth: usize| {
            let mut s = String::from("java.lang.IllegalStateException: pool exhausted after 30s\n");
            for i in 0..depth {
                s.push_str(&format!(
                    "\tat com.example.Pool.get(Pool.java:{})\n",
                    100 + i
                ));
            }
            s
        };
        let a = m.mine(&trace(3), 1);
        let b = m.mine(&trace(40), 2);
        assert_eq!(a.template_id, b.template_id);
        assert_eq!(
            &*a.template,
            "java.lang.IllegalStateException: pool exhausted after <*>"
        );
        let c = m.mine("\n\n  first real line 1\n", 3);
        assert_eq!(&*c.template, "first real line <*>");
        let pretty = m.mine("{\n  \"msg\": \"hi\",\n  \"n\": 1\n}", 4);
        assert_eq!(&*pretty.template, r#"{"msg":"hi","n":<*>}"#);
        assert_eq!(m.stats().multiline_lines, 2);
        let mut whole = Miner::new(MinerConfig {
            first_line_only: false,
            ..MinerConfig::default()
        });
        assert_ne!(
            whole.mine(&trace(3), 1).template_id,
            whole.mine(&trace(4), 2).template_id
        );
    }

    #[test]
    fn find_newline_agrees_with_find() {
        let mut s = String::new();
        for i in 0..40 {
            assert_eq!(find_newline(s.as_bytes()), s.find('\n'), "{s:?}");
            s.push(if i % 13 == 12 { '\n' } else { 'é' });
            let t = format!("{}\n", "x".repeat(i));
            assert_eq!(find_newline(t.as_bytes()), Some(i));
        }
    }

    #[test]
    fn miner_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Miner>();
        check::<crate::RuleSet>();
    }

    #[test]
    fn template_lookup_covers_live_and_retired() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.mine("Failed none for invalid user admin from 1.2.3.4", 5);
        let b = m.mine("Failed none for invalid user 0 from 1.2.3.4", 6);
        let old = m.template(&a.template_id).unwrap();
        assert_eq!(old.parent_id, Some(b.template_id));
        let new = m.template(&b.template_id).unwrap();
        assert_eq!((new.count, new.first_seen, new.last_seen), (2, 5, 6));
        assert!(m.template(&TemplateId::of("nothing")).is_none());
    }

    #[test]
    fn a_variable_on_one_side_merges_at_once() {
        let mut m = Miner::new(MinerConfig::default());
        let got = mine_all(
            &mut m,
            &[
                "Failed none for invalid user admin from 1.2.3.4",
                "Failed none for invalid user 0 from 1.2.3.4",
            ],
        );
        assert_eq!(got[1], "Failed none for invalid user <*> from <*>");
        assert_eq!(
            m.resolve(&TemplateId::of(&got[0])),
            Some(TemplateId::of(&got[1]))
        );
    }

    #[test]
    fn plain_words_merge_after_enough_distinct_values() {
        let mut m = Miner::new(MinerConfig::default());
        let got = mine_all(
            &mut m,
            &[
                "user alice logged in",
                "user bob logged in",
                "user carol logged in",
                "user dave logged in",
            ],
        );
        assert_eq!(got[2], "user carol logged in");
        assert_eq!(got[3], "user <*> logged in");
        assert_eq!(m.stats().templates, 1);
        assert_eq!(m.stats().lineage, 3);
    }

    #[test]
    fn dotted_names_generalise_to_their_shared_parts() {
        let mut m = Miner::new(MinerConfig::default());
        let got = mine_all(
            &mut m,
            &[
                "com.apple.icloud.fmfd: job deferred",
                "com.apple.xpc.launchd: job deferred",
                "com.apple.CalendarAgent: job deferred",
                "com.apple.photoanalysisd: job deferred",
                "com.apple.x.y.z: job deferred",
                "org.mozilla.firefox: job deferred",
            ],
        );
        assert_eq!(got[3], "com.apple.<*>: job deferred");
        assert_eq!(got[4], "com.apple.<*>: job deferred");
        // A name outside the glob widens it to a plain variable at once.
        assert_eq!(got[5], "<*>: job deferred");
        assert_eq!(
            m.resolve(&TemplateId::of(&got[0])),
            Some(TemplateId::of(&got[5]))
        );
    }

    #[test]
    fn upper_case_states_never_merge() {
        let mut m = Miner::new(MinerConfig::default());
        let states = [
            "NEW",
            "SCHEDULED",
            "RUNNING",
            "SUCCEEDED",
            "FAILED",
            "KILLED",
        ];
        for s in states {
            m.mine(&format!("task moved to {s}"), 0);
        }
        assert_eq!(m.stats().templates, states.len());
    }

    #[test]
    fn different_punctuation_never_merges() {
        let mut m = Miner::new(MinerConfig::default());
        let got = mine_all(
            &mut m,
            &["job 1 done: ok", "job 2 done, ok", "job 3 done: ok"],
        );
        assert_eq!(got[0], "job <*> done: ok");
        assert_eq!(got[1], "job <*> done, ok");
        assert_eq!(got[0], got[2]);
    }

    #[test]
    fn half_different_lines_stay_apart() {
        let mut m = Miner::new(MinerConfig::default());
        for w in [
            "illegal instruction",
            "privileged instruction",
            "imprecise exception",
            "trap instruction",
            "fp cr",
        ] {
            m.mine(&format!("program interrupt: {w}"), 0);
        }
        assert_eq!(m.stats().templates, 5);
    }
}
