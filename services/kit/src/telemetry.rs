//! Logs, traces and metrics (ARCHITECTURE §12).
//!
//! Logs as JSON when the output is not a terminal (a pod, a pipe, a file), and on a terminal as
//! readable text with only warnings and errors by default, so the lines a person needs (the address,
//! the demo's tokens) are not buried; `DESK_LOG_FORMAT=json|text` and `RUST_LOG` override both
//! ([`LogStyle::choose`]). OTLP export of
//! traces and metrics only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, configured by the standard
//! `OTEL_*` variables. W3C `traceparent` is read from gRPC metadata and NATS headers and written into
//! outgoing ones, so one trace follows a call through the outbox and NATS.

use std::collections::HashMap;

use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// Keeps exporters alive; flushes them on drop (the last step of an ordered shutdown).
#[must_use = "dropping the guard flushes and stops telemetry"]
pub struct TelemetryGuard {
    tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    meter_provider: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take() {
            let _ = provider.shutdown();
        }
        if let Some(provider) = self.meter_provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// How logs are written, and which by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStyle {
    /// Readable text instead of JSON lines.
    pub text: bool,
    /// The filter when `RUST_LOG` is not set.
    pub default_filter: &'static str,
}

impl LogStyle {
    /// `format` is `DESK_LOG_FORMAT`; `terminal` whether stdout is one. A person at a terminal
    /// gets text and warnings only; everything else (Kubernetes, CI, a pipe) JSON at info.
    pub fn choose(format: Option<&str>, terminal: bool) -> LogStyle {
        const SERVICE_FILTER: &str = "info,sqlx=warn,async_nats=warn,h2=warn";
        match (format, terminal) {
            (Some("json"), _) => LogStyle {
                text: false,
                default_filter: SERVICE_FILTER,
            },
            (Some("text"), _) => LogStyle {
                text: true,
                default_filter: SERVICE_FILTER,
            },
            (_, true) => LogStyle {
                text: true,
                default_filter: "warn",
            },
            (_, false) => LogStyle {
                text: false,
                default_filter: SERVICE_FILTER,
            },
        }
    }
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(service_name: &str) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    use std::io::IsTerminal as _;
    let style = LogStyle::choose(
        std::env::var("DESK_LOG_FORMAT").ok().as_deref(),
        std::io::stdout().is_terminal(),
    );
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(style.default_filter));
    let fmt_layer = if style.text {
        tracing_subscriber::fmt::layer().compact().boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed()
    };

    let otlp = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty());
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    // Spans get trace ids even without an exporter, so a caller's `traceparent` still flows on into
    // the outbox and NATS headers; exporting is the only part that needs an endpoint.
    let mut tracer_builder =
        opentelemetry_sdk::trace::SdkTracerProvider::builder().with_resource(resource.clone());
    let mut guard = TelemetryGuard {
        tracer_provider: None,
        meter_provider: None,
    };
    if otlp {
        tracer_builder = tracer_builder.with_batch_exporter(
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?,
        );
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()?;
        let meter_provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
            .with_periodic_exporter(metrics)
            .with_resource(resource)
            .build();
        opentelemetry::global::set_meter_provider(meter_provider.clone());
        guard.meter_provider = Some(meter_provider);
    }
    let tracer_provider = tracer_builder.build();
    let tracer = tracer_provider.tracer("desk");
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    guard.tracer_provider = Some(tracer_provider);
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    Ok(guard)
}

/// The current span's context as a W3C `traceparent`, or `None` when there is no sampled trace.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut MapCarrier(&mut carrier));
    carrier.remove("traceparent")
}

/// Makes `span` a child of the remote `traceparent`, when one is given and valid.
pub fn set_remote_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(value) = traceparent {
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), value.to_owned());
        let context = TraceContextPropagator::new().extract(&MapCarrier(&mut carrier));
        let _ = span.set_parent(context);
    }
}

/// A span for one incoming gRPC call, parented on the caller's `traceparent` (for `Server::trace_fn`).
pub fn grpc_request_span(request: &http::Request<()>) -> tracing::Span {
    let span =
        tracing::info_span!("grpc", rpc.method = %request.uri().path(), otel.kind = "server");
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    set_remote_parent(&span, traceparent);
    span
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for MapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod log_style_tests {
    use super::LogStyle;

    #[test]
    fn a_terminal_gets_quiet_text_and_everything_else_json_at_info() {
        assert_eq!(
            LogStyle::choose(None, true),
            LogStyle {
                text: true,
                default_filter: "warn"
            }
        );
        let piped = LogStyle::choose(None, false);
        assert!(!piped.text && piped.default_filter.starts_with("info"));
        assert!(!LogStyle::choose(Some("json"), true).text);
        let asked = LogStyle::choose(Some("text"), false);
        assert!(asked.text && asked.default_filter.starts_with("info"));
    }
}
