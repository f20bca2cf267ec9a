//! OpenTelemetry export of the service's spans (`request`, `job`, `stage`), when an OTLP
//! endpoint is configured the standard way: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it
//! is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended), OTLP/HTTP with protobuf bodies,
//! spans sent in batches from a thread of the exporter's own. `OTEL_SERVICE_NAME` names the
//! service (`icp-service` by default); the exporter's other standard variables (headers,
//! timeout) apply too. Without an endpoint nothing is exported and no exporter runs.
//!
//! What is exported is what the log shows: span names and their fields (job id, attempt,
//! stage, workflow id, method, path, request id), and the lines logged inside them — never an
//! identifier or a body (the invariants of ARCHITECTURE.md).

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

const DEFAULT_SERVICE_NAME: &str = "icp-service";

fn set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The tracer provider exporting to the configured endpoint, or `None` when none is.
pub fn provider() -> anyhow::Result<Option<SdkTracerProvider>> {
    if set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        && set("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
    {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .context("configuring the OTLP exporter")?;
    let service = set("OTEL_SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    Ok(Some(provider))
}

/// The layer that turns `tracing` spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("icp"))
}

/// Sends what is still buffered and stops the exporter's thread.
pub fn shutdown(provider: SdkTracerProvider) {
    if let Err(e) = provider.shutdown() {
        eprintln!("OpenTelemetry export did not shut down cleanly: {e}");
    }
}
