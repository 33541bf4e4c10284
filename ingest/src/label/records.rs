//! The labelling pass over one decoded request: a decision per record (and
//! per exemplar), in the order the converters visit them.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, Metric, metric::Data};

use super::attributes::{RecordAttributes, RecordCells, ResourceValues, Scratch};
use super::{CohortId, Labeler};
use crate::convert::DecodedRequest;
use crate::convert::value_text;
use crate::join::{Sighting, TraceLabel, trace_key};
use crate::wire::{self, Attributes, LogsRequest, Resource};

/// How one record's cohort was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// By its flag, a rule, or `baseline`.
    Cohort(CohortId),
    /// By its trace: the cohort a rule gave the trace's spans, once known.
    Trace(u128),
}

/// The cohort decisions of one export request's records.
#[derive(Debug, Default)]
pub struct Labels {
    /// One per span, log record or data point, valid or not, in order.
    /// Empty when `by_flag` is set.
    records: Vec<Decision>,
    /// Without rules, a span's or log record's cohort depends on its trace
    /// id's flag alone: the converter reads it off the record it has in
    /// hand, and the request is not walked twice.
    by_flag: bool,
    /// Spans with rules configured: the converter labels each span with a
    /// [`SpanLabels`] and ignores `records`.
    spans_in_conversion: bool,
    /// One per exemplar, data point after data point.
    exemplars: Vec<Decision>,
    /// Traces whose records may still get their spans (sampled): the
    /// request may wait for these. Sorted, without duplicates.
    waits: Vec<u128>,
    /// The traces this request's records join, once resolved.
    traces: HashMap<u128, TraceLabel>,
}

impl Labels {
    /// Labels every record of a decoded request.
    pub(crate) fn of(request: &DecodedRequest, labeler: &Labeler) -> Labels {
        match request {
            // Spans wait for nothing: the converter labels them as it reads
            // them ([`SpanLabels`]), from the attributes it reads anyway.
            DecodedRequest::Traces(_) => Labels {
                spans_in_conversion: labeler.has_rules(),
                ..Labels::by_flag()
            },
            DecodedRequest::Logs(request) => labeler.label_logs(request),
            DecodedRequest::Metrics(request) => labeler.label_metrics(request),
        }
    }

    /// Labels that are each record's flag, else `baseline`.
    fn by_flag() -> Labels {
        Labels {
            by_flag: true,
            ..Labels::default()
        }
    }

    /// How many records were labelled one by one (none when their flag
    /// alone decides, without rules).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there were none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether the converter labels the spans itself, with
    /// [`SpanLabels`].
    pub(crate) fn spans_in_conversion(&self) -> bool {
        self.spans_in_conversion
    }

    /// The traces the request may wait for.
    pub(crate) fn may_wait(&self) -> &[u128] {
        &self.waits
    }

    /// Looks up, once, every trace the records join.
    pub(crate) fn resolve(&mut self, snapshot: impl FnOnce(&[u128]) -> HashMap<u128, TraceLabel>) {
        let mut keys: Vec<u128> = self
            .records
            .iter()
            .chain(&self.exemplars)
            .filter_map(|d| match d {
                Decision::Trace(key) => Some(*key),
                Decision::Cohort(_) => None,
            })
            .collect();
        if keys.is_empty() {
            return;
        }
        keys.sort_unstable();
        keys.dedup();
        self.traces = snapshot(&keys);
    }

    /// The cohort and version of record `index` (of trace `trace_id`),
    /// whose resource has `own_version`.
    #[inline]
    pub(crate) fn record<'s>(
        &'s self,
        labeler: &'s Labeler,
        index: usize,
        trace_id: &[u8],
        own_version: Option<&'s str>,
    ) -> (&'s str, Option<&'s str>) {
        if self.by_flag {
            let cohort = labeler.flag_cohort(trace_id).unwrap_or(CohortId::BASELINE);
            return (labeler.name(cohort), own_version);
        }
        match self.records.get(index) {
            Some(Decision::Cohort(id)) => (labeler.name(*id), own_version),
            Some(Decision::Trace(key)) => match self.traces.get(key) {
                Some(TraceLabel {
                    cohort: Some(cohort),
                    version,
                    ..
                }) => (cohort, own_version.or(version.as_deref())),
                _ => (labeler.name(CohortId::BASELINE), own_version),
            },
            None => (labeler.name(CohortId::BASELINE), own_version),
        }
    }

    /// The cohort of exemplar `index`.
    #[inline]
    pub(crate) fn exemplar<'s>(&'s self, labeler: &'s Labeler, index: usize) -> &'s str {
        match self.exemplars.get(index) {
            Some(Decision::Cohort(id)) => labeler.name(*id),
            Some(Decision::Trace(key)) => match self.traces.get(key) {
                Some(TraceLabel {
                    cohort: Some(cohort),
                    ..
                }) => cohort,
                _ => labeler.name(CohortId::BASELINE),
            },
            None => labeler.name(CohortId::BASELINE),
        }
    }

    fn finish(mut self) -> Labels {
        self.waits.sort_unstable();
        self.waits.dedup();
        self
    }
}

fn resource_version(attributes: Attributes<'_>) -> Option<Arc<str>> {
    let value = attributes.find("service.version")?;
    let mut scratch = String::new();
    value_text(value, &mut scratch)
        .filter(|v| !v.is_empty())
        .map(Arc::from)
}

/// Rule evaluation state shared by a request's records.
struct Evaluator<'l, 'a> {
    labeler: &'l Labeler,
    scratch: Scratch,
    cells: RecordCells<'a>,
}

impl<'l, 'a> Evaluator<'l, 'a> {
    fn new(labeler: &'l Labeler) -> Self {
        Evaluator {
            labeler,
            scratch: Scratch::default(),
            cells: RecordCells::new(labeler.lookups()),
        }
    }

    /// The first rule that matches a record of `resource`.
    #[inline]
    fn rule(&mut self, record: Attributes<'a>, resource: &ResourceValues<'a>) -> Option<CohortId> {
        self.cells.clear();
        self.evaluate(record, resource)
    }

    /// The same for a record whose attributes were read already.
    #[inline]
    fn rule_read(
        &mut self,
        record: &[wire::RawKeyValue<'a>],
        resource: &ResourceValues<'a>,
    ) -> Option<CohortId> {
        self.cells.clear();
        self.cells.fill(self.labeler.lookups(), record);
        self.evaluate(Attributes::default(), resource)
    }

    fn evaluate(&self, record: Attributes<'a>, resource: &ResourceValues<'a>) -> Option<CohortId> {
        let attrs = RecordAttributes {
            lookups: self.labeler.lookups(),
            record,
            resource,
            cells: &self.cells,
            scratch: &self.scratch,
        };
        self.labeler.rule_cohort(&attrs)
    }
}

/// Labels a trace request's spans one at a time, as the converter reads
/// them: a span's flag, else the first rule that matches it, else
/// `baseline`. Notes, per trace, the cohort its spans were given
/// ([`Sighting`]), for the log records and exemplars that join it.
pub(crate) struct SpanLabels<'l, 'a> {
    labeler: &'l Labeler,
    eval: Evaluator<'l, 'a>,
    resource: SpanResource<'a>,
    sightings: Vec<Sighting>,
}

/// The resource of the spans being labelled.
struct SpanResource<'a> {
    attributes: Attributes<'a>,
    values: ResourceValues<'a>,
    /// Its `service.version`, read at the first sighting.
    version: Option<Option<Arc<str>>>,
}

impl<'a> SpanResource<'a> {
    fn new(labeler: &Labeler, attributes: Attributes<'a>) -> Self {
        SpanResource {
            attributes,
            values: ResourceValues::new(labeler.lookups(), attributes),
            version: None,
        }
    }
}

impl<'l, 'a> SpanLabels<'l, 'a> {
    pub(crate) fn new(labeler: &'l Labeler) -> Self {
        SpanLabels {
            labeler,
            eval: Evaluator::new(labeler),
            resource: SpanResource::new(labeler, Attributes::default()),
            sightings: Vec::new(),
        }
    }

    /// The spans that follow are of a resource with `attributes`.
    pub(crate) fn resource(&mut self, attributes: Attributes<'a>) {
        self.resource = SpanResource::new(self.labeler, attributes);
    }

    /// The cohort of a span of trace `trace_id` that started at
    /// `start_unix_nano`, whose attributes are `attributes`.
    pub(crate) fn label(
        &mut self,
        trace_id: &[u8],
        start_unix_nano: u64,
        attributes: &[wire::RawKeyValue<'a>],
    ) -> CohortId {
        if let Some(id) = self.labeler.flag_cohort(trace_id) {
            return id;
        }
        let resource = &mut self.resource;
        let rule = self.eval.rule_read(attributes, &resource.values);
        if let Some(key) = trace_key(trace_id) {
            let cohort = rule.map(|id| self.labeler.name(id).clone());
            let last = self.sightings.last();
            if last.is_none_or(|l| l.key != key || l.label.cohort != cohort) {
                let version = resource
                    .version
                    .get_or_insert_with(|| resource_version(resource.attributes))
                    .clone();
                self.sightings.push(Sighting {
                    key,
                    label: TraceLabel {
                        cohort,
                        version,
                        start: i64::try_from(start_unix_nano).unwrap_or(i64::MAX),
                    },
                });
            }
        }
        rule.unwrap_or(CohortId::BASELINE)
    }

    /// What the labelled spans said about their traces.
    pub(crate) fn into_sightings(self) -> Vec<Sighting> {
        self.sightings
    }
}

impl Labeler {
    /// Labels every log record of a logs export request: flag, else the
    /// first matching rule, else its trace's cohort (when rules are
    /// configured), else `baseline`.
    pub fn label_logs(&self, request: &LogsRequest) -> Labels {
        if !self.has_rules() {
            return Labels::by_flag();
        }
        let mut labels = Labels::default();
        let mut eval = Evaluator::new(self);
        for resource_logs in request.resources() {
            let resource = ResourceValues::new(self.lookups(), resource_logs.resource.attributes);
            for record in resource_logs
                .scope_logs
                .iter()
                .flat_map(|s| s.log_records.read_as::<wire::LogRecordLabel>().iter())
            {
                if let Some(id) = self.flag_cohort(record.trace_id) {
                    labels.records.push(Decision::Cohort(id));
                    continue;
                }
                if let Some(id) = eval.rule(record.attributes, &resource) {
                    labels.records.push(Decision::Cohort(id));
                    continue;
                }
                match trace_key(record.trace_id) {
                    Some(key) => {
                        labels.records.push(Decision::Trace(key));
                        // W3C "sampled": only then will the spans come.
                        if record.flags & 0x01 != 0 {
                            labels.waits.push(key);
                        }
                    }
                    None => labels.records.push(Decision::Cohort(CohortId::BASELINE)),
                }
            }
        }
        labels.finish()
    }

    /// Labels every data point of a metrics export request (flag-less: the
    /// first matching rule on its attributes and resource, else
    /// `baseline`) and every exemplar (its trace id's flag, else its trace's
    /// cohort, else `baseline`).
    pub fn label_metrics(&self, request: &ExportMetricsServiceRequest) -> Labels {
        let mut labels = Labels::default();
        let has_rules = self.has_rules();
        let mut eval = Evaluator::new(self);
        for resource_metrics in &request.resource_metrics {
            let attributes = Resource::from_proto(resource_metrics.resource.as_ref()).attributes;
            let resource = ResourceValues::new(self.lookups(), attributes);
            for metric in resource_metrics
                .scope_metrics
                .iter()
                .flat_map(|s| &s.metrics)
            {
                for_each_point(metric, |point, exemplars| {
                    let cohort = if has_rules {
                        eval.rule(point.into(), &resource)
                            .unwrap_or(CohortId::BASELINE)
                    } else {
                        CohortId::BASELINE
                    };
                    labels.records.push(Decision::Cohort(cohort));
                    for exemplar in exemplars {
                        let decision = match self.flag_cohort(&exemplar.trace_id) {
                            Some(id) => Decision::Cohort(id),
                            None => match trace_key(&exemplar.trace_id).filter(|_| has_rules) {
                                Some(key) => {
                                    // Exemplars are taken from sampled spans.
                                    labels.waits.push(key);
                                    Decision::Trace(key)
                                }
                                None => Decision::Cohort(CohortId::BASELINE),
                            },
                        };
                        labels.exemplars.push(decision);
                    }
                });
            }
        }
        labels.finish()
    }
}

/// Calls `f` with the attributes and exemplars of each data point of
/// `metric`, in the order the metrics converter appends them.
pub(crate) fn for_each_point<'a>(
    metric: &'a Metric,
    mut f: impl FnMut(&'a [KeyValue], &'a [Exemplar]),
) {
    match &metric.data {
        None => {}
        Some(Data::Gauge(g)) => g
            .data_points
            .iter()
            .for_each(|p| f(&p.attributes, &p.exemplars)),
        Some(Data::Sum(s)) => s
            .data_points
            .iter()
            .for_each(|p| f(&p.attributes, &p.exemplars)),
        Some(Data::Histogram(h)) => h
            .data_points
            .iter()
            .for_each(|p| f(&p.attributes, &p.exemplars)),
        Some(Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .for_each(|p| f(&p.attributes, &p.exemplars)),
        Some(Data::Summary(s)) => s.data_points.iter().for_each(|p| f(&p.attributes, &[])),
    }
}
