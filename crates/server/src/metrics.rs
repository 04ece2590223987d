//! Prometheus metrics with the go-grpc-prometheus names, so existing dashboards keep working.
//!
//! Calls are counted where both transports meet (the call wrapper in `call_policy.rs`), so a request
//! over HTTP/JSON is counted exactly like the same request over gRPC.

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tonic::Code;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
}

const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The gRPC server metrics, registered into the registry `/metrics` exposes.
pub struct Metrics {
    left_out: Family<KindLabels, Counter>,
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    received: Family<MethodLabels, Counter>,
    sent: Family<MethodLabels, Counter>,
    handling: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let started = Family::<MethodLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let received = Family::<MethodLabels, Counter>::default();
        let sent = Family::<MethodLabels, Counter>::default();
        let handling = Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            new_histogram,
        );
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            handled.clone(),
        );
        registry.register(
            "grpc_server_msg_received",
            "Total number of RPC stream messages received on the server.",
            received.clone(),
        );
        registry.register(
            "grpc_server_msg_sent",
            "Total number of gRPC stream messages sent by the server.",
            sent.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            handling.clone(),
        );
        let left_out = Family::<KindLabels, Counter>::default();
        registry.register(
            "kuberay_apiserver_list_left_out_objects",
            "Objects left out of list answers because they cannot be read or converted.",
            left_out.clone(),
        );
        Self {
            left_out,
            started,
            handled,
            received,
            sent,
            handling,
        }
    }

    /// Creates the zero-valued series of a method, as go-grpc-prometheus does at start-up.
    pub fn initialize(&self, service: &'static str, method: &'static str) {
        let labels = unary(service, method);
        let _ = self.started.get_or_create(&labels);
        let _ = self.received.get_or_create(&labels);
        let _ = self.sent.get_or_create(&labels);
        for code in ALL_CODES {
            let _ = self
                .handled
                .get_or_create(&handled(service, method, code_name(code)));
        }
    }

    /// A call has started (and its request message was received).
    pub fn started(&self, service: &'static str, method: &'static str) {
        let labels = unary(service, method);
        self.started.get_or_create(&labels).inc();
        self.received.get_or_create(&labels).inc();
    }

    /// A call has finished with `code` after `seconds`.
    pub fn handled(&self, service: &'static str, method: &'static str, code: Code, seconds: f64) {
        let labels = unary(service, method);
        if code == Code::Ok {
            self.sent.get_or_create(&labels).inc();
        }
        self.handled
            .get_or_create(&handled(service, method, code_name(code)))
            .inc();
        self.handling.get_or_create(&labels).observe(seconds);
    }

    /// An object of `kind` was left out of a list answer.
    pub fn left_out(&self, kind: &'static str) {
        self.left_out.get_or_create(&KindLabels { kind }).inc();
    }
}

/// `registry`'s metrics in the OpenMetrics text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

fn unary(service: &'static str, method: &'static str) -> MethodLabels {
    MethodLabels {
        grpc_type: "unary",
        grpc_service: service,
        grpc_method: method,
    }
}

fn handled(service: &'static str, method: &'static str, code: &'static str) -> HandledLabels {
    HandledLabels {
        grpc_type: "unary",
        grpc_service: service,
        grpc_method: method,
        grpc_code: code,
    }
}

const ALL_CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// grpc-go's names of the codes, as used in the `grpc_code` label.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_use_go_grpc_prometheus_names() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.initialize("proto.ComputeTemplateService", "GetComputeTemplate");
        let text = render(&registry);
        assert!(text.contains(
            "grpc_server_started_total{grpc_type=\"unary\",grpc_service=\"proto.ComputeTemplateService\",grpc_method=\"GetComputeTemplate\"} 0"
        ));
        assert!(text.contains("grpc_code=\"FailedPrecondition\"} 0"));

        metrics.started("proto.ComputeTemplateService", "GetComputeTemplate");
        metrics.handled(
            "proto.ComputeTemplateService",
            "GetComputeTemplate",
            Code::NotFound,
            0.003,
        );
        let text = render(&registry);
        assert!(text.contains(
            "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"proto.ComputeTemplateService\",grpc_method=\"GetComputeTemplate\",grpc_code=\"NotFound\"} 1"
        ));
        assert!(
            text.contains("grpc_server_handling_seconds_bucket{le=\"0.005\",grpc_type=\"unary\"")
        );
    }
}
