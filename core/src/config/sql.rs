//! `[sql]`: the SQL front ends beside SQL over HTTP — the PostgreSQL wire
//! protocol and Arrow Flight SQL — and the limits every query runs under,
//! whichever front end it came through.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ByteSize, ConfigDuration, invalid};
use crate::error::Result;

/// The SQL listeners and the per-query limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// Address of the PostgreSQL wire protocol server (`psql`, Grafana's
    /// PostgreSQL datasource, any PostgreSQL driver). Default
    /// `127.0.0.1:7632`. Port 0 picks a free port.
    pub postgres_addr: SocketAddr,
    /// Address of the Arrow Flight SQL server (ADBC, Grafana's FlightSQL
    /// datasource). Default `127.0.0.1:7633`.
    pub flight_addr: SocketAddr,
    /// Memory one query may use for its operators (sorts, joins,
    /// aggregations); a query that needs more fails with a clear error and
    /// the others keep running. Default `1GiB`.
    pub memory_limit: ByteSize,
    /// How long one query may run before it is cancelled. Default `60s`.
    pub timeout: ConfigDuration,
    /// Queries run at once over all front ends; more wait for a slot (up to
    /// `timeout`). Default 8.
    pub max_concurrent_queries: usize,
    /// PostgreSQL wire connections open at once; one more is refused at
    /// login with SQLSTATE 53300 (too_many_connections), as PostgreSQL
    /// refuses clients beyond its `max_connections`. Default 64.
    pub max_connections: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            postgres_addr: SocketAddr::from(([127, 0, 0, 1], 7632)),
            flight_addr: SocketAddr::from(([127, 0, 0, 1], 7633)),
            memory_limit: ByteSize(1024 * 1024 * 1024),
            timeout: ConfigDuration::from_secs(60),
            max_concurrent_queries: 8,
            max_connections: 64,
        }
    }
}

impl SqlConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.memory_limit.0 == 0 {
            return Err(invalid("sql.memory_limit", "must not be zero"));
        }
        if self.timeout.get().is_zero() {
            return Err(invalid("sql.timeout", "must not be zero"));
        }
        if self.max_concurrent_queries == 0 {
            return Err(invalid("sql.max_concurrent_queries", "must not be zero"));
        }
        if self.max_connections == 0 {
            return Err(invalid("sql.max_connections", "must not be zero"));
        }
        Ok(())
    }
}
