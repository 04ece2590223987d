//! Protobuf messages, gRPC services, JSON mapping, HTTP routes and Swagger documents of the
//! KubeRay APIServer V1 API (protobuf package `proto`).
//!
//! Everything is generated at build time from the workspace's `proto/` folder:
//!
//! * [`proto`]: the messages with their proto3-JSON `serde` implementations (lowerCamelCase
//!   output, enums as numbers, 64-bit integers as strings, zero values omitted, unknown input
//!   fields ignored) and the tonic server/client modules, e.g.
//!   [`proto::compute_template_service_server::ComputeTemplateServiceServer`].
//! * [`FILE_DESCRIPTOR_SET`]: the encoded descriptors (with imports) for gRPC reflection.
//! * [`routes::ROUTES`]: the `google.api.http` bindings of every RPC.
//! * [`swagger::FILES`]: Swagger 2.0 documents, one per proto file plus a merged one.
#![forbid(unsafe_code)]

pub mod codec;

/// Messages, JSON (serde) implementations and gRPC services of package `proto`.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    missing_docs,
    rustdoc::all,
    unreachable_pub,
    unused_qualifications,
    unused_results
)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/proto.rs"));
    include!(concat!(env!("OUT_DIR"), "/proto.serde.rs"));
}

/// Messages of package `google.api` (HTTP rules, field behaviours) used by the annotations.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    missing_docs,
    rustdoc::all,
    unreachable_pub,
    unused_qualifications,
    unused_results
)]
pub mod google_api {
    include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
}

/// Encoded `google.protobuf.FileDescriptorSet` of all API protos and their imports, including
/// source comments and custom options. Suitable for
/// `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kuberay_descriptor_set.bin"));

pub mod routes;
pub mod swagger;
mod timestamp;

pub use timestamp::Timestamp;
