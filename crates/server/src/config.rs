//! Command-line configuration. Flags keep the Go server's names (and its `-flag` single-dash and
//! `:port` forms) so its Helm chart and scripts work unchanged; every flag also has an
//! environment variable.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// A kubeconfig or in-cluster configuration when one is found, else the embedded store.
    Auto,
    /// The in-process Kubernetes-compatible store under `--data-dir`.
    Embedded,
    /// A real Kubernetes cluster (kubeconfig or in-cluster configuration).
    Kubernetes,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kuberay-apiserver",
    version,
    about = "KubeRay API server: gRPC and HTTP/JSON APIs for Ray clusters, jobs and services",
    // A repeated flag takes its last value, as with Go's flag package.
    args_override_self = true
)]
pub struct Config {
    /// gRPC listen address (`:PORT` or `HOST:PORT`).
    #[arg(long = "rpcPortFlag", env = "KUBERAY_APISERVER_RPC_ADDR", default_value = ":8887", value_parser = parse_listen_address)]
    pub rpc_address: SocketAddr,

    /// HTTP listen address (`:PORT` or `HOST:PORT`).
    #[arg(long = "httpPortFlag", env = "KUBERAY_APISERVER_HTTP_ADDR", default_value = ":8888", value_parser = parse_listen_address)]
    pub http_address: SocketAddr,

    /// Deadline of every API call, in Go duration syntax (`60s`, `1m30s`).
    #[arg(long = "grpc_timeout", env = "KUBERAY_APISERVER_GRPC_TIMEOUT", default_value = "60s", value_parser = parse_go_duration)]
    pub grpc_timeout: Duration,

    /// Accepted for compatibility; metrics are always collected and served on `/metrics`.
    #[arg(long = "collectMetricsFlag", env = "KUBERAY_APISERVER_COLLECT_METRICS", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = parse_go_bool)]
    pub collect_metrics: bool,

    /// Also write logs to this file.
    #[arg(long = "logFilePath", env = "KUBERAY_APISERVER_LOG_FILE")]
    pub log_file_path: Option<PathBuf>,

    /// Log lines as text, or as JSON objects (one per line, with the request's fields).
    #[arg(long = "log-format", env = "KUBERAY_APISERVER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Directory of `*.swagger.json` files served under `/swagger/` instead of the built-in ones.
    #[arg(long = "localSwaggerPath", env = "KUBERAY_APISERVER_SWAGGER_DIR")]
    pub local_swagger_path: Option<PathBuf>,

    /// Serve the V2 (Kubernetes-style proxy) routes on the HTTP port.
    #[arg(long = "enable-api-server-v2", env = "KUBERAY_APISERVER_ENABLE_V2", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = parse_go_bool)]
    pub enable_api_server_v2: bool,

    /// Answer V1 gets and lists from watch caches (one watch per kind) instead of a Kubernetes
    /// call each; `false` reads everything live.
    #[arg(long = "watch-cache", env = "KUBERAY_APISERVER_WATCH_CACHE", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = parse_go_bool)]
    pub watch_cache: bool,

    /// Allowed CORS origin for the API routes (`*` for any); empty disables CORS.
    #[arg(
        long = "cors-allow-origin",
        env = "KUBERAY_APISERVER_CORS_ALLOW_ORIGIN",
        default_value = ""
    )]
    pub cors_allow_origin: String,

    /// Where Kubernetes objects live.
    #[arg(
        long,
        env = "KUBERAY_APISERVER_BACKEND",
        value_enum,
        default_value = "auto"
    )]
    pub backend: BackendKind,

    /// Kubeconfig file of the cluster to use (implies the Kubernetes backend under `auto`).
    #[arg(long, env = "KUBERAY_APISERVER_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Directory of the embedded store [default: $XDG_DATA_HOME/kuberay-apiserver or
    /// ~/.local/share/kuberay-apiserver].
    #[arg(long = "data-dir", env = "KUBERAY_APISERVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Also serve the embedded Kubernetes API on this loopback address, for kubectl.
    #[arg(long = "embedded-kube-listen", env = "KUBERAY_APISERVER_EMBEDDED_KUBE_LISTEN", value_parser = parse_listen_address)]
    pub embedded_kube_listen: Option<SocketAddr>,

    /// How long `/healthz` answers 503 before the listeners close on SIGINT/SIGTERM, so load
    /// balancers stop sending traffic first.
    #[arg(long = "shutdown-delay", env = "KUBERAY_APISERVER_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_go_duration)]
    pub shutdown_delay: Duration,

    /// Largest HTTP request body accepted, in bytes; like the gRPC receive limit, well above
    /// what Kubernetes accepts in one object (about 3 MiB).
    #[arg(long = "http-max-body-bytes", env = "KUBERAY_APISERVER_HTTP_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub http_max_body_bytes: usize,

    /// Serve one namespace only (the Helm chart's `singleNamespaceInstall`): requests for any
    /// other namespace are refused (PERMISSION_DENIED / 403) before any Kubernetes call, V1
    /// list-all calls list this namespace, and V2 requests across all namespaces are refused.
    /// Unset: every namespace.
    #[arg(long = "namespace", env = "KUBERAY_APISERVER_NAMESPACE", value_parser = parse_namespace)]
    pub namespace: Option<String>,

    /// Where the job-submission calls find a cluster's Ray dashboard, e.g.
    /// `http://{name}-head-svc.{namespace}:8265`; `{name}` and `{namespace}` are replaced by the
    /// cluster's. Unset: the in-cluster Service address when running in a pod, else the
    /// Kubernetes API server's service proxy.
    #[arg(
        long = "dashboard-url-template",
        env = "KUBERAY_APISERVER_DASHBOARD_URL_TEMPLATE"
    )]
    pub dashboard_url_template: Option<String>,

    /// Token every API call must present (`Authorization: <token>` or `Authorization: Bearer
    /// <token>`; gRPC metadata `authorization`). Unset: no authentication, as the Go server.
    #[arg(
        long = "auth-token",
        env = "KUBERAY_APISERVER_AUTH_TOKEN",
        hide_env_values = true,
        conflicts_with = "auth_token_file"
    )]
    pub auth_token: Option<String>,

    /// With `--auth-token`: `/metrics` needs the token too (by default it stays open, like the
    /// health endpoints).
    #[arg(long = "auth-metrics", env = "KUBERAY_APISERVER_AUTH_METRICS", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = parse_go_bool)]
    pub auth_metrics: bool,

    /// Authenticate callers with the cluster's TokenReview (`Authorization: Bearer <token>`) and
    /// authorize every V1 call with a SubjectAccessReview as the caller; V2 calls go to
    /// Kubernetes as the caller (impersonation). Needs `create` on tokenreviews and
    /// subjectaccessreviews, and `impersonate` on users, groups, serviceaccounts and every
    /// resource of authentication.k8s.io (uids, userextras/<key>).
    #[arg(long = "kubernetes-auth", env = "KUBERAY_APISERVER_KUBERNETES_AUTH", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = parse_go_bool, conflicts_with_all = ["auth_token", "auth_token_file"])]
    pub kubernetes_auth: bool,

    /// A file holding the token of `--auth-token` (surrounding whitespace ignored).
    #[arg(long = "auth-token-file", env = "KUBERAY_APISERVER_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// With `--auth-token`: only HTTP paths starting with this prefix need the token (the
    /// `SECURITY_PREFIX` of KubeRay's security proxy); gRPC calls always do. Default: `/`, every
    /// API path.
    #[arg(long = "auth-path-prefix", env = "KUBERAY_APISERVER_AUTH_PATH_PREFIX")]
    pub auth_path_prefix: Option<String>,

    /// A YAML file of callers, each with a token (or a client certificate's common name), the
    /// namespaces they may use and `read-only` or `read-write` access; read again when it
    /// changes. For the embedded store, or any backend without Kubernetes identities.
    #[arg(long = "auth-policy-file", env = "KUBERAY_APISERVER_AUTH_POLICY_FILE", conflicts_with_all = ["auth_token", "auth_token_file", "kubernetes_auth"])]
    pub auth_policy_file: Option<PathBuf>,

    /// With `--kubernetes-auth`: how long a reviewed token's caller is kept (refusals: at most
    /// 2 s); 0 reviews every call.
    #[arg(long = "kubernetes-auth-token-ttl", env = "KUBERAY_APISERVER_KUBERNETES_AUTH_TOKEN_TTL", default_value = "10s", value_parser = parse_go_duration)]
    pub kubernetes_auth_token_ttl: Duration,

    /// With `--kubernetes-auth`: how long an authorization decision is kept; 0 asks Kubernetes
    /// for every call.
    #[arg(long = "kubernetes-auth-decision-ttl", env = "KUBERAY_APISERVER_KUBERNETES_AUTH_DECISION_TTL", default_value = "5s", value_parser = parse_go_duration)]
    pub kubernetes_auth_decision_ttl: Duration,

    /// PEM certificate chain to serve TLS with on both ports (with `--tls-key-file`); reloaded
    /// when it changes.
    #[arg(long = "tls-cert-file", env = "KUBERAY_APISERVER_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of `--tls-cert-file`.
    #[arg(long = "tls-key-file", env = "KUBERAY_APISERVER_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// PEM CA certificates: a client certificate signed by one of them is a credential (mutual
    /// TLS; the subject's common name is the user, its organizations the groups), and API calls
    /// then need one (or another configured credential). Health checks need none. Needs
    /// `--tls-cert-file`.
    #[arg(
        long = "tls-client-ca-file",
        env = "KUBERAY_APISERVER_TLS_CLIENT_CA_FILE"
    )]
    pub tls_client_ca_file: Option<PathBuf>,

    /// Embedded backend only: RayClusters run as local Ray processes started with this `ray`
    /// executable (a path, or a name looked up on `PATH`); `off` turns that off. Unset: `ray`
    /// on `PATH` when there is one; else clusters stay pending, their status saying how to
    /// install Ray (`pip install "ray[default,serve]"`).
    #[arg(long = "local-ray", env = "KUBERAY_APISERVER_LOCAL_RAY")]
    pub local_ray: Option<String>,

    /// Token sent to Ray dashboards that enforce token authentication (`RAY_AUTH_MODE=token`).
    #[arg(
        long = "ray-auth-token",
        env = "KUBERAY_APISERVER_RAY_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub ray_auth_token: Option<String>,

    /// Timeout of each call to a Ray dashboard (Go duration syntax).
    #[arg(long = "dashboard-timeout", env = "KUBERAY_APISERVER_DASHBOARD_TIMEOUT", default_value = "2s", value_parser = parse_go_duration)]
    pub dashboard_timeout: Duration,

    /// How long a client may take to send a request's headers (HTTP/1): counted from the
    /// connection's start, or from the end of the previous response on a kept-alive connection,
    /// so it also closes HTTP/1 connections that stay idle that long.
    #[arg(long = "http-header-read-timeout", env = "KUBERAY_APISERVER_HTTP_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_positive_go_duration)]
    pub http_header_read_timeout: Duration,

    /// A connection (either port, HTTP/1 or HTTP/2) with no request in progress for this long is
    /// closed (HTTP/2: GOAWAY).
    #[arg(long = "idle-timeout", env = "KUBERAY_APISERVER_IDLE_TIMEOUT", default_value = "120s", value_parser = parse_positive_go_duration)]
    pub idle_timeout: Duration,

    /// Largest number of requests in progress at once on one HTTP/2 connection (gRPC port and
    /// HTTP/2 on the HTTP port), advertised as SETTINGS_MAX_CONCURRENT_STREAMS.
    #[arg(long = "http2-max-concurrent-streams", env = "KUBERAY_APISERVER_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_concurrent_streams: u32,

    /// How often an HTTP/2 connection that has been silent is pinged.
    #[arg(long = "http2-keepalive-interval", env = "KUBERAY_APISERVER_HTTP2_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = parse_positive_go_duration)]
    pub http2_keepalive_interval: Duration,

    /// How long a ping may stay unanswered before the connection is closed as dead.
    #[arg(long = "http2-keepalive-timeout", env = "KUBERAY_APISERVER_HTTP2_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = parse_positive_go_duration)]
    pub http2_keepalive_timeout: Duration,

    /// Largest number of open connections per port; 0 derives it from the open-file limit
    /// (`min(4096, (RLIMIT_NOFILE - 64) / 4)`). See `listen` for what happens at the limit.
    #[arg(
        long = "max-connections",
        env = "KUBERAY_APISERVER_MAX_CONNECTIONS",
        default_value_t = 0
    )]
    pub max_connections: usize,

    /// Largest gRPC request message accepted, in bytes (larger: RESOURCE_EXHAUSTED).
    #[arg(long = "grpc-max-receive-bytes", env = "KUBERAY_APISERVER_GRPC_MAX_RECEIVE_BYTES", default_value_t = 4 * 1024 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub grpc_max_receive_bytes: u32,

    /// Deadline of every V2 proxy request except watches (Go duration syntax).
    #[arg(long = "v2-timeout", env = "KUBERAY_APISERVER_V2_TIMEOUT", default_value = "60s", value_parser = parse_positive_go_duration)]
    pub v2_timeout: Duration,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The namespaces this server serves (`--namespace`).
    pub fn namespace_scope(&self) -> kuberay_core::scope::NamespaceScope {
        match &self.namespace {
            Some(namespace) => kuberay_core::scope::NamespaceScope::only(namespace.as_str()),
            None => kuberay_core::scope::NamespaceScope::all(),
        }
    }

    /// Parses the process arguments, accepting Go's single-dash long flags.
    pub fn from_args() -> Self {
        Self::parse_from(normalize_go_flags(std::env::args_os()))
    }

    /// The TLS files, when a certificate is configured; a key without a certificate (or the
    /// reverse), or a client CA without either, is an error.
    pub fn tls_files(&self) -> anyhow::Result<Option<crate::tls::TlsFiles>> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca_file.clone(),
            })),
            (None, None) if self.tls_client_ca_file.is_none() => Ok(None),
            (None, None) => {
                anyhow::bail!("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
            }
            _ => anyhow::bail!("--tls-cert-file and --tls-key-file go together"),
        }
    }

    /// The embedded store's directory: `--data-dir`, else the per-user data directory.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if let Some(base) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(base).join("kuberay-apiserver");
        }
        if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(home).join(".local/share/kuberay-apiserver");
        }
        PathBuf::from("kuberay-data")
    }
}

/// Long flags that Go's `flag` package also accepts with a single dash.
const GO_FLAGS: [&str; 23] = [
    "rpcPortFlag",
    "httpPortFlag",
    "grpc_timeout",
    "collectMetricsFlag",
    "logFilePath",
    "localSwaggerPath",
    "enable-api-server-v2",
    "cors-allow-origin",
    "kubeconfig",
    "backend",
    "data-dir",
    "embedded-kube-listen",
    "local-ray",
    "shutdown-delay",
    "http-max-body-bytes",
    "http-header-read-timeout",
    "idle-timeout",
    "http2-max-concurrent-streams",
    "http2-keepalive-interval",
    "http2-keepalive-timeout",
    "max-connections",
    "grpc-max-receive-bytes",
    "v2-timeout",
];

/// Rewrites `-name[=value]` to `--name[=value]` for the known long flags.
pub fn normalize_go_flags<I, T>(args: I) -> Vec<std::ffi::OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    args.into_iter()
        .map(|arg| {
            let arg: std::ffi::OsString = arg.into();
            if let Some(text) = arg.to_str()
                && let Some(rest) = text.strip_prefix('-').filter(|r| !r.starts_with('-'))
            {
                let name = rest.split('=').next().unwrap_or(rest);
                if GO_FLAGS.contains(&name) {
                    return format!("--{rest}").into();
                }
            }
            arg
        })
        .collect()
}

/// Parses a Go listen address: `:8887` (all interfaces), `host:8887`, `[::1]:8887`.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid port in {text:?}"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.to_socket_addrs()
        .map_err(|e| format!("invalid listen address {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("listen address {text:?} resolves to nothing"))
}

/// Parses Go's `strconv.ParseBool` forms.
/// A namespace name, checked by the Kubernetes rules (an RFC 1123 label).
pub fn parse_namespace(text: &str) -> Result<String, String> {
    kuberay_core::names::check_namespace(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

pub fn parse_go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {text:?}")),
    }
}

/// A Go duration that is not zero (a timeout of zero would close everything at once).
pub fn parse_positive_go_duration(text: &str) -> Result<Duration, String> {
    match parse_go_duration(text)? {
        Duration::ZERO => Err(format!("duration {text:?} must be greater than zero")),
        duration => Ok(duration),
    }
}

/// Parses Go's duration syntax: `0`, or a sequence of decimal numbers with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h` (`1h30m`, `1.5s`, `300ms`). Negative values are refused.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let error = || format!("invalid duration {text:?}");
    let body = text.strip_prefix('+').unwrap_or(text);
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() || body.starts_with('-') {
        return Err(error());
    }
    let mut total = 0f64;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(error)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| error())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(error()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_flag_forms_are_accepted() {
        let config = Config::parse_from(normalize_go_flags([
            "kuberay-apiserver",
            "-httpPortFlag",
            ":31888",
            "-rpcPortFlag=:31887",
            "--grpc_timeout=2m",
            "--enable-api-server-v2=false",
            "--cors-allow-origin=*",
            "-collectMetricsFlag",
        ]));
        assert_eq!(config.http_address, "0.0.0.0:31888".parse().unwrap());
        assert_eq!(config.rpc_address, "0.0.0.0:31887".parse().unwrap());
        assert_eq!(config.grpc_timeout, Duration::from_secs(120));
        assert!(!config.enable_api_server_v2);
        assert!(config.collect_metrics);
        assert_eq!(config.cors_allow_origin, "*");
    }

    #[test]
    fn defaults_match_the_go_server() {
        let config = Config::parse_from(["kuberay-apiserver"]);
        assert_eq!(config.rpc_address.port(), 8887);
        assert_eq!(config.http_address.port(), 8888);
        assert_eq!(config.grpc_timeout, Duration::from_secs(60));
        assert!(config.enable_api_server_v2);
        assert_eq!(config.backend, BackendKind::Auto);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("1m0s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("60").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("1d").is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_address(":0").unwrap().port(), 0);
        assert_eq!(
            parse_listen_address("127.0.0.1:9000").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert!(
            parse_listen_address("localhost:9000")
                .unwrap()
                .ip()
                .is_loopback()
        );
        assert!(parse_listen_address("8887").is_err());
    }
}
