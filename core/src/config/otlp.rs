//! `[otlp]`: the OpenTelemetry protocol receivers.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ByteSize, invalid};
use crate::error::Result;

/// The OTLP/gRPC and OTLP/HTTP receivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Address of the OTLP/gRPC receiver. Default `127.0.0.1:4317`. Port 0
    /// picks a free port; the address is printed at start-up.
    pub grpc_addr: SocketAddr,
    /// Address of the OTLP/HTTP receiver (`/v1/traces`, `/v1/logs`,
    /// `/v1/metrics`). Default `127.0.0.1:4318`.
    pub http_addr: SocketAddr,
    /// Largest export request accepted, before and after decompression.
    /// Larger requests get HTTP 413 / gRPC RESOURCE_EXHAUSTED and are not
    /// read further. Default `16MiB`.
    pub max_request_size: ByteSize,
    /// Export requests handled at once, over both protocols. Further
    /// requests are answered with back-pressure at once (HTTP 429 with
    /// Retry-After, gRPC RESOURCE_EXHAUSTED with retry info), so memory for
    /// request bodies stays under this many times `max_request_size`.
    /// Default 64.
    pub max_concurrent_requests: usize,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 4318)),
            max_request_size: ByteSize(16 * 1024 * 1024),
            max_concurrent_requests: 64,
        }
    }
}

impl OtlpConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_request_size.0 < 1024 {
            return Err(invalid("otlp.max_request_size", "must be at least 1 KiB"));
        }
        if self.max_concurrent_requests == 0 {
            return Err(invalid("otlp.max_concurrent_requests", "must not be zero"));
        }
        Ok(())
    }
}
