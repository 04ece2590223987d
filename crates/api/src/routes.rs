//! HTTP bindings of the RPCs, generated from their `google.api.http` options.

/// One HTTP binding of an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpRoute {
    /// Fully-qualified service name, e.g. `"proto.ComputeTemplateService"`.
    pub service: &'static str,
    /// Method name, e.g. `"CreateComputeTemplate"`.
    pub method: &'static str,
    /// Upper-case HTTP method, e.g. `"POST"`.
    pub http_method: &'static str,
    /// Path template with `{field}` variables, e.g.
    /// `"/apis/v1/namespaces/{namespace}/compute_templates"`.
    pub pattern: &'static str,
    /// Proto name of the request field the body is decoded into (e.g. `"compute_template"`),
    /// `"*"` for the whole request, or `None` when the body is not read.
    pub body: Option<&'static str>,
}

impl HttpRoute {
    /// Full gRPC method path, e.g. `"/proto.ClusterService/CreateCluster"`.
    pub fn grpc_path(&self) -> String {
        format!("/{}/{}", self.service, self.method)
    }

    /// Names of the path variables in order of appearance.
    pub fn path_variables(&self) -> impl Iterator<Item = &'static str> {
        self.pattern
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
    }
}

include!(concat!(env!("OUT_DIR"), "/routes.rs"));
