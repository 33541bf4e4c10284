//! `ExportMetricsServiceRequest` → the `metrics` table, one row per data
//! point, every metric kind kept.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, ListBuilder, StringBuilder,
    StructArray, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use grayscope_core::schema::metrics;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, Metric, exemplar, exponential_histogram_data_point::Buckets, metric::Data,
    number_data_point, summary_data_point::ValueAtQuantile,
};

use super::attributes::{AttributesBuilder, append_attributes, attributes_builder};
use super::columns::{
    IdColumn, ListOffsets, ProvenanceColumns, timestamp_builder, valid_span_id, valid_trace_id,
};
use super::resource::{ResourceInfo, ScopeInfo};
use super::{ConvertError, Converted, Rejections, nanos};
use crate::label::{Labeler, Labels};
use crate::wire::{Attributes, RawKeyValue, Resource, Scope};

/// Converts a metrics export request into a `metrics` batch; `labels` are
/// the request's labels from [`Labeler::label_metrics`].
pub fn convert_metrics(
    request: &ExportMetricsServiceRequest,
    labeler: &Labeler,
    labels: &Labels,
) -> Result<Converted, ConvertError> {
    let capacity = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(point_count)
        .sum();
    let mut columns = MetricColumns::with_capacity(capacity);
    let mut rejections = Rejections::default();
    let mut scratch = String::new();
    let mut cursor = LabelCursor::default();

    for resource_metrics in &request.resource_metrics {
        let resource = ResourceInfo::new(Resource::from_proto(resource_metrics.resource.as_ref()))?;
        for scope_metrics in &resource_metrics.scope_metrics {
            let scope = ScopeInfo::new(Scope::from_proto(scope_metrics.scope.as_ref()))?;
            for metric in &scope_metrics.metrics {
                let mut context = Context {
                    metric,
                    resource: &resource,
                    scope: &scope,
                    labeler,
                    labels,
                    cursor: &mut cursor,
                    rejections: &mut rejections,
                    scratch: &mut scratch,
                };
                columns.append_metric(&mut context);
            }
        }
    }
    Ok(rejections.into_converted(columns.finish()?)?)
}

fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

fn temporality_name(temporality: i32) -> Option<&'static str> {
    match temporality {
        1 => Some("delta"),
        2 => Some("cumulative"),
        _ => None,
    }
}

struct Context<'a, 'r> {
    metric: &'a Metric,
    resource: &'a ResourceInfo<'r>,
    scope: &'a ScopeInfo<'r>,
    labeler: &'a Labeler,
    labels: &'a Labels,
    cursor: &'a mut LabelCursor,
    rejections: &'a mut Rejections,
    scratch: &'a mut String,
}

/// Where the current data point's labels are: its index among the
/// request's points (valid or not) and the index of its first exemplar.
#[derive(Debug, Default)]
struct LabelCursor {
    next_point: usize,
    next_exemplar: usize,
    point: usize,
    first_exemplar: usize,
}

impl LabelCursor {
    /// Moves to the next data point, which has `exemplars` exemplars.
    fn advance(&mut self, exemplars: usize) {
        self.point = self.next_point;
        self.first_exemplar = self.next_exemplar;
        self.next_point += 1;
        self.next_exemplar += exemplars;
    }
}

/// The fields of one data point, whatever its kind; absent ones are null.
#[derive(Default)]
struct Point<'a> {
    time: u64,
    start_time: u64,
    attributes: &'a [KeyValue],
    kind: &'static str,
    temporality: Option<&'static str>,
    is_monotonic: Option<bool>,
    value: Option<f64>,
    count: Option<u64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    bucket_counts: Option<&'a [u64]>,
    explicit_bounds: Option<&'a [f64]>,
    scale: Option<i32>,
    zero_count: Option<u64>,
    zero_threshold: Option<f64>,
    positive: Option<&'a Buckets>,
    negative: Option<&'a Buckets>,
    quantiles: Option<&'a [ValueAtQuantile]>,
    flags: u32,
    exemplars: &'a [Exemplar],
}

fn validate_exemplars(exemplars: &[Exemplar]) -> Result<(), String> {
    for exemplar in exemplars {
        if !exemplar.trace_id.is_empty() && !valid_trace_id(&exemplar.trace_id) {
            return Err("an exemplar's trace_id must be empty or 16 bytes".to_owned());
        }
        if !exemplar.span_id.is_empty() && !valid_span_id(&exemplar.span_id) {
            return Err("an exemplar's span_id must be empty or 8 bytes".to_owned());
        }
    }
    Ok(())
}

struct MetricColumns {
    time: TimestampNanosecondBuilder,
    start_time: TimestampNanosecondBuilder,
    service: StringBuilder,
    name: StringBuilder,
    description: StringBuilder,
    unit: StringBuilder,
    kind: StringBuilder,
    temporality: StringBuilder,
    is_monotonic: BooleanBuilder,
    value: Float64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bucket_counts: ListBuilder<UInt64Builder>,
    explicit_bounds: ListBuilder<Float64Builder>,
    scale: Int32Builder,
    zero_count: UInt64Builder,
    zero_threshold: Float64Builder,
    positive_offset: Int32Builder,
    positive_bucket_counts: ListBuilder<UInt64Builder>,
    negative_offset: Int32Builder,
    negative_bucket_counts: ListBuilder<UInt64Builder>,
    quantiles: QuantileColumns,
    flags: UInt32Builder,
    exemplars: ExemplarColumns,
    provenance: ProvenanceColumns,
}

fn u64_list(n: usize) -> ListBuilder<UInt64Builder> {
    ListBuilder::with_capacity(UInt64Builder::new(), n).with_field(Field::new(
        "item",
        DataType::UInt64,
        false,
    ))
}

impl MetricColumns {
    fn with_capacity(n: usize) -> Self {
        let text = |bytes_per_row| StringBuilder::with_capacity(n, n * bytes_per_row);
        MetricColumns {
            time: timestamp_builder(n),
            start_time: timestamp_builder(n),
            service: text(16),
            name: text(24),
            description: text(0),
            unit: text(2),
            kind: text(6),
            temporality: text(10),
            is_monotonic: BooleanBuilder::with_capacity(n),
            value: Float64Builder::with_capacity(n),
            count: UInt64Builder::with_capacity(n),
            sum: Float64Builder::with_capacity(n),
            min: Float64Builder::with_capacity(n),
            max: Float64Builder::with_capacity(n),
            bucket_counts: u64_list(n),
            explicit_bounds: ListBuilder::with_capacity(Float64Builder::new(), n)
                .with_field(Field::new("item", DataType::Float64, false)),
            scale: Int32Builder::with_capacity(n),
            zero_count: UInt64Builder::with_capacity(n),
            zero_threshold: Float64Builder::with_capacity(n),
            positive_offset: Int32Builder::with_capacity(n),
            positive_bucket_counts: u64_list(n),
            negative_offset: Int32Builder::with_capacity(n),
            negative_bucket_counts: u64_list(n),
            quantiles: QuantileColumns::with_capacity(n),
            flags: UInt32Builder::with_capacity(n),
            exemplars: ExemplarColumns::with_capacity(n),
            provenance: ProvenanceColumns::with_capacity(n),
        }
    }

    fn append_metric(&mut self, cx: &mut Context<'_, '_>) {
        let metric = cx.metric;
        match &metric.data {
            None => cx
                .rejections
                .reject(|| format!("metric {:?} has no data", metric.name)),
            Some(Data::Gauge(gauge)) => {
                for point in &gauge.data_points {
                    cx.cursor.advance(point.exemplars.len());
                    self.append_number(cx, "gauge", None, None, point);
                }
            }
            Some(Data::Sum(sum)) => {
                let temporality = temporality_name(sum.aggregation_temporality);
                for point in &sum.data_points {
                    cx.cursor.advance(point.exemplars.len());
                    self.append_number(cx, "sum", temporality, Some(sum.is_monotonic), point);
                }
            }
            Some(Data::Histogram(histogram)) => {
                let temporality = temporality_name(histogram.aggregation_temporality);
                for p in &histogram.data_points {
                    cx.cursor.advance(p.exemplars.len());
                    let point = Point {
                        time: p.time_unix_nano,
                        start_time: p.start_time_unix_nano,
                        attributes: &p.attributes,
                        kind: "histogram",
                        temporality,
                        count: Some(p.count),
                        sum: p.sum,
                        min: p.min,
                        max: p.max,
                        bucket_counts: Some(&p.bucket_counts),
                        explicit_bounds: Some(&p.explicit_bounds),
                        flags: p.flags,
                        exemplars: &p.exemplars,
                        ..Point::default()
                    };
                    self.append_checked(cx, point);
                }
            }
            Some(Data::ExponentialHistogram(histogram)) => {
                let temporality = temporality_name(histogram.aggregation_temporality);
                for p in &histogram.data_points {
                    cx.cursor.advance(p.exemplars.len());
                    let point = Point {
                        time: p.time_unix_nano,
                        start_time: p.start_time_unix_nano,
                        attributes: &p.attributes,
                        kind: "exponential_histogram",
                        temporality,
                        count: Some(p.count),
                        sum: p.sum,
                        min: p.min,
                        max: p.max,
                        scale: Some(p.scale),
                        zero_count: Some(p.zero_count),
                        zero_threshold: Some(p.zero_threshold),
                        positive: Some(p.positive.as_ref().unwrap_or(&EMPTY_BUCKETS)),
                        negative: Some(p.negative.as_ref().unwrap_or(&EMPTY_BUCKETS)),
                        flags: p.flags,
                        exemplars: &p.exemplars,
                        ..Point::default()
                    };
                    self.append_checked(cx, point);
                }
            }
            Some(Data::Summary(summary)) => {
                for p in &summary.data_points {
                    cx.cursor.advance(0);
                    let point = Point {
                        time: p.time_unix_nano,
                        start_time: p.start_time_unix_nano,
                        attributes: &p.attributes,
                        kind: "summary",
                        count: Some(p.count),
                        sum: Some(p.sum),
                        quantiles: Some(&p.quantile_values),
                        flags: p.flags,
                        ..Point::default()
                    };
                    self.append_checked(cx, point);
                }
            }
        }
    }

    fn append_number(
        &mut self,
        cx: &mut Context<'_, '_>,
        kind: &'static str,
        temporality: Option<&'static str>,
        is_monotonic: Option<bool>,
        p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint,
    ) {
        let value = match p.value {
            Some(number_data_point::Value::AsDouble(d)) => d,
            Some(number_data_point::Value::AsInt(i)) => i as f64,
            None => {
                let name = &cx.metric.name;
                cx.rejections
                    .reject(|| format!("a data point of metric {name:?} has no value"));
                return;
            }
        };
        let point = Point {
            time: p.time_unix_nano,
            start_time: p.start_time_unix_nano,
            attributes: &p.attributes,
            kind,
            temporality,
            is_monotonic,
            value: Some(value),
            flags: p.flags,
            exemplars: &p.exemplars,
            ..Point::default()
        };
        self.append_checked(cx, point);
    }

    fn append_checked(&mut self, cx: &mut Context<'_, '_>, point: Point<'_>) {
        if let Err(reason) = validate_exemplars(point.exemplars) {
            let name = &cx.metric.name;
            cx.rejections
                .reject(|| format!("a data point of metric {name:?}: {reason}"));
            return;
        }
        self.append(cx, point);
    }

    fn append(&mut self, cx: &mut Context<'_, '_>, p: Point<'_>) {
        let metric = cx.metric;
        self.time.append_value(nanos(p.time));
        self.start_time
            .append_option(Some(p.start_time).filter(|t| *t != 0).map(nanos));
        self.service.append_value(&cx.resource.service);
        self.name.append_value(&metric.name);
        self.description
            .append_option(non_empty(&metric.description));
        self.unit.append_option(non_empty(&metric.unit));
        self.kind.append_value(p.kind);
        self.temporality.append_option(p.temporality);
        self.is_monotonic.append_option(p.is_monotonic);
        self.value.append_option(p.value);
        self.count.append_option(p.count);
        self.sum.append_option(p.sum);
        self.min.append_option(p.min);
        self.max.append_option(p.max);
        append_list(&mut self.bucket_counts, p.bucket_counts);
        append_list(&mut self.explicit_bounds, p.explicit_bounds);
        self.scale.append_option(p.scale);
        self.zero_count.append_option(p.zero_count);
        self.zero_threshold.append_option(p.zero_threshold);
        self.positive_offset
            .append_option(p.positive.map(|b| b.offset));
        append_list(
            &mut self.positive_bucket_counts,
            p.positive.map(|b| b.bucket_counts.as_slice()),
        );
        self.negative_offset
            .append_option(p.negative.map(|b| b.offset));
        append_list(
            &mut self.negative_bucket_counts,
            p.negative.map(|b| b.bucket_counts.as_slice()),
        );
        self.quantiles.append(p.quantiles);
        self.flags.append_value(p.flags);
        let (labels, labeler, first) = (cx.labels, cx.labeler, cx.cursor.first_exemplar);
        let cohorts = |i| labels.exemplar(labeler, first + i);
        self.exemplars.append(p.exemplars, cohorts, cx.scratch);
        let label = cx.labels.record(
            cx.labeler,
            cx.cursor.point,
            &[],
            cx.resource.version.as_deref(),
        );
        self.provenance.append(
            Attributes::Proto(p.attributes)
                .iter()
                .map(RawKeyValue::from),
            cx.resource,
            cx.scope,
            label,
            cx.scratch,
        );
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.start_time.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.temporality.finish()),
            Arc::new(self.is_monotonic.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.bucket_counts.finish()),
            Arc::new(self.explicit_bounds.finish()),
            Arc::new(self.scale.finish()),
            Arc::new(self.zero_count.finish()),
            Arc::new(self.zero_threshold.finish()),
            Arc::new(self.positive_offset.finish()),
            Arc::new(self.positive_bucket_counts.finish()),
            Arc::new(self.negative_offset.finish()),
            Arc::new(self.negative_bucket_counts.finish()),
            self.quantiles.finish()?,
            Arc::new(self.flags.finish()),
            self.exemplars.finish()?,
        ];
        columns.extend(self.provenance.finish()?);
        RecordBatch::try_new(metrics::schema(), columns)
    }
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

static EMPTY_BUCKETS: Buckets = Buckets {
    offset: 0,
    bucket_counts: Vec::new(),
};

/// Appends a list row, or a null row for `None`.
fn append_list<B, T>(builder: &mut ListBuilder<B>, values: Option<&[T]>)
where
    B: arrow::array::ArrayBuilder + Extend<Option<T>>,
    T: Copy,
{
    match values {
        Some(values) => {
            builder.values().extend(values.iter().copied().map(Some));
            builder.append(true);
        }
        None => builder.append(false),
    }
}

/// The `quantiles` column of summaries.
struct QuantileColumns {
    offsets: ListOffsets,
    quantile: Float64Builder,
    value: Float64Builder,
}

impl QuantileColumns {
    fn with_capacity(n: usize) -> Self {
        QuantileColumns {
            offsets: ListOffsets::with_capacity(n),
            quantile: Float64Builder::new(),
            value: Float64Builder::new(),
        }
    }

    fn append(&mut self, quantiles: Option<&[ValueAtQuantile]>) {
        for q in quantiles.unwrap_or_default() {
            self.quantile.append_value(q.quantile);
            self.value.append_value(q.value);
            self.offsets.push_item();
        }
        self.offsets.close_row(quantiles.is_some());
    }

    fn finish(mut self) -> Result<ArrayRef, ArrowError> {
        let items = StructArray::try_new(
            metrics::quantile_fields(),
            vec![
                Arc::new(self.quantile.finish()),
                Arc::new(self.value.finish()),
            ],
            None,
        )?;
        Ok(self
            .offsets
            .finish(metrics::quantile_item(), Arc::new(items)))
    }
}

/// The `exemplars` column.
struct ExemplarColumns {
    offsets: ListOffsets,
    time: TimestampNanosecondBuilder,
    value: Float64Builder,
    trace_id: IdColumn,
    span_id: IdColumn,
    attributes: AttributesBuilder,
    cohort: StringBuilder,
}

impl ExemplarColumns {
    fn with_capacity(n: usize) -> Self {
        ExemplarColumns {
            offsets: ListOffsets::with_capacity(n),
            time: timestamp_builder(0),
            value: Float64Builder::new(),
            trace_id: IdColumn::with_capacity(0, 16),
            span_id: IdColumn::with_capacity(0, 8),
            attributes: attributes_builder(0),
            cohort: StringBuilder::new(),
        }
    }

    /// Appends one row of exemplars; `cohort(i)` is the cohort of the
    /// `i`-th.
    fn append<'c>(
        &mut self,
        exemplars: &[Exemplar],
        cohort: impl Fn(usize) -> &'c str,
        scratch: &mut String,
    ) {
        for (i, exemplar) in exemplars.iter().enumerate() {
            self.cohort.append_value(cohort(i));
            self.time.append_value(nanos(exemplar.time_unix_nano));
            self.value.append_option(match exemplar.value {
                Some(exemplar::Value::AsDouble(d)) => Some(d),
                Some(exemplar::Value::AsInt(i)) => Some(i as f64),
                None => None,
            });
            self.trace_id.append_or_null(&exemplar.trace_id);
            self.span_id.append_or_null(&exemplar.span_id);
            append_attributes(
                &mut self.attributes,
                Attributes::Proto(&exemplar.filtered_attributes)
                    .iter()
                    .map(RawKeyValue::from),
                scratch,
            );
            self.offsets.push_item();
        }
        self.offsets.close_row(true);
    }

    fn finish(mut self) -> Result<ArrayRef, ArrowError> {
        let items = StructArray::try_new(
            metrics::exemplar_fields(),
            vec![
                Arc::new(self.time.finish()),
                Arc::new(self.value.finish()),
                Arc::new(self.trace_id.finish()?),
                Arc::new(self.span_id.finish()?),
                Arc::new(self.attributes.finish()?),
                Arc::new(self.cohort.finish()),
            ],
            None,
        )?;
        Ok(self
            .offsets
            .finish(metrics::exemplar_item(), Arc::new(items)))
    }
}
