//! The three OTLP signals and where each one goes.

use std::fmt;

use grayscope_core::Table;

/// An OpenTelemetry signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Log records.
    Logs,
    /// Metric data points.
    Metrics,
}

impl Signal {
    /// The table the signal is stored in.
    pub fn table(self) -> Table {
        match self {
            Signal::Traces => Table::Spans,
            Signal::Logs => Table::Logs,
            Signal::Metrics => Table::Metrics,
        }
    }

    /// The OTLP/HTTP path of the signal.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
        }
    }

    /// The fully qualified OTLP/gRPC service name.
    pub fn grpc_service(self) -> &'static str {
        match self {
            Signal::Traces => "opentelemetry.proto.collector.trace.v1.TraceService",
            Signal::Logs => "opentelemetry.proto.collector.logs.v1.LogsService",
            Signal::Metrics => "opentelemetry.proto.collector.metrics.v1.MetricsService",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        })
    }
}
