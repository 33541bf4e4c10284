//! `grayscope trace-id new` and `grayscope trace-id decode`: make a trace id
//! that carries a gray flag, as a router colouring a request would, and
//! explain one.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use grayscope_core::gray_flag::{GrayFlagMap, parse_trace_id_hex, trace_id_hex};
use grayscope_core::{Config, GrayFlag};

/// `grayscope trace-id …`.
#[derive(Debug, Args)]
pub struct TraceIdArgs {
    #[command(subcommand)]
    command: TraceIdCommand,
}

#[derive(Debug, Subcommand)]
enum TraceIdCommand {
    /// Print fresh trace ids whose last two bytes carry an environment's
    /// gray flag (6 bytes of milliseconds since the epoch, 8 random bytes,
    /// 2 bytes of flag).
    New {
        /// The environment: `staging`, `canary`, `none`, a cohort named in
        /// the configuration's `[gray_flags]`, or a flag in hex (`0x0003`).
        #[arg(long, default_value = "none")]
        env: String,
        /// How many ids to print, one per line.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Configuration file whose `[gray_flags]` name further cohorts.
        #[arg(long, short, env = "GRAYSCOPE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Explain a trace id: its gray flag, the cohort the flag names, and the
    /// time embedded by `trace-id new`.
    Decode {
        /// A trace id as 32 hex digits, or a W3C `traceparent` value
        /// (`00-<trace id>-<span id>-<flags>`).
        id: String,
        /// Configuration file whose `[gray_flags]` name further cohorts.
        #[arg(long, short, env = "GRAYSCOPE_CONFIG")]
        config: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A command-line value that makes no sense: exit code 2, like a usage
/// error.
#[derive(Debug)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Runs a `trace-id` subcommand.
pub fn main(args: TraceIdArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TraceIdCommand::New { env, count, config } => {
            let flags = flag_map(config)?;
            let flag = env_flag(&flags, &env)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or_default();
            #[allow(clippy::print_stdout)]
            for _ in 0..count {
                let id = flag.encode_trace_id(now, rand::random());
                println!("{}", trace_id_hex(&id));
            }
        }
        TraceIdCommand::Decode { id, config, json } => {
            let flags = flag_map(config)?;
            let trace_id = parse_trace_id_hex(trace_id_part(&id))?;
            let explained = explain(&flags, &trace_id);
            #[allow(clippy::print_stdout)]
            if json {
                println!("{}", explained.json());
            } else {
                print!("{explained}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn flag_map(config: Option<PathBuf>) -> anyhow::Result<GrayFlagMap> {
    Ok(match config {
        Some(path) => GrayFlagMap::new(&Config::load(&path)?.gray_flags),
        None => GrayFlagMap::default(),
    })
}

/// The flag `--env` names.
fn env_flag(flags: &GrayFlagMap, env: &str) -> Result<GrayFlag, UsageError> {
    if env.starts_with("0x") || env.starts_with("0X") {
        return env.parse().map_err(UsageError);
    }
    flags.flag_of(env).ok_or_else(|| {
        let known: Vec<String> = ["none".to_owned()]
            .into_iter()
            .chain(flags.iter().map(|(flag, name)| format!("{name} ({flag})")))
            .collect();
        UsageError(format!(
            "--env {env:?} names no gray flag; known: {} (other cohorts are chosen by rules, not by the trace id; pass --config for [gray_flags], or a flag in hex such as 0x0003)",
            known.join(", ")
        ))
    })
}

/// The trace id of a `traceparent` value, or the text itself.
fn trace_id_part(text: &str) -> &str {
    let text = text.trim();
    let parts: Vec<&str> = text.split('-').collect();
    match parts.as_slice() {
        [version, trace_id, span_id, flags]
            if version.len() == 2 && span_id.len() == 16 && flags.len() == 2 =>
        {
            trace_id
        }
        _ => text,
    }
}

struct Explained {
    trace_id: String,
    flag: GrayFlag,
    cohort: Option<String>,
    unix_millis: u64,
}

fn explain(flags: &GrayFlagMap, trace_id: &[u8; 16]) -> Explained {
    let flag = GrayFlag::from_trace_id(trace_id);
    Explained {
        trace_id: trace_id_hex(trace_id),
        flag,
        cohort: flags.cohort(flag).map(str::to_owned),
        unix_millis: GrayFlag::encoded_unix_millis(trace_id),
    }
}

impl Explained {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "trace_id": self.trace_id,
            "flag": self.flag.to_string(),
            "cohort": self.cohort,
            "unix_millis": self.unix_millis,
            "time": rfc3339(self.unix_millis),
        })
    }
}

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "trace id  {}", self.trace_id)?;
        writeln!(f, "flag      {}", self.flag)?;
        match (&self.cohort, self.flag) {
            (Some(cohort), flag) if flag.is_built_in() => {
                writeln!(f, "cohort    {cohort} (built-in flag)")?;
            }
            (Some(cohort), _) => writeln!(f, "cohort    {cohort} (from [gray_flags])")?,
            (None, GrayFlag::NONE) => writeln!(
                f,
                "cohort    none from the flag: the cohort rules decide, else baseline"
            )?,
            (None, flag) => writeln!(
                f,
                "cohort    none from the flag ({flag} is not in [gray_flags]): the cohort rules decide, else baseline"
            )?,
        }
        writeln!(
            f,
            "time      {} ({} ms since the epoch; meaningful for ids made by `grayscope trace-id new` or a router using the same layout)",
            rfc3339(self.unix_millis),
            self.unix_millis
        )
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch.
fn rfc3339(unix_millis: u64) -> String {
    let days = unix_millis / 86_400_000;
    let rest = unix_millis % 86_400_000;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339((1 << 48) - 1), "10889-08-02T05:31:50.655Z");
    }

    #[test]
    fn envs_name_flags() {
        let flags = GrayFlagMap::new(&BTreeMap::from([(GrayFlag(3), "gray-b".to_owned())]));
        assert_eq!(env_flag(&flags, "canary").unwrap(), GrayFlag::CANARY);
        assert_eq!(env_flag(&flags, "staging").unwrap(), GrayFlag::STAGING);
        assert_eq!(env_flag(&flags, "none").unwrap(), GrayFlag::NONE);
        assert_eq!(env_flag(&flags, "gray-b").unwrap(), GrayFlag(3));
        assert_eq!(env_flag(&flags, "0x0009").unwrap(), GrayFlag(9));
        let error = env_flag(&flags, "gray-z").unwrap_err().to_string();
        assert!(error.contains("gray-b (0x0003)"), "{error}");
        assert!(env_flag(&flags, "0xzz").is_err());
    }

    #[test]
    fn traceparents_are_read_for_their_trace_id() {
        assert_eq!(
            trace_id_part("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(trace_id_part(" abc "), "abc");
    }
}
