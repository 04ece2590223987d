//! Kubernetes events (`events.k8s.io/v1`) as the API's `ClusterEvent` / `RayServiceEvent`
//! (docs/contract/conversion.md#events).
//!
//! The caller selects the events (by namespace and name of the object: the Go server keys them
//! by name only, a defect we fix) and passes them in the order Kubernetes returned them.

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff;
use kuberay_api::{Timestamp, proto};

/// Go's zero time (`0001-01-01T00:00:00Z`) in seconds, returned for unset times.
const GO_ZERO_SECONDS: i64 = -62_135_596_800;

/// The fields of both event messages (`ClusterEvent` and `RayServiceEvent` have the same).
struct Converted {
    name: String,
    id: String,
    created_at: Timestamp,
    first_timestamp: Timestamp,
    last_timestamp: Timestamp,
    reason: String,
    message: String,
    type_: String,
    count: i32,
}

/// The event message `$message` (a path to `ClusterEvent` or `RayServiceEvent`, which are
/// distinct types with the same fields) of a [`Converted`] event.
macro_rules! event_message {
    ($message:path, $converted:expr) => {{
        let Converted {
            name,
            id,
            created_at,
            first_timestamp,
            last_timestamp,
            reason,
            message,
            type_,
            count,
        } = $converted;
        $message {
            name,
            id,
            created_at: Some(created_at),
            first_timestamp: Some(first_timestamp),
            last_timestamp: Some(last_timestamp),
            reason,
            message,
            r#type: type_,
            count,
        }
    }};
}

fn seconds(time: Option<jiff::Timestamp>) -> Timestamp {
    Timestamp {
        seconds: time.map_or(GO_ZERO_SECONDS, |t| t.as_second()),
        nanos: 0,
    }
}

/// A set time: Go's `IsZero` treats its zero time like an unset one.
fn is_set(time: &jiff::Timestamp) -> bool {
    time.as_second() != GO_ZERO_SECONDS || time.subsec_nanosecond() != 0
}

fn time(value: Option<&Time>) -> Option<jiff::Timestamp> {
    value.map(|t| t.0).filter(is_set)
}

fn micro_time(value: Option<&MicroTime>) -> Option<jiff::Timestamp> {
    value.map(|t| t.0).filter(is_set)
}

/// An event's fields; its message name is `<prefix>-<event name>`, or the event name without a
/// prefix.
fn convert(event: &Event, prefix: Option<&str>) -> Converted {
    let event_time = micro_time(event.event_time.as_ref());
    let first = event_time.or_else(|| time(event.deprecated_first_timestamp.as_ref()));
    let last = match &event.series {
        Some(series) => Some(series.last_observed_time.0),
        None => time(event.deprecated_last_timestamp.as_ref()).or(event_time),
    };
    let count = match &event.series {
        Some(series) => series.count,
        None => event.deprecated_count.unwrap_or_default(),
    };
    let id = event.metadata.name.clone().unwrap_or_default();
    Converted {
        name: match prefix {
            Some(prefix) => format!("{prefix}-{id}"),
            None => id.clone(),
        },
        id,
        created_at: seconds(time(event.metadata.creation_timestamp.as_ref())),
        first_timestamp: seconds(first),
        last_timestamp: seconds(last),
        reason: event.reason.clone().unwrap_or_default(),
        message: event.note.clone().unwrap_or_default(),
        type_: event.type_.clone().unwrap_or_default(),
        count,
    }
}

/// Events of a RayCluster. `name` is the event name here;
/// [`crate::cluster::from_ray_cluster`] prefixes it with the cluster's `ray.io/cluster-name`
/// label (`<cluster>-<event>`), as the Go server does.
pub fn cluster_events(events: &[Event]) -> Vec<proto::ClusterEvent> {
    events
        .iter()
        .map(|event| event_message!(proto::ClusterEvent, convert(event, None)))
        .collect()
}

/// Events of a RayService, named `<service name>-<event name>` (also the events of its active
/// cluster, which the Go server appends with the same service-name prefix).
pub fn service_events(service_name: &str, events: &[Event]) -> Vec<proto::RayServiceEvent> {
    events
        .iter()
        .map(|event| event_message!(proto::RayServiceEvent, convert(event, Some(service_name))))
        .collect()
}
