//! Hour partitions: `<table>/date=YYYY-MM-DD/hour=HH/`.
//!
//! Every row lands in the partition of its `time` column's hour (UTC).
//! Partitions are the unit of retention: a partition whose hour ended
//! before the retention horizon is dropped whole.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike as _, NaiveDate, Timelike as _};

/// Nanoseconds in an hour.
pub const HOUR_NS: i64 = 3_600_000_000_000;

/// One hour of one table, identified by hours since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    hour: i64,
}

impl Partition {
    /// The partition holding a row whose time is `nanos` since the epoch.
    pub fn of_nanos(nanos: i64) -> Partition {
        Partition {
            hour: nanos.div_euclid(HOUR_NS),
        }
    }

    /// First nanosecond of the partition.
    pub fn start_nanos(self) -> i64 {
        self.hour.saturating_mul(HOUR_NS)
    }

    /// First nanosecond after the partition.
    pub fn end_nanos(self) -> i64 {
        (self.hour + 1).saturating_mul(HOUR_NS)
    }

    /// `date=YYYY-MM-DD/hour=HH`, relative to the table's directory.
    pub fn relative_dir(self) -> PathBuf {
        let start = DateTime::from_timestamp(self.hour.saturating_mul(3600), 0).unwrap_or_default();
        PathBuf::from(format!(
            "date={:04}-{:02}-{:02}",
            start.year(),
            start.month(),
            start.day()
        ))
        .join(format!("hour={:02}", start.hour()))
    }

    /// The partition named by a `date=…` and an `hour=…` directory.
    pub fn parse(date_dir: &str, hour_dir: &str) -> Option<Partition> {
        let date = NaiveDate::parse_from_str(date_dir.strip_prefix("date=")?, "%Y-%m-%d").ok()?;
        let hour: i64 = hour_dir.strip_prefix("hour=")?.parse().ok()?;
        if !(0..24).contains(&hour) {
            return None;
        }
        let days = date
            .signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?)
            .num_days();
        Some(Partition {
            hour: days * 24 + hour,
        })
    }

    /// The partition's directory under a table directory.
    pub fn dir_in(self, table_dir: &Path) -> PathBuf {
        table_dir.join(self.relative_dir())
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.relative_dir().display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_utc_hours() {
        // 2025-11-24T16:00:00Z
        let t = 1_764_000_000_000_000_000;
        let p = Partition::of_nanos(t);
        assert_eq!(p.relative_dir(), PathBuf::from("date=2025-11-24/hour=16"));
        assert!(p.start_nanos() <= t && t < p.end_nanos());
        assert_eq!(
            Partition::of_nanos(p.end_nanos()),
            Partition { hour: p.hour + 1 }
        );
        assert_eq!(Partition::of_nanos(p.end_nanos() - 1), p);
    }

    #[test]
    fn directory_names_parse_back() {
        for nanos in [0, 1_764_000_000_000_000_000, -1, 4_102_444_800_000_000_000] {
            let p = Partition::of_nanos(nanos);
            let dir = p.relative_dir();
            let mut parts = dir.iter().map(|c| c.to_str().unwrap());
            let (date, hour) = (parts.next().unwrap(), parts.next().unwrap());
            assert_eq!(Partition::parse(date, hour), Some(p), "{dir:?}");
        }
        assert_eq!(Partition::parse("date=2025-13-01", "hour=01"), None);
        assert_eq!(Partition::parse("date=2025-01-01", "hour=24"), None);
        assert_eq!(Partition::parse("2025-01-01", "hour=01"), None);
    }
}
