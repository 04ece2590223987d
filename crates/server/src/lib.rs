//! The KubeRay API server: wiring of configuration, backend, services and both transports.
#![forbid(unsafe_code)]

pub mod access;
pub mod access_policy;
pub mod auth;
pub mod backend;
pub mod cache;
pub mod call_policy;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod grpc;
pub mod http;
pub mod json_walk;
pub mod listen;
pub mod logging;
pub mod metrics;
pub mod readiness;
pub mod rpcs;
pub mod services;
pub mod tls;
pub mod v2;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tower::util::BoxCloneSyncService;

pub use config::Config;

use crate::call_policy::CallPolicy;
use crate::metrics::Metrics;
use crate::services::{SERVED_SERVICES, Services};

/// A started server: its bound addresses and the handle to stop it.
pub struct RunningServer {
    pub grpc_address: SocketAddr,
    pub http_address: SocketAddr,
    /// Where the embedded Kubernetes API is served, when `--embedded-kube-listen` is set.
    pub embedded_kube_address: Option<SocketAddr>,
    begin_shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
    kube_client: kube::Client,
    embedded: Option<kube_embedded::EmbeddedKube>,
    caches: Option<Arc<cache::Caches>>,
    local_ray: Option<kuberay_local_ray::LocalRay>,
}

impl RunningServer {
    /// Whether every watch cache has its initial list (true when caches are off).
    pub fn caches_synced(&self) -> bool {
        self.caches.as_ref().is_none_or(|c| c.pending().is_empty())
    }

    /// The Kubernetes client the server uses (for inspection by operators' tools and tests).
    pub fn kube_client(&self) -> kube::Client {
        self.kube_client.clone()
    }

    /// Starts the graceful shutdown: `/healthz` turns 503 and gRPC health NOT_SERVING, then
    /// after `--shutdown-delay` the listeners stop accepting and in-flight requests finish.
    pub fn shutdown(&self) {
        self.begin_shutdown.cancel();
    }

    /// Waits until every listener has stopped, the local Ray runtime has stopped every process
    /// it started and, on the embedded backend, the store file is closed (so the same data
    /// directory can be opened again); the first error wins.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut outcome = Ok(());
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result.context("a server task failed").and_then(|r| r)
                && outcome.is_ok()
            {
                outcome = Err(error);
            }
        }
        if let Some(local_ray) = self.local_ray.take() {
            tracing::info!("stopping the local Ray processes");
            local_ray.shutdown().await;
            tracing::info!("local Ray processes stopped");
        }
        drop(self.kube_client);
        if let Some(store) = self.embedded.take() {
            // Clients release their handles from background tasks once their last user is gone.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while store.handles() > 1 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        outcome
    }
}

/// Connects the backend, binds both listeners and starts serving.
///
/// The process-wide rustls crypto provider must be installed before (the binary does it).
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let tls = tls::Tls::load(config.tls_files()?)?;
    let backend = backend::connect(&config).await?;
    let security = auth::Security::from_config(&config, &backend.client)?;
    if !config.enable_api_server_v2 {
        tracing::info!("V2 API disabled by --enable-api-server-v2=false");
    }
    // Received messages: at most one field per 128 bytes of the size limit, as HTTP bodies.
    kuberay_api::codec::set_max_fields(json_walk::max_values(
        config.grpc_max_receive_bytes as usize,
    ));
    let local_ray = local_ray_runtime(&config, &backend)?;
    let begin_shutdown = CancellationToken::new();
    let stop = CancellationToken::new();
    if let Some(policy) = &security.policy {
        policy.clone().watch(stop.clone());
    }
    let caches = start_caches(&config, &backend, &stop);
    let shutting_down = Arc::new(AtomicBool::new(false));
    let api = Api::build(
        &config,
        &backend,
        security,
        caches.clone(),
        local_ray.as_ref(),
        shutting_down.clone(),
    )
    .await?;

    let (grpc, http) = bind_ports(&config, api.grpc, api.http, tls, &stop).await?;
    let (grpc_address, http_address) = (grpc.listener.local_addr()?, http.listener.local_addr()?);
    let limits = listen::Limits::from_config(&config);
    tracing::info!(
        "connection limits: {} connections per port, header read timeout {:?}, idle timeout {:?}",
        limits.max_connections,
        limits.header_read_timeout,
        limits.idle_timeout
    );
    let mut tasks = JoinSet::new();
    let embedded_kube_address =
        serve_embedded_kube(&config, &backend, limits, &stop, &mut tasks).await?;
    grpc.spawn(limits, &stop, &mut tasks);
    http.spawn(limits, &stop, &mut tasks);
    spawn_shutdown(
        &mut tasks,
        begin_shutdown.clone(),
        config.shutdown_delay,
        shutting_down,
        api.health,
        stop,
    );

    let local_ray = local_ray.map(|ray| {
        kuberay_local_ray::LocalRay::start(
            backend.client.clone(),
            kuberay_local_ray::Settings::new(ray, &config.data_dir()),
        )
    });

    tracing::info!("gRPC API on {grpc_address}, HTTP API on {http_address}");
    Ok(RunningServer {
        grpc_address,
        http_address,
        embedded_kube_address,
        begin_shutdown,
        tasks,
        kube_client: backend.client,
        embedded: backend.embedded,
        caches,
        local_ray,
    })
}

/// The watch caches until `stop`, unless `--watch-cache=false`.
fn start_caches(
    config: &Config,
    backend: &backend::Backend,
    stop: &CancellationToken,
) -> Option<Arc<cache::Caches>> {
    let caches = config.watch_cache.then(|| {
        Arc::new(cache::Caches::start(
            &backend.client,
            &config.namespace_scope(),
            stop,
        ))
    });
    if caches.is_none() {
        tracing::info!("watch caches off (--watch-cache=false): every read is a Kubernetes call");
    }
    caches
}

/// The local Ray runtime on the embedded backend (`--local-ray`); `None` on Kubernetes, where
/// the KubeRay operator runs clusters.
fn local_ray_runtime(
    config: &Config,
    backend: &backend::Backend,
) -> anyhow::Result<Option<kuberay_local_ray::Ray>> {
    if backend.embedded.is_some() {
        return kuberay_local_ray::Ray::locate(config.local_ray.as_deref())
            .map(Some)
            .map_err(|error| anyhow::anyhow!(error));
    }
    if config.local_ray.is_some() {
        tracing::warn!(
            "--local-ray is ignored: the backend is not the embedded store (the KubeRay operator runs clusters)"
        );
    }
    Ok(None)
}

/// What both ports serve: the gRPC service, the HTTP router (V1 gateway, V2, health, metrics,
/// Swagger) and the gRPC health reporter.
struct Api {
    grpc: listen::HttpService,
    http: listen::HttpService,
    health: tonic_health::server::HealthReporter,
}

impl Api {
    async fn build(
        config: &Config,
        backend: &backend::Backend,
        security: auth::Security,
        caches: Option<Arc<cache::Caches>>,
        local_ray: Option<&kuberay_local_ray::Ray>,
        shutting_down: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let auth::Security {
            authenticator: auth,
            authorizer: access,
            ..
        } = security;
        let (registry, metrics) = register_metrics();
        let call_policy =
            CallPolicy::new(metrics.clone(), config.grpc_timeout).with_access(access.clone());
        let dashboards = dashboards(config, backend, local_ray)?;
        let scope = config.namespace_scope();
        if let Some(namespace) = scope.served() {
            tracing::info!("serving namespace {namespace} only (--namespace)");
        }
        let io = services::KubeIo::new(
            backend.client.clone(),
            caches.clone(),
            services::LeftOut::new(metrics),
        );
        let services = Services::new(io.clone(), dashboards, scope.clone());
        let v2 = config.enable_api_server_v2.then(|| {
            v2::V2::new(
                backend.client.clone(),
                io,
                config.http_max_body_bytes,
                config.v2_timeout,
                scope,
                access,
            )
        });
        let gateway = http::Gateway::new(
            services.clone(),
            call_policy.clone(),
            config.http_max_body_bytes,
        );
        let (grpc_routes, health) = serving_grpc_routes(config, services, call_policy).await?;
        let state = http::HttpState {
            registry: Arc::new(registry),
            shutting_down,
            readiness: Arc::new(readiness::Readiness::new(backend.client.clone(), caches)),
            local_swagger_path: config.local_swagger_path.clone(),
            token_required: auth.is_some(),
        };
        let http = http_service(config, state, gateway, v2, auth.clone());
        Ok(Self {
            grpc: grpc::service(grpc_routes, config.grpc_timeout, auth),
            http,
            health,
        })
    }
}

/// The metrics registry, with the series of every RPC present from the start.
fn register_metrics() -> (prometheus_client::registry::Registry, Arc<Metrics>) {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    for (service, method) in rpcs::RPCS {
        metrics.initialize(service, method);
    }
    (registry, metrics)
}

/// How the Ray dashboards are reached; with the local Ray runtime, through the backend's client.
fn dashboards(
    config: &Config,
    backend: &backend::Backend,
    local_ray: Option<&kuberay_local_ray::Ray>,
) -> anyhow::Result<dashboard::Dashboards> {
    let local_dashboards = local_ray
        .filter(|ray| **ray != kuberay_local_ray::Ray::Off)
        .map(|_| backend.client.clone());
    dashboard::Dashboards::from_config(config, backend.kubernetes.as_ref(), local_dashboards)
}

/// The gRPC routes of the services, and their health reporter with every served service (and
/// the server, `""`) SERVING.
async fn serving_grpc_routes(
    config: &Config,
    services: Services,
    call_policy: CallPolicy,
) -> anyhow::Result<(tonic::service::Routes, tonic_health::server::HealthReporter)> {
    let (routes, health) = grpc::router(
        grpc::GrpcApi::new(services, call_policy),
        config.grpc_max_receive_bytes as usize,
    )?;
    for name in SERVED_SERVICES.into_iter().chain([""]) {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    Ok((routes, health))
}

/// The HTTP router as the HTTP port serves it: every request body must arrive within the call
/// deadline.
fn http_service(
    config: &Config,
    state: http::HttpState,
    gateway: http::Gateway,
    v2: Option<v2::V2>,
    auth: Option<auth::Authenticator>,
) -> listen::HttpService {
    let router = http::router(
        state,
        gateway,
        v2,
        Some(config.cors_allow_origin.as_str()),
        auth,
        config.auth_metrics,
    );
    listen::body_deadline(
        BoxCloneSyncService::new(router),
        config.grpc_timeout,
        |_| false,
        http::body_timeout,
    )
}

/// Binds the gRPC and HTTP ports for their services, with TLS when configured (its files then
/// watched until `stop`).
async fn bind_ports(
    config: &Config,
    grpc_service: listen::HttpService,
    http_service: listen::HttpService,
    tls: Option<tls::Tls>,
    stop: &CancellationToken,
) -> anyhow::Result<(Listener, Listener)> {
    let grpc_listener = TcpListener::bind(config.rpc_address)
        .await
        .with_context(|| format!("binding the gRPC address {}", config.rpc_address))?;
    let http_listener = TcpListener::bind(config.http_address)
        .await
        .with_context(|| format!("binding the HTTP address {}", config.http_address))?;
    let (grpc_tls, http_tls) = match tls {
        Some(tls) => {
            let acceptors = (Some(tls.grpc()), Some(tls.http()));
            tracing::info!("serving TLS on both ports");
            tls.watch(stop.clone());
            acceptors
        }
        None => (None, None),
    };
    Ok((
        Listener {
            name: "gRPC",
            listener: grpc_listener,
            service: grpc_service,
            http2_only: true,
            tls: grpc_tls,
        },
        Listener {
            name: "HTTP",
            listener: http_listener,
            service: http_service,
            http2_only: false,
            tls: http_tls,
        },
    ))
}

/// A port to serve.
struct Listener {
    name: &'static str,
    listener: TcpListener,
    service: listen::HttpService,
    http2_only: bool,
    tls: Option<tls::Acceptor>,
}

impl Listener {
    /// Serves the port in a task of `tasks` until `stop`.
    fn spawn(
        self,
        limits: listen::Limits,
        stop: &CancellationToken,
        tasks: &mut JoinSet<anyhow::Result<()>>,
    ) {
        let stop = stop.clone();
        tasks.spawn(async move {
            listen::serve(
                self.name,
                self.listener,
                self.service,
                self.http2_only,
                limits,
                self.tls,
                stop,
            )
            .await
            .with_context(|| format!("{} listener", self.name))
        });
    }
}

/// Serves the embedded store's Kubernetes API on `--embedded-kube-listen` (loopback only), if
/// set and the backend is the embedded store: the address it is served on.
async fn serve_embedded_kube(
    config: &Config,
    backend: &backend::Backend,
    limits: listen::Limits,
    stop: &CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<Option<SocketAddr>> {
    let (Some(address), Some(store)) = (config.embedded_kube_listen, &backend.embedded) else {
        if config.embedded_kube_listen.is_some() {
            tracing::warn!(
                "--embedded-kube-listen is ignored: the backend is not the embedded store"
            );
        }
        return Ok(None);
    };
    backend::check_embedded_listen(address)?;
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the embedded Kubernetes API address {address}"))?;
    let bound = listener.local_addr()?;
    tracing::info!("embedded Kubernetes API on http://{bound} (kubectl --server http://{bound})");
    Listener {
        name: "embedded Kubernetes API",
        listener,
        service: BoxCloneSyncService::new(store.router()),
        http2_only: false,
        tls: None,
    }
    .spawn(limits, stop, tasks);
    Ok(Some(bound))
}

/// Once `begin` is cancelled: `/healthz` and gRPC health answer that the server is going away,
/// and after `delay` the listeners are stopped.
fn spawn_shutdown(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    begin: CancellationToken,
    delay: std::time::Duration,
    shutting_down: Arc<AtomicBool>,
    health: tonic_health::server::HealthReporter,
    stop: CancellationToken,
) {
    tasks.spawn(async move {
        begin.cancelled().await;
        tracing::info!("shutting down: /healthz now answers 503");
        shutting_down.store(true, Ordering::SeqCst);
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        for name in SERVED_SERVICES {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        tokio::time::sleep(delay).await;
        stop.cancel();
        Ok(())
    });
}

/// Logs to stderr, and also to `--logFilePath` when set (see [`logging`]). Keep the guard alive
/// while logging.
pub fn init_logging(
    config: &Config,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    logging::init(config)
}
