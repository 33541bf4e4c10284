//! Scenario → OTLP export requests, one slice of time at a time.

use std::time::Duration;

use grayscope_core::GrayFlag;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};

use crate::random::Random;
use crate::scenario::{CohortProfile, FaultTarget, LogTemplate, Scenario};

/// The telemetry of one slice of time.
#[derive(Debug, Clone, Default)]
pub struct Slice {
    /// Start of the slice, nanoseconds since the epoch.
    pub start: i64,
    /// End of the slice.
    pub end: i64,
    /// Server spans of every request in the slice.
    pub traces: ExportTraceServiceRequest,
    /// Their log records.
    pub logs: ExportLogsServiceRequest,
    /// Kernel metrics of every pod, one point per pod for the slice.
    pub metrics: ExportMetricsServiceRequest,
    /// Requests per cohort: (baseline, canary).
    pub requests: (u64, u64),
}

/// Produces a scenario's telemetry.
pub struct Generator {
    scenario: Scenario,
    canary: CohortProfile,
    random: Random,
    start: i64,
    elapsed: Duration,
}

const ROUTES: [&str; 4] = ["/api/cart", "/api/checkout", "/api/items/{id}", "/api/user"];
const HOSTS: [&str; 4] = [
    "redis-0.cache",
    "redis-1.cache",
    "db-primary",
    "payments.internal",
];

/// What a cohort does during one slice, faults included.
struct Behaviour {
    profile: CohortProfile,
    canary: bool,
    latency_factor: f64,
    error_rate: f64,
    retransmit_factor: f64,
    traffic_factor: f64,
    fault_logs: Vec<LogTemplate>,
}

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        key_strindex: 0,
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        key_strindex: 0,
    }
}

fn severity_number(name: &str) -> i32 {
    match name {
        "trace" => 1,
        "debug" => 5,
        "info" => 9,
        "warn" => 13,
        "error" => 17,
        "fatal" => 21,
        _ => 17,
    }
}

impl Generator {
    /// A generator whose run starts at `start` (nanoseconds since the epoch).
    pub fn new(scenario: &Scenario, start: i64) -> Generator {
        Generator {
            canary: scenario.canary_profile(),
            random: Random::new(scenario.seed),
            scenario: scenario.clone(),
            start,
            elapsed: Duration::ZERO,
        }
    }

    /// How much of the run has been generated.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Whether the whole run has been generated.
    pub fn done(&self) -> bool {
        self.elapsed >= self.scenario.duration.get()
    }

    /// The time of the start of the run.
    pub fn start(&self) -> i64 {
        self.start
    }

    fn behaviour(&self, canary: bool) -> Behaviour {
        let profile = if canary {
            &self.canary
        } else {
            &self.scenario.baseline
        };
        let mut behaviour = Behaviour {
            profile: profile.clone(),
            canary,
            latency_factor: 1.0,
            error_rate: profile.error_rate,
            retransmit_factor: 1.0,
            traffic_factor: 1.0,
            fault_logs: Vec::new(),
        };
        for fault in &self.scenario.faults {
            let hits = match fault.target {
                FaultTarget::All => true,
                FaultTarget::Canary => canary,
                FaultTarget::Baseline => !canary,
            };
            if hits && self.elapsed >= fault.from.get() {
                behaviour.latency_factor *= fault.latency_factor;
                behaviour.error_rate += fault.extra_error_rate;
                behaviour.retransmit_factor *= fault.retransmit_factor;
                behaviour.traffic_factor *= fault.traffic_factor;
                if let Some(log) = &fault.log {
                    behaviour.fault_logs.push(log.clone());
                }
            }
        }
        behaviour.error_rate = behaviour.error_rate.clamp(0.0, 1.0);
        behaviour
    }

    /// Generates the next `length` of the run.
    pub fn next_slice(&mut self, length: Duration) -> Slice {
        let start = self.start + self.elapsed.as_nanos() as i64;
        let end = start + length.as_nanos() as i64;
        let mut slice = Slice {
            start,
            end,
            ..Slice::default()
        };
        let share = self.scenario.canary_share;
        for canary in [false, true] {
            let cohort_share = if canary { share } else { 1.0 - share };
            let (spans, logs, metrics, requests) = {
                let behaviour = self.behaviour(canary);
                let expected = self.scenario.requests_per_second
                    * cohort_share
                    * length.as_secs_f64()
                    * behaviour.traffic_factor;
                let requests = self.random.poisson(expected);
                let (spans, logs) = self.requests(&behaviour, requests, start, end);
                let metrics = self.kernel(&behaviour, start, end, length);
                (spans, logs, metrics, requests)
            };
            let profile = if canary {
                &self.canary
            } else {
                &self.scenario.baseline
            };
            let resource = Resource {
                attributes: vec![
                    text("service.name", self.scenario.service.clone()),
                    text("service.version", profile.version.clone()),
                    text("deployment.environment.name", "production"),
                ],
                ..Default::default()
            };
            let scope = Some(InstrumentationScope {
                name: "grayscope-sim".to_owned(),
                ..Default::default()
            });
            slice.traces.resource_spans.push(ResourceSpans {
                resource: Some(resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: scope.clone(),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            });
            slice.logs.resource_logs.push(ResourceLogs {
                resource: Some(resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: scope.clone(),
                    log_records: logs,
                    ..Default::default()
                }],
                ..Default::default()
            });
            slice.metrics.resource_metrics.extend(metrics);
            if canary {
                slice.requests.1 = requests;
            } else {
                slice.requests.0 = requests;
            }
        }
        self.elapsed += length;
        slice
    }

    fn fill(&mut self, template: &str) -> String {
        let mut out = template.to_owned();
        if out.contains("{n}") {
            out = out.replace("{n}", &self.random.below(10_000).to_string());
        }
        if out.contains("{ms}") {
            out = out.replace("{ms}", &(50 + self.random.below(5_000)).to_string());
        }
        if out.contains("{host}") {
            out = out.replace(
                "{host}",
                HOSTS[self.random.below(HOSTS.len() as u64) as usize],
            );
        }
        if out.contains("{id}") {
            let id = format!(
                "{:016x}",
                u64::from_le_bytes(self.random.bytes16()[..8].try_into().unwrap_or_default())
            );
            out = out.replace("{id}", &id);
        }
        out
    }

    fn requests(
        &mut self,
        b: &Behaviour,
        count: u64,
        start: i64,
        end: i64,
    ) -> (Vec<Span>, Vec<LogRecord>) {
        let flag = if b.canary {
            GrayFlag::CANARY
        } else {
            GrayFlag::NONE
        };
        let mut spans = Vec::with_capacity(count as usize);
        let mut logs = Vec::with_capacity((count as f64 * b.profile.logs_per_request) as usize + 8);
        for _ in 0..count {
            let at = start + (self.random.unit() * (end - start) as f64) as i64;
            let random = self.random.bytes16();
            let mut trace_id = flag.encode_trace_id(
                (at / 1_000_000) as u64,
                random[..8].try_into().unwrap_or_default(),
            );
            trace_id[6..14].copy_from_slice(&random[8..16]);
            let span_id = random[..8].to_vec();
            let ms = self.random.lognormal(
                b.profile.latency.median_ms * b.latency_factor,
                b.profile.latency.spread,
            );
            let failed = self.random.chance(b.error_rate);
            let route = ROUTES[self.random.below(ROUTES.len() as u64) as usize];
            let user = self.random.below(50_000);
            // What the request asked for: the route with its id filled in.
            let path = route.replace("{id}", &(user % 9_973).to_string());
            spans.push(Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.clone(),
                name: format!("GET {route}"),
                kind: 2,
                start_time_unix_nano: at as u64,
                end_time_unix_nano: (at + (ms * 1e6) as i64) as u64,
                attributes: vec![
                    text("http.route", route),
                    text("http.request.method", "GET"),
                    int("http.response.status_code", if failed { 500 } else { 200 }),
                    int("user.id", user as i64),
                ],
                status: Some(Status {
                    code: if failed {
                        status::StatusCode::Error as i32
                    } else {
                        status::StatusCode::Unset as i32
                    },
                    message: if failed {
                        "upstream returned 500".to_owned()
                    } else {
                        String::new()
                    },
                }),
                ..Default::default()
            });
            let log = |body: String, severity: &str, logs: &mut Vec<LogRecord>| {
                logs.push(LogRecord {
                    time_unix_nano: at as u64,
                    observed_time_unix_nano: at as u64,
                    severity_number: severity_number(severity),
                    severity_text: severity.to_uppercase(),
                    body: Some(AnyValue {
                        value: Some(Value::StringValue(body)),
                    }),
                    trace_id: trace_id.to_vec(),
                    span_id: span_id.clone(),
                    ..Default::default()
                });
            };
            let lines = self.random.poisson(b.profile.logs_per_request);
            for i in 0..lines {
                let body = match i % 3 {
                    0 => format!(
                        "GET {path} {} {ms:.0}ms user={user}",
                        if failed { 500 } else { 200 }
                    ),
                    1 => format!(
                        "cache lookup for key cart:{user} took {}us",
                        20 + self.random.below(400)
                    ),
                    _ => format!(
                        "order {} reserved {} items",
                        100_000 + self.random.below(900_000),
                        1 + self.random.below(9)
                    ),
                };
                log(body, "info", &mut logs);
            }
            if self.random.chance(b.profile.warn_rate) {
                let body = format!(
                    "slow query on orders took {}ms",
                    200 + self.random.below(800)
                );
                log(body, "warn", &mut logs);
            }
            if failed {
                log(
                    format!("request failed: upstream returned 500 for {path}"),
                    "error",
                    &mut logs,
                );
            }
            for template in &b.fault_logs {
                if self.random.chance(template.per_request) {
                    let body = self.fill(&template.text);
                    log(body, &template.severity, &mut logs);
                }
            }
        }
        (spans, logs)
    }

    fn kernel(
        &mut self,
        b: &Behaviour,
        start: i64,
        end: i64,
        length: Duration,
    ) -> Vec<ResourceMetrics> {
        (0..b.profile.pods)
            .map(|pod| {
                let mean =
                    b.profile.retransmits_per_second * b.retransmit_factor * length.as_secs_f64();
                let value = self.random.poisson(mean);
                ResourceMetrics {
                    resource: Some(Resource {
                        attributes: vec![
                            text("service.name", self.scenario.service.clone()),
                            text("service.version", b.profile.version.clone()),
                            text(
                                "k8s.pod.name",
                                format!(
                                    "{}-{}-{pod}",
                                    self.scenario.service,
                                    if b.canary { "canary" } else { "stable" }
                                ),
                            ),
                        ],
                        ..Default::default()
                    }),
                    scope_metrics: vec![ScopeMetrics {
                        scope: Some(InstrumentationScope {
                            name: "ebpf-agent".to_owned(),
                            ..Default::default()
                        }),
                        metrics: vec![Metric {
                            name: "tcp.retransmits".to_owned(),
                            unit: "{segment}".to_owned(),
                            data: Some(metric::Data::Sum(Sum {
                                data_points: vec![NumberDataPoint {
                                    start_time_unix_nano: start as u64,
                                    time_unix_nano: end as u64,
                                    value: Some(number_data_point::Value::AsInt(value as i64)),
                                    ..Default::default()
                                }],
                                aggregation_temporality: AggregationTemporality::Delta as i32,
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Expectation;

    fn scenario(toml: &str) -> Scenario {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn slices_carry_both_cohorts_flagged_and_versioned() {
        let s = scenario(
            "name = \"t\"\nexpect = \"promote\"\nduration = \"10s\"\nrequests_per_second = 500\n",
        );
        assert_eq!(s.expect, Expectation::Promote);
        let mut g = Generator::new(&s, 1_764_000_000_000_000_000);
        let slice = g.next_slice(Duration::from_secs(1));
        let (baseline, canary) = slice.requests;
        assert!((350..450).contains(&baseline), "{baseline}");
        assert!((70..130).contains(&canary), "{canary}");
        let canary_spans = &slice.traces.resource_spans[1].scope_spans[0].spans;
        assert_eq!(canary_spans.len() as u64, canary);
        assert!(
            canary_spans
                .iter()
                .all(|s| GrayFlag::from_trace_id(&s.trace_id) == GrayFlag::CANARY)
        );
        let baseline_spans = &slice.traces.resource_spans[0].scope_spans[0].spans;
        assert!(
            baseline_spans
                .iter()
                .all(|s| GrayFlag::from_trace_id(&s.trace_id) == GrayFlag::NONE)
        );
        assert!(slice.logs.resource_logs[0].scope_logs[0].log_records.len() as u64 > baseline);
        assert_eq!(slice.metrics.resource_metrics.len(), 4);
        assert!(
            canary_spans
                .iter()
                .all(|s| s.start_time_unix_nano as i64 >= slice.start
                    && (s.start_time_unix_nano as i64) < slice.end)
        );
    }

    #[test]
    fn faults_start_on_time_and_hit_only_their_target() {
        let s = scenario(
            "name = \"t\"\nexpect = \"rollback\"\nduration = \"20s\"\nrequests_per_second = 2000\n\
             [[faults]]\ntarget = \"canary\"\nfrom = \"10s\"\nlatency_factor = 3.0\n\
             log = { text = \"redis timeout after {ms}ms on {host}\", per_request = 0.5 }\n",
        );
        let mut g = Generator::new(&s, 0);
        let median = |spans: &[Span]| {
            let mut d: Vec<u64> = spans
                .iter()
                .map(|s| s.end_time_unix_nano - s.start_time_unix_nano)
                .collect();
            d.sort();
            d[d.len() / 2] as f64 / 1e6
        };
        let before = g.next_slice(Duration::from_secs(10));
        let after = g.next_slice(Duration::from_secs(10));
        let canary_before = median(&before.traces.resource_spans[1].scope_spans[0].spans);
        let canary_after = median(&after.traces.resource_spans[1].scope_spans[0].spans);
        let baseline_after = median(&after.traces.resource_spans[0].scope_spans[0].spans);
        assert!((50.0..70.0).contains(&canary_before), "{canary_before}");
        assert!(canary_after > 150.0, "{canary_after}");
        assert!((50.0..70.0).contains(&baseline_after), "{baseline_after}");
        let timeouts = |slice: &Slice, i: usize| {
            slice.logs.resource_logs[i].scope_logs[0]
                .log_records
                .iter()
                .filter(|l| matches!(&l.body, Some(AnyValue { value: Some(Value::StringValue(b)) }) if b.starts_with("redis timeout")))
                .count()
        };
        assert_eq!(timeouts(&before, 1), 0);
        assert!(timeouts(&after, 1) > 100);
        assert_eq!(timeouts(&after, 0), 0);
        assert!(g.done());
    }

    #[test]
    fn the_same_seed_gives_the_same_telemetry() {
        let s = scenario(
            "name = \"t\"\nexpect = \"promote\"\nduration = \"5s\"\nrequests_per_second = 100\n",
        );
        let a = Generator::new(&s, 0).next_slice(Duration::from_secs(1));
        let b = Generator::new(&s, 0).next_slice(Duration::from_secs(1));
        assert_eq!(a.traces, b.traces);
        assert_eq!(a.logs, b.logs);
    }
}
