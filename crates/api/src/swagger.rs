//! Swagger 2.0 documents generated from the proto descriptors.
//!
//! One document per proto file (`cluster.swagger.json`, `config.swagger.json`,
//! `error.swagger.json`, `job.swagger.json`, `job_submission.swagger.json`,
//! `serve.swagger.json`) and the merged `kuberay_api.swagger.json`. The unserved
//! `ImageTemplateService` is left out of all of them.

include!(concat!(env!("OUT_DIR"), "/swagger.rs"));

/// Returns the document with the given file name, e.g. `"cluster.swagger.json"`.
pub fn get(name: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
}
