//! Volumes: API `Volume` <-> pod `volumes` + container `volumeMounts`
//! (docs/contract/conversion.md#volumes and #volumes-back).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EmptyDirVolumeSource, EphemeralVolumeSource, HostPathVolumeSource,
    KeyToPath, PersistentVolumeClaimSpec, PersistentVolumeClaimTemplate,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, SecretVolumeSource,
    Volume as PodVolume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kuberay_api::proto::{
    self,
    volume::{AccessMode, HostPathType, MountPropagationMode, VolumeType},
};

use crate::CoreError;
use crate::labels;
use crate::quantity::canonicalize;

const HOST_TO_CONTAINER: &str = "HostToContainer";
const BIDIRECTIONAL: &str = "Bidirectional";

/// One mount per API volume, in input order.
pub(crate) fn to_mounts(volumes: &[proto::Volume]) -> Vec<VolumeMount> {
    volumes.iter().map(to_mount).collect()
}

fn to_mount(volume: &proto::Volume) -> VolumeMount {
    let mount_propagation = match MountPropagationMode::try_from(volume.mount_propagation_mode) {
        Ok(MountPropagationMode::Hosttocontainer) => Some(HOST_TO_CONTAINER.to_string()),
        Ok(MountPropagationMode::Bidirectional) => Some(BIDIRECTIONAL.to_string()),
        Ok(MountPropagationMode::None) | Err(_) => None,
    };
    VolumeMount {
        name: volume.name.clone(),
        mount_path: volume.mount_path.clone(),
        read_only: volume.read_only.then_some(true),
        mount_propagation,
        ..Default::default()
    }
}

/// The pod volumes of API volumes, in input order; a volume of an unknown type has none.
/// The first storage problem is returned as the Go server's text.
pub(crate) fn to_pod_volumes(volumes: &[proto::Volume]) -> Result<Vec<PodVolume>, CoreError> {
    let mut result = Vec::new();
    for volume in volumes {
        if let Some(pod_volume) = to_pod_volume(volume)? {
            result.push(pod_volume);
        }
    }
    Ok(result)
}

fn key_to_paths(items: &BTreeMap<String, String>) -> Option<Vec<KeyToPath>> {
    (!items.is_empty()).then(|| {
        items
            .iter()
            .map(|(key, path)| KeyToPath {
                key: key.clone(),
                path: path.clone(),
                mode: None,
            })
            .collect()
    })
}

/// The pod volume of one API volume: its name and the source of its type; `None` for a type the
/// API does not know.
fn to_pod_volume(volume: &proto::Volume) -> Result<Option<PodVolume>, CoreError> {
    let proto::Volume {
        mount_path: _,
        volume_type,
        name,
        source,
        read_only,
        host_path_type,
        mount_propagation_mode: _,
        storage_class_name,
        access_mode,
        storage,
        items,
    } = volume;
    let mut pod_volume = PodVolume {
        name: name.clone(),
        ..Default::default()
    };
    match VolumeType::try_from(*volume_type) {
        Ok(VolumeType::PersistentVolumeClaim) => {
            pod_volume.persistent_volume_claim = Some(claim_source(source, *read_only));
        }
        Ok(VolumeType::HostPath) => {
            pod_volume.host_path = Some(host_path_source(source, *host_path_type));
        }
        Ok(VolumeType::Ephemeral) => {
            pod_volume.ephemeral =
                Some(ephemeral_source(storage, *access_mode, storage_class_name)?);
        }
        Ok(VolumeType::Configmap) => {
            pod_volume.config_map = Some(ConfigMapVolumeSource {
                name: source.clone(),
                items: key_to_paths(items),
                ..Default::default()
            });
        }
        Ok(VolumeType::Secret) => {
            pod_volume.secret = Some(SecretVolumeSource {
                secret_name: Some(source.clone()),
                items: key_to_paths(items),
                ..Default::default()
            });
        }
        Ok(VolumeType::EmptyDir) => {
            pod_volume.empty_dir = Some(empty_dir_source(storage)?);
        }
        Err(_) => return Ok(None),
    }
    Ok(Some(pod_volume))
}

fn claim_source(claim_name: &str, read_only: bool) -> PersistentVolumeClaimVolumeSource {
    PersistentVolumeClaimVolumeSource {
        claim_name: claim_name.to_string(),
        read_only: read_only.then_some(true),
    }
}

/// A host path of type `File` or (by default) `Directory`.
fn host_path_source(path: &str, host_path_type: i32) -> HostPathVolumeSource {
    let kind = match HostPathType::try_from(host_path_type) {
        Ok(HostPathType::File) => "File",
        Ok(HostPathType::Directory) | Err(_) => "Directory",
    };
    HostPathVolumeSource {
        path: path.to_string(),
        type_: Some(kind.to_string()),
    }
}

/// An ephemeral volume: a claim template labelled as the server's, asking for `storage`
/// (required) with one access mode (by default `ReadWriteOnce`).
fn ephemeral_source(
    storage: &str,
    access_mode: i32,
    storage_class_name: &str,
) -> Result<EphemeralVolumeSource, CoreError> {
    if storage.is_empty() {
        return Err(CoreError::InvalidInput(
            "storage for ephemeral volume is empty".into(),
        ));
    }
    let storage = canonicalize(storage).map_err(|_| {
        CoreError::InvalidInput("storage for ephemeral volume is not specified correctly".into())
    })?;
    let mode = match AccessMode::try_from(access_mode) {
        Ok(AccessMode::Rox) => "ReadOnlyMany",
        Ok(AccessMode::Rwx) => "ReadWriteMany",
        Ok(AccessMode::Rwo) | Err(_) => "ReadWriteOnce",
    };
    Ok(EphemeralVolumeSource {
        volume_claim_template: Some(PersistentVolumeClaimTemplate {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([(
                    labels::MANAGED_BY.to_string(),
                    labels::MANAGED_BY_VALUE.to_string(),
                )])),
                ..Default::default()
            }),
            spec: PersistentVolumeClaimSpec {
                access_modes: Some(vec![mode.to_string()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_string(),
                        K8sQuantity(storage),
                    )])),
                    limits: None,
                }),
                storage_class_name: (!storage_class_name.is_empty())
                    .then(|| storage_class_name.to_string()),
                ..Default::default()
            },
        }),
    })
}

/// An empty dir, size-limited when `storage` is given.
fn empty_dir_source(storage: &str) -> Result<EmptyDirVolumeSource, CoreError> {
    let size_limit = if storage.is_empty() {
        None
    } else {
        Some(K8sQuantity(canonicalize(storage).map_err(|_| {
            CoreError::InvalidInput(
                "storage for empty dir volume is not specified correctly".into(),
            )
        })?))
    };
    Ok(EmptyDirVolumeSource {
        size_limit,
        medium: None,
    })
}

/// The mount propagation mode of a mount, as the API enum number.
pub(crate) fn propagation_of(mount: &VolumeMount) -> i32 {
    match mount.mount_propagation.as_deref() {
        Some(HOST_TO_CONTAINER) => MountPropagationMode::Hosttocontainer as i32,
        Some(BIDIRECTIONAL) => MountPropagationMode::Bidirectional as i32,
        _ => MountPropagationMode::None as i32,
    }
}

/// A stored quantity in canonical form (kept as stored if it does not parse).
pub(crate) fn canonical_or_raw(quantity: &K8sQuantity) -> String {
    canonicalize(&quantity.0).unwrap_or_else(|_| quantity.0.clone())
}

fn items_of(items: Option<&Vec<KeyToPath>>) -> BTreeMap<String, String> {
    items
        .into_iter()
        .flatten()
        .map(|item| (item.key.clone(), item.path.clone()))
        .collect()
}

/// The API volumes of a pod template (docs/contract/conversion.md#volumes-back): pod volumes in
/// order, each with the first mount of the same name in any container; kinds the API cannot express
/// are skipped.
pub(crate) fn from_pod_template(
    template: &PodTemplateSpec,
) -> Result<Vec<proto::Volume>, CoreError> {
    let Some(pod) = template.spec.as_ref() else {
        return Ok(Vec::new());
    };
    let mut result = Vec::new();
    for volume in pod.volumes.iter().flatten() {
        if let Some(converted) = from_pod_volume(pod, volume)? {
            result.push(converted);
        }
    }
    Ok(result)
}

/// The first mount named `name` in any container of `pod`.
fn mount_named<'a>(pod: &'a PodSpec, name: &str) -> Result<&'a VolumeMount, CoreError> {
    pod.containers
        .iter()
        .flat_map(|container| container.volume_mounts.iter().flatten())
        .find(|mount| mount.name == name)
        .ok_or_else(|| {
            CoreError::InvalidData(format!(
                "pod volume {name} has no volumeMount of the same name in any container"
            ))
        })
}

/// The API volume of one pod volume with its mount; `None` for a kind the API cannot express
/// (whose mount is then not looked for).
fn from_pod_volume(pod: &PodSpec, volume: &PodVolume) -> Result<Option<proto::Volume>, CoreError> {
    let mount = || mount_named(pod, &volume.name);
    let converted = if let Some(source) = &volume.config_map {
        config_map_volume(source, mount()?)
    } else if let Some(source) = &volume.secret {
        secret_volume(source, mount()?)
    } else if let Some(source) = &volume.empty_dir {
        empty_dir_volume(source, mount()?)
    } else if let Some(source) = &volume.host_path {
        host_path_volume(source, mount()?)
    } else if let Some(source) = &volume.persistent_volume_claim {
        claim_volume(source, mount()?)
    } else if let Some(source) = &volume.ephemeral {
        ephemeral_volume(&volume.name, source, mount()?)?
    } else {
        return Ok(None);
    };
    Ok(Some(proto::Volume {
        name: volume.name.clone(),
        ..converted
    }))
}

// The `*_volume` functions below fill all fields but the name, which `from_pod_volume` sets.

fn config_map_volume(source: &ConfigMapVolumeSource, mount: &VolumeMount) -> proto::Volume {
    proto::Volume {
        mount_path: mount.mount_path.clone(),
        volume_type: VolumeType::Configmap as i32,
        source: source.name.clone(),
        items: items_of(source.items.as_ref()),
        ..Default::default()
    }
}

fn secret_volume(source: &SecretVolumeSource, mount: &VolumeMount) -> proto::Volume {
    proto::Volume {
        mount_path: mount.mount_path.clone(),
        volume_type: VolumeType::Secret as i32,
        source: source.secret_name.clone().unwrap_or_default(),
        items: items_of(source.items.as_ref()),
        ..Default::default()
    }
}

fn empty_dir_volume(source: &EmptyDirVolumeSource, mount: &VolumeMount) -> proto::Volume {
    proto::Volume {
        mount_path: mount.mount_path.clone(),
        volume_type: VolumeType::EmptyDir as i32,
        storage: source
            .size_limit
            .as_ref()
            .map(canonical_or_raw)
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn host_path_volume(source: &HostPathVolumeSource, mount: &VolumeMount) -> proto::Volume {
    let host_path_type = match source.type_.as_deref() {
        Some("File") => HostPathType::File,
        _ => HostPathType::Directory,
    };
    proto::Volume {
        mount_path: mount.mount_path.clone(),
        source: source.path.clone(),
        mount_propagation_mode: propagation_of(mount),
        volume_type: VolumeType::HostPath as i32,
        host_path_type: host_path_type as i32,
        ..Default::default()
    }
}

fn claim_volume(source: &PersistentVolumeClaimVolumeSource, mount: &VolumeMount) -> proto::Volume {
    proto::Volume {
        mount_path: mount.mount_path.clone(),
        mount_propagation_mode: propagation_of(mount),
        volume_type: VolumeType::PersistentVolumeClaim as i32,
        source: source.claim_name.clone(),
        read_only: source.read_only.unwrap_or(false),
        ..Default::default()
    }
}

/// An ephemeral volume back: its claim template's first access mode and storage request
/// (`0` when absent); a volume without a claim template is malformed.
fn ephemeral_volume(
    name: &str,
    source: &EphemeralVolumeSource,
    mount: &VolumeMount,
) -> Result<proto::Volume, CoreError> {
    let claim = source.volume_claim_template.as_ref().ok_or_else(|| {
        CoreError::InvalidData(format!(
            "ephemeral volume {name} has no volumeClaimTemplate"
        ))
    })?;
    let access_mode = match claim
        .spec
        .access_modes
        .as_ref()
        .and_then(|modes| modes.first())
        .map(String::as_str)
    {
        Some("ReadOnlyMany") => AccessMode::Rox,
        Some("ReadWriteMany") => AccessMode::Rwx,
        _ => AccessMode::Rwo,
    };
    let storage = claim
        .spec
        .resources
        .as_ref()
        .and_then(|resources| resources.requests.as_ref())
        .and_then(|requests| requests.get("storage"))
        .map_or_else(|| "0".to_string(), canonical_or_raw);
    Ok(proto::Volume {
        mount_path: mount.mount_path.clone(),
        mount_propagation_mode: propagation_of(mount),
        volume_type: VolumeType::Ephemeral as i32,
        access_mode: access_mode as i32,
        storage,
        storage_class_name: claim.spec.storage_class_name.clone().unwrap_or_default(),
        ..Default::default()
    })
}
