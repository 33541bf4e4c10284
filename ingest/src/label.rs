//! Cohort labelling: which cohort each record belongs to, decided once, at
//! ingest.
//!
//! The order is DESIGN §3's ([`grayscope_core::cohort`] has the details):
//!
//! 1. the trace id's gray flag (`0x0001` staging, `0x0002` canary, and the
//!    configuration's `[gray_flags]`);
//! 2. the `[[cohorts]]` rules in order, evaluated on the record's attributes
//!    (span, log record or data point), its resource's attributes and W3C
//!    baggage; the first that matches wins;
//! 3. for a log record or a metric exemplar, the cohort a rule gave its
//!    trace's spans ([`TraceJoin`](crate::join::TraceJoin));
//! 4. otherwise `baseline`.
//!
//! A record's `version` is its resource's `service.version`; a log record
//! without one that takes its trace's cohort also takes its trace's version.
//!
//! Rules are evaluated straight over the OTLP `KeyValue` lists, reading
//! only the attributes the rules name, in one walk per record, without
//! building a map ([`attributes`]). Spans are labelled by the converter as
//! it reads them (`SpanLabels`), from the attributes it reads for its
//! columns. Log records and data points are labelled in a pass before
//! conversion ([`Labels`]), since a log record or an exemplar may have to
//! wait for its trace's spans.
//!
//! The [`Labeler`] in use sits behind a [`Labeling`], which swaps it when
//! the rules are reloaded; a request keeps the labeler it started with, and
//! records keep the cohort they were given.

mod attributes;
mod records;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use grayscope_core::config::{CohortConfig, TraceJoinConfig};
use grayscope_core::gray_flag::{GrayFlag, GrayFlagMap};
use grayscope_core::rule::Rule;
use grayscope_core::{Config, cohort};

use crate::convert::Converted;
use crate::convert::DecodedRequest;
use crate::decode::Encoding;
use crate::error::{Error, Result};
use crate::join::{JoinStats, Sighting, TraceJoin};
use crate::mining::LogMining;
use crate::signal::Signal;

pub(crate) use attributes::Lookups;
pub use records::Labels;
pub(crate) use records::SpanLabels;

/// A cohort of a [`Labeler`], by index into its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CohortId(u16);

impl CohortId {
    pub(crate) const BASELINE: CohortId = CohortId(0);
}

/// Decides the cohort of each record: the gray flag mapping and the ordered
/// cohort rules of one configuration.
#[derive(Debug, Clone)]
pub struct Labeler {
    /// Cohort names by [`CohortId`]: `baseline` first, then flag cohorts and
    /// rule cohorts, each name once.
    names: Vec<Arc<str>>,
    /// Configured flags (beyond the built-in ones) and their cohorts.
    flags: Vec<(GrayFlag, CohortId)>,
    staging: CohortId,
    canary: CohortId,
    /// The rules in order, with their cohorts.
    rules: Vec<(CohortId, Rule)>,
    /// Every attribute name the rules read.
    lookups: Lookups,
    /// The configuration this labeler was built from, to show it back.
    cohorts: Vec<CohortConfig>,
    gray_flags: BTreeMap<GrayFlag, String>,
}

impl Default for Labeler {
    fn default() -> Self {
        Labeler::new()
    }
}

impl Labeler {
    /// A labeler with the built-in gray flags only: staging, canary, else
    /// `baseline`.
    pub fn new() -> Labeler {
        Labeler::with_rules(&[], &BTreeMap::new())
    }

    /// A labeler with these rules (in order) and configured gray flags,
    /// validated as [`Config`] validates them.
    pub fn with_rules(
        cohorts: &[CohortConfig],
        gray_flags: &BTreeMap<GrayFlag, String>,
    ) -> Labeler {
        let mut names: Vec<Arc<str>> = vec![cohort::BASELINE.into()];
        let mut id_of = |name: &str| -> CohortId {
            let index = names.iter().position(|n| &**n == name).unwrap_or_else(|| {
                names.push(name.into());
                names.len() - 1
            });
            CohortId(u16::try_from(index).unwrap_or(u16::MAX))
        };
        let staging = id_of(cohort::STAGING);
        let canary = id_of(cohort::CANARY);
        let map = GrayFlagMap::new(gray_flags);
        let flags = map
            .iter()
            .filter(|(flag, _)| !flag.is_built_in())
            .map(|(flag, name)| (flag, id_of(name)))
            .collect();
        let rules: Vec<(CohortId, Rule)> = cohorts
            .iter()
            .map(|c| (id_of(&c.name), c.rule.clone()))
            .collect();
        let lookups = Lookups::new(rules.iter().map(|(_, rule)| rule));
        Labeler {
            names,
            flags,
            staging,
            canary,
            rules,
            lookups,
            cohorts: cohorts.to_vec(),
            gray_flags: gray_flags.clone(),
        }
    }

    /// The labeler a configuration describes (`[[cohorts]]`, `[gray_flags]`).
    pub fn from_config(config: &Config) -> Labeler {
        Labeler::with_rules(&config.cohorts, &config.gray_flags)
    }

    /// The rules, in order.
    pub fn cohorts(&self) -> &[CohortConfig] {
        &self.cohorts
    }

    /// The configured gray flags (beyond the built-in ones).
    pub fn gray_flags(&self) -> &BTreeMap<GrayFlag, String> {
        &self.gray_flags
    }

    /// Whether any rule is configured.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The name of a cohort id.
    pub(crate) fn name(&self, id: CohortId) -> &Arc<str> {
        self.names.get(usize::from(id.0)).unwrap_or(&self.names[0])
    }

    /// The cohort a binary trace id's flag names, if any.
    #[inline]
    pub(crate) fn flag_cohort(&self, trace_id: &[u8]) -> Option<CohortId> {
        match GrayFlag::from_trace_id(trace_id) {
            GrayFlag::NONE => None,
            GrayFlag::STAGING => Some(self.staging),
            GrayFlag::CANARY => Some(self.canary),
            flag => self
                .flags
                .iter()
                .find(|(f, _)| *f == flag)
                .map(|(_, id)| *id),
        }
    }

    /// The cohort of the first rule that matches `attrs`.
    #[inline]
    pub(crate) fn rule_cohort<A: grayscope_core::rule::Attributes>(
        &self,
        attrs: &A,
    ) -> Option<CohortId> {
        self.rules
            .iter()
            .find(|(_, rule)| rule.evaluate(attrs))
            .map(|(id, _)| *id)
    }

    pub(crate) fn lookups(&self) -> &Lookups {
        &self.lookups
    }
}

/// The cohort labelling of a running server: the [`Labeler`] in use, which
/// a reload swaps, and the memory of recently seen traces that log records
/// and exemplars join. Cheap to clone; clones share both.
#[derive(Debug, Clone)]
pub struct Labeling {
    labeler: Arc<RwLock<Arc<Labeler>>>,
    join: Arc<TraceJoin>,
}

impl From<Labeler> for Labeling {
    fn from(labeler: Labeler) -> Self {
        Labeling::new(labeler, &TraceJoinConfig::default())
    }
}

impl Labeling {
    /// Labelling with `labeler`, joining traces as `join` says.
    pub fn new(labeler: Labeler, join: &TraceJoinConfig) -> Labeling {
        Labeling {
            labeler: Arc::new(RwLock::new(Arc::new(labeler))),
            join: Arc::new(TraceJoin::new(join)),
        }
    }

    /// Holds at most `requests` export requests at once (see
    /// [`TraceJoin::limit_held_requests`]).
    pub fn limit_held_requests(&self, requests: usize) {
        self.join.limit_held_requests(requests);
    }

    /// The labeler in use now.
    pub fn labeler(&self) -> Arc<Labeler> {
        match self.labeler.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `labeler` in use for every request that starts from now on;
    /// requests already being labelled finish with the old one.
    pub fn replace(&self, labeler: Labeler) {
        let labeler = Arc::new(labeler);
        match self.labeler.write() {
            Ok(mut guard) => *guard = labeler,
            Err(poisoned) => *poisoned.into_inner() = labeler,
        }
    }

    /// How much the trace join holds and remembers now.
    pub fn join_stats(&self) -> JoinStats {
        self.join.stats()
    }

    /// Decodes an export request, labels its records and converts them into
    /// a batch, mining log bodies with `mining`. Log records and exemplars
    /// whose trace is not known yet may wait here, up to the hold window,
    /// for their trace's spans; the CPU work runs off the async runtime.
    pub(crate) async fn decode_and_convert(
        &self,
        signal: Signal,
        encoding: Encoding,
        body: Bytes,
        mining: LogMining,
    ) -> Result<Converted> {
        let held_bytes = body.len();
        self.label_and_convert(held_bytes, mining, move || {
            DecodedRequest::decode(signal, encoding, body)
        })
        .await
    }

    /// The labelling and conversion of [`Labeling::decode_and_convert`],
    /// for a request that `decode` yields (off the async runtime); a held
    /// request counts `held_bytes` against the hold bound.
    pub(crate) async fn label_and_convert(
        &self,
        held_bytes: usize,
        mining: LogMining,
        decode: impl FnOnce() -> Result<DecodedRequest> + Send + 'static,
    ) -> Result<Converted> {
        let labeler = self.labeler();
        let join = self.join.clone();
        let later = mining.clone();
        let first = blocking(move || {
            let request = decode()?;
            let labels = Labels::of(&request, &labeler);
            let waiting = join.unknown(labels.may_wait());
            if waiting.is_empty() {
                let converted = finish(&request, &labeler, labels, &join, &mining)?;
                Ok(Step::Done(converted))
            } else {
                Ok(Step::Wait {
                    request,
                    labeler,
                    labels,
                    waiting,
                })
            }
        })
        .await?;
        match first {
            Step::Done(converted) => Ok(converted),
            Step::Wait {
                request,
                labeler,
                labels,
                waiting,
            } => {
                self.join.hold(waiting, held_bytes).await;
                let join = self.join.clone();
                blocking(move || finish(&request, &labeler, labels, &join, &later)).await
            }
        }
    }

    /// Remembers the traces a stored batch of spans was labelled with, and
    /// wakes the requests waiting for them.
    pub(crate) fn publish(&self, sightings: Vec<Sighting>) {
        self.join.publish(sightings);
    }

    /// The hold window in use.
    pub fn hold_window(&self) -> Duration {
        self.join.hold_window()
    }
}

enum Step {
    Done(Converted),
    Wait {
        request: DecodedRequest,
        labeler: Arc<Labeler>,
        labels: Labels,
        waiting: Vec<u128>,
    },
}

/// Resolves the trace-joined labels and converts.
fn finish(
    request: &DecodedRequest,
    labeler: &Labeler,
    mut labels: Labels,
    join: &TraceJoin,
    mining: &LogMining,
) -> Result<Converted> {
    labels.resolve(|keys| join.snapshot(keys));
    request.convert(labeler, &labels, Some(mining))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("conversion worker failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cohort(name: &str, rule: &str) -> CohortConfig {
        CohortConfig::new(name, rule).unwrap()
    }

    #[test]
    fn names_are_shared_between_flags_and_rules() {
        let labeler = Labeler::with_rules(
            &[cohort("gray-b", "a == 1"), cohort("canary", "b == 1")],
            &BTreeMap::from([(GrayFlag(3), "gray-b".to_owned())]),
        );
        let names: Vec<&str> = labeler.names.iter().map(|n| &**n).collect();
        assert_eq!(names, ["baseline", "staging", "canary", "gray-b"]);
        let mut id = [7u8; 16];
        id[14..].copy_from_slice(&[0, 3]);
        assert_eq!(&**labeler.name(labeler.flag_cohort(&id).unwrap()), "gray-b");
        id[15] = 4;
        assert_eq!(labeler.flag_cohort(&id), None);
        id[15] = 2;
        assert_eq!(&**labeler.name(labeler.flag_cohort(&id).unwrap()), "canary");
        assert_eq!(labeler.flag_cohort(&[]), None);
    }

    #[test]
    fn first_matching_rule_wins() {
        let labeler = Labeler::with_rules(
            &[
                cohort("a", r#"geo == "华南" AND isp == "移动""#),
                cohort("b", r#"geo == "华南""#),
            ],
            &BTreeMap::new(),
        );
        let first = labeler.rule_cohort(&[("geo", "华南"), ("isp", "移动")]);
        assert_eq!(first.map(|id| &**labeler.name(id)), Some("a"));
        let second = labeler.rule_cohort(&[("geo", "华南")]);
        assert_eq!(second.map(|id| &**labeler.name(id)), Some("b"));
        assert_eq!(labeler.rule_cohort(&[("geo", "华北")]), None);
    }

    mod requests {
        //! The labelling pass and the converters together, through
        //! [`Labeling`] with a trace join.

        use arrow::array::{Array, AsArray, ListArray, StringArray, StructArray};
        use arrow::record_batch::RecordBatch;
        use grayscope_core::config::ConfigDuration;
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        use opentelemetry_proto::tonic::metrics::v1::{
            Exemplar, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
            number_data_point,
        };
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        use prost::Message as _;

        use super::*;

        fn text(key: &str, value: &str) -> KeyValue {
            KeyValue {
                key: key.to_owned(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(value.to_owned())),
                }),
                key_strindex: 0,
            }
        }

        fn trace(seed: u8, flag: u16) -> Vec<u8> {
            let mut id = vec![seed; 16];
            id[14..].copy_from_slice(&flag.to_be_bytes());
            id
        }

        fn resource(version: Option<&str>) -> Option<Resource> {
            let mut attributes = vec![text("service.name", "checkout")];
            attributes.extend(version.map(|v| text("service.version", v)));
            Some(Resource {
                attributes,
                ..Default::default()
            })
        }

        fn labeling(window_ms: u64) -> Labeling {
            let labeler = Labeler::with_rules(
                &[
                    cohort("gray-a", r#"geo == "华南" AND isp == "移动""#),
                    cohort("beta", r#"baggage.group == "beta""#),
                    cohort("ios", r#"device.type == "iOS" OR geo == "华南""#),
                ],
                &BTreeMap::from([(GrayFlag(3), "gray-b".to_owned())]),
            );
            Labeling::new(
                labeler,
                &TraceJoinConfig {
                    hold_window: ConfigDuration::from_millis(window_ms),
                    ..TraceJoinConfig::default()
                },
            )
        }

        fn column<'b>(batch: &'b RecordBatch, name: &str) -> Vec<Option<&'b str>> {
            let array: &StringArray = batch.column_by_name(name).unwrap().as_string();
            array.iter().collect()
        }

        async fn export(labeling: &Labeling, signal: Signal, body: Vec<u8>) -> RecordBatch {
            let mut converted = labeling
                .decode_and_convert(
                    signal,
                    Encoding::Protobuf,
                    body.into(),
                    LogMining::default(),
                )
                .await
                .unwrap();
            let sightings = std::mem::take(&mut converted.sightings);
            labeling.publish(sightings);
            converted.batch
        }

        fn spans(spans: Vec<Span>, version: &str) -> Vec<u8> {
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: resource(Some(version)),
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }
            .encode_to_vec()
        }

        fn span(trace_id: Vec<u8>, attributes: Vec<KeyValue>) -> Span {
            Span {
                trace_id,
                span_id: vec![1; 8],
                name: "GET /".to_owned(),
                start_time_unix_nano: 10,
                attributes,
                ..Default::default()
            }
        }

        fn logs(records: Vec<LogRecord>, version: Option<&str>) -> Vec<u8> {
            ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: resource(version),
                    scope_logs: vec![ScopeLogs {
                        log_records: records,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }
            .encode_to_vec()
        }

        fn log(trace_id: Vec<u8>, sampled: bool, attributes: Vec<KeyValue>) -> LogRecord {
            LogRecord {
                trace_id,
                flags: u32::from(sampled),
                time_unix_nano: 5,
                attributes,
                ..Default::default()
            }
        }

        #[tokio::test]
        async fn spans_take_flag_then_first_rule_then_baseline() {
            let labeling = labeling(0);
            let geo = || vec![text("geo", "华南"), text("isp", "移动")];
            let batch = export(
                &labeling,
                Signal::Traces,
                spans(
                    vec![
                        span(trace(1, 0), geo()),
                        span(trace(2, 2), geo()),
                        span(trace(3, 3), vec![]),
                        span(vec![1; 3], geo()), // rejected: bad trace id
                        span(trace(4, 0), vec![text("geo", "华南")]),
                        span(trace(5, 0), vec![text("group", "beta")]),
                        span(trace(6, 9), vec![text("baggage", "a=1,group=beta")]),
                        span(trace(7, 0), vec![]),
                    ],
                    "2.0.0",
                ),
            )
            .await;
            assert_eq!(
                column(&batch, "cohort"),
                [
                    "gray-a", "canary", "gray-b", "ios", "beta", "beta", "baseline"
                ]
                .map(Some)
            );
            assert_eq!(column(&batch, "version"), [Some("2.0.0"); 7]);
        }

        #[tokio::test]
        async fn logs_after_their_spans_take_the_traces_cohort_and_version() {
            let labeling = labeling(0);
            export(
                &labeling,
                Signal::Traces,
                spans(
                    vec![
                        span(trace(1, 0), vec![text("geo", "华南"), text("isp", "移动")]),
                        span(trace(2, 0), vec![]),
                    ],
                    "2.0.0",
                ),
            )
            .await;
            let batch = export(
                &labeling,
                Signal::Logs,
                logs(
                    vec![
                        log(trace(1, 0), true, vec![]),
                        log(vec![9; 2], true, vec![]), // rejected
                        log(trace(1, 0), false, vec![text("device.type", "iOS")]),
                        log(trace(2, 0), true, vec![]),
                        log(trace(8, 0), true, vec![]),
                        log(vec![], false, vec![]),
                        log(trace(1, 1), true, vec![]),
                    ],
                    None,
                ),
            )
            .await;
            assert_eq!(
                column(&batch, "cohort"),
                [
                    "gray-a", "ios", "baseline", "baseline", "baseline", "staging"
                ]
                .map(Some)
            );
            assert_eq!(
                column(&batch, "version"),
                [Some("2.0.0"), None, None, None, None, None],
                "only an inherited cohort brings the trace's version"
            );
            // A log's own version wins.
            let batch = export(
                &labeling,
                Signal::Logs,
                logs(vec![log(trace(1, 0), true, vec![])], Some("1.9")),
            )
            .await;
            assert_eq!(column(&batch, "cohort"), [Some("gray-a")]);
            assert_eq!(column(&batch, "version"), [Some("1.9")]);
        }

        #[tokio::test]
        async fn a_log_before_its_span_waits_for_it() {
            let labeling = labeling(30_000);
            let held = tokio::spawn({
                let labeling = labeling.clone();
                async move {
                    export(
                        &labeling,
                        Signal::Logs,
                        logs(vec![log(trace(1, 0), true, vec![])], None),
                    )
                    .await
                }
            });
            while labeling.join_stats().held_requests == 0 {
                tokio::task::yield_now().await;
            }
            export(
                &labeling,
                Signal::Traces,
                spans(
                    vec![span(
                        trace(1, 0),
                        vec![text("geo", "华南"), text("isp", "移动")],
                    )],
                    "2.0.0",
                ),
            )
            .await;
            let batch = held.await.unwrap();
            assert_eq!(column(&batch, "cohort"), [Some("gray-a")]);
            assert_eq!(labeling.join_stats().expired_total, 0);
            // Not sampled: no wait, and baseline while the trace is unknown.
            let start = std::time::Instant::now();
            let batch = export(
                &labeling,
                Signal::Logs,
                logs(vec![log(trace(9, 0), false, vec![])], None),
            )
            .await;
            assert!(start.elapsed() < std::time::Duration::from_secs(10));
            assert_eq!(column(&batch, "cohort"), [Some("baseline")]);
        }

        #[tokio::test]
        async fn exemplars_take_their_traces_cohort_in_order() {
            let labeling = labeling(0);
            export(
                &labeling,
                Signal::Traces,
                spans(
                    vec![span(trace(1, 0), vec![text("device.type", "iOS")])],
                    "2.0.0",
                ),
            )
            .await;
            let exemplar = |trace_id: Vec<u8>| Exemplar {
                trace_id,
                span_id: vec![2; 8],
                value: Some(
                    opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(1.0),
                ),
                ..Default::default()
            };
            let point = |value: Option<f64>, attributes, exemplars| NumberDataPoint {
                attributes,
                exemplars,
                time_unix_nano: 5,
                value: value.map(number_data_point::Value::AsDouble),
                ..Default::default()
            };
            let request = ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    resource: resource(Some("2.0.0")),
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![Metric {
                            name: "latency".to_owned(),
                            data: Some(metric::Data::Gauge(Gauge {
                                data_points: vec![
                                    point(Some(1.0), vec![], vec![exemplar(trace(1, 0))]),
                                    // rejected (no value); its exemplars are skipped
                                    point(None, vec![], vec![exemplar(trace(2, 2))]),
                                    point(
                                        Some(2.0),
                                        vec![text("geo", "华南")],
                                        vec![
                                            exemplar(trace(3, 3)),
                                            exemplar(trace(4, 0)),
                                            exemplar(vec![]),
                                        ],
                                    ),
                                ],
                            })),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            let batch = export(&labeling, Signal::Metrics, request.encode_to_vec()).await;
            assert_eq!(column(&batch, "cohort"), [Some("baseline"), Some("ios")]);
            let exemplars: &ListArray = batch.column_by_name("exemplars").unwrap().as_list();
            let cohorts = |row: usize| -> Vec<Option<String>> {
                let items = exemplars.value(row);
                let items: &StructArray = items.as_struct();
                let cohort: &StringArray = items.column_by_name("cohort").unwrap().as_string();
                cohort.iter().map(|c| c.map(str::to_owned)).collect()
            };
            assert_eq!(cohorts(0), [Some("ios".to_owned())]);
            assert_eq!(
                cohorts(1),
                ["gray-b", "baseline", "baseline"].map(|c| Some(c.to_owned()))
            );
            assert_eq!(exemplars.len(), 2);
            assert!(exemplars.value(1).is_valid(0));
        }
    }

    #[test]
    fn replacing_the_labeler_leaves_held_snapshots_alone() {
        let labeling = Labeling::from(Labeler::default());
        let before = labeling.labeler();
        labeling.replace(Labeler::with_rules(
            &[cohort("a", "x == 1")],
            &BTreeMap::new(),
        ));
        assert!(!before.has_rules());
        assert!(labeling.labeler().has_rules());
    }
}
