//! `grayscope mine [FILE|-]`: mines log bodies, one per line, with the
//! template miner and rules that ingest uses, and prints each line's
//! template.
//!
//! Each line goes through `LogMining::mine`, the function the logs converter
//! calls for every record's body, with the same `[patterns]` settings and
//! `[[log_rules]]` when `--config` names the server's file. A fresh miner
//! fed the same bodies in the same order as a fresh server gives the same
//! ids (ids are hashes of the template text, so they agree with any
//! server that reached the same templates).
//!
//! Standard output: one row per line — line number (from 1), template id,
//! template, and with rules configured the rules it matches — as CSV with a
//! header, or JSON lines with `--format json`. Standard error: the
//! templates with their line counts (most frequent first; a template that
//! later generalised is counted under its replacement), and the rule hits.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use grayscope_core::Config;
use grayscope_ingest::mining::TemplateId;
use grayscope_ingest::{LogMining, LogMiningBuilder};

/// Arguments of `grayscope mine`.
#[derive(Debug, clap::Args)]
pub struct MineArgs {
    /// File of log bodies, one per line; `-` or none reads standard input.
    file: Option<PathBuf>,
    /// Output format of the per-line rows.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Configuration file whose `[patterns]` settings and `[[log_rules]]`
    /// to use (without one: the default miner, no rules).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// Output formats of `grayscope mine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// `line,template_id,template[,rules]` with a header row; rules are
    /// joined with `;`.
    Csv,
    /// One JSON object per line: `{"line", "template_id", "template",
    /// "rules"}`.
    Json,
}

/// Runs `grayscope mine`.
pub fn main(args: MineArgs) -> anyhow::Result<ExitCode> {
    let builder = match &args.config {
        Some(path) => crate::load_config(path)?.1,
        None => LogMiningBuilder::from_config(&Config::default())?,
    };
    let mining = builder.in_memory();
    let input: Box<dyn BufRead> = match args.file.as_deref() {
        None => Box::new(io::stdin().lock()),
        Some(path) if path == Path::new("-") => Box::new(io::stdin().lock()),
        Some(path) => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
    };
    let stdout = io::stdout().lock();
    let mut output = BufWriter::new(stdout);
    let tally = match mine(&mining, input, &mut output, args.format) {
        Ok(tally) => tally,
        // A closed pipe (`grayscope mine … | head`) ends the output, not in error.
        Err(error) if is_broken_pipe(&error) => return Ok(ExitCode::SUCCESS),
        Err(error) => return Err(error),
    };
    match output.flush() {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(ExitCode::SUCCESS);
        }
        result => result.context("cannot write to standard output")?,
    }
    let mut stderr = io::stderr().lock();
    summarise(&mining, &tally, &mut stderr).context("cannot write to standard error")?;
    Ok(ExitCode::SUCCESS)
}

/// What the summary needs: lines per template id as mined, and rule hits.
#[derive(Debug, Default)]
struct Tally {
    lines: u64,
    /// Template id at mining time → its text then and its lines.
    templates: HashMap<u64, (Arc<str>, u64)>,
    /// Lines matched, by rule index.
    rule_hits: Vec<u64>,
}

fn mine(
    mining: &LogMining,
    mut input: impl BufRead,
    output: &mut impl Write,
    format: Format,
) -> anyhow::Result<Tally> {
    let with_rules = !mining.rules().is_empty();
    let mut tally = Tally {
        rule_hits: vec![0; mining.rules().len()],
        ..Tally::default()
    };
    if format == Format::Csv {
        let rules = if with_rules { ",rules" } else { "" };
        writeln!(output, "line,template_id,template{rules}")?;
    }
    let mut hits = mining.rule_hits();
    let mut raw = Vec::new();
    let names = mining.rules().names();
    let mut rules: Vec<&str> = Vec::new();
    loop {
        raw.clear();
        let read = input
            .read_until(b'\n', &mut raw)
            .context("cannot read the input")?;
        if read == 0 {
            break;
        }
        tally.lines += 1;
        let line = strip_line_end(&raw);
        // OTLP bodies are UTF-8 by protocol; a file need not be.
        let body = String::from_utf8_lossy(line);
        let mined = mining.mine(&body, now_unix_nano(), &mut hits);
        let id = mined.template_id.as_u64();
        tally
            .templates
            .entry(id)
            .or_insert_with(|| (mined.template.clone(), 0))
            .1 += 1;
        rules.clear();
        for index in hits.indices() {
            if let (Some(count), Some(name)) = (tally.rule_hits.get_mut(index), names.get(index)) {
                *count += 1;
                rules.push(name);
            }
        }
        match format {
            Format::Csv => {
                write!(
                    output,
                    "{},{},{}",
                    tally.lines,
                    mined.template_id,
                    csv_field(&mined.template)
                )?;
                if with_rules {
                    write!(output, ",{}", csv_field(&rules.join(";")))?;
                }
                writeln!(output)?;
            }
            Format::Json => {
                let row = serde_json::json!({
                    "line": tally.lines,
                    "template_id": mined.template_id.to_string(),
                    "template": &*mined.template,
                    "rules": rules,
                });
                writeln!(output, "{row}")?;
            }
        }
    }
    Ok(tally)
}

/// Templates by line count, each mined id counted under the current
/// template its lineage ends in; then rule hits.
fn summarise(mining: &LogMining, tally: &Tally, out: &mut impl Write) -> io::Result<()> {
    let current: HashMap<u64, Arc<str>> = mining
        .templates()
        .into_iter()
        .filter(|t| t.parent_id.is_none())
        .map(|t| (t.id.as_u64(), t.template))
        .collect();
    let mut totals: HashMap<u64, (Arc<str>, u64)> = HashMap::new();
    for (&id, (text, count)) in &tally.templates {
        // An evicted lineage leaves the id as it was mined.
        let target = mining
            .resolve(&TemplateId::from_u64(id))
            .map_or(id, |t| t.as_u64());
        let text = current
            .get(&target)
            .cloned()
            .unwrap_or_else(|| text.clone());
        totals.entry(target).or_insert_with(|| (text, 0)).1 += count;
    }
    let mut rows: Vec<(u64, Arc<str>, u64)> = totals
        .into_iter()
        .map(|(id, (text, count))| (id, text, count))
        .collect();
    rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    let stats = mining.stats();
    writeln!(
        out,
        "{} lines, {} templates ({} JSON, {} logfmt, {} multi-line, {} truncated)",
        tally.lines,
        rows.len(),
        stats.json_lines,
        stats.logfmt_lines,
        stats.multiline_lines,
        stats.truncated_lines
    )?;
    writeln!(out, "{:>8}  {:<16}  template", "lines", "template_id")?;
    for (id, text, count) in &rows {
        writeln!(out, "{count:>8}  {id:016x}  {text}")?;
    }
    if !mining.rules().is_empty() {
        writeln!(out, "rule hits:")?;
        for (name, count) in mining.rules().names().iter().zip(&tally.rule_hits) {
            writeln!(out, "{count:>8}  {name}")?;
        }
    }
    Ok(())
}

/// The line without its `\n` or `\r\n`.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
