//! The table of resource kinds served by the embedded API.
//!
//! Every kind is described by one [`ResourceDef`]; all request handling is
//! generic over this table.

/// How `metadata.name` is validated for a kind (as the real kube-apiserver does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most kinds, custom resources).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services).
    Label1035,
}

/// Static description of one served resource.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDef {
    /// API group, "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    pub has_status_subresource: bool,
    /// A custom resource (generation handling, unconditional updates refused).
    pub custom: bool,
    /// Delete answers with the deleted object instead of a `Status`.
    pub return_deleted_object: bool,
    pub name_rule: NameRule,
    /// Field selector keys accepted besides `metadata.name` / `metadata.namespace`.
    pub extra_fields: &'static [&'static str],
    /// How many times the kube-apiserver validates the labels and annotations of an update
    /// (its generic checks twice, then the kind's own validation once or twice): each time adds
    /// the same causes to a 422.
    pub meta_checks_on_update: usize,
}

impl ResourceDef {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `configmaps` or `rayclusters.ray.io`, as used in error messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The group of `Invalid` errors: the API group, except for `events.k8s.io` Events, which
    /// the kube-apiserver validates as core Events.
    pub fn error_group(&self) -> &'static str {
        if self.group == "events.k8s.io" {
            ""
        } else {
            self.group
        }
    }

    /// `RayCluster.ray.io` or `ConfigMap`, as in `... is invalid` messages (Go's
    /// `GroupKind.String`).
    pub fn qualified_kind(&self) -> String {
        if self.error_group().is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.error_group())
        }
    }

    /// Prefix of every storage key of this resource.
    pub fn key_prefix(&self) -> String {
        format!("{}/{}\0", self.group, self.plural)
    }

    /// Storage key of one object (`namespace` is "" for cluster-scoped kinds).
    pub fn key(&self, namespace: &str, name: &str) -> String {
        format!("{}/{}\0{}\0{}", self.group, self.plural, namespace, name)
    }

    /// Whether `field` may be used in a field selector.
    pub fn supports_field(&self, field: &str) -> bool {
        field == "metadata.name"
            || (field == "metadata.namespace" && self.namespaced)
            || self.extra_fields.contains(&field)
    }
}

const CORE_EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

const EVENTS_K8S_IO_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

const fn core(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
) -> ResourceDef {
    ResourceDef {
        group: "",
        version: "v1",
        kind,
        plural,
        singular,
        short_names,
        namespaced: true,
        has_status_subresource: false,
        custom: false,
        return_deleted_object: false,
        name_rule: NameRule::Subdomain,
        extra_fields: &[],
        meta_checks_on_update: 4,
    }
}

const fn ray(kind: &'static str, plural: &'static str, singular: &'static str) -> ResourceDef {
    ResourceDef {
        group: "ray.io",
        version: "v1",
        kind,
        plural,
        singular,
        short_names: &[],
        namespaced: true,
        has_status_subresource: true,
        custom: true,
        return_deleted_object: false,
        name_rule: NameRule::Subdomain,
        extra_fields: &[],
        meta_checks_on_update: 3,
    }
}

/// Every served resource.
pub static RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        namespaced: false,
        has_status_subresource: true,
        // The namespace registry answers a DELETE with the (terminating) namespace.
        return_deleted_object: true,
        name_rule: NameRule::Label,
        extra_fields: &["status.phase"],
        ..core("Namespace", "namespaces", "namespace", &["ns"])
    },
    core("ConfigMap", "configmaps", "configmap", &["cm"]),
    ResourceDef {
        extra_fields: &["type"],
        ..core("Secret", "secrets", "secret", &[])
    },
    ResourceDef {
        has_status_subresource: true,
        return_deleted_object: true,
        name_rule: NameRule::Label1035,
        meta_checks_on_update: 3,
        ..core("Service", "services", "service", &["svc"])
    },
    ResourceDef {
        // `ValidateEndpointsUpdate` checks the metadata once besides the generic checks.
        meta_checks_on_update: 3,
        ..core("Endpoints", "endpoints", "endpoints", &["ep"])
    },
    ResourceDef {
        has_status_subresource: true,
        return_deleted_object: true,
        extra_fields: POD_FIELDS,
        ..core("Pod", "pods", "pod", &["po"])
    },
    ResourceDef {
        extra_fields: CORE_EVENT_FIELDS,
        meta_checks_on_update: 2,
        ..core("Event", "events", "event", &["ev"])
    },
    ResourceDef {
        group: "events.k8s.io",
        extra_fields: EVENTS_K8S_IO_FIELDS,
        short_names: &["ev"],
        meta_checks_on_update: 3,
        ..core("Event", "events", "event", &[])
    },
    ray("RayCluster", "rayclusters", "raycluster"),
    ray("RayJob", "rayjobs", "rayjob"),
    ray("RayService", "rayservices", "rayservice"),
];

/// Looks a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The namespace resource.
pub fn namespaces() -> &'static ResourceDef {
    &RESOURCES[0]
}

/// The core v1 Service resource.
pub fn services() -> &'static ResourceDef {
    core_kind("services")
}

/// The core v1 Endpoints resource.
pub fn endpoints() -> &'static ResourceDef {
    core_kind("endpoints")
}

/// A core v1 resource of the table, by plural (only called with plurals of [`RESOURCES`]).
fn core_kind(plural: &str) -> &'static ResourceDef {
    find("", "v1", plural).expect("a core kind of the resource table")
}

/// Served (group, version) pairs in registration order, core group first.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn named_core_kinds_are_in_the_table() {
        assert_eq!(super::services().kind, "Service");
        assert_eq!(super::endpoints().kind, "Endpoints");
        assert_eq!(super::namespaces().kind, "Namespace");
    }
}
