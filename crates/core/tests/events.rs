//! Kubernetes events -> API events (docs/contract/conversion.md#events).

use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kuberay_api::Timestamp;
use kuberay_api::proto::{ClusterEvent, RayServiceEvent};
use kuberay_core::events::{cluster_events, service_events};

const GO_ZERO: i64 = -62_135_596_800;

fn at(text: &str) -> k8s_openapi::jiff::Timestamp {
    text.parse().unwrap()
}

fn ts(text: &str) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: at(text).as_second(),
        nanos: 0,
    })
}

fn zero() -> Option<Timestamp> {
    Some(Timestamp {
        seconds: GO_ZERO,
        nanos: 0,
    })
}

fn event(name: &str) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(name.into()),
            creation_timestamp: Some(Time(at("2024-01-01T00:00:00.9Z"))),
            ..Default::default()
        },
        reason: Some("Created".into()),
        note: Some("Created head pod".into()),
        type_: Some("Normal".into()),
        ..Default::default()
    }
}

#[test]
fn events_api_fields_eventtime_and_series() {
    let modern = Event {
        event_time: Some(MicroTime(at("2024-01-01T00:00:01.5Z"))),
        series: Some(EventSeries {
            count: 7,
            last_observed_time: MicroTime(at("2024-01-01T00:05:00Z")),
        }),
        // Ignored when the modern fields are set.
        deprecated_first_timestamp: Some(Time(at("2020-01-01T00:00:00Z"))),
        deprecated_last_timestamp: Some(Time(at("2020-01-01T00:00:00Z"))),
        deprecated_count: Some(1),
        ..event("c.1")
    };
    assert_eq!(
        cluster_events(&[modern]),
        vec![ClusterEvent {
            id: "c.1".into(),
            // from_ray_cluster prefixes the cluster name.
            name: "c.1".into(),
            created_at: ts("2024-01-01T00:00:00Z"),
            first_timestamp: ts("2024-01-01T00:00:01Z"),
            last_timestamp: ts("2024-01-01T00:05:00Z"),
            reason: "Created".into(),
            message: "Created head pod".into(),
            r#type: "Normal".into(),
            count: 7,
        }]
    );
}

#[test]
fn legacy_core_events_use_the_deprecated_fields() {
    let legacy = Event {
        deprecated_first_timestamp: Some(Time(at("2024-01-01T00:00:01Z"))),
        deprecated_last_timestamp: Some(Time(at("2024-01-01T00:00:09Z"))),
        deprecated_count: Some(2),
        ..event("legacy")
    };
    let converted = &cluster_events(&[legacy])[0];
    assert_eq!(converted.first_timestamp, ts("2024-01-01T00:00:01Z"));
    assert_eq!(converted.last_timestamp, ts("2024-01-01T00:00:09Z"));
    assert_eq!(converted.count, 2);
}

#[test]
fn single_events_and_zero_times() {
    // eventTime only: first and last are the event time, count 0.
    let single = Event {
        event_time: Some(MicroTime(at("2024-01-01T00:00:03Z"))),
        ..event("single")
    };
    let converted = &cluster_events(&[single])[0];
    assert_eq!(converted.first_timestamp, ts("2024-01-01T00:00:03Z"));
    assert_eq!(converted.last_timestamp, ts("2024-01-01T00:00:03Z"));
    assert_eq!(converted.count, 0);

    // Nothing set anywhere: Go's zero time, 0001-01-01T00:00:00Z.
    let bare = Event::default();
    let converted = &cluster_events(&[bare])[0];
    assert_eq!(converted.created_at, zero());
    assert_eq!(converted.first_timestamp, zero());
    assert_eq!(converted.last_timestamp, zero());
    assert_eq!(converted.id, "");

    // A zero event time counts as unset, like Go's IsZero.
    let zero_event_time = Event {
        event_time: Some(MicroTime(at("0001-01-01T00:00:00Z"))),
        deprecated_first_timestamp: Some(Time(at("2024-01-01T00:00:02Z"))),
        ..event("z")
    };
    let converted = &cluster_events(&[zero_event_time])[0];
    assert_eq!(converted.first_timestamp, ts("2024-01-01T00:00:02Z"));
    assert_eq!(converted.last_timestamp, zero());
}

#[test]
fn order_is_kept() {
    let ids: Vec<String> = cluster_events(&[event("b"), event("a"), event("c")])
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["b", "a", "c"]);
}

#[test]
fn service_events_are_named_after_the_service() {
    let legacy = Event {
        deprecated_count: Some(2),
        ..event("test")
    };
    assert_eq!(
        service_events("svc0", &[legacy]),
        vec![RayServiceEvent {
            id: "test".into(),
            name: "svc0-test".into(),
            created_at: ts("2024-01-01T00:00:00Z"),
            first_timestamp: zero(),
            last_timestamp: zero(),
            reason: "Created".into(),
            message: "Created head pod".into(),
            r#type: "Normal".into(),
            count: 2,
        }]
    );
}
