//! Structured logging with `tracing`: human-readable lines by default, JSON lines when
//! `LOG_FORMAT=json`; and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the same spans sent to
//! an OpenTelemetry collector over OTLP/HTTP (JSON encoding).
//!
//! The spans worth following are opened where the work happens: `provisioning_step` (grant,
//! step, attempt, direction, outcome) in `services::provisioning::engine`, `usage_collect`
//! and `usage_file` in `services::usage::collector`, `outbox_deliver` (outbox, id, attempt)
//! in `services::outbox`, `request` (method, path with tokens cut out) in `http/trace.rs` and `job` in `jobs/runner.rs`.
//! Their fields are ids and vocabulary words, never a secret, an email address or a token.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use url::Url;

use crate::config::LogFormat;

/// The service name spans carry (`service.name`).
pub const SERVICE_NAME: &str = "portcullis";

/// The trace exporter, when one was set up: [`Telemetry::shutdown`] sends what is still
/// buffered. Keep it until the process ends.
#[must_use = "dropping it without shutdown loses the spans still buffered"]
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter (waits at most the export
    /// timeout). Call it outside the async runtime (the exporter's HTTP client blocks).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("portcullis: the trace exporter did not shut down cleanly: {e}");
        }
    }
}

/// A tracer provider exporting to the OTLP/HTTP collector at `endpoint` (its base URL:
/// `/v1/traces` is added) in batches, from a thread of its own. Build it outside the async
/// runtime (its HTTP client is the blocking one).
pub fn otlp_provider(endpoint: &Url) -> Result<SdkTracerProvider, String> {
    let mut traces = endpoint.clone();
    let path = format!("{}/v1/traces", endpoint.path().trim_end_matches('/'));
    traces.set_path(&path);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(traces.as_str())
        .with_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot set up the OTLP exporter: {e}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(SERVICE_NAME)
                .build(),
        )
        .build())
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn otlp_layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(SERVICE_NAME))
}

/// Installs the global subscriber (and the OTLP exporter when `otlp` is set). Calling it
/// again (tests start several applications in one process) is harmless: the first
/// subscriber stays. An exporter that cannot be set up is an error naming the setting.
pub fn init(format: LogFormat, filter: &str, otlp: Option<&Url>) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = match otlp {
        Some(endpoint) => Some(
            otlp_provider(endpoint)
                .map_err(|e| format!("configuration error: OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?,
        ),
        None => None,
    };
    let otel = provider.as_ref().map(otlp_layer);
    // Logs go to stderr; stdout carries only what the command itself prints (the URL).
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_span_events(FmtSpan::NONE)
        .with_target(true);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = match format {
        LogFormat::Text => registry.with(fmt).try_init(),
        LogFormat::Json => registry
            .with(fmt.json().flatten_event(true).with_current_span(true))
            .try_init(),
    };
    Ok(Telemetry { provider })
}
