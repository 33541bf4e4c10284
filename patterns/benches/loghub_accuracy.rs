//! Grouping and parsing accuracy of the default miner on the labelled Loghub
//! 2k samples.
//!
//! ```text
//! cargo bench -p grayscope-patterns --bench loghub_accuracy
//! ```
//!
//! Data: `$LOGHUB_2K_DIR`, default `<repo>/../shared/data/loghub-2k` (one
//! folder per dataset with `<DS>_2k.log_structured_corrected.csv`). The
//! `Content` column is mined, in file order, by a fresh miner with the default
//! configuration; each line's final template is its template id resolved
//! through lineage.
//!
//! - Grouping accuracy (GA): share of lines whose predicted group holds
//!   exactly the lines of their true group (`EventId`).
//! - Parsing accuracy (PA): share of lines whose predicted template equals
//!   `EventTemplate` after normalising both the same way: typed markers such
//!   as `<NUM>` become `<*>`, whitespace runs become one space and are
//!   trimmed, and a run of wildcards separated only by whitespace (or
//!   nothing) becomes one `<*>`.
//!
//! `GRAYSCOPE_ACCURACY_DEBUG=<DS>` also prints that dataset's misses.

#![allow(clippy::print_stdout, missing_docs, clippy::panic)]

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    time::Instant,
};

use grayscope_patterns::{Miner, MinerConfig, TemplateId};

const DATASETS: &[&str] = &[
    "BGL",
    "HDFS",
    "Hadoop",
    "HealthApp",
    "Linux",
    "Mac",
    "OpenSSH",
    "Spark",
];

fn data_dir() -> PathBuf {
    match std::env::var_os("LOGHUB_2K_DIR") {
        Some(d) => PathBuf::from(d),
        // Benches run with the crate as working directory; resolve from the
        // manifest so the default works from anywhere.
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub-2k"),
    }
}

/// RFC 4180 records (quoted fields, doubled quotes, newlines in quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

struct Sample {
    content: Vec<String>,
    event: Vec<String>,
    template: Vec<String>,
}

fn load(dir: &Path, ds: &str) -> Result<Sample, String> {
    let path = dir
        .join(ds)
        .join(format!("{ds}_2k.log_structured_corrected.csv"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows = parse_csv(&text);
    let header = rows.first().ok_or("empty csv")?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or(format!("no {name} column"))
    };
    let (c, e, t) = (col("Content")?, col("EventId")?, col("EventTemplate")?);
    let mut s = Sample {
        content: Vec::new(),
        event: Vec::new(),
        template: Vec::new(),
    };
    for r in rows.iter().skip(1).filter(|r| r.len() > c.max(e).max(t)) {
        s.content.push(r[c].clone());
        s.event.push(r[e].clone());
        s.template.push(r[t].clone());
    }
    Ok(s)
}

/// The PA normalisation (see the module docs).
fn normalise(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let words: Vec<&str> = t.split_whitespace().collect();
    let joined = marker_to_wildcard(&words.join(" "));
    let mut rest = joined.as_str();
    while let Some(p) = rest.find("<*>") {
        out.push_str(&rest[..p]);
        out.push_str("<*>");
        rest = &rest[p + 3..];
        // Swallow further wildcards separated only by whitespace.
        loop {
            let trimmed = rest.trim_start_matches(' ');
            if let Some(r) = trimmed.strip_prefix("<*>") {
                rest = r;
            } else {
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Typed variable markers some ground truths use (`<NUM>`) become `<*>`.
fn marker_to_wildcard(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(p) = rest.find('<') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        let name_len = after.bytes().take_while(u8::is_ascii_uppercase).count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'>') {
            out.push_str("<*>");
            rest = &after[name_len + 1..];
        } else {
            out.push('<');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

struct Score {
    ga: f64,
    pa: f64,
    true_groups: usize,
    pred_groups: usize,
    secs: f64,
}

/// The configuration measured: the default, unless an experiment overrides
/// fields with `GRAYSCOPE_ACCURACY_CONFIG='{"min_distinct_values":3}'` (the
/// published table always uses the default).
fn config() -> MinerConfig {
    match std::env::var("GRAYSCOPE_ACCURACY_CONFIG") {
        Ok(json) => {
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("GRAYSCOPE_ACCURACY_CONFIG: {e}"))
        }
        Err(_) => MinerConfig::default(),
    }
}

fn evaluate(ds: &str, s: &Sample, debug: bool) -> Score {
    let mut miner = Miner::new(config());
    let start = Instant::now();
    let ids: Vec<TemplateId> = s
        .content
        .iter()
        .enumerate()
        .map(|(i, line)| miner.mine(line, i as u64).template_id)
        .collect();
    let secs = start.elapsed().as_secs_f64();
    let text: HashMap<TemplateId, String> = miner
        .templates()
        .map(|t| (t.id, t.template.to_string()))
        .collect();
    let resolved: Vec<TemplateId> = ids
        .iter()
        .map(|id| miner.resolve(id).unwrap_or(*id))
        .collect();
    let n = s.content.len();

    let mut pred_groups: HashMap<TemplateId, Vec<usize>> = HashMap::new();
    for (i, id) in resolved.iter().enumerate() {
        pred_groups.entry(*id).or_default().push(i);
    }
    let mut true_size: HashMap<&str, usize> = HashMap::new();
    for e in &s.event {
        *true_size.entry(e.as_str()).or_default() += 1;
    }
    let mut correct_ga = 0usize;
    let mut ga_miss: BTreeMap<String, usize> = BTreeMap::new();
    for lines in pred_groups.values() {
        let e0 = s.event[lines[0]].as_str();
        if lines.iter().all(|&i| s.event[i] == e0) && true_size[e0] == lines.len() {
            correct_ga += lines.len();
        } else if debug {
            for &i in lines {
                let key = format!(
                    "pred {:?} | true {:?} ({} of {})",
                    text.get(&resolved[i]).map(String::as_str).unwrap_or("?"),
                    s.template[i],
                    lines.iter().filter(|&&j| s.event[j] == s.event[i]).count(),
                    true_size[s.event[i].as_str()]
                );
                *ga_miss.entry(key).or_default() += 1;
            }
        }
    }
    let mut correct_pa = 0usize;
    let mut pa_miss: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, id) in resolved.iter().enumerate() {
        let pred = text.get(id).map(String::as_str).unwrap_or("");
        if normalise(pred) == normalise(&s.template[i]) {
            correct_pa += 1;
        } else if debug {
            *pa_miss
                .entry((normalise(pred), normalise(&s.template[i])))
                .or_default() += 1;
        }
    }
    if debug {
        println!("--- {ds}: GA misses (lines)");
        let mut v: Vec<_> = ga_miss.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        for (k, c) in v {
            println!("{c:5} {k}");
        }
        println!("--- {ds}: PA misses (lines)");
        let mut v: Vec<_> = pa_miss.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        for ((p, t), c) in v {
            println!("{c:5} pred {p}\n      true {t}");
        }
    }
    let true_groups = true_size.len();
    Score {
        ga: correct_ga as f64 / n as f64,
        pa: correct_pa as f64 / n as f64,
        true_groups,
        pred_groups: pred_groups.len(),
        secs,
    }
}

fn main() {
    let dir = data_dir();
    let debug = std::env::var("GRAYSCOPE_ACCURACY_DEBUG").unwrap_or_default();
    println!(
        "Loghub-2k accuracy, default MinerConfig, data {}",
        dir.display()
    );
    println!();
    println!("| dataset | true templates | predicted templates | GA | PA |");
    println!("|---|---:|---:|---:|---:|");
    let (mut ga, mut pa, mut k) = (0.0, 0.0, 0usize);
    let mut secs = 0.0;
    for ds in DATASETS {
        let sample = match load(&dir, ds) {
            Ok(s) => s,
            Err(e) => {
                println!("| {ds} | skipped: {e} | | | |");
                continue;
            }
        };
        let s = evaluate(ds, &sample, debug == *ds || debug == "all");
        println!(
            "| {ds} | {} | {} | {:.3} | {:.3} |",
            s.true_groups, s.pred_groups, s.ga, s.pa
        );
        ga += s.ga;
        pa += s.pa;
        secs += s.secs;
        k += 1;
    }
    if k > 0 {
        println!(
            "| **average** | | | **{:.3}** | **{:.3}** |",
            ga / k as f64,
            pa / k as f64
        );
        println!();
        println!("mining time for all {k} samples: {:.1} ms", secs * 1e3);
    }
}
