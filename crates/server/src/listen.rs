//! The accept loop of every listener (gRPC, HTTP and the embedded Kubernetes API): hyper-util's
//! connection builder with the limits below, `TCP_NODELAY` on every accepted socket, a bounded
//! number of connections, and graceful shutdown.
//!
//! # Deadlines
//!
//! - **Headers** (HTTP/1): a request's headers must arrive within `--http-header-read-timeout`,
//!   counted from the moment the connection is ready for a request (its start, or the end of the
//!   previous response), so an HTTP/1 connection idle that long is closed too. On the HTTP port
//!   the first request must also *start* within that time, whatever the protocol, so a
//!   connection that never sends anything is closed as well.
//! - **Idle**: a connection with no request in progress for `--idle-timeout` is closed
//!   (HTTP/2: GOAWAY, then closed). A request is in progress until its response body has been
//!   sent, so watches streaming to their client are never idle.
//! - **Dead peers** (HTTP/2, both ports): pinged after `--http2-keepalive-interval` without
//!   traffic and closed when a ping stays unanswered for `--http2-keepalive-timeout`.
//! - **Request bodies**: see [`body_deadline`].
//!
//! # The connection limit
//!
//! Each port admits at most `--max-connections` connections (default: derived from the
//! open-file limit by [`default_max_connections`], so that both ports full still leave room for
//! the backend's own sockets and files). A connection that arrives at the limit is handled by the
//! first rule that applies:
//!
//! 1. **Evict the longest-idle connection.** Idle means no request in progress: kept-alive
//!    connections between requests, connections that never sent a complete request (silent or
//!    trickling headers) all count, so hundreds of idle or slow connections cannot lock new
//!    clients (and `/healthz` probes) out: each newcomer pushes out the oldest of them.
//! 2. **Reserve.** When every connection has a request in progress, up to [`reserve_for`] extra
//!    connections are admitted; each must start its request within [`RESERVE_FIRST_REQUEST`]
//!    and serves only that one (HTTP/1 `Connection: close`, HTTP/2 GOAWAY after it).
//! 3. **Wait.** When the reserve is taken too, the loop stops accepting until a connection
//!    closes or becomes idle; clients wait in the kernel's listen backlog, holding no descriptor
//!    of ours.
//!
//! # Shutdown
//!
//! On `stop` the listener closes, every connection is asked to shut down gracefully (HTTP/1:
//! after the response in progress, HTTP/2: GOAWAY) and [`serve`] returns once all are closed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tracing::Instrument;

use crate::Config;
use crate::tls::{Acceptor, ClientCertificate};

/// The request handler of a listener.
pub type HttpService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// How long a reserve connection (admitted at the limit) may take to start its one request.
pub const RESERVE_FIRST_REQUEST: Duration = Duration::from_secs(2);

/// How long a connection asked to close for idleness may take before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Descriptors kept out of the connection budget for the process itself: listeners, the
/// store's files, logs, the runtime.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Largest default connection limit per port.
const MAX_DEFAULT_CONNECTIONS: u64 = 4096;

/// The connection limits of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_concurrent_streams: u32,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_read_timeout: config.http_header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: match config.max_connections {
                0 => default_max_connections(),
                n => n,
            },
            max_concurrent_streams: config.http2_max_concurrent_streams,
            keepalive_interval: config.http2_keepalive_interval,
            keepalive_timeout: config.http2_keepalive_timeout,
        }
    }
}

/// The default connection limit per port: `(RLIMIT_NOFILE - 64) / 4`, between 16 and 4096.
///
/// A quarter of the descriptors per port leaves, with both ports full (and their reserves), about
/// half of them for what those connections make the server open: connections to the Kubernetes
/// API and to Ray dashboards. The soft limit is first raised to the hard limit, as Go programs do
/// at start-up. With `ulimit -n 256` this gives 48 connections per port.
pub fn default_max_connections() -> usize {
    let descriptors = raise_open_file_limit().unwrap_or(1024);
    let limit =
        (descriptors.saturating_sub(RESERVED_DESCRIPTORS) / 4).clamp(16, MAX_DEFAULT_CONNECTIONS);
    usize::try_from(limit).unwrap_or(16)
}

/// Raises the soft open-file limit to the hard one; the resulting soft limit (`None`: unknown).
#[cfg(unix)]
fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let Some(soft) = limit.current else {
        return Some(u64::MAX);
    };
    if let Some(hard) = limit.maximum.filter(|hard| *hard > soft) {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Some(hard);
        }
    }
    Some(soft)
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

/// How many reserve connections a port with `limit` connections admits: an eighth, 2 to 32.
pub fn reserve_for(limit: usize) -> usize {
    (limit / 8).clamp(2, 32)
}

/// Serves `service` on `listener` until `stop`, then waits for the open connections to finish.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    service: HttpService,
    http2_only: bool,
    limits: Limits,
    tls: Option<Acceptor>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let port = Port {
        name,
        builder: builder(&limits, http2_only),
        service,
        limits,
        http2_only,
    };
    let table = Arc::new(Table::new(limits.max_connections));
    let mut warned_full = false;
    loop {
        let Some(stream) = accept(name, &listener, &stop).await else {
            break;
        };
        let Some(conn) = wait_for_slot(name, &table, &mut warned_full, &stop).await else {
            break;
        };
        let (port, table, tls, stop) = (port.clone(), table.clone(), tls.clone(), stop.clone());
        tokio::spawn(async move {
            match tls {
                None => run_connection(&port, stream, None, &conn, &stop).await,
                Some(tls) => run_tls_connection(&port, stream, &tls, &conn, &stop).await,
            }
            table.release(&conn);
        });
    }
    drop(listener);
    while !table.is_empty() {
        table.changed.notified().await;
    }
    Ok(())
}

/// What every connection of a port is served with.
#[derive(Clone)]
struct Port {
    name: &'static str,
    builder: Builder<TokioExecutor>,
    service: HttpService,
    limits: Limits,
    http2_only: bool,
}

/// The next connection of `listener`, with `TCP_NODELAY` set; `None` once `stop` is cancelled.
async fn accept(
    name: &'static str,
    listener: &TcpListener,
    stop: &CancellationToken,
) -> Option<TcpStream> {
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors (EMFILE/ENFILE) or a connection reset before it was
                    // accepted: wait a little instead of spinning.
                    tracing::debug!("{name}: accept failed: {error}");
                    tokio::select! {
                        _ = stop.cancelled() => return None,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!("{name}: setting TCP_NODELAY: {error}");
        }
        return Some(stream);
    }
}

/// A slot of `table` for a new connection, waiting while every slot and the reserve are busy
/// (warned once per such stretch, `warned_full`); `None` once `stop` is cancelled.
async fn wait_for_slot(
    name: &'static str,
    table: &Table,
    warned_full: &mut bool,
    stop: &CancellationToken,
) -> Option<Arc<Conn>> {
    let conn = loop {
        if let Some(admitted) = table.admit(name) {
            break admitted;
        }
        if !*warned_full {
            tracing::warn!(
                "{name}: {} connections and {} reserve connections busy; new connections wait",
                table.limit,
                table.reserve_limit
            );
            *warned_full = true;
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = table.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    if !conn.reserve {
        *warned_full = false;
    }
    Some(conn)
}

/// Serves a connection of a TLS port. The handshake counts as the start of the first request:
/// it must end within the header read timeout.
async fn run_tls_connection(
    port: &Port,
    stream: TcpStream,
    tls: &Acceptor,
    conn: &Arc<Conn>,
    stop: &CancellationToken,
) {
    let name = port.name;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    let handshake = acceptor.accept(stream);
    tokio::select! {
        outcome = tokio::time::timeout(port.limits.header_read_timeout, handshake) => {
            match outcome {
                Ok(Ok(stream)) => {
                    let client = ClientCertificate::of(stream.get_ref().1.peer_certificates());
                    run_connection(port, stream, client, conn, stop).await
                }
                Ok(Err(error)) => tracing::debug!("{name}: TLS handshake failed: {error}"),
                Err(_) => tracing::debug!("{name}: TLS handshake timed out"),
            }
        }
        () = conn.evict.cancelled() => {}
        () = stop.cancelled() => {}
    }
}

fn builder(limits: &Limits, http2_only: bool) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    if http2_only {
        builder = builder.http2_only();
    }
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    builder
}

/// What the watchdog of a connection does when its timer fires.
#[derive(Clone, Copy)]
enum Action {
    /// Drop the connection now.
    Close,
    /// Ask it to close after the requests in progress (none: at once).
    Graceful,
}

fn earliest(
    current: Option<(Instant, Action)>,
    at: Instant,
    action: Action,
) -> Option<(Instant, Action)> {
    match current {
        Some((when, _)) if when <= at => current,
        _ => Some((at, action)),
    }
}

/// Serves one connection of `port` and enforces its deadlines. `client`, the connection's
/// verified client certificate, goes with each of its requests.
async fn run_connection<S>(
    port: &Port,
    stream: S,
    client: Option<ClientCertificate>,
    conn: &Arc<Conn>,
    stop: &CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let accepted = Instant::now();
    let first_request_deadline = if conn.reserve {
        Some(accepted + RESERVE_FIRST_REQUEST)
    } else if !port.http2_only {
        Some(accepted + port.limits.header_read_timeout)
    } else {
        None
    };
    let connection = port.builder.serve_connection(
        TokioIo::new(stream),
        ConnService {
            port: port.name,
            inner: port.service.clone(),
            conn: conn.clone(),
            client,
        },
    );
    tokio::pin!(connection);
    let mut watchdog = Watchdog {
        first_request_deadline,
        idle_timeout: port.limits.idle_timeout,
        graceful: false,
        force_at: None,
    };
    loop {
        let in_flight = conn.in_flight.load(Ordering::SeqCst);
        let started = conn.started.load(Ordering::SeqCst);
        if conn.reserve && started > 0 && !watchdog.graceful {
            // One request per reserve connection.
            connection.as_mut().graceful_shutdown();
            watchdog.graceful = true;
        }
        let wake = watchdog.next_wake(conn, in_flight, started);
        let sleep = tokio::time::sleep_until(wake.map_or(accepted, |(at, _)| at));
        tokio::select! {
            result = &mut connection => {
                if let Err(error) = result {
                    tracing::debug!("connection closed: {error}");
                }
                return;
            }
            _ = conn.evict.cancelled() => return,
            _ = stop.cancelled(), if !watchdog.graceful => {
                connection.as_mut().graceful_shutdown();
                watchdog.graceful = true;
            }
            _ = conn.activity.notified() => {}
            _ = sleep, if wake.is_some() => match wake.map(|(_, action)| action) {
                Some(Action::Close) => return,
                _ => {
                    connection.as_mut().graceful_shutdown();
                    watchdog.graceful = true;
                    watchdog.force_at = Some(Instant::now() + IDLE_CLOSE_GRACE);
                }
            },
        }
    }
}

/// The deadlines a connection's watchdog keeps.
struct Watchdog {
    /// When the first request must have started (`None`: no such deadline).
    first_request_deadline: Option<Instant>,
    idle_timeout: Duration,
    /// The connection was asked to shut down gracefully.
    graceful: bool,
    /// When a connection asked to close for idleness is dropped.
    force_at: Option<Instant>,
}

impl Watchdog {
    /// The next deadline of the connection and what to do then, given its requests in progress
    /// and started so far; `None`: no deadline now.
    fn next_wake(&self, conn: &Conn, in_flight: usize, started: u64) -> Option<(Instant, Action)> {
        let mut wake = None;
        if started == 0
            && let Some(deadline) = self.first_request_deadline
        {
            wake = earliest(wake, deadline, Action::Close);
        }
        if in_flight == 0 {
            if !self.graceful {
                wake = earliest(
                    wake,
                    conn.idle_since() + self.idle_timeout,
                    Action::Graceful,
                );
            }
            if let Some(at) = self.force_at {
                wake = earliest(wake, at, Action::Close);
            }
        }
        wake
    }
}

/// The open connections of one listener.
struct Table {
    limit: usize,
    reserve_limit: usize,
    state: Mutex<TableState>,
    /// Signalled when a connection closes or becomes idle.
    changed: Arc<Notify>,
}

#[derive(Default)]
struct TableState {
    next_id: u64,
    normal: HashMap<u64, Arc<Conn>>,
    reserve: usize,
}

impl Table {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            reserve_limit: reserve_for(limit),
            state: Mutex::default(),
            changed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TableState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a slot for a new connection (evicting the longest-idle one at the limit); `None`
    /// when every slot and the reserve are busy.
    fn admit(&self, name: &str) -> Option<Arc<Conn>> {
        let mut state = self.lock();
        let reserve = if state.normal.len() < self.limit {
            false
        } else if let Some(victim) = state
            .normal
            .iter()
            .filter(|(_, conn)| conn.in_flight.load(Ordering::SeqCst) == 0)
            .min_by_key(|(_, conn)| conn.idle_since())
            .map(|(id, _)| *id)
        {
            if let Some(conn) = state.normal.remove(&victim) {
                conn.evict.cancel();
            }
            tracing::debug!("{name}: connection limit reached; closed the longest-idle connection");
            false
        } else if state.reserve < self.reserve_limit {
            tracing::debug!("{name}: connection limit reached; admitted a reserve connection");
            true
        } else {
            return None;
        };
        let id = state.next_id;
        state.next_id += 1;
        let conn = Arc::new(Conn::new(id, reserve, self.changed.clone()));
        if reserve {
            state.reserve += 1;
        } else {
            state.normal.insert(id, conn.clone());
        }
        Some(conn)
    }

    fn release(&self, conn: &Conn) {
        {
            let mut state = self.lock();
            if conn.reserve {
                state.reserve -= 1;
            } else {
                state.normal.remove(&conn.id);
            }
        }
        self.changed.notify_one();
    }

    fn is_empty(&self) -> bool {
        let state = self.lock();
        state.normal.is_empty() && state.reserve == 0
    }
}

/// What the accept loop and the watchdog know of one connection.
struct Conn {
    id: u64,
    reserve: bool,
    /// Requests whose response has not been sent completely.
    in_flight: AtomicUsize,
    /// Requests started so far.
    started: AtomicU64,
    /// When `in_flight` last became zero (or the connection opened).
    idle_since: Mutex<Instant>,
    /// Cancelled to drop the connection at once.
    evict: CancellationToken,
    /// Wakes the watchdog when a request starts or ends.
    activity: Notify,
    table_changed: Arc<Notify>,
}

impl Conn {
    fn new(id: u64, reserve: bool, table_changed: Arc<Notify>) -> Self {
        Self {
            id,
            reserve,
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            idle_since: Mutex::new(Instant::now()),
            evict: CancellationToken::new(),
            activity: Notify::new(),
            table_changed,
        }
    }

    fn idle_since(&self) -> Instant {
        *self
            .idle_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Marks one request in progress on its connection until dropped (with its response body).
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: Arc<Conn>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::SeqCst);
        conn.started.fetch_add(1, Ordering::SeqCst);
        conn.activity.notify_one();
        Self(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        if conn.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            *conn
                .idle_since
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
            conn.table_changed.notify_one();
        }
        conn.activity.notify_one();
    }
}

/// The hyper service of one connection: counts its requests in progress.
#[derive(Clone)]
struct ConnService {
    /// The port's name, in each request's span.
    port: &'static str,
    inner: HttpService,
    conn: Arc<Conn>,
    client: Option<ClientCertificate>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = InFlight::start(self.conn.clone());
        let inner = self.inner.clone();
        let close = self.conn.reserve && request.version() < http::Version::HTTP_2;
        let mut request = request.map(Body::new);
        if let Some(client) = &self.client {
            request.extensions_mut().insert(client.clone());
        }
        let span = tracing::info_span!(
            "request",
            port = self.port,
            method = %request.method(),
            path = request.uri().path(),
            status = tracing::field::Empty,
        );
        let begin = Instant::now();
        Box::pin(async move {
            let mut response = inner.oneshot(request).instrument(span.clone()).await?;
            span.record("status", response.status().as_u16());
            tracing::debug!(
                parent: &span,
                elapsed_ms = begin.elapsed().as_secs_f64() * 1e3,
                "answered"
            );
            if close {
                // A reserve connection serves one request (the watchdog then shuts it down).
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok(response.map(|inner| {
                Body::new(Tracked {
                    inner,
                    _guard: guard,
                })
            }))
        })
    }
}

/// A response body that keeps its request counted as in progress until it is dropped.
struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Requests whose body has not fully arrived within `timeout` of their headers are answered
/// with `on_timeout` (the handler is dropped), unless `exempt`. The deadline is the call deadline
/// (`--grpc_timeout`): a body trickled byte by byte cannot hold a request past it. Handlers that
/// got their whole body run on without this deadline (theirs applies).
pub fn body_deadline(
    inner: HttpService,
    timeout: Duration,
    exempt: fn(&Request<Body>) -> bool,
    on_timeout: fn(Duration) -> Response<Body>,
) -> HttpService {
    BoxCloneSyncService::new(tower::service_fn(move |request: Request<Body>| {
        let inner = inner.clone();
        async move {
            if exempt(&request) {
                return inner.oneshot(request).await;
            }
            let complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let request = request.map(|body| {
                if body.is_end_stream() {
                    complete.store(true, Ordering::SeqCst);
                }
                Body::new(WatchEnd {
                    inner: body,
                    complete: complete.clone(),
                })
            });
            let call = inner.oneshot(request);
            tokio::pin!(call);
            tokio::select! {
                response = &mut call => return response,
                _ = tokio::time::sleep(timeout) => {}
            }
            if complete.load(Ordering::SeqCst) {
                return call.await;
            }
            Ok(on_timeout(timeout))
        }
    }))
}

/// A request body that records when it has been received completely.
struct WatchEnd {
    inner: Body,
    complete: Arc<std::sync::atomic::AtomicBool>,
}

impl HttpBody for WatchEnd {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.complete.store(true, Ordering::SeqCst);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_sizes() {
        assert_eq!(reserve_for(1), 2);
        assert_eq!(reserve_for(48), 6);
        assert_eq!(reserve_for(4096), 32);
    }

    #[test]
    fn the_longest_idle_connection_is_evicted_at_the_limit() {
        let table = Table::new(2);
        let first = table.admit("test").unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let second = table.admit("test").unwrap();
        let busy = InFlight::start(second.clone());
        let third = table.admit("test").unwrap();
        assert!(!third.reserve);
        assert!(first.evict.is_cancelled());
        assert!(!second.evict.is_cancelled());
        // Every connection busy: reserve connections, then none.
        let _busy_third = InFlight::start(third.clone());
        let reserves: Vec<_> = (0..reserve_for(2))
            .map(|_| table.admit("test").unwrap())
            .collect();
        assert!(reserves.iter().all(|conn| conn.reserve));
        assert!(table.admit("test").is_none());
        drop(busy);
        let fourth = table.admit("test").unwrap();
        assert!(!fourth.reserve);
        assert!(second.evict.is_cancelled());
    }
}
