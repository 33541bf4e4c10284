//! Every metric kind — sum, gauge, histogram, exponential histogram from the
//! SDK, summary from a raw OTLP client — is stored, none dropped.

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Metric, ResourceMetrics, ScopeMetrics, Summary, SummaryDataPoint, metric,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter as _;
use opentelemetry_sdk::metrics::{
    Aggregation, InMemoryMetricExporter, Instrument, PeriodicReader, SdkMeterProvider, Stream,
};
use serde_json::json;

use super::harness::{Protocol, Server};
use super::telemetry::{T0_NS, metric_exporter, resource};

async fn export_sdk_metrics(server: &Server, protocol: Protocol, service: &str) {
    let memory = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_resource(resource(service))
        .with_reader(PeriodicReader::builder(memory.clone()).build())
        .with_view(|instrument: &Instrument| {
            (instrument.name() == "checkout.latency.exp").then(|| {
                Stream::builder()
                    .with_aggregation(Aggregation::Base2ExponentialHistogram {
                        max_size: 160,
                        max_scale: 20,
                        record_min_max: true,
                    })
                    .build()
                    .expect("stream")
            })
        })
        .build();
    let meter = provider.meter("checkout-metrics");
    let route = |r: &'static str| [KeyValue::new("http.route", r)];

    let requests = meter
        .u64_counter("http.server.requests")
        .with_unit("1")
        .build();
    requests.add(5, &route("/cart"));
    requests.add(2, &route("/cart"));
    requests.add(1, &route("/health"));
    let depth = meter.i64_up_down_counter("queue.depth").build();
    depth.add(10, &[]);
    depth.add(-3, &[]);
    let cpu = meter
        .f64_gauge("cpu.utilization")
        .with_description("fraction of one core")
        .build();
    cpu.record(0.75, &[]);
    let latency = meter
        .f64_histogram("checkout.latency")
        .with_unit("ms")
        .build();
    for ms in [5.0, 15.0, 150.0] {
        latency.record(ms, &route("/cart"));
    }
    let exp = meter
        .f64_histogram("checkout.latency.exp")
        .with_unit("ms")
        .build();
    for ms in [1.0, 2.0, 4.0] {
        exp.record(ms, &[]);
    }

    provider.force_flush().expect("flush");
    let collected = memory.get_finished_metrics().expect("metrics");
    let last = collected.last().expect("one collection");
    let exporter = metric_exporter(server, protocol);
    exporter
        .export(last)
        .await
        .unwrap_or_else(|e| panic!("metric export over {protocol:?} failed: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_of_every_kind_over_every_protocol() {
    let server = Server::start();
    for protocol in Protocol::ALL {
        let service = format!("metrics-{}", protocol.name());
        export_sdk_metrics(&server, protocol, &service).await;
        let where_ = format!("service = '{service}'");

        let sums = server
            .sql(&format!(
                "SELECT name, kind, temporality, is_monotonic, value, unit, attributes['http.route'] AS route, cohort, version
                 FROM metrics WHERE {where_} AND kind = 'sum' ORDER BY name, route"
            ))
            .await;
        assert_eq!(
            sums,
            vec![
                json!({"name": "http.server.requests", "kind": "sum", "temporality": "cumulative",
                       "is_monotonic": true, "value": 7.0, "unit": "1", "route": "/cart",
                       "cohort": "baseline", "version": "2.1.0"}),
                json!({"name": "http.server.requests", "kind": "sum", "temporality": "cumulative",
                       "is_monotonic": true, "value": 1.0, "unit": "1", "route": "/health",
                       "cohort": "baseline", "version": "2.1.0"}),
                json!({"name": "queue.depth", "kind": "sum", "temporality": "cumulative",
                       "is_monotonic": false, "value": 7.0, "unit": null, "route": null,
                       "cohort": "baseline", "version": "2.1.0"}),
            ]
            .into_iter()
            .map(|v| v.as_object().unwrap().clone())
            .collect::<Vec<_>>(),
            "{protocol:?}"
        );

        let gauge = server
            .sql(&format!(
                "SELECT value, description, temporality, count FROM metrics WHERE {where_} AND kind = 'gauge'"
            ))
            .await;
        assert_eq!(gauge.len(), 1, "{protocol:?}");
        assert_eq!(gauge[0]["value"], json!(0.75));
        assert_eq!(gauge[0]["description"], json!("fraction of one core"));
        assert_eq!(gauge[0]["temporality"], json!(null));
        assert_eq!(gauge[0]["count"], json!(null));

        let histogram = server
            .sql(&format!(
                "SELECT count, sum, min, max, bucket_counts, explicit_bounds, value, unit
                 FROM metrics WHERE {where_} AND kind = 'histogram'"
            ))
            .await;
        assert_eq!(histogram.len(), 1, "{protocol:?}");
        let h = &histogram[0];
        assert_eq!(h["count"], json!(3));
        assert_eq!(h["sum"], json!(170.0));
        assert_eq!(h["min"], json!(5.0));
        assert_eq!(h["max"], json!(150.0));
        assert_eq!(h["value"], json!(null));
        assert_eq!(h["unit"], json!("ms"));
        let bounds: Vec<f64> = serde_json::from_value(h["explicit_bounds"].clone()).unwrap();
        let counts: Vec<u64> = serde_json::from_value(h["bucket_counts"].clone()).unwrap();
        assert_eq!(counts.len(), bounds.len() + 1);
        assert_eq!(counts.iter().sum::<u64>(), 3);
        // Each observation sits in the bucket whose upper bound covers it.
        for ms in [5.0, 15.0, 150.0] {
            let bucket = bounds.iter().position(|b| ms <= *b).unwrap_or(bounds.len());
            assert!(
                counts[bucket] >= 1,
                "{ms} not counted in bucket {bucket}: {counts:?}"
            );
        }

        let exp = server
            .sql(&format!(
                "SELECT count, sum, min, max, scale, zero_count, positive_offset, positive_bucket_counts,
                        negative_bucket_counts
                 FROM metrics WHERE {where_} AND kind = 'exponential_histogram'"
            ))
            .await;
        assert_eq!(exp.len(), 1, "{protocol:?}");
        let e = &exp[0];
        assert_eq!(e["count"], json!(3));
        assert_eq!(e["sum"], json!(7.0));
        assert_eq!(e["min"], json!(1.0));
        assert_eq!(e["max"], json!(4.0));
        assert_eq!(e["zero_count"], json!(0));
        assert!(e["scale"].is_i64());
        assert!(e["positive_offset"].is_i64());
        let positive: Vec<u64> =
            serde_json::from_value(e["positive_bucket_counts"].clone()).unwrap();
        assert_eq!(positive.iter().sum::<u64>(), 3);
        assert_eq!(e["negative_bucket_counts"], json!([]));
    }
    // 3 sums, 1 gauge, 1 histogram, 1 exponential histogram per protocol.
    assert_eq!(server.count("SELECT count(*) AS n FROM metrics").await, 18);
}

fn summary_request() -> ExportMetricsServiceRequest {
    let text = |k: &str, v: &str| ProtoKeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        key_strindex: 0,
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(ProtoResource {
                attributes: vec![text("service.name", "legacy-grpc")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "rpc.latency".into(),
                    unit: "s".into(),
                    data: Some(metric::Data::Summary(Summary {
                        data_points: vec![SummaryDataPoint {
                            attributes: vec![text("method", "Charge")],
                            start_time_unix_nano: T0_NS,
                            time_unix_nano: T0_NS + 60_000_000_000,
                            count: 120,
                            sum: 30.5,
                            quantile_values: vec![
                                ValueAtQuantile {
                                    quantile: 0.5,
                                    value: 0.2,
                                },
                                ValueAtQuantile {
                                    quantile: 0.99,
                                    value: 0.9,
                                },
                            ],
                            flags: 0,
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_are_kept_from_grpc_and_json() {
    let server = Server::start();
    let mut client = MetricsServiceClient::connect(server.grpc_url())
        .await
        .unwrap();
    let response = client.export(summary_request()).await.unwrap().into_inner();
    assert_eq!(response.partial_success, None);

    // The same point in OTLP JSON as the specification writes it: int64s
    // as strings, lowerCamelCase names.
    let json_body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "legacy-json"}}]},
        "scopeMetrics": [{"metrics": [{
            "name": "rpc.latency", "unit": "s",
            "summary": {"dataPoints": [{
                "attributes": [{"key": "method", "value": {"stringValue": "Charge"}}],
                "startTimeUnixNano": T0_NS.to_string(),
                "timeUnixNano": (T0_NS + 60_000_000_000).to_string(),
                "count": "120", "sum": 30.5,
                "quantileValues": [{"quantile": 0.5, "value": 0.2}, {"quantile": 0.99, "value": 0.9}]
            }]}
        }]}]
    }]});
    let response = reqwest::Client::new()
        .post(server.otlp_http_url("/v1/metrics"))
        .header("content-type", "application/json")
        .body(json_body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");

    let rows = server
        .sql(
            "SELECT service, name, kind, count, sum, quantiles, attributes['method'] AS method,
                    CAST(time AS BIGINT) AS t, CAST(start_time AS BIGINT) AS start
             FROM metrics ORDER BY service",
        )
        .await;
    assert_eq!(rows.len(), 2);
    for (row, service) in rows.iter().zip(["legacy-grpc", "legacy-json"]) {
        assert_eq!(row["service"], json!(service));
        assert_eq!(row["name"], json!("rpc.latency"));
        assert_eq!(row["kind"], json!("summary"));
        assert_eq!(row["count"], json!(120));
        assert_eq!(row["sum"], json!(30.5));
        assert_eq!(row["method"], json!("Charge"));
        assert_eq!(row["t"], json!(T0_NS + 60_000_000_000));
        assert_eq!(row["start"], json!(T0_NS));
        assert_eq!(
            row["quantiles"],
            json!([{"quantile": 0.5, "value": 0.2}, {"quantile": 0.99, "value": 0.9}])
        );
    }
}
