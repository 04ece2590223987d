//! Where gRPC and HTTP meet: every RPC, whichever transport it arrived on, runs through
//! [`CallPolicy::run`], which applies the call deadline, turns a panic into an INTERNAL error instead of
//! a dead process, logs the call and records the go-grpc-prometheus metrics.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tonic::Code;
use tracing::{Instrument, Span};

use crate::access::{Identity, Rule};
use crate::auth::Authorizer;
use crate::error::ApiError;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct CallPolicy {
    metrics: Arc<Metrics>,
    timeout: Duration,
    access: Option<Authorizer>,
}

impl CallPolicy {
    pub fn new(metrics: Arc<Metrics>, timeout: Duration) -> Self {
        Self {
            metrics,
            timeout,
            access: None,
        }
    }

    /// Authorizes every call with `access` ([`Self::authorize`]).
    pub fn with_access(mut self, access: Option<Authorizer>) -> Self {
        self.access = access;
        self
    }

    /// Whether the caller may make a call that needs `rule` in `namespace` (everything is
    /// allowed without an access policy or `--kubernetes-auth`). A call that reached here
    /// without a caller is refused.
    pub async fn authorize(
        &self,
        identity: Option<&Arc<Identity>>,
        rule: Rule,
        namespace: &str,
    ) -> Result<(), ApiError> {
        let Some(access) = &self.access else {
            return Ok(());
        };
        let Some(identity) = identity else {
            return Err(ApiError::with_code(
                Code::Unauthenticated,
                crate::auth::REFUSED,
            ));
        };
        // On the heap: the review's future is large, and this one is part of every call's.
        Box::pin(access.authorize(identity, rule, namespace)).await
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The span of one RPC (`/<service>/<method>`) on the object `target` names (namespace and
    /// name, empty when the call has none); [`Self::run`] adds the answer's code.
    pub fn span(service: &str, method: &str, (namespace, name): (&str, &str)) -> Span {
        tracing::info_span!(
            "call",
            rpc = %format_args!("/{service}/{method}"),
            namespace,
            // Not `name`: JSON logs use that key for the span's own name.
            object = name,
            code = tracing::field::Empty,
        )
    }

    /// Runs one RPC (`/<service>/<method>`) to completion in `span` ([`Self::span`]).
    pub async fn run<T, F>(
        &self,
        service: &'static str,
        method: &'static str,
        span: Span,
        call: F,
    ) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        self.run_in(service, method, call).instrument(span).await
    }

    async fn run_in<T, F>(
        &self,
        service: &'static str,
        method: &'static str,
        call: F,
    ) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        self.metrics.started(service, method);
        let begin = Instant::now();
        tracing::debug!("/{service}/{method} handler starting");
        let outcome =
            tokio::time::timeout(self.timeout, AssertUnwindSafe(call).catch_unwind()).await;
        let result = match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!("/{service}/{method} handler panicked: {what}");
                Err(ApiError::with_code(
                    Code::Internal,
                    format!("Internal Server Error: the request could not be completed: {what}"),
                ))
            }
            Err(_) => Err(ApiError::with_code(
                Code::DeadlineExceeded,
                "context deadline exceeded",
            )),
        };
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(error) => error.code(),
        };
        tracing::Span::current().record("code", crate::metrics::code_name(code));
        if let Err(error) = &result {
            tracing::warn!("/{service}/{method} failed: {error}");
        }
        self.metrics
            .handled(service, method, code, begin.elapsed().as_secs_f64());
        tracing::debug!("/{service}/{method} handler finished");
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_become_internal_errors_and_are_counted() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let call_policy = CallPolicy::new(metrics.clone(), Duration::from_secs(5));
        let result: Result<(), ApiError> = call_policy
            .run(
                "proto.ComputeTemplateService",
                "GetComputeTemplate",
                Span::none(),
                async { panic!("boom") },
            )
            .await;
        let error = result.unwrap_err();
        assert_eq!(error.code(), Code::Internal);
        assert!(error.message().contains("boom"));
        assert!(crate::metrics::render(&registry).contains(
            "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"proto.ComputeTemplateService\",grpc_method=\"GetComputeTemplate\",grpc_code=\"Internal\"} 1"
        ));
    }

    #[tokio::test]
    async fn calls_past_the_deadline_are_deadline_exceeded() {
        let metrics = Metrics::register(&mut Default::default());
        let call_policy = CallPolicy::new(Arc::new(metrics), Duration::from_millis(20));
        let result: Result<(), ApiError> = call_policy
            .run(
                "proto.ComputeTemplateService",
                "ListComputeTemplates",
                Span::none(),
                async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(())
                },
            )
            .await;
        assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
    }
}
