//! `[api]`: the HTTP API (SQL over HTTP).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ByteSize, invalid};
use crate::error::Result;

/// The HTTP API server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address of the HTTP API (`POST /api/v1/sql`). Default
    /// `127.0.0.1:7600`. Port 0 picks a free port.
    pub addr: SocketAddr,
    /// Largest SQL request body accepted. Default `1MiB`.
    pub max_sql_size: ByteSize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 7600)),
            max_sql_size: ByteSize(1024 * 1024),
        }
    }
}

impl ApiConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_sql_size.0 == 0 {
            return Err(invalid("api.max_sql_size", "must not be zero"));
        }
        Ok(())
    }
}
