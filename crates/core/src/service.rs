//! RayService: validation and the `proto::RayService` <-> `ray.io/v1` RayService conversions.
// The unhealthy-threshold fields are deprecated in the API but still part of its contract.
#![allow(deprecated)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kuberay_api::proto::{self, ComputeTemplate};

use crate::cluster::{self, ClusterSpecOptions};
use crate::packed::Packed;
use crate::{CoreError, crd, labels, names};

const EMPTY_SERVICE: &str = "Service is empty, please input a valid payload.";

/// The Go server's create checks, in its order; answers the valid service.
pub fn validate_create<'a>(
    namespace: &str,
    service: Option<&'a proto::RayService>,
) -> Result<&'a proto::RayService, CoreError> {
    validate(
        namespace,
        service,
        "User who created the Service is empty. Please specify a valid value.",
    )
}

/// The Go server's update checks: the path name first, then as for create with its own user text.
pub fn validate_update<'a>(
    path_name: &str,
    namespace: &str,
    service: Option<&'a proto::RayService>,
) -> Result<&'a proto::RayService, CoreError> {
    if path_name.is_empty() {
        return Err(CoreError::InvalidInput(
            "Name is empty. Please specify a valid value.".to_string(),
        ));
    }
    let service = validate(
        namespace,
        service,
        "User who updated the Service is empty. Please specify a valid value.",
    )?;
    names::check_object_name("Name", path_name)?;
    Ok(service)
}

fn validate<'a>(
    namespace: &str,
    service: Option<&'a proto::RayService>,
    empty_user: &str,
) -> Result<&'a proto::RayService, CoreError> {
    let invalid = |text: &str| Err(CoreError::InvalidInput(text.to_string()));
    if namespace.is_empty() {
        return invalid("Namespace is empty. Please specify a valid value.");
    }
    let Some(service) = service else {
        return invalid(EMPTY_SERVICE);
    };
    if service.namespace != namespace {
        return invalid(
            "The namespace in the request is different from the namespace in the service definition.",
        );
    }
    if service.name.is_empty() {
        return invalid("Service name is empty. Please specify a valid value.");
    }
    if service.user.is_empty() {
        return invalid(empty_user);
    }
    cluster::validate_cluster_spec(service.cluster_spec.as_ref())?;
    names::check_namespace(namespace)?;
    names::check_object_name("Service name", &service.name)?;
    Ok(service)
}

/// Builds the RayService object (docs/contract/conversion.md#service-to-rayservice). `annotation`
/// is the timestamp annotation to write: the creation timestamp on create, the update timestamp
/// (only) on update.
pub fn to_ray_service(
    service: &proto::RayService,
    templates: &BTreeMap<String, ComputeTemplate>,
    annotation: (&str, &str),
) -> Result<crd::RayService, CoreError> {
    let proto::RayService {
        name,
        namespace,
        user,
        version,
        serve_config_v2,
        service_unhealthy_second_threshold,
        deployment_unhealthy_second_threshold,
        cluster_spec,
        // Output only.
        ray_service_status: _,
        created_at: _,
        delete_at: _,
    } = service;
    if serve_config_v2.is_empty() {
        return Err(CoreError::InvalidInput(
            "serve configuration is not defined".to_string(),
        ));
    }
    let spec = cluster_spec.as_ref().ok_or_else(|| {
        CoreError::InvalidInput("A ClusterSpec object is required. Please specify one.".to_string())
    })?;
    let ray_cluster_config = cluster::build_cluster_spec(
        spec,
        templates,
        version,
        ClusterSpecOptions {
            cluster_envs: None,
            serve_ports: true,
        },
    )?;
    Ok(crd::RayService {
        api_version: "ray.io/v1".to_string(),
        kind: "RayService".to_string(),
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels::object_labels([(labels::USER, user.clone())])),
            annotations: Some(BTreeMap::from([(
                annotation.0.to_string(),
                annotation.1.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: crd::RayServiceSpec {
            service_unhealthy_second_threshold: (*service_unhealthy_second_threshold > 0)
                .then_some(*service_unhealthy_second_threshold),
            deployment_unhealthy_second_threshold: (*deployment_unhealthy_second_threshold > 0)
                .then_some(*deployment_unhealthy_second_threshold),
            serve_config_v2: Some(serve_config_v2.clone()),
            ray_cluster_config,
            ..crd::RayServiceSpec::default()
        },
        status: None,
    })
}

/// The name of the service's active RayCluster, whose events are shown with the service's.
pub fn active_cluster_name(service: &crd::RayService) -> Option<String> {
    service
        .status
        .as_ref()
        .and_then(|s| s.active_service_status.as_ref())
        .and_then(|s| s.ray_cluster_name.clone())
        .filter(|name| !name.is_empty())
}

/// Reads a RayService back (docs/contract/conversion.md#rayservice-to-service). `deleteAt` is
/// always present: Unix -1 while the service is not being deleted, as the Go server renders it.
pub fn from_ray_service(
    service: &crd::RayService,
    events: Vec<proto::RayServiceEvent>,
) -> Result<proto::RayService, CoreError> {
    convert_service(service, events)
}

/// A RayService as V1 shows it, converted once and kept, encoded, without its events (its own
/// and its active cluster's, which change on their own); [`ServiceView::with_events`] makes each
/// answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceView {
    service: Packed<proto::RayService>,
    name: Box<str>,
    namespace: Box<str>,
    active_cluster: Option<Box<str>>,
}

impl ServiceView {
    /// Converts `service` ([`from_ray_service`] without events).
    pub fn of(service: &crd::RayService) -> Result<Self, CoreError> {
        let converted = convert_service(service, Vec::new())?;
        Ok(Self {
            service: Packed::pack(&converted),
            name: converted.name.into(),
            namespace: converted.namespace.into(),
            active_cluster: active_cluster_name(service).map(Into::into),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The RayCluster serving the service now ([`active_cluster_name`]), whose events the
    /// answer includes.
    pub fn active_cluster(&self) -> Option<&str> {
        self.active_cluster.as_deref()
    }

    /// The answer for this service with `events` (converted by
    /// [`crate::events::service_events`]).
    pub fn with_events(&self, events: Vec<proto::RayServiceEvent>) -> proto::RayService {
        let mut service = self.service.unpack();
        if let Some(status) = service.ray_service_status.as_mut() {
            status.ray_service_events = events;
        }
        service
    }
}

fn convert_service(
    service: &crd::RayService,
    events: Vec<proto::RayServiceEvent>,
) -> Result<proto::RayService, CoreError> {
    let metadata = &service.metadata;
    let spec = &service.spec;
    let name = metadata.name.clone().unwrap_or_default();
    let namespace = metadata.namespace.clone().unwrap_or_default();
    let cluster_spec = cluster::cluster_spec_to_api(&spec.ray_cluster_config).map_err(|error| {
        CoreError::InvalidData(format!("RayService {namespace}/{name}: {error}"))
    })?;
    Ok(proto::RayService {
        user: labels::label_value(metadata, labels::USER),
        version: spec
            .ray_cluster_config
            .ray_version
            .clone()
            .unwrap_or_default(),
        serve_config_v2: spec.serve_config_v2.clone().unwrap_or_default(),
        service_unhealthy_second_threshold: spec
            .service_unhealthy_second_threshold
            .unwrap_or_default(),
        deployment_unhealthy_second_threshold: spec
            .deployment_unhealthy_second_threshold
            .unwrap_or_default(),
        cluster_spec: Some(cluster_spec),
        ray_service_status: Some(service_status(service, events)),
        created_at: metadata
            .creation_timestamp
            .as_ref()
            .map(|t| kuberay_api::Timestamp::from_seconds(t.0.as_second())),
        delete_at: Some(kuberay_api::Timestamp::from_seconds(
            metadata
                .deletion_timestamp
                .as_ref()
                .map_or(-1, |t| t.0.as_second()),
        )),
        name,
        namespace,
    })
}

/// The service status as V1 shows it: the active cluster's name, state, endpoints and Serve
/// applications, and `events`; the service-wide application fields stay empty.
fn service_status(
    service: &crd::RayService,
    events: Vec<proto::RayServiceEvent>,
) -> proto::RayServiceStatus {
    let active = service
        .status
        .as_ref()
        .and_then(|s| s.active_service_status.clone())
        .unwrap_or_default();
    let cluster_status = active.ray_cluster_status.clone().unwrap_or_default();
    proto::RayServiceStatus {
        application_status: String::new(),
        application_message: String::new(),
        serve_deployment_status: Vec::new(),
        ray_service_events: events,
        ray_cluster_name: active.ray_cluster_name.clone().unwrap_or_default(),
        ray_cluster_state: cluster_status.state.clone().unwrap_or_default(),
        service_endpoint: cluster_status.endpoints.clone().unwrap_or_default(),
        serve_application_status: active
            .applications
            .unwrap_or_default()
            .into_iter()
            .map(application_to_api)
            .collect(),
    }
}

/// One Serve application's status and those of its deployments.
fn application_to_api((name, app): (String, crd::AppStatus)) -> proto::ServeApplicationStatus {
    proto::ServeApplicationStatus {
        name,
        status: app.status.unwrap_or_default(),
        message: app.message.unwrap_or_default(),
        serve_deployment_status: app
            .deployments
            .unwrap_or_default()
            .into_iter()
            .map(
                |(deployment_name, deployment)| proto::ServeDeploymentStatus {
                    deployment_name,
                    status: deployment.status.unwrap_or_default(),
                    message: deployment.message.unwrap_or_default(),
                },
            )
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> BTreeMap<String, ComputeTemplate> {
        BTreeMap::from([(
            "t".to_string(),
            ComputeTemplate {
                name: "t".into(),
                namespace: "ns".into(),
                cpu: 2,
                memory: 4,
                memory_unit: "Gi".into(),
                ..Default::default()
            },
        )])
    }

    fn service() -> proto::RayService {
        proto::RayService {
            name: "svc".into(),
            namespace: "ns".into(),
            user: "u".into(),
            version: "2.41.0".into(),
            serve_config_v2: "applications: []\n".into(),
            service_unhealthy_second_threshold: 100,
            cluster_spec: Some(proto::ClusterSpec {
                head_group_spec: Some(proto::HeadGroupSpec {
                    compute_template: "t".into(),
                    ray_start_params: BTreeMap::from([("num-cpus".into(), "0".into())]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn builds_the_go_servers_object() {
        let object = to_ray_service(
            &service(),
            &template(),
            (
                labels::CREATION_TIMESTAMP,
                "2023-09-25 10:48:35.5 +0000 UTC",
            ),
        )
        .unwrap();
        assert_eq!(
            object.metadata.labels.clone().unwrap().len(),
            3,
            "no cluster-name label on services"
        );
        let json = serde_json::to_value(&object).unwrap();
        assert_eq!(
            json["metadata"]["annotations"],
            serde_json::json!({"ray.io/creation-timestamp": "2023-09-25 10:48:35.5 +0000 UTC"})
        );
        assert_eq!(json["spec"]["serveConfigV2"], "applications: []\n");
        assert_eq!(json["spec"]["serviceUnhealthySecondThreshold"], 100);
        assert!(
            json["spec"]
                .get("deploymentUnhealthySecondThreshold")
                .is_none()
        );
        let ports = &json["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"]
            [0]["ports"];
        let names: Vec<&str> = ports
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"serve") && names.contains(&"dashboard-agent"),
            "{names:?}"
        );
    }

    #[test]
    fn serve_config_is_required() {
        let mut svc = service();
        svc.serve_config_v2.clear();
        assert_eq!(
            to_ray_service(&svc, &template(), (labels::CREATION_TIMESTAMP, "x")),
            Err(CoreError::InvalidInput(
                "serve configuration is not defined".into()
            ))
        );
    }

    #[test]
    fn reading_back_renders_delete_at_and_status() {
        let object =
            to_ray_service(&service(), &template(), (labels::CREATION_TIMESTAMP, "x")).unwrap();
        let back = from_ray_service(&object, Vec::new()).unwrap();
        assert_eq!(
            back.delete_at,
            Some(kuberay_api::Timestamp::from_seconds(-1))
        );
        assert_eq!(
            back.ray_service_status,
            Some(proto::RayServiceStatus::default())
        );
        assert_eq!(back.serve_config_v2, "applications: []\n");
        assert_eq!(back.service_unhealthy_second_threshold, 100);
        assert_eq!(back.version, "2.41.0");
        assert_eq!(
            serde_json::to_value(&back).unwrap()["deleteAt"],
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn a_view_names_the_active_cluster_and_answers_with_each_reads_events() {
        let mut object =
            to_ray_service(&service(), &template(), (labels::CREATION_TIMESTAMP, "x")).unwrap();
        assert_eq!(ServiceView::of(&object).unwrap().active_cluster(), None);
        object.status = Some(
            serde_json::from_value(serde_json::json!({
                "activeServiceStatus": {"rayClusterName": "svc-raycluster-abc"}
            }))
            .unwrap(),
        );
        let view = ServiceView::of(&object).unwrap();
        assert_eq!(view.active_cluster(), Some("svc-raycluster-abc"));
        let event = |id: &str| proto::RayServiceEvent {
            id: id.into(),
            ..Default::default()
        };
        let ids = |service: &proto::RayService| -> Vec<String> {
            let status = service.ray_service_status.as_ref().unwrap();
            status
                .ray_service_events
                .iter()
                .map(|e| e.id.clone())
                .collect()
        };
        assert_eq!(
            ids(&view.with_events(vec![event("a"), event("b")])),
            ["a", "b"]
        );
        assert_eq!(ids(&view.with_events(vec![event("c")])), ["c"]);
        assert_eq!(
            view.with_events(vec![event("c")]),
            from_ray_service(&object, vec![event("c")]).unwrap()
        );
    }

    #[test]
    fn validation_texts() {
        let err = |result: Result<&proto::RayService, CoreError>| match result {
            Err(CoreError::InvalidInput(text)) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(err(validate_create("ns", None)), EMPTY_SERVICE);
        let mut svc = service();
        svc.user.clear();
        assert_eq!(
            err(validate_create("ns", Some(&svc))),
            "User who created the Service is empty. Please specify a valid value."
        );
        assert_eq!(
            err(validate_update("svc", "ns", Some(&svc))),
            "User who updated the Service is empty. Please specify a valid value."
        );
        assert_eq!(
            err(validate_update("", "ns", Some(&service()))),
            "Name is empty. Please specify a valid value."
        );
        let valid = service();
        assert_eq!(validate_update("other", "ns", Some(&valid)), Ok(&valid));
    }
}
