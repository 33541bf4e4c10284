//! The OTLP/gRPC receiver: `TraceService/Export`, `LogsService/Export`,
//! `MetricsService/Export`.
//!
//! The services are served by tonic under the names generated in
//! `opentelemetry-proto`, but with our own codec: the request arrives as
//! raw bytes and goes through the same [`Pipeline`] as OTLP/HTTP, decoded
//! off the async runtime. Owning the codec is what lets us answer as the
//! OTLP specification asks — INVALID_ARGUMENT for a message that does not
//! decode (the generated codec answers INTERNAL) and RESOURCE_EXHAUSTED for
//! one over the size limit (tonic's framing answers OUT_OF_RANGE).

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, BufMut as _, Bytes};
use tonic::body::Body;
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::service::Routes;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::decode::Encoding;
use crate::pipeline::Pipeline;
use crate::response::export_response;
use crate::signal::Signal;

/// The three OTLP services as tonic routes, ready for
/// `tonic::transport::Server::builder().add_routes(..)`.
pub fn routes(pipeline: Pipeline, max_request_size: usize) -> Routes {
    Routes::new(ExportService::<Traces>::new(
        pipeline.clone(),
        max_request_size,
    ))
    .add_service(ExportService::<Logs>::new(
        pipeline.clone(),
        max_request_size,
    ))
    .add_service(ExportService::<Metrics>::new(pipeline, max_request_size))
}

/// Names one OTLP gRPC service.
pub trait OtlpService: Send + Sync + 'static {
    /// The signal the service receives.
    const SIGNAL: Signal;
    /// Its fully qualified gRPC name.
    const NAME: &'static str;
}

/// `opentelemetry.proto.collector.trace.v1.TraceService`.
#[derive(Debug)]
pub struct Traces;
/// `opentelemetry.proto.collector.logs.v1.LogsService`.
#[derive(Debug)]
pub struct Logs;
/// `opentelemetry.proto.collector.metrics.v1.MetricsService`.
#[derive(Debug)]
pub struct Metrics;

impl OtlpService for Traces {
    const SIGNAL: Signal = Signal::Traces;
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}
impl OtlpService for Logs {
    const SIGNAL: Signal = Signal::Logs;
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}
impl OtlpService for Metrics {
    const SIGNAL: Signal = Signal::Metrics;
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
}

/// One OTLP gRPC service.
#[derive(Debug)]
pub struct ExportService<S> {
    pipeline: Pipeline,
    max_request_size: usize,
    service: PhantomData<fn() -> S>,
}

impl<S> Clone for ExportService<S> {
    fn clone(&self) -> Self {
        ExportService {
            pipeline: self.pipeline.clone(),
            max_request_size: self.max_request_size,
            service: PhantomData,
        }
    }
}

impl<S: OtlpService> ExportService<S> {
    /// The service, writing through `pipeline`.
    pub fn new(pipeline: Pipeline, max_request_size: usize) -> Self {
        ExportService {
            pipeline,
            max_request_size,
            service: PhantomData,
        }
    }
}

impl<S: OtlpService> NamedService for ExportService<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<S, B> tower::Service<http::Request<B>> for ExportService<S>
where
    S: OtlpService,
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let is_export = request
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|path| path.strip_prefix(S::NAME))
            == Some("/Export");
        if !is_export {
            return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
        }
        let method = ExportMethod {
            pipeline: self.pipeline.clone(),
            signal: S::SIGNAL,
        };
        let limit = self.max_request_size;
        Box::pin(async move {
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            accept.enable(CompressionEncoding::Zstd);
            let mut grpc = Grpc::new(RawCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(limit), None);
            let mut response = grpc.unary(method, request).await;
            // Our handler never answers OUT_OF_RANGE: it comes from tonic's
            // framing refusing an oversized message, which OTLP (and the
            // Collector) answer with RESOURCE_EXHAUSTED.
            let headers = response.headers_mut();
            let out_of_range = http::HeaderValue::from(Code::OutOfRange as i32);
            if headers.get(Status::GRPC_STATUS) == Some(&out_of_range) {
                headers.insert(
                    Status::GRPC_STATUS,
                    http::HeaderValue::from(Code::ResourceExhausted as i32),
                );
            }
            Ok(response)
        })
    }
}

struct ExportMethod {
    pipeline: Pipeline,
    signal: Signal,
}

impl UnaryService<Bytes> for ExportMethod {
    type Response = Bytes;
    type Future = BoxFuture<tonic::Response<Bytes>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let pipeline = self.pipeline.clone();
        let signal = self.signal;
        Box::pin(async move {
            let answer = |error: crate::Error| {
                tracing::debug!(%signal, error = %error.client_message(), "OTLP/gRPC export rejected");
                match error.retry_after() {
                    // OTLP clients retry RESOURCE_EXHAUSTED only with RetryInfo.
                    Some(delay) => Status::with_error_details(
                        error.grpc_code(),
                        error.client_message(),
                        ErrorDetails::with_retry_info(Some(delay)),
                    ),
                    None => Status::new(error.grpc_code(), error.client_message()),
                }
            };
            let _admission = pipeline.admit().map_err(answer)?;
            let outcome = pipeline
                .export(signal, Encoding::Protobuf, request.into_inner())
                .await
                .map_err(answer)?;
            let body = export_response(signal, Encoding::Protobuf, &outcome);
            Ok(tonic::Response::new(Bytes::from(body)))
        })
    }
}

/// Passes message bytes through untouched: decoding happens in the pipeline.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}
