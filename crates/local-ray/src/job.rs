//! RayJobs on local clusters, as the KubeRay operator runs them (submitting over the head's
//! HTTP API, its `HTTPMode`): a new job gets a job id and a cluster name, the cluster is created
//! (or the one its `clusterSelector` names is used), the entrypoint is submitted once the
//! cluster is ready and followed to its end; then the cluster is deleted when the job asks for
//! it (`shutdownAfterJobFinishes`, after `ttlSecondsAfterFinished`). `activeDeadlineSeconds`
//! fails a job that runs too long; `suspend` deletes its cluster and waits.
//!
//! The state lives in the RayJob's status (`jobDeploymentStatus` drives each step), so a
//! restarted server carries on where the last one stopped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use kuberay_core::crd::{RayCluster, RayJob, RayJobStatus};
use kuberay_core::job_submission::{JobInfo, runtime_env_object};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::Ray;
use crate::cluster::{Shared, suffix};
use crate::controller::{self, Error, has_finalizer, set_finalizer};
use crate::head_api::{self, HeadApi};
use crate::plan::{ORIGINATED_FROM_CRD, ORIGINATED_FROM_NAME};

/// The operator's finalizer of RayJobs: a job still running is stopped before the RayJob goes.
pub const JOB_FINALIZER: &str = "ray.io/rayjob-finalizer";
/// The `clusterSelector` key naming the cluster to use.
const SELECTOR_KEY: &str = "ray.io/cluster";
/// How often a job on its way is looked at.
const POLL: Duration = Duration::from_secs(2);

/// `status.jobDeploymentStatus` values.
mod deployment {
    pub const NEW: &str = "";
    pub const INITIALIZING: &str = "Initializing";
    pub const RUNNING: &str = "Running";
    pub const COMPLETE: &str = "Complete";
    pub const FAILED: &str = "Failed";
    pub const SUSPENDING: &str = "Suspending";
    pub const SUSPENDED: &str = "Suspended";
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
}

/// Runs the RayJob controller until `stop`.
pub(crate) async fn run(shared: Shared, stop: CancellationToken) {
    controller::run::<RayJob, _, _>(shared, stop, reconcile).await;
}

async fn reconcile(job: Arc<RayJob>, shared: Arc<Shared>) -> Result<Action, Error> {
    if matches!(shared.settings.ray, Ray::Off) || !managed_here(&job) {
        return Ok(Action::await_change());
    }
    let api: Api<RayJob> =
        Api::namespaced(shared.client.clone(), &job.namespace().unwrap_or_default());
    if job.metadata.deletion_timestamp.is_some() {
        return finalize(&job, &api, &shared).await;
    }
    if !has_finalizer(job.as_ref(), JOB_FINALIZER) {
        set_finalizer(&api, job.as_ref(), JOB_FINALIZER, true).await?;
        return Ok(Action::await_change());
    }
    let before = job.status.clone().unwrap_or_default();
    let mut status = before.clone();
    let mut step = Step {
        job: &job,
        shared: &shared,
        status: &mut status,
    };
    let action = step.advance().await?;
    finish_transition(&before, &mut status, job.metadata.generation);
    if status != before {
        let mut updated = (*job).clone();
        updated.status = Some(status);
        api.replace_status(&job.name_any(), &PostParams::default(), &updated)
            .await?;
    }
    Ok(action)
}

/// Whether this runtime runs the job: `spec.managedBy` absent or KubeRay's.
fn managed_here(job: &RayJob) -> bool {
    match job.spec.extra.get("managedBy") {
        None | Some(Value::Null) => true,
        Some(value) => value.as_str() == Some(crate::plan::KUBERAY_OPERATOR),
    }
}

/// A RayJob being deleted: its Ray job stopped when it may still run, its cluster deleted
/// (Kubernetes' garbage collector would; the embedded store has none), the finalizer released.
async fn finalize(job: &RayJob, api: &Api<RayJob>, shared: &Shared) -> Result<Action, Error> {
    let Some(status) = &job.status else {
        return release(job, api).await;
    };
    if let Some(cluster) = job_cluster(job, status, shared).await?
        && !is_terminal_job(status.job_status.as_deref())
        && let Some(head) = HeadApi::of(&shared.http, &cluster)
        && let Some(id) = status.job_id.as_deref()
        && let Err(error) = head.stop(id).await
    {
        tracing::debug!("stopping Ray job {id}: {error}");
    }
    if owns_cluster(job) {
        delete_cluster(job, status, shared).await?;
    }
    release(job, api).await
}

async fn release(job: &RayJob, api: &Api<RayJob>) -> Result<Action, Error> {
    set_finalizer(api, job, JOB_FINALIZER, false).await?;
    Ok(Action::await_change())
}

/// What every transition into an end state records: the end time, and one more success or
/// failure; and the generation the status describes.
fn finish_transition(before: &RayJobStatus, status: &mut RayJobStatus, generation: Option<i64>) {
    let was = before.job_deployment_status.as_deref().unwrap_or_default();
    let now = status.job_deployment_status.as_deref().unwrap_or_default();
    if was != now && is_terminal_deployment(now) {
        status.end_time = Some(Time(Timestamp::now()));
        if !is_terminal_deployment(was) {
            if now == deployment::FAILED {
                status.failed = Some(status.failed.unwrap_or(0) + 1);
            } else if status.job_status.as_deref() == Some("SUCCEEDED") {
                status.succeeded = Some(status.succeeded.unwrap_or(0) + 1);
            }
        }
    }
    if status != before {
        status.observed_generation = generation;
    }
}

fn is_terminal_deployment(status: &str) -> bool {
    matches!(status, deployment::COMPLETE | deployment::FAILED)
}

fn is_terminal_job(status: Option<&str>) -> bool {
    matches!(status, Some("STOPPED" | "SUCCEEDED" | "FAILED"))
}

/// Whether the job made its cluster (no `clusterSelector`).
fn owns_cluster(job: &RayJob) -> bool {
    job.spec
        .cluster_selector
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
}

/// The cluster of the job, when it exists.
async fn job_cluster(
    job: &RayJob,
    status: &RayJobStatus,
    shared: &Shared,
) -> Result<Option<RayCluster>, Error> {
    let Some(name) = status.ray_cluster_name.as_deref().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let api: Api<RayCluster> =
        Api::namespaced(shared.client.clone(), &job.namespace().unwrap_or_default());
    Ok(api.get_opt(name).await?)
}

/// Deletes the job's cluster; true once it is gone.
async fn delete_cluster(
    job: &RayJob,
    status: &RayJobStatus,
    shared: &Shared,
) -> Result<bool, Error> {
    let Some(name) = status.ray_cluster_name.as_deref().filter(|n| !n.is_empty()) else {
        return Ok(true);
    };
    let api: Api<RayCluster> =
        Api::namespaced(shared.client.clone(), &job.namespace().unwrap_or_default());
    match api.delete(name, &DeleteParams::background()).await {
        Ok(either) => Ok(either.is_right()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(true),
        Err(error) => Err(error.into()),
    }
}

/// One look at a job: moves its status one step on.
struct Step<'a> {
    job: &'a RayJob,
    shared: &'a Shared,
    status: &'a mut RayJobStatus,
}

impl<'a> Step<'a> {
    async fn advance(&mut self) -> Result<Action, Error> {
        let current = self
            .status
            .job_deployment_status
            .clone()
            .unwrap_or_default();
        match current.as_str() {
            deployment::NEW => Ok(self.initialize()),
            deployment::INITIALIZING => self.bring_up().await,
            deployment::RUNNING => self.follow().await,
            deployment::SUSPENDING => self.suspend().await,
            deployment::SUSPENDED => Ok(self.resume()),
            deployment::COMPLETE | deployment::FAILED => self.clean_up().await,
            _ => Ok(Action::await_change()),
        }
    }

    /// New: checks the spec, names the job and its cluster, starts the clock.
    fn initialize(&mut self) -> Action {
        let spec = &self.job.spec;
        if let Some(problem) = validation_problem(self.job) {
            self.status.job_deployment_status = Some(deployment::VALIDATION_FAILED.into());
            self.status.reason = Some("ValidationFailed".into());
            self.status.message = Some(problem);
            return Action::await_change();
        }
        let name = self.job.name_any();
        if self.status.job_id.as_deref().is_none_or(str::is_empty) {
            self.status.job_id = Some(
                spec.job_id
                    .clone()
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("{name}-{}", suffix())),
            );
        }
        if self
            .status
            .ray_cluster_name
            .as_deref()
            .is_none_or(str::is_empty)
        {
            self.status.ray_cluster_name = Some(match selected_cluster(self.job) {
                Some(selected) => selected.to_string(),
                None => format!("{name}-{}", suffix()),
            });
        }
        self.status.job_deployment_status = Some(deployment::INITIALIZING.into());
        self.status.start_time = Some(Time(Timestamp::now()));
        Action::requeue(Duration::from_millis(100))
    }

    /// Initializing: the cluster created and waited for, then the entrypoint submitted.
    async fn bring_up(&mut self) -> Result<Action, Error> {
        if let Some(action) = self.suspend_or_deadline() {
            return Ok(action);
        }
        let cluster = match self.cluster().await? {
            Some(cluster) => cluster,
            None if owns_cluster(self.job) => {
                self.create_cluster().await?;
                return Ok(Action::requeue(POLL));
            }
            None => {
                self.status.message = Some(format!(
                    "the RayCluster {} named by clusterSelector does not exist",
                    self.status.ray_cluster_name.as_deref().unwrap_or_default()
                ));
                return Ok(Action::requeue(POLL));
            }
        };
        let Some(head) = self.ready_head(&cluster) else {
            return Ok(Action::requeue(POLL));
        };
        self.status.dashboard_url = Some(head.address().to_string());
        if let Err(error) = head.submit(&self.submission()).await {
            tracing::info!("submitting RayJob {}: {error}", self.job.name_any());
            self.status.message = Some(format!("submitting the job to the Ray head: {error}"));
            return Ok(Action::requeue(POLL));
        }
        self.status.message = None;
        self.status.job_deployment_status = Some(deployment::RUNNING.into());
        Ok(Action::requeue(POLL))
    }

    /// Running: the Ray job followed until it ends.
    async fn follow(&mut self) -> Result<Action, Error> {
        if let Some(action) = self.suspend_or_deadline() {
            return Ok(action);
        }
        let Some(cluster) = self.cluster().await? else {
            self.status.job_deployment_status = Some(deployment::FAILED.into());
            self.status.reason = Some("AppFailed".into());
            self.status.message = Some("The RayCluster of the job is gone.".into());
            return Ok(Action::requeue(POLL));
        };
        let Some(head) = self.ready_head(&cluster) else {
            return Ok(Action::requeue(POLL));
        };
        let id = self.status.job_id.clone().unwrap_or_default();
        let info = match head.job(&id).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                // The head was started again (the server restarted) and lost its jobs: the
                // job runs again rather than waiting for an answer that never comes.
                tracing::info!("Ray job {id} is unknown to its head; submitting it again");
                if let Err(error) = head.submit(&self.submission()).await {
                    tracing::info!("submitting RayJob {}: {error}", self.job.name_any());
                }
                return Ok(Action::requeue(POLL));
            }
            Err(error) => {
                tracing::debug!("asking the head about Ray job {id}: {error}");
                return Ok(Action::requeue(POLL));
            }
        };
        self.record(&info);
        Ok(Action::requeue(POLL))
    }

    fn record(&mut self, info: &JobInfo) {
        self.status.job_status = info.status.clone();
        self.status.message = info.message.clone().filter(|m| !m.is_empty());
        self.status.reason = None;
        if is_terminal_job(info.status.as_deref()) {
            if info.status.as_deref() == Some("FAILED") {
                self.status.job_deployment_status = Some(deployment::FAILED.into());
                self.status.reason = Some("AppFailed".into());
            } else {
                self.status.job_deployment_status = Some(deployment::COMPLETE.into());
            }
        }
        let mut times = Map::new();
        for (key, millis) in [("startTime", info.start_time), ("endTime", info.end_time)] {
            if let Some(at) = millis
                .filter(|m| *m > 0)
                .and_then(|m| Timestamp::from_millisecond(i64::try_from(m).ok()?).ok())
            {
                times.insert(
                    key.into(),
                    json!(
                        at.round(k8s_openapi::jiff::Unit::Second)
                            .unwrap_or(at)
                            .to_string()
                    ),
                );
            }
        }
        if !times.is_empty() {
            self.status
                .extra
                .insert("rayJobInfo".into(), Value::Object(times));
        }
    }

    /// Suspending: the cluster deleted, then the job's run forgotten.
    async fn suspend(&mut self) -> Result<Action, Error> {
        if owns_cluster(self.job) && !delete_cluster(self.job, self.status, self.shared).await? {
            return Ok(Action::requeue(POLL));
        }
        self.status.ray_cluster_status = None;
        self.status.ray_cluster_name = None;
        self.status.dashboard_url = None;
        self.status.job_id = None;
        self.status.message = None;
        self.status.reason = None;
        self.status.extra.remove("rayJobInfo");
        self.status.job_status = None;
        self.status.job_deployment_status = Some(deployment::SUSPENDED.into());
        Ok(Action::await_change())
    }

    /// Suspended: a job resumed starts again from the beginning.
    fn resume(&mut self) -> Action {
        if self.job.spec.suspend.unwrap_or(false) {
            return Action::await_change();
        }
        self.status.job_status = None;
        self.status.job_deployment_status = Some(deployment::NEW.into());
        Action::requeue(Duration::from_millis(100))
    }

    /// Complete or Failed: the cluster deleted when the job asks for it, once its time is up.
    async fn clean_up(&mut self) -> Result<Action, Error> {
        if !owns_cluster(self.job) || !self.job.spec.shutdown_after_job_finishes.unwrap_or(false) {
            return Ok(Action::await_change());
        }
        let ttl = i64::from(self.job.spec.ttl_seconds_after_finished.unwrap_or(0).max(0));
        let ended = self
            .status
            .end_time
            .as_ref()
            .map_or_else(Timestamp::now, |t| t.0);
        let left = shutdown_wait(ended, ttl, Timestamp::now());
        if !left.is_zero() {
            return Ok(Action::requeue(left));
        }
        if self
            .cluster()
            .await?
            .is_some_and(|c| c.metadata.deletion_timestamp.is_none())
        {
            let name = self.status.ray_cluster_name.clone().unwrap_or_default();
            delete_cluster(self.job, self.status, self.shared).await?;
            tracing::info!(
                "RayJob {}: its RayCluster {name} deleted",
                self.job.name_any()
            );
        }
        Ok(Action::await_change())
    }

    /// `suspend` (to Suspending) or `activeDeadlineSeconds` passed (to Failed).
    fn suspend_or_deadline(&mut self) -> Option<Action> {
        if self.job.spec.suspend.unwrap_or(false) {
            self.status.job_deployment_status = Some(deployment::SUSPENDING.into());
            return Some(Action::requeue(Duration::from_millis(100)));
        }
        let deadline = self.job.spec.active_deadline_seconds?;
        let started = self.status.start_time.as_ref()?.0;
        if !deadline_passed(started, deadline, Timestamp::now()) {
            return None;
        }
        self.status.job_deployment_status = Some(deployment::FAILED.into());
        self.status.reason = Some("DeadlineExceeded".into());
        self.status.message = Some(format!(
            "The RayJob has passed the activeDeadlineSeconds. StartTime: {}. ActiveDeadlineSeconds: {deadline}",
            go_time(started)
        ));
        Some(Action::requeue(Duration::from_millis(100)))
    }

    /// The head of `cluster` once the cluster is ready (its status copied into the job's).
    fn ready_head(&mut self, cluster: &RayCluster) -> Option<HeadApi<'a>> {
        self.status.ray_cluster_status = cluster.status.clone();
        let shared: &'a Shared = self.shared;
        HeadApi::of(&shared.http, cluster).filter(|_| head_api::is_ready(cluster))
    }

    async fn cluster(&self) -> Result<Option<RayCluster>, Error> {
        job_cluster(self.job, self.status, self.shared).await
    }

    /// Creates the job's cluster from `rayClusterSpec`, owned by the job.
    async fn create_cluster(&self) -> Result<(), Error> {
        let Some(name) = self.status.ray_cluster_name.clone() else {
            return Ok(());
        };
        let namespace = self.job.namespace().unwrap_or_default();
        let mut labels = self.job.labels().clone();
        labels.insert(ORIGINATED_FROM_NAME.into(), self.job.name_any());
        labels.insert(ORIGINATED_FROM_CRD.into(), "RayJob".into());
        labels.insert(
            "ray.io/job-submission-mode".into(),
            self.job
                .spec
                .submission_mode
                .clone()
                .unwrap_or_else(|| "K8sJobMode".into()),
        );
        let cluster = RayCluster {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                labels: Some(labels),
                annotations: Some(self.job.annotations().clone()).filter(|a| !a.is_empty()),
                owner_references: self.job.controller_owner_ref(&()).map(|o| vec![o]),
                ..Default::default()
            },
            spec: self.job.spec.ray_cluster_spec.clone().unwrap_or_default(),
            ..Default::default()
        };
        let api: Api<RayCluster> = Api::namespaced(self.shared.client.clone(), &namespace);
        match api.create(&PostParams::default(), &cluster).await {
            Ok(_) => {
                tracing::info!("RayJob {}: created RayCluster {name}", self.job.name_any());
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// The dashboard's job submission for the job.
    fn submission(&self) -> Value {
        submission(self.job, self.status.job_id.as_deref().unwrap_or_default())
    }
}

/// Why the spec cannot run, as the operator's validation says it.
fn validation_problem(job: &RayJob) -> Option<String> {
    let spec = &job.spec;
    let interactive = spec.submission_mode.as_deref() == Some("InteractiveMode");
    if spec.ray_cluster_spec.is_none() && selected_cluster(job).is_none() {
        return Some("one of RayClusterSpec or ClusterSelector must be set".into());
    }
    if !interactive
        && spec
            .entrypoint
            .as_deref()
            .is_none_or(|e| e.trim().is_empty())
    {
        return Some("The RayJob spec is invalid: entrypoint must be set".into());
    }
    if let Some(yaml) = &spec.runtime_env_yaml
        && let Err(error) = runtime_env_object(yaml)
    {
        return Some(format!(
            "The RayJob spec is invalid: runtimeEnvYAML: {error}"
        ));
    }
    None
}

/// The cluster a `clusterSelector` names.
fn selected_cluster(job: &RayJob) -> Option<&str> {
    job.spec
        .cluster_selector
        .as_ref()?
        .get(SELECTOR_KEY)
        .map(String::as_str)
        .filter(|n| !n.is_empty())
}

/// The body of `POST /api/jobs/` for `job`, submitted as `id`.
fn submission(job: &RayJob, id: &str) -> Value {
    let spec = &job.spec;
    let mut body = Map::new();
    body.insert(
        "entrypoint".into(),
        json!(spec.entrypoint.clone().unwrap_or_default()),
    );
    body.insert("submission_id".into(), json!(id));
    if let Some(env) = spec
        .runtime_env_yaml
        .as_deref()
        .and_then(|y| runtime_env_object(y).ok().flatten())
    {
        body.insert("runtime_env".into(), Value::Object(env));
    }
    if let Some(metadata) = spec.metadata.as_ref().filter(|m| !m.is_empty()) {
        body.insert("metadata".into(), json!(metadata));
    }
    if let Some(cpus) = spec.entrypoint_num_cpus.filter(|c| *c > 0.0) {
        body.insert("entrypoint_num_cpus".into(), json!(cpus));
    }
    if let Some(gpus) = spec.entrypoint_num_gpus.filter(|g| *g > 0.0) {
        body.insert("entrypoint_num_gpus".into(), json!(gpus));
    }
    if let Some(resources) = spec
        .entrypoint_resources
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .filter(Value::is_object)
    {
        body.insert("entrypoint_resources".into(), resources);
    }
    Value::Object(body)
}

/// Whether `deadline` seconds have passed since `started`.
fn deadline_passed(started: Timestamp, deadline: i32, now: Timestamp) -> bool {
    now >= started + SignedDuration::from_secs(i64::from(deadline))
}

/// How long until a job that ended at `ended` may have its cluster deleted.
fn shutdown_wait(ended: Timestamp, ttl_seconds: i64, now: Timestamp) -> Duration {
    let at = ended + SignedDuration::from_secs(ttl_seconds);
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// A time as Go's `%v` of a `*metav1.Time` prints it in the operator's messages.
fn go_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S %z UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuberay_core::crd::RayClusterStatus;

    fn job(spec: Value) -> RayJob {
        serde_json::from_value(json!({
            "metadata": {"name": "j", "namespace": "ns", "uid": "u1", "generation": 4},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn a_submission_carries_the_spec() {
        let job = job(json!({
            "entrypoint": "python -c 'print(1)'",
            "runtimeEnvYAML": "pip:\n  - requests\nenv_vars:\n  A: \"1\"\n",
            "metadata": {"team": "a"},
            "entrypointNumCpus": 0.5,
            "entrypointResources": "{\"custom\": 1}",
            "rayClusterSpec": {"headGroupSpec": {"template": {}}},
        }));
        assert_eq!(
            submission(&job, "j-abcde"),
            json!({
                "entrypoint": "python -c 'print(1)'",
                "submission_id": "j-abcde",
                "runtime_env": {"pip": ["requests"], "env_vars": {"A": "1"}},
                "metadata": {"team": "a"},
                "entrypoint_num_cpus": 0.5,
                "entrypoint_resources": {"custom": 1},
            })
        );
    }

    #[test]
    fn specs_that_cannot_run_fail_validation() {
        assert!(
            validation_problem(&job(json!({"entrypoint": "x"})))
                .unwrap()
                .contains("ClusterSelector")
        );
        assert!(
            validation_problem(&job(json!({"clusterSelector": {"ray.io/cluster": "c"}})))
                .unwrap()
                .contains("entrypoint")
        );
        assert_eq!(
            validation_problem(&job(
                json!({"entrypoint": "x", "clusterSelector": {"ray.io/cluster": "c"}})
            )),
            None
        );
        assert!(
            validation_problem(&job(json!({"entrypoint": "x", "runtimeEnvYAML": "[1]",
                "clusterSelector": {"ray.io/cluster": "c"}})))
            .unwrap()
            .contains("runtimeEnvYAML")
        );
    }

    #[test]
    fn the_selector_names_the_cluster_and_the_job_does_not_own_it() {
        let selected =
            job(json!({"entrypoint": "x", "clusterSelector": {"ray.io/cluster": "shared"}}));
        assert_eq!(selected_cluster(&selected), Some("shared"));
        assert!(!owns_cluster(&selected));
        assert!(owns_cluster(&job(
            json!({"entrypoint": "x", "rayClusterSpec": {}})
        )));
    }

    #[test]
    fn deadlines_and_time_to_live() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let later = |s: i64| start + SignedDuration::from_secs(s);
        assert!(!deadline_passed(start, 60, later(59)));
        assert!(deadline_passed(start, 60, later(60)));
        assert_eq!(shutdown_wait(start, 30, later(10)), Duration::from_secs(20));
        assert_eq!(shutdown_wait(start, 30, later(31)), Duration::ZERO);
        assert_eq!(shutdown_wait(start, 0, start), Duration::ZERO);
        assert_eq!(go_time(start), "2026-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn ending_records_the_end_and_counts_it_once() {
        let before = RayJobStatus {
            job_deployment_status: Some("Running".into()),
            job_status: Some("RUNNING".into()),
            ..Default::default()
        };
        let mut after = RayJobStatus {
            job_deployment_status: Some("Complete".into()),
            job_status: Some("SUCCEEDED".into()),
            ray_cluster_status: Some(RayClusterStatus {
                state: Some("ready".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        finish_transition(&before, &mut after, Some(4));
        assert!(after.end_time.is_some());
        assert_eq!((after.succeeded, after.failed), (Some(1), None));
        assert_eq!(after.observed_generation, Some(4));

        let mut failed = RayJobStatus {
            job_deployment_status: Some("Failed".into()),
            ..before.clone()
        };
        finish_transition(&before, &mut failed, Some(4));
        assert_eq!((failed.succeeded, failed.failed), (None, Some(1)));

        // No change, no new generation or counts.
        let mut same = before.clone();
        finish_transition(&before, &mut same, Some(9));
        assert_eq!(same, before);
    }
}
