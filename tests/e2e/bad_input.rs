//! Bad input gets a clear error and costs nothing else: nothing from a
//! rejected request is stored, and the server keeps serving.

use std::io::Write as _;

use bytes::{Buf as _, BufMut as _, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use serde_json::json;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::harness::Server;

/// `google.rpc.Status`, as an OTLP/HTTP client decodes an error body.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn span(trace_id: Vec<u8>, name: &str, padding: usize) -> Span {
    Span {
        trace_id,
        span_id: vec![7; 8],
        name: name.into(),
        kind: 2,
        start_time_unix_nano: 1_764_000_000_000_000_000,
        end_time_unix_nano: 1_764_000_000_001_000_000,
        attributes: vec![KeyValue {
            key: "padding".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("x".repeat(padding))),
            }),
            key_strindex: 0,
        }],
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(
    server: &Server,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.otlp_http_url("/v1/traces"))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.expect("reach OTLP/HTTP")
}

async fn spans_stored(server: &Server) -> i64 {
    server.count("SELECT count(*) AS n FROM spans").await
}

async fn still_serving(server: &Server) {
    let body = request(vec![span(vec![9; 16], "after", 1)]).encode_to_vec();
    let response = post(server, "application/x-protobuf", None, body).await;
    assert_eq!(response.status(), 200);
    let n = server
        .count("SELECT count(*) AS n FROM spans WHERE name = 'after'")
        .await;
    assert!(n >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_bodies_get_400_with_a_reason() {
    let server = Server::start();

    let response = post(
        &server,
        "application/x-protobuf",
        None,
        b"\x0a\xff\xff\xff".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let status = RpcStatus::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
    assert!(
        status
            .message
            .contains("cannot decode traces export request"),
        "{}",
        status.message
    );

    let response = post(
        &server,
        "application/json",
        None,
        b"{\"resourceSpans\": [".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 400);
    let status: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status["code"], json!(3));
    assert!(
        status["message"].as_str().unwrap().contains("OTLP JSON"),
        "{status}"
    );

    // A span whose trace id is not hex is a malformed body too: rejected whole.
    let bad_hex = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "not-hex", "spanId": "0707070707070707", "name": "x"}
    ]}]}]});
    let response = post(
        &server,
        "application/json",
        None,
        bad_hex.to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status(), 400);

    assert_eq!(spans_stored(&server).await, 0);
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_before_and_after_decompression() {
    let server = Server::start_with("max_request_size = \"64KiB\"");

    let big = request(vec![span(vec![1; 16], "big", 100_000)]).encode_to_vec();
    assert!(big.len() > 64 * 1024);
    let response = post(&server, "application/x-protobuf", None, big.clone()).await;
    assert_eq!(response.status(), 413);

    // Compresses to a few hundred bytes, inflates past the limit.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&big).unwrap();
    let compressed = gzip.finish().unwrap();
    assert!(compressed.len() < 64 * 1024);
    let response = post(&server, "application/x-protobuf", Some("gzip"), compressed).await;
    assert_eq!(response.status(), 413);
    let status = RpcStatus::decode(response.bytes().await.unwrap()).unwrap();
    assert!(status.message.contains("65536"), "{}", status.message);

    // Within the limit, the same content is fine.
    let small = request(vec![span(vec![1; 16], "small", 1000)]).encode_to_vec();
    let response = post(&server, "application/x-protobuf", None, small).await;
    assert_eq!(response.status(), 200);
    assert_eq!(spans_stored(&server).await, 1);
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_media_gets_415() {
    let server = Server::start();
    let body = request(vec![span(vec![1; 16], "x", 1)]).encode_to_vec();
    let response = post(&server, "text/plain", None, body.clone()).await;
    assert_eq!(response.status(), 415);
    let response = post(&server, "application/x-protobuf", Some("br"), body).await;
    assert_eq!(response.status(), 415);
    assert_eq!(spans_stored(&server).await, 0);
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_rejected_one_by_one_with_partial_success() {
    let server = Server::start();
    let mixed = request(vec![
        span(vec![1; 16], "good", 1),
        span(vec![1; 8], "short-trace-id", 1),
        span(vec![0; 16], "zero-trace-id", 1),
    ]);

    let mut client = TraceServiceClient::connect(server.grpc_url())
        .await
        .unwrap();
    let response = client.export(mixed.clone()).await.unwrap().into_inner();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("short-trace-id"),
        "{}",
        partial.error_message
    );
    assert!(partial.error_message.contains("trace_id must be 16 bytes"));

    let body = serde_json::to_vec(&mixed).unwrap();
    let response = post(&server, "application/json", None, body).await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let rejected = &answer["partialSuccess"]["rejectedSpans"];
    assert!(rejected == &json!(2) || rejected == &json!("2"), "{answer}");

    let names = server.sql("SELECT name FROM spans ORDER BY name").await;
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|row| row["name"] == json!("good")));
}

/// Sends raw bytes as a gRPC message, as a broken client would.
#[derive(Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_answers_invalid_argument_and_resource_exhausted() {
    let server = Server::start_with("max_request_size = \"64KiB\"");
    let channel = tonic::transport::Endpoint::from_shared(server.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut raw = tonic::client::Grpc::new(channel.clone());
    raw.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let status = raw
        .unary(
            tonic::Request::new(Bytes::from_static(b"\x0a\xff\xff\xff")),
            path,
            RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("cannot decode"), "{status:?}");

    let mut client = TraceServiceClient::new(channel);
    let status = client
        .export(request(vec![span(vec![1; 16], "big", 100_000)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");

    assert_eq!(spans_stored(&server).await, 0);
    let response = client
        .export(request(vec![span(vec![1; 16], "fine", 10)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.partial_success, None);
    assert_eq!(spans_stored(&server).await, 1);
}
