//! End-to-end tests: start the real `grayscope` binary, send it telemetry
//! with real OpenTelemetry clients over loopback, and read it back with SQL.

// A panic in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e {
    pub mod bad_input;
    pub mod cli;
    pub mod cohorts;
    pub mod dashboards;
    pub mod durability;
    pub mod flight_sql;
    pub mod harness;
    pub mod kafka;
    pub mod logs;
    pub mod metrics;
    pub mod parquet_readers;
    pub mod patterns;
    pub mod postgres;
    pub mod prometheus;
    pub mod rollouts;
    pub mod router_api;
    pub mod security;
    pub mod signals;
    pub mod signals_grafana;
    pub mod signals_kafka;
    pub mod signals_tls;
    pub mod signals_watch;
    pub mod sql_docs;
    pub mod sql_http;
    pub mod telemetry;
    pub mod traces;
}
