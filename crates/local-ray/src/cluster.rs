//! One RayCluster: its nodes, its status and its events. One task per cluster, fed the latest
//! object (or `None` once it is gone from the store).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Resource};
use kuberay_core::crd::RayCluster;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::exposure::{self, Exposure};
use crate::plan::{self, ClusterPlan, NodePorts};
use crate::process::{self, Exited, Launch, NodeProcess};
use crate::status::{self, Observed};
use crate::{FINALIZER, Ray, Settings};

/// How often a cluster whose nodes have all joined is looked at.
const SETTLED_PROBE: Duration = Duration::from_secs(10);
/// Name of the reporting controller of the events.
const REPORTER: &str = "kuberay-local-ray";

/// What every cluster task shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) client: kube::Client,
    pub(crate) settings: Arc<Settings>,
    recorder: Recorder,
    pub(crate) http: reqwest::Client,
}

impl Shared {
    /// Records an event about `object` (failures are only logged: events are best effort).
    pub(crate) async fn event(
        &self,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, object).await {
            tracing::debug!(
                "recording event {reason} of {}/{}: {error}",
                object.namespace.as_deref().unwrap_or_default(),
                object.name.as_deref().unwrap_or_default()
            );
        }
    }
}

impl Shared {
    pub(crate) fn new(client: kube::Client, settings: Arc<Settings>) -> Shared {
        // reqwest is built without a default crypto provider (only loopback HTTP is used).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a plain HTTP client builds");
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: REPORTER.into(),
                instance: None,
            },
        );
        Shared {
            client,
            settings,
            recorder,
            http,
        }
    }
}

/// Runs one cluster until it is gone (or the runtime stops).
pub(crate) async fn run(
    shared: Shared,
    mut object: watch::Receiver<Option<Arc<RayCluster>>>,
    stop: CancellationToken,
) {
    let Some(first) = object.borrow().clone() else {
        return;
    };
    let mut cluster = Cluster::new(shared, &first);
    loop {
        let current = object.borrow_and_update().clone();
        let finished = match current {
            None => {
                cluster.stop_all("the RayCluster was deleted").await;
                cluster.withdraw().await;
                true
            }
            Some(current) => cluster.reconcile(&current).await,
        };
        if finished {
            return;
        }
        let wait = cluster.next_look();
        tokio::select! {
            changed = object.changed() => {
                if changed.is_err() {
                    cluster.stop_all("the local Ray runtime stops").await;
                    return;
                }
            }
            _ = tokio::time::sleep(wait) => {}
            Some(exit) = cluster.exits.recv() => cluster.exited(exit).await,
            _ = stop.cancelled() => {
                cluster.stop_all("the local Ray runtime stops").await;
                return;
            }
        }
    }
}

struct Cluster {
    shared: Shared,
    namespace: String,
    name: String,
    /// Directory of the nodes' temporary directories.
    dir: PathBuf,
    /// Marker prefix of the nodes' processes.
    marker: String,
    reference: ObjectReference,
    api: Api<RayCluster>,
    head: Option<NodeProcess>,
    groups: BTreeMap<String, Vec<NodeProcess>>,
    /// Nodes being stopped in the background (scaled down).
    stopping: Vec<tokio::task::JoinHandle<()>>,
    exits_tx: mpsc::UnboundedSender<Exited>,
    exits: mpsc::UnboundedReceiver<Exited>,
    /// The status last written, without its times.
    written: Option<Value>,
    settled: bool,
    /// Numbers the nodes' temporary directories.
    started: u32,
    /// The ports the head Service's Endpoints hold, once written.
    exposed: Option<BTreeMap<String, u16>>,
    /// Whether nodes left running by an earlier run were looked for (once, first thing).
    looked_for_running: bool,
    owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
}

impl Cluster {
    fn new(shared: Shared, object: &RayCluster) -> Cluster {
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let name = object.metadata.name.clone().unwrap_or_default();
        let uid = object.metadata.uid.clone().unwrap_or_default();
        let short = short_uid(&uid);
        let dir = shared.settings.root.join(&short);
        let marker = marker_prefix(&shared.settings, &namespace, &name, &uid);
        let (exits_tx, exits) = mpsc::unbounded_channel();
        Cluster {
            api: Api::namespaced(shared.client.clone(), &namespace),
            reference: object.object_ref(&()),
            owner: object.controller_owner_ref(&()).unwrap_or_default(),
            shared,
            namespace,
            name,
            dir,
            marker,
            head: None,
            groups: BTreeMap::new(),
            stopping: Vec::new(),
            exits_tx,
            exits,
            written: None,
            settled: false,
            started: 0,
            exposed: None,
            looked_for_running: false,
        }
    }

    /// Takes over the nodes of this cluster that an earlier run of the server left running
    /// (it was killed before it could stop them), and stops those of its processes that are
    /// no node wanted any more.
    async fn adopt_running(&mut self, program: &std::path::Path, object: &RayCluster) {
        let plan = plan::plan(object, &self.shared.settings.defaults);
        let mut kept = Vec::new();
        let running = process::running_nodes(&self.marker);
        // The head first: workers are started against its GCS port.
        let (heads, workers): (Vec<_>, Vec<_>) = running
            .into_iter()
            .partition(|node| node.args.iter().any(|a| a == "--head"));
        for node in heads.into_iter().chain(workers) {
            let Some(name) = node.marker.strip_prefix(&self.marker).map(str::to_string) else {
                continue;
            };
            let Some((mut ports, temp_dir)) = plan::from_ray_start_args(&node.args) else {
                continue;
            };
            if let Some(number) = temp_dir
                .file_name()
                .and_then(|t| t.to_str())
                .and_then(|t| t.strip_prefix('w'))
                .and_then(|n| n.parse::<u32>().ok())
            {
                self.started = self.started.max(number);
            }
            let (spec, gcs, group) = match ports.head.as_mut() {
                Some(head) if self.head.is_none() => {
                    head.serve = crate::head_api::status_port(object, "serve")
                        .or_else(|| process::free_port().ok())
                        .unwrap_or_default();
                    (plan.head.clone(), None, None)
                }
                Some(_) => continue,
                None => {
                    let Some(gcs) = self.head.as_ref().and_then(|h| h.ports.head).map(|p| p.gcs)
                    else {
                        continue;
                    };
                    let Some(group) = worker_group(&self.name, &name)
                        .and_then(|g| plan.groups.iter().find(|p| p.name == g))
                    else {
                        continue;
                    };
                    (group.node.clone(), Some(gcs), Some(group.name.clone()))
                }
            };
            let launch = self.launch(program, &name, &spec, gcs, &ports, temp_dir);
            kept.push(launch.marker.clone());
            let adopted = NodeProcess::adopt(name, ports, launch, node.pid, self.exits_tx.clone());
            match group {
                None => self.head = Some(adopted),
                Some(group) => self.groups.entry(group).or_default().push(adopted),
            }
        }
        let stopped =
            process::terminate_marked_except(&self.marker, kept, self.shared.settings.grace).await;
        if stopped > 0 {
            tracing::info!(
                "stopped {stopped} processes of RayCluster {}/{} that are no node of it any more",
                self.namespace,
                self.name
            );
        }
    }

    /// How long until the cluster is looked at again without a change of the object.
    fn next_look(&self) -> Duration {
        if self.settled {
            SETTLED_PROBE
        } else {
            self.shared.settings.probe_interval
        }
    }

    /// Brings the processes to what `object` asks for and writes the status. True when the
    /// cluster is done with (deleted and its finalizer released).
    async fn reconcile(&mut self, object: &RayCluster) -> bool {
        if !self.looked_for_running
            && let Ray::Found(program) = &self.shared.settings.ray
        {
            let program = program.clone();
            self.adopt_running(&program, object).await;
            self.looked_for_running = true;
        }
        let ours = object
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER);
        if object.metadata.deletion_timestamp.is_some() {
            self.stop_all("the RayCluster is being deleted").await;
            self.withdraw().await;
            if !ours {
                return true;
            }
            return match self.set_finalizer(object, false).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(
                        "releasing the finalizer of RayCluster {}/{}: {error}",
                        self.namespace,
                        self.name
                    );
                    false
                }
            };
        }
        if !plan::managed_here(object) {
            self.stop_all("the RayCluster is managed by another controller")
                .await;
            return false;
        }
        let plan = plan::plan(object, &self.shared.settings.defaults);
        let program = match &self.shared.settings.ray {
            Ray::Off => return false,
            Ray::Missing(why) => {
                let observed = Observed {
                    blocked: Some(why.clone()),
                    ..Default::default()
                };
                self.write_status(object, &plan, &observed).await;
                return false;
            }
            Ray::Found(program) => program.clone(),
        };
        if !ours && let Err(error) = self.set_finalizer(object, true).await {
            // Retried on the next look; the processes run meanwhile.
            tracing::debug!(
                "adding the finalizer of RayCluster {}/{}: {error}",
                self.namespace,
                self.name
            );
        }
        self.stopping.retain(|task| !task.is_finished());

        if plan.suspended {
            self.stop_all("the RayCluster is suspended").await;
        } else if self.head.is_none() {
            self.start_head(&program, &plan).await;
        }
        let (head_ready, alive) = self.probe().await;
        if head_ready && !plan.suspended {
            self.scale(&program, &plan).await;
        }
        let observed = self.observe(head_ready, &alive, &plan);
        if head_ready {
            self.expose(&observed.endpoints).await;
        }
        self.settled = head_ready && observed.workers_ready >= plan.desired_workers();
        self.write_status(object, &plan, &observed).await;
        false
    }

    fn observe(&self, head_ready: bool, alive: &BTreeSet<u16>, plan: &ClusterPlan) -> Observed {
        let workers = self.groups.values().flatten();
        let running: Vec<&NodeProcess> = workers.filter(|n| n.state().pid.is_some()).collect();
        Observed {
            head_name: self.head.as_ref().map(|h| h.name.clone()),
            head_ready,
            endpoints: self
                .head
                .as_ref()
                .map(|h| plan::endpoints(&h.ports, plan.serve))
                .unwrap_or_default(),
            workers_running: running.len() as u32,
            workers_ready: running
                .iter()
                .filter(|n| head_ready && alive.contains(&n.ports.node_manager))
                .count() as u32,
            blocked: None,
        }
    }

    /// Whether the head's dashboard answers, and the node manager ports of the nodes alive.
    async fn probe(&self) -> (bool, BTreeSet<u16>) {
        let Some(head) = &self.head else {
            return (false, BTreeSet::new());
        };
        if head.state().pid.is_none() {
            return (false, BTreeSet::new());
        }
        let Some(ports) = head.ports.head else {
            return (false, BTreeSet::new());
        };
        let base = format!("http://127.0.0.1:{}", ports.dashboard);
        let version = self
            .shared
            .http
            .get(format!("{base}/api/version"))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        if !version.is_ok_and(|r| r.status().is_success()) {
            return (false, BTreeSet::new());
        }
        let nodes = async {
            let reply = self
                .shared
                .http
                .get(format!("{base}/nodes?view=summary"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            reply.json::<Value>().await.ok()
        }
        .await;
        let alive = nodes
            .as_ref()
            .and_then(|v| v.pointer("/data/summary"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|node| node.get("raylet"))
            .filter(|raylet| raylet.get("state").and_then(Value::as_str) == Some("ALIVE"))
            .filter_map(|raylet| raylet.get("nodeManagerPort").and_then(Value::as_u64))
            .map(|port| port as u16)
            .collect();
        (true, alive)
    }

    async fn start_head(&mut self, program: &std::path::Path, plan: &ClusterPlan) {
        let name = format!("{}-head-{}", self.name, suffix());
        match self.spawn(program, &name, &plan.head, None, "h") {
            Ok(node) => {
                self.head = Some(node);
                self.event(
                    EventType::Normal,
                    "CreatedHeadPod",
                    format!(
                        "Created head Pod {}/{name} (a local process)",
                        self.namespace
                    ),
                )
                .await;
            }
            Err(error) => {
                self.event(
                    EventType::Warning,
                    "FailedToCreateHeadPod",
                    format!(
                        "Failed to create head Pod {}/{name}: {error}",
                        self.namespace
                    ),
                )
                .await;
            }
        }
    }

    /// Starts or stops workers so that each group has its nodes.
    async fn scale(&mut self, program: &std::path::Path, plan: &ClusterPlan) {
        let Some(gcs) = self.head.as_ref().and_then(|h| h.ports.head).map(|p| p.gcs) else {
            return;
        };
        let wanted: BTreeSet<&str> = plan.groups.iter().map(|g| g.name.as_str()).collect();
        let gone: Vec<String> = self
            .groups
            .keys()
            .filter(|g| !wanted.contains(g.as_str()))
            .cloned()
            .collect();
        for group in gone {
            for node in self.groups.remove(&group).unwrap_or_default() {
                self.stop_worker(node).await;
            }
        }
        for group in &plan.groups {
            let mut nodes = self.groups.remove(&group.name).unwrap_or_default();
            while nodes.len() > group.nodes as usize {
                let victim = nodes
                    .iter()
                    .position(|n| group.workers_to_delete.contains(&n.name))
                    .unwrap_or(nodes.len() - 1);
                let node = nodes.remove(victim);
                self.stop_worker(node).await;
            }
            while nodes.len() < group.nodes as usize {
                let name = format!("{}-{}-worker-{}", self.name, group.name, suffix());
                self.started += 1;
                let tag = format!("w{}", self.started);
                match self.spawn(program, &name, &group.node, Some(gcs), &tag) {
                    Ok(node) => {
                        nodes.push(node);
                        self.event(
                            EventType::Normal,
                            "CreatedWorkerPod",
                            format!(
                                "Created worker Pod {}/{name} (a local process)",
                                self.namespace
                            ),
                        )
                        .await;
                    }
                    Err(error) => {
                        self.event(
                            EventType::Warning,
                            "FailedToCreateWorkerPod",
                            format!(
                                "Failed to create worker Pod {}/{name}: {error}",
                                self.namespace
                            ),
                        )
                        .await;
                        break;
                    }
                }
            }
            self.groups.insert(group.name.clone(), nodes);
        }
    }

    fn spawn(
        &self,
        program: &std::path::Path,
        name: &str,
        node: &plan::NodeSpec,
        gcs: Option<u16>,
        tag: &str,
    ) -> Result<NodeProcess, String> {
        let ports: NodePorts = process::allocate_ports(gcs.is_none())
            .map_err(|e| format!("no free loopback port: {e}"))?;
        let launch = self.launch(program, name, node, gcs, &ports, self.dir.join(tag));
        Ok(NodeProcess::spawn(
            name.to_string(),
            ports,
            launch,
            self.exits_tx.clone(),
        ))
    }

    /// How the node `name` is started: a worker joins the head's GCS port `gcs`.
    fn launch(
        &self,
        program: &std::path::Path,
        name: &str,
        node: &plan::NodeSpec,
        gcs: Option<u16>,
        ports: &NodePorts,
        temp_dir: PathBuf,
    ) -> Launch {
        let gcs = gcs.or(ports.head.map(|h| h.gcs)).unwrap_or_default();
        Launch {
            program: program.to_path_buf(),
            args: plan::ray_start_args(node, ports, gcs, &temp_dir),
            env: node.env.clone(),
            temp_dir,
            marker: format!("{}{name}", self.marker),
            grace: self.shared.settings.grace,
        }
    }

    async fn stop_worker(&mut self, node: NodeProcess) {
        let name = node.name.clone();
        self.stopping.push(tokio::spawn(node.stop()));
        self.worker_deleted(&name).await;
    }

    async fn worker_deleted(&self, name: &str) {
        self.event(
            EventType::Normal,
            "DeletedWorkerPod",
            format!(
                "Deleted worker Pod {}/{name} (a local process)",
                self.namespace
            ),
        )
        .await;
    }

    /// Stops every process of the cluster: workers first (they leave the head cleanly while it
    /// still answers), then the head.
    async fn stop_all(&mut self, why: &str) {
        let workers: Vec<NodeProcess> = std::mem::take(&mut self.groups)
            .into_values()
            .flatten()
            .collect();
        if self.head.is_none() && workers.is_empty() && self.stopping.is_empty() {
            return;
        }
        tracing::info!(
            "stopping the local Ray nodes of RayCluster {}/{} ({why})",
            self.namespace,
            self.name
        );
        let names: Vec<String> = workers.iter().map(|n| n.name.clone()).collect();
        futures::future::join_all(workers.into_iter().map(NodeProcess::stop)).await;
        for task in std::mem::take(&mut self.stopping) {
            let _ = task.await;
        }
        for name in names {
            self.worker_deleted(&name).await;
        }
        if let Some(head) = self.head.take() {
            let name = head.name.clone();
            head.stop().await;
            self.event(
                EventType::Normal,
                "DeletedHeadPod",
                format!(
                    "Deleted head Pod {}/{name} (a local process)",
                    self.namespace
                ),
            )
            .await;
        }
        // Whatever carries the cluster's marker (a node that could not be waited for).
        process::terminate_marked(&self.marker, self.shared.settings.grace).await;
        let _ = std::fs::remove_dir_all(&self.dir);
        self.settled = false;
    }

    /// Writes the head Service and its Endpoints (the ports the head listens on), when they
    /// changed.
    async fn expose(&mut self, endpoints: &BTreeMap<String, String>) {
        let ports: BTreeMap<String, u16> = endpoints
            .iter()
            .filter_map(|(name, port)| Some((name.clone(), port.parse().ok()?)))
            .collect();
        if self.exposed.as_ref() == Some(&ports) {
            return;
        }
        let exposure = Exposure {
            namespace: self.namespace.clone(),
            name: exposure::head_service_name(&self.name),
            cluster: self.name.clone(),
            ports: ports.clone(),
            owner: self.owner.clone(),
        };
        match exposure.apply(&self.shared.client).await {
            Ok(()) => self.exposed = Some(ports),
            Err(error) => tracing::warn!(
                "writing the head Service of RayCluster {}/{}: {error}",
                self.namespace,
                self.name
            ),
        }
    }

    /// Deletes the head Service and its Endpoints (Kubernetes would collect them with the
    /// cluster; the embedded store has no garbage collector).
    async fn withdraw(&mut self) {
        exposure::withdraw(
            &self.shared.client,
            &self.namespace,
            &exposure::head_service_name(&self.name),
        )
        .await;
        self.exposed = None;
    }

    async fn exited(&mut self, exit: Exited) {
        self.settled = false;
        self.event(
            EventType::Warning,
            "RayNodeExited",
            format!(
                "The local Ray node {} {}; restarting it in {:?} (its log: {})",
                exit.node,
                exit.how,
                exit.restart_in,
                exit.log.display()
            ),
        )
        .await;
    }

    async fn write_status(&mut self, object: &RayCluster, plan: &ClusterPlan, observed: &Observed) {
        let now = k8s_openapi::jiff::Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now())
            .to_string();
        let (status, changed) = status::build(object, plan, observed, &now);
        let mut timeless = status.clone();
        if let Some(map) = timeless.as_object_mut() {
            map.remove("lastUpdateTime");
        }
        if let Some(conditions) = timeless.get_mut("conditions").and_then(Value::as_array_mut) {
            for condition in conditions {
                if let Some(map) = condition.as_object_mut() {
                    map.remove("lastTransitionTime");
                }
            }
        }
        if !changed || self.written.as_ref() == Some(&timeless) {
            return;
        }
        let patch = json!({ "status": status });
        match self
            .api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                let state = status["state"].as_str().unwrap_or("(none)");
                tracing::info!(
                    "RayCluster {}/{}: state {state}, workers {}/{} ready",
                    self.namespace,
                    self.name,
                    observed.workers_ready,
                    plan.desired_workers()
                );
                self.written = Some(timeless);
            }
            Err(error) => tracing::warn!(
                "writing the status of RayCluster {}/{}: {error}",
                self.namespace,
                self.name
            ),
        }
    }

    /// Adds or removes [`FINALIZER`], guarded by the object's resourceVersion.
    async fn set_finalizer(&self, object: &RayCluster, present: bool) -> Result<(), kube::Error> {
        crate::controller::set_finalizer(&self.api, object, FINALIZER, present).await
    }

    async fn event(&self, type_: EventType, reason: &str, note: String) {
        self.shared
            .event(&self.reference, type_, reason, note)
            .await;
    }
}

/// The first 8 letters and digits of a uid: the cluster's directory under the runtime's root.
fn short_uid(uid: &str) -> String {
    uid.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect()
}

/// The start of the marker of every process of the cluster `namespace`/`name` with `uid`.
pub(crate) fn marker_prefix(settings: &Settings, namespace: &str, name: &str, uid: &str) -> String {
    format!(
        "{}/{namespace}/{name}/{}/",
        settings.root.display(),
        short_uid(uid)
    )
}

/// The worker group of the worker node `node` of `cluster` (`<cluster>-<group>-worker-<suffix>`).
fn worker_group<'a>(cluster: &str, node: &'a str) -> Option<&'a str> {
    node.strip_prefix(cluster)?
        .strip_prefix('-')?
        .rsplit_once("-worker-")
        .map(|(group, _)| group)
}

/// Five random lowercase letters and digits, like a pod name's suffix.
pub(crate) fn suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let mut value = hasher.finish();
    (0..5)
        .map(|_| {
            let c = CHARS[(value % CHARS.len() as u64) as usize] as char;
            value /= CHARS.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_named_and_marked_per_cluster() {
        assert_eq!(worker_group("c", "c-small-worker-x2b4z"), Some("small"));
        assert_eq!(
            worker_group("c", "c-two-part-worker-x2b4z"),
            Some("two-part")
        );
        assert_eq!(worker_group("c", "c-head-x2b4z"), None);
        assert_eq!(worker_group("c", "other-small-worker-x2b4z"), None);
        let settings = Settings::new(Ray::Off, std::path::Path::new("/data"));
        let marker = marker_prefix(&settings, "ns", "c", "1a2b-3c4d-5e6f-7890");
        assert!(marker.ends_with("/ns/c/1a2b3c4d/"), "{marker}");
        assert!(marker.starts_with(&settings.root.display().to_string()));
    }
}
