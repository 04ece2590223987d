//! Domain logic of the KubeRay API server, free of I/O.
//!
//! Everything here is a pure function over API messages (`kuberay_api::proto`) and Kubernetes
//! objects (`k8s_openapi`): request validation and the conversions between the two. The service
//! layer calls these functions and does the Kubernetes I/O around them.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod compute_template;
pub mod crd;
pub mod error;
pub mod events;
pub mod job;
pub mod job_submission;
pub mod labels;
pub mod names;
mod omit;
pub mod packed;
pub mod quantity;
pub mod scope;
pub mod service;
pub mod template_injection;

pub use error::CoreError;
