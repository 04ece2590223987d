//! The Services the operator creates in front of a cluster's head (`<cluster>-head-svc`, and a
//! RayService's `<service>-head-svc` and `<service>-serve-svc`), here with an Endpoints object
//! of the same name holding the loopback ports the head really listens on. Through them the
//! API's service proxy (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/`) reaches the local
//! Ray dashboard and Serve applications, as it reaches pods on a real cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The port a Service declares for each head port name, as the operator's head Service does.
pub const SERVICE_PORTS: [(&str, u16); 5] = [
    ("client", 10001),
    ("dashboard", 8265),
    ("gcs-server", 6379),
    ("metrics", 8080),
    ("serve", 8000),
];

/// One Service and its Endpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct Exposure {
    pub namespace: String,
    pub name: String,
    /// The RayCluster the addresses belong to (`ray.io/cluster`).
    pub cluster: String,
    /// Port name -> the local port (a name not in [`SERVICE_PORTS`] is left out).
    pub ports: BTreeMap<String, u16>,
    pub owner: OwnerReference,
}

impl Exposure {
    /// The Service object.
    pub fn service(&self) -> Value {
        let ports: Vec<Value> = self
            .declared()
            .map(|(name, port, _)| {
                json!({"name": name, "port": port, "protocol": "TCP", "targetPort": port})
            })
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.metadata(),
            "spec": {
                "type": "ClusterIP",
                "ports": ports,
                "selector": {
                    "app.kubernetes.io/created-by": "kuberay-operator",
                    "ray.io/cluster": self.cluster,
                    "ray.io/node-type": "head",
                },
            },
        })
    }

    /// The Endpoints object: the head on loopback, each port at its local number.
    pub fn endpoints(&self) -> Value {
        let ports: Vec<Value> = self
            .declared()
            .map(|(name, _, local)| json!({"name": name, "port": local, "protocol": "TCP"}))
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": self.metadata(),
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": ports}],
        })
    }

    fn declared(&self) -> impl Iterator<Item = (&'static str, u16, u16)> + '_ {
        SERVICE_PORTS
            .iter()
            .filter_map(|(name, port)| self.ports.get(*name).map(|local| (*name, *port, *local)))
    }

    fn metadata(&self) -> Value {
        json!({
            "name": self.name,
            "namespace": self.namespace,
            "labels": {
                "app.kubernetes.io/name": "kuberay",
                "app.kubernetes.io/created-by": "kuberay-operator",
                "ray.io/cluster": self.cluster,
                "ray.io/node-type": "head",
                "ray.io/identifier": format!("{}-head", self.cluster),
            },
            "ownerReferences": [self.owner],
        })
    }

    /// Creates the Service and its Endpoints, or brings them up to date.
    pub async fn apply(&self, client: &kube::Client) -> Result<(), kube::Error> {
        let services: Api<Service> = Api::namespaced(client.clone(), &self.namespace);
        create_or_merge(&services, &self.name, self.service()).await?;
        let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), &self.namespace);
        create_or_merge(&endpoints, &self.name, self.endpoints()).await
    }
}

async fn create_or_merge<K>(api: &Api<K>, name: &str, object: Value) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let typed: K = serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &typed).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let mut patch = object;
            if let Some(map) = patch.as_object_mut() {
                map.remove("apiVersion");
                map.remove("kind");
            }
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
        }
        Err(error) => Err(error),
    }
}

/// Deletes the Service `name` and its Endpoints (gone already is fine).
pub async fn withdraw(client: &kube::Client, namespace: &str, name: &str) {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), namespace);
    for result in [
        endpoints
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
        services
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
    ] {
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => tracing::debug!("deleting Service {namespace}/{name}: {error}"),
        }
    }
}

/// The name of the operator's head Service of `cluster`.
pub fn head_service_name(cluster: &str) -> String {
    format!("{cluster}-head-svc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ports_are_the_operators_and_endpoints_the_local_ones() {
        let exposure = Exposure {
            namespace: "ns".into(),
            name: "c-head-svc".into(),
            cluster: "c".into(),
            ports: BTreeMap::from([
                ("dashboard".into(), 40001),
                ("serve".into(), 40002),
                ("unknown".into(), 1),
            ]),
            owner: OwnerReference {
                api_version: "ray.io/v1".into(),
                kind: "RayCluster".into(),
                name: "c".into(),
                uid: "u".into(),
                ..Default::default()
            },
        };
        let service = exposure.service();
        assert_eq!(
            service["spec"]["ports"],
            json!([
                {"name": "dashboard", "port": 8265, "protocol": "TCP", "targetPort": 8265},
                {"name": "serve", "port": 8000, "protocol": "TCP", "targetPort": 8000},
            ])
        );
        assert_eq!(
            service["metadata"]["labels"]["app.kubernetes.io/name"],
            "kuberay"
        );
        assert_eq!(
            service["metadata"]["ownerReferences"][0]["kind"],
            "RayCluster"
        );
        let endpoints = exposure.endpoints();
        assert_eq!(
            endpoints["subsets"][0]["ports"],
            json!([
                {"name": "dashboard", "port": 40001, "protocol": "TCP"},
                {"name": "serve", "port": 40002, "protocol": "TCP"},
            ])
        );
        assert_eq!(endpoints["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
        // Both parse as the typed objects the API takes.
        serde_json::from_value::<Service>(service).unwrap();
        serde_json::from_value::<Endpoints>(endpoints).unwrap();
    }
}
