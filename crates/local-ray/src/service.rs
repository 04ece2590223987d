//! RayServices on local clusters: the cluster made from `rayClusterConfig` (pending until its
//! applications run, then active), `serveConfigV2` deployed through the head's Serve API on the
//! cluster's own Serve port, the applications' and deployments' statuses reported as the
//! operator reports them, and the `<service>-head-svc` and `<service>-serve-svc` Services
//! pointing at the active cluster. A changed `serveConfigV2` is deployed again in place; a
//! changed `rayClusterConfig` is applied to the running cluster in place (workers scale; the
//! operator would instead bring up a new cluster and switch over).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use kuberay_core::crd::{
    AppStatus, RayCluster, RayService, RayServiceStatus, RayServiceStatuses, ServeDeploymentStatus,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{Shared, suffix};
use crate::controller::{self, Error, has_finalizer, set_finalizer};
use crate::exposure::{self, Exposure};
use crate::head_api::{self, HeadApi};
use crate::plan::{ORIGINATED_FROM_CRD, ORIGINATED_FROM_NAME};
use crate::{FINALIZER, Ray};

/// Annotation of a cluster recording the Serve config last deployed on it (a hash).
pub const SERVE_CONFIG_HASH: &str = "kuberay-apiserver.ray.io/serve-config-hash";
const POLL: Duration = Duration::from_secs(2);

/// Runs the RayService controller until `stop`.
pub(crate) async fn run(shared: Shared, stop: CancellationToken) {
    controller::run::<RayService, _, _>(shared, stop, reconcile).await;
}

async fn reconcile(service: Arc<RayService>, shared: Arc<Shared>) -> Result<Action, Error> {
    if matches!(shared.settings.ray, Ray::Off) {
        return Ok(Action::await_change());
    }
    let namespace = service.namespace().unwrap_or_default();
    let api: Api<RayService> = Api::namespaced(shared.client.clone(), &namespace);
    let clusters: Api<RayCluster> = Api::namespaced(shared.client.clone(), &namespace);
    let name = service.name_any();
    if service.metadata.deletion_timestamp.is_some() {
        for cluster in cluster_names(&service) {
            match clusters.delete(&cluster, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error.into()),
            }
        }
        for suffix in ["head-svc", "serve-svc"] {
            exposure::withdraw(&shared.client, &namespace, &format!("{name}-{suffix}")).await;
        }
        set_finalizer(&api, service.as_ref(), FINALIZER, false).await?;
        return Ok(Action::await_change());
    }
    if !has_finalizer(service.as_ref(), FINALIZER) {
        set_finalizer(&api, service.as_ref(), FINALIZER, true).await?;
        return Ok(Action::await_change());
    }

    let before = service.status.clone().unwrap_or_default();
    let mut status = before.clone();
    let action = Look {
        service: &service,
        shared: &shared,
        clusters: &clusters,
        status: &mut status,
    }
    .advance()
    .await?;
    if status != before {
        status.observed_generation = service.metadata.generation;
        status.last_update_time = Some(Time(now()));
        let mut updated = (*service).clone();
        updated.status = Some(status);
        api.replace_status(&name, &PostParams::default(), &updated)
            .await?;
    }
    Ok(action)
}

/// The clusters the status names (active, pending).
fn cluster_names(service: &RayService) -> Vec<String> {
    let Some(status) = &service.status else {
        return Vec::new();
    };
    [
        &status.active_service_status,
        &status.pending_service_status,
    ]
    .into_iter()
    .flatten()
    .filter_map(|s| s.ray_cluster_name.clone())
    .filter(|n| !n.is_empty())
    .collect()
}

struct Look<'a> {
    service: &'a RayService,
    shared: &'a Shared,
    clusters: &'a Api<RayCluster>,
    status: &'a mut RayServiceStatuses,
}

impl Look<'_> {
    async fn advance(&mut self) -> Result<Action, Error> {
        let config = match serve_config(self.service) {
            Ok(config) => config,
            Err(problem) => {
                set_condition(self.status, "Ready", "False", "ValidationFailed", &problem);
                self.status.service_status = None;
                return Ok(Action::await_change());
            }
        };
        if self.status.conditions.as_ref().is_none_or(Vec::is_empty) {
            let message = "RayService is initializing";
            set_condition(self.status, "Ready", "False", "Initializing", message);
            set_condition(
                self.status,
                "UpgradeInProgress",
                "False",
                "Initializing",
                message,
            );
        }
        let active = self
            .status
            .active_service_status
            .clone()
            .unwrap_or_default();
        let pending = self
            .status
            .pending_service_status
            .clone()
            .unwrap_or_default();
        let (name, is_active) = match (&active.ray_cluster_name, &pending.ray_cluster_name) {
            (Some(name), _) if !name.is_empty() => (name.clone(), true),
            (_, Some(name)) if !name.is_empty() => (name.clone(), false),
            _ => {
                // Named in the status first, so a restart never makes a second cluster.
                let name = format!("{}-{}", self.service.name_any(), suffix());
                self.status.pending_service_status = Some(RayServiceStatus {
                    ray_cluster_name: Some(name),
                    ..Default::default()
                });
                return Ok(Action::requeue(Duration::from_millis(100)));
            }
        };
        let Some(cluster) = self.clusters.get_opt(&name).await? else {
            self.create_cluster(&name).await?;
            return Ok(Action::requeue(POLL));
        };
        self.keep_spec(&cluster).await?;
        let mut observed = RayServiceStatus {
            ray_cluster_name: Some(name.clone()),
            ray_cluster_status: cluster.status.clone(),
            ..if is_active { active } else { pending }
        };
        let running = match HeadApi::of(&self.shared.http, &cluster)
            .filter(|_| head_api::is_ready(&cluster))
        {
            Some(head) => self.serve(&cluster, &head, config, &mut observed).await,
            None => false,
        };
        if is_active || running {
            // A pending cluster whose applications all run becomes the active one.
            self.status.active_service_status = Some(observed);
            self.status.pending_service_status = None;
        } else {
            self.status.pending_service_status = Some(observed);
        }
        let endpoints = if running { 1 } else { 0 };
        self.status.num_serve_endpoints = Some(endpoints);
        if running {
            self.expose(&cluster).await;
        }
        conditions(self.status, endpoints);
        Ok(Action::requeue(if running {
            Duration::from_secs(5)
        } else {
            POLL
        }))
    }

    /// Deploys the config when it changed, then reads the applications' statuses; true when
    /// there is at least one application and all of them run.
    async fn serve(
        &self,
        cluster: &RayCluster,
        head: &HeadApi<'_>,
        config: Value,
        observed: &mut RayServiceStatus,
    ) -> bool {
        let Some(port) = head_api::status_port(cluster, "serve") else {
            return false;
        };
        let config = with_http_port(config, port);
        let hash = format!("{:08x}", crate::fnv1a(config.to_string().as_bytes()));
        let deployed = cluster
            .annotations()
            .get(SERVE_CONFIG_HASH)
            .is_some_and(|h| *h == hash);
        if !deployed {
            let reference = self.service.object_ref(&());
            let target = format!("{}/{}", service_namespace(self.service), cluster.name_any());
            if let Err(error) = head.deploy(&config).await {
                tracing::info!(
                    "deploying the Serve config of RayService {}: {error}",
                    self.service.name_any()
                );
                let note = format!(
                    "Failed to update serve applications to the RayCluster {target}: {error}"
                );
                self.shared
                    .event(
                        &reference,
                        EventType::Warning,
                        "FailedToUpdateServeApplications",
                        note,
                    )
                    .await;
                return false;
            }
            let note = format!("Updated serve applications to the RayCluster {target}");
            self.shared
                .event(
                    &reference,
                    EventType::Normal,
                    "UpdatedServeApplications",
                    note,
                )
                .await;
            let patch = json!({"metadata": {"annotations": {SERVE_CONFIG_HASH: hash}}});
            if let Err(error) = self
                .clusters
                .patch(
                    &cluster.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                tracing::debug!("recording the deployed Serve config: {error}");
            }
        }
        match head.applications().await {
            Ok(details) => {
                let applications = application_statuses(&details);
                let running = !applications.is_empty()
                    && applications
                        .values()
                        .all(|a| a.status.as_deref() == Some("RUNNING"));
                observed.applications = Some(applications);
                running
            }
            Err(error) => {
                tracing::debug!("reading Serve applications: {error}");
                false
            }
        }
    }

    async fn create_cluster(&self, name: &str) -> Result<(), Error> {
        let mut labels = self.service.labels().clone();
        labels.insert(ORIGINATED_FROM_NAME.into(), self.service.name_any());
        labels.insert(ORIGINATED_FROM_CRD.into(), "RayService".into());
        let cluster = RayCluster {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: self.service.namespace(),
                labels: Some(labels),
                owner_references: self.service.controller_owner_ref(&()).map(|o| vec![o]),
                ..Default::default()
            },
            spec: self.service.spec.ray_cluster_config.clone(),
            ..Default::default()
        };
        match self.clusters.create(&PostParams::default(), &cluster).await {
            Ok(_) => {
                tracing::info!(
                    "RayService {}: created RayCluster {name}",
                    self.service.name_any()
                );
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Applies a changed `rayClusterConfig` to the running cluster.
    async fn keep_spec(&self, cluster: &RayCluster) -> Result<(), Error> {
        if cluster.spec == self.service.spec.ray_cluster_config {
            return Ok(());
        }
        let mut updated = cluster.clone();
        updated.spec = self.service.spec.ray_cluster_config.clone();
        self.clusters
            .replace(&cluster.name_any(), &PostParams::default(), &updated)
            .await?;
        Ok(())
    }

    /// `<service>-head-svc` and `<service>-serve-svc` for the active cluster.
    async fn expose(&self, cluster: &RayCluster) {
        let ports: BTreeMap<String, u16> = cluster
            .status
            .as_ref()
            .and_then(|s| s.endpoints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, port)| Some((name, port.parse().ok()?)))
            .collect();
        let Some(owner) = self.service.controller_owner_ref(&()) else {
            return;
        };
        let service = self.service.name_any();
        let serve_only = ports
            .iter()
            .filter(|(name, _)| *name == "serve")
            .map(|(n, p)| (n.clone(), *p))
            .collect();
        for (name, ports) in [
            (format!("{service}-head-svc"), ports.clone()),
            (format!("{service}-serve-svc"), serve_only),
        ] {
            let exposure = Exposure {
                namespace: service_namespace(self.service),
                name,
                cluster: cluster.name_any(),
                ports,
                owner: owner.clone(),
            };
            if let Err(error) = exposure.apply(&self.shared.client).await {
                tracing::warn!("writing Service {}: {error}", exposure.name);
            }
        }
    }
}

fn service_namespace(service: &RayService) -> String {
    service.namespace().unwrap_or_default()
}

fn now() -> Timestamp {
    Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_else(|_| Timestamp::now())
}

/// `serveConfigV2` as the JSON the Serve API takes.
fn serve_config(service: &RayService) -> Result<Value, String> {
    let yaml = service.spec.serve_config_v2.as_deref().unwrap_or_default();
    if yaml.trim().is_empty() {
        return Err("spec.serveConfigV2 is empty".into());
    }
    let value: Value = serde_saphyr::from_str(yaml)
        .map_err(|e| format!("spec.serveConfigV2 is not valid YAML: {e}"))?;
    if !value.is_object() {
        return Err("spec.serveConfigV2 must be a YAML mapping".into());
    }
    Ok(value)
}

/// The config with Serve's HTTP proxy on the cluster's own loopback port.
fn with_http_port(mut config: Value, port: u16) -> Value {
    if let Some(map) = config.as_object_mut() {
        let options = map.entry("http_options").or_insert_with(|| json!({}));
        if !options.is_object() {
            *options = json!({});
        }
        options["host"] = json!("127.0.0.1");
        options["port"] = json!(port);
    }
    config
}

/// The operator's `applicationStatuses` from `GET /api/serve/applications/`.
fn application_statuses(details: &Value) -> BTreeMap<String, AppStatus> {
    let Some(applications) = details.get("applications").and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    applications
        .iter()
        .map(|(name, app)| {
            let deployments =
                app.get("deployments")
                    .and_then(Value::as_object)
                    .map(|deployments| {
                        deployments
                            .iter()
                            .map(|(name, d)| {
                                let status = ServeDeploymentStatus {
                                    status: text(d, "status"),
                                    message: text(d, "message").filter(|m| !m.is_empty()),
                                    ..Default::default()
                                };
                                (name.clone(), status)
                            })
                            .collect()
                    });
            let status = AppStatus {
                deployments,
                status: text(app, "status"),
                message: text(app, "message").filter(|m| !m.is_empty()),
                ..Default::default()
            };
            (name.clone(), status)
        })
        .collect()
}

/// `Ready` and `UpgradeInProgress`, and the older `serviceStatus`, as the operator sets them.
fn conditions(status: &mut RayServiceStatuses, endpoints: i32) {
    let was_ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if endpoints > 0 {
        set_condition(
            status,
            "Ready",
            "True",
            "NonZeroServeEndpoints",
            "Number of serve endpoints is greater than 0",
        );
    } else if was_ready {
        set_condition(
            status,
            "Ready",
            "False",
            "ZeroServeEndpoints",
            "Number of serve endpoints dropped to 0",
        );
    }
    let named = |s: &Option<RayServiceStatus>| {
        s.as_ref()
            .and_then(|s| s.ray_cluster_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    match (
        named(&status.active_service_status),
        named(&status.pending_service_status),
    ) {
        (true, true) => set_condition(
            status,
            "UpgradeInProgress",
            "True",
            "BothActivePendingClustersExist",
            "Both active and pending Ray clusters exist",
        ),
        (true, false) => set_condition(
            status,
            "UpgradeInProgress",
            "False",
            "NoPendingCluster",
            "Active Ray cluster exists and no pending Ray cluster",
        ),
        _ => {}
    }
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    status.service_status = ready.then(|| "Running".to_string());
}

/// Sets a condition as `meta.SetStatusCondition` does: the transition time moves only when
/// the status changes.
fn set_condition(
    status: &mut RayServiceStatuses,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
) {
    let generation = status.observed_generation;
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let now = Time(now());
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(condition) => {
            if condition.status != value {
                condition.status = value.into();
                condition.last_transition_time = now;
            }
            condition.reason = reason.into();
            condition.message = message.into();
            condition.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.into(),
            status: value.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: now,
            observed_generation: generation,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_gets_the_clusters_serve_port() {
        let service: RayService = serde_json::from_value(json!({
            "metadata": {"name": "s"},
            "spec": {"serveConfigV2": "applications:\n  - name: app\n    import_path: m:app\nhttp_options:\n  port: 9000\n  request_timeout_s: 5\n"},
        }))
        .unwrap();
        let config = with_http_port(serve_config(&service).unwrap(), 41000);
        assert_eq!(
            config["http_options"],
            json!({"port": 41000, "host": "127.0.0.1", "request_timeout_s": 5})
        );
        assert_eq!(config["applications"][0]["import_path"], "m:app");

        let empty: RayService =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {}})).unwrap();
        assert!(serve_config(&empty).unwrap_err().contains("empty"));
        let list: RayService = serde_json::from_value(
            json!({"metadata": {"name": "s"}, "spec": {"serveConfigV2": "- 1"}}),
        )
        .unwrap();
        assert!(serve_config(&list).unwrap_err().contains("mapping"));
    }

    #[test]
    fn application_statuses_as_the_operator_reports_them() {
        let details = json!({"applications": {"app": {
            "status": "RUNNING", "message": "",
            "deployments": {"D": {"status": "HEALTHY", "message": "", "replica_states": {}}},
        }}});
        let statuses = application_statuses(&details);
        assert_eq!(
            serde_json::to_value(&statuses).unwrap(),
            json!({"app": {"status": "RUNNING", "serveDeploymentStatuses": {"D": {"status": "HEALTHY"}}}})
        );
        assert!(application_statuses(&json!({})).is_empty());
    }

    #[test]
    fn ready_once_endpoints_serve_and_not_ready_when_they_stop() {
        let mut status = RayServiceStatuses {
            active_service_status: Some(RayServiceStatus {
                ray_cluster_name: Some("s-abcde".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        conditions(&mut status, 1);
        assert_eq!(status.service_status.as_deref(), Some("Running"));
        let find = |s: &RayServiceStatuses, t: &str| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == t)
                .cloned()
                .unwrap()
        };
        assert_eq!(find(&status, "Ready").reason, "NonZeroServeEndpoints");
        assert_eq!(
            find(&status, "UpgradeInProgress").reason,
            "NoPendingCluster"
        );
        conditions(&mut status, 0);
        assert_eq!(status.service_status, None);
        assert_eq!(find(&status, "Ready").reason, "ZeroServeEndpoints");
    }
}
