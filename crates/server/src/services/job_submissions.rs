//! RayJobSubmissionService: jobs submitted to the Ray dashboard of a ready cluster.
//!
//! Every RPC first reads the cluster exactly like GetCluster (same checks, codes and texts),
//! requires its state to be `ready`, then calls the cluster's dashboard ([`crate::dashboard`]).

use pbjson_types::Empty;
use std::collections::BTreeMap;

use kuberay_api::proto::{
    DeleteRayJobSubmissionRequest, GetJobDetailsRequest, GetJobLogReply, GetJobLogRequest,
    JobSubmissionInfo, ListJobDetailsRequest, ListJobSubmissionInfo, RayJobSubmission,
    StopRayJobSubmissionRequest, SubmitRayJobReply, SubmitRayJobRequest,
};
use serde_json::{Map, Number, Value};
use tonic::Code;

use super::Clusters;
use crate::dashboard::{Dashboard, Dashboards, JobInfo, go_format};
use crate::error::ApiError;
use kuberay_core::names;

#[derive(Clone)]
pub struct JobSubmissions {
    clusters: Clusters,
    dashboards: Dashboards,
}

impl JobSubmissions {
    pub fn new(clusters: Clusters, dashboards: Dashboards) -> Self {
        Self {
            clusters,
            dashboards,
        }
    }

    pub async fn submit(
        &self,
        request: SubmitRayJobRequest,
    ) -> Result<SubmitRayJobReply, ApiError> {
        // gRPC clients may leave the submission out; it is then an empty one.
        let submission = request.jobsubmission.unwrap_or_default();
        if !submission.submission_id.is_empty() {
            submission_id(&submission.submission_id)?;
        }
        let dashboard = self
            .dashboard(&request.clustername, &request.namespace)
            .await?;
        let body = dashboard_request(&submission)?;
        let submission_id = dashboard
            .submit_job(&body, &submission.submission_id)
            .await?;
        Ok(SubmitRayJobReply { submission_id })
    }

    pub async fn get(&self, request: GetJobDetailsRequest) -> Result<JobSubmissionInfo, ApiError> {
        let id = submission_id(&request.submissionid)?;
        let dashboard = self
            .dashboard(&request.clustername, &request.namespace)
            .await?;
        let info = dashboard.job_info(id).await?;
        Ok(to_api(info))
    }

    pub async fn log(&self, request: GetJobLogRequest) -> Result<GetJobLogReply, ApiError> {
        let id = submission_id(&request.submissionid)?;
        let dashboard = self
            .dashboard(&request.clustername, &request.namespace)
            .await?;
        let log = dashboard.job_logs(id).await?;
        Ok(GetJobLogReply { log })
    }

    pub async fn list(
        &self,
        request: ListJobDetailsRequest,
    ) -> Result<ListJobSubmissionInfo, ApiError> {
        let dashboard = self
            .dashboard(&request.clustername, &request.namespace)
            .await?;
        let jobs = dashboard.list_jobs().await?;
        Ok(ListJobSubmissionInfo {
            submissions: jobs.into_iter().map(to_api).collect(),
        })
    }

    pub async fn stop(&self, request: StopRayJobSubmissionRequest) -> Result<Empty, ApiError> {
        let id = submission_id(&request.submissionid)?;
        let dashboard = self
            .dashboard(&request.clustername, &request.namespace)
            .await?;
        dashboard.stop_job(id).await.map(|()| Empty {})
    }

    pub async fn delete(&self, request: DeleteRayJobSubmissionRequest) -> Result<Empty, ApiError> {
        let id = submission_id(&request.submissionid)?;
        let dashboard = self
            .dashboard(&request.clustername, &request.namespace)
            .await?;
        dashboard.delete_job(id).await.map(|()| Empty {})
    }

    /// The dashboard of a cluster read with the GetCluster checks and found ready.
    async fn dashboard(&self, name: &str, namespace: &str) -> Result<Dashboard, ApiError> {
        let cluster = self.clusters.get_view(name, namespace).await?;
        if !cluster.state().eq_ignore_ascii_case("ready") {
            return Err(ApiError::with_code(
                Code::FailedPrecondition,
                "cluster is not ready",
            ));
        }
        Ok(self.dashboards.of(name, namespace))
    }
}

/// The dashboard's submit request, with the fields the Go server sends, in its order: the
/// runtime environment (YAML → JSON object), metadata and resources when not empty, the
/// entrypoint always, the submission id when given, CPUs and GPUs when positive.
pub fn dashboard_request(submission: &RayJobSubmission) -> Result<Value, ApiError> {
    let mut body = Map::new();
    if !submission.runtime_env.is_empty()
        && let Some(runtime_env) = runtime_env_object(&submission.runtime_env)?
    {
        body.insert("runtime_env".into(), Value::Object(runtime_env));
    }
    if !submission.metadata.is_empty() {
        let metadata = submission
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        body.insert("metadata".into(), Value::Object(metadata));
    }
    if !submission.entrypoint_resources.is_empty() {
        let mut resources = Map::new();
        for (name, text) in &submission.entrypoint_resources {
            resources.insert(name.clone(), float32(parse_float32(text)?)?);
        }
        body.insert("entrypoint_resources".into(), Value::Object(resources));
    }
    body.insert(
        "entrypoint".into(),
        Value::String(submission.entrypoint.clone()),
    );
    if !submission.submission_id.is_empty() {
        body.insert(
            "submission_id".into(),
            Value::String(submission.submission_id.clone()),
        );
    }
    if submission.entrypoint_num_cpus > 0.0 {
        body.insert(
            "entrypoint_num_cpus".into(),
            float32(submission.entrypoint_num_cpus)?,
        );
    }
    if submission.entrypoint_num_gpus > 0.0 {
        body.insert(
            "entrypoint_num_gpus".into(),
            float32(submission.entrypoint_num_gpus)?,
        );
    }
    Ok(Value::Object(body))
}

/// The runtime environment YAML as the JSON object the dashboard takes; `None` for a document
/// that is empty or `null`. Numbers travel as the Go server sends them (float64: `1.0` is `1`).
pub fn runtime_env_object(yaml: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    let value = if yaml.trim().is_empty() {
        Value::Null
    } else {
        serde_saphyr::from_str::<Option<Value>>(yaml)
            .map_err(|e| invalid(format!("error converting YAML to JSON: {e}")))?
            .unwrap_or(Value::Null)
    };
    let kind = match value {
        Value::Null => return Ok(None),
        Value::Object(object) => return Ok(Some(as_go_numbers(object))),
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
    };
    Err(invalid(format!(
        "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    )))
}

/// Every number as a float64 would be written by Go's encoder: integral values as integers.
fn as_go_numbers(object: Map<String, Value>) -> Map<String, Value> {
    fn convert(value: Value) -> Value {
        match value {
            Value::Number(number) => {
                let float = number.as_f64().unwrap_or_default();
                if float.fract() == 0.0 && float.abs() < 9.0e18 {
                    Value::Number(Number::from(float as i64))
                } else {
                    Number::from_f64(float).map_or(Value::Null, Value::Number)
                }
            }
            Value::Array(items) => Value::Array(items.into_iter().map(convert).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, convert(v))).collect())
            }
            other => other,
        }
    }
    object.into_iter().map(|(k, v)| (k, convert(v))).collect()
}

/// Go's `strconv.ParseFloat(text, 32)`, with its error texts.
fn parse_float32(text: &str) -> Result<f32, ApiError> {
    let error = |why: &str| invalid(format!("strconv.ParseFloat: parsing {text:?}: {why}"));
    let parsed: f64 = text.parse().map_err(|_| error("invalid syntax"))?;
    let narrowed = parsed as f32;
    if narrowed.is_infinite() && parsed.is_finite() {
        return Err(error("value out of range"));
    }
    Ok(narrowed)
}

/// A float32 as a JSON number; Go's encoder refuses NaN and infinities the same way.
fn float32(value: f32) -> Result<Value, ApiError> {
    if value.is_nan() {
        return Err(invalid("json: unsupported value: NaN".to_string()));
    }
    if value.is_infinite() {
        let sign = if value > 0.0 { "+" } else { "-" };
        return Err(invalid(format!("json: unsupported value: {sign}Inf")));
    }
    // Through the shortest decimal text of the float32, so 0.1 travels as 0.1.
    let number: Number = value
        .to_string()
        .parse()
        .expect("a finite float prints as a JSON number");
    Ok(Value::Number(number))
}

/// The API form of a dashboard job: the runtime environment's values in Go's `%v` text.
pub fn to_api(info: JobInfo) -> JobSubmissionInfo {
    let runtime_env: BTreeMap<String, String> = info
        .runtime_env
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, go_format(&value)))
        .collect();
    JobSubmissionInfo {
        entrypoint: info.entrypoint.unwrap_or_default(),
        job_id: info.job_id.unwrap_or_default(),
        submission_id: info.submission_id.unwrap_or_default(),
        status: info.status.unwrap_or_default(),
        message: info.message.unwrap_or_default(),
        error_type: info.error_type.unwrap_or_default(),
        start_time: info.start_time.unwrap_or_default(),
        end_time: info.end_time.unwrap_or_default(),
        metadata: info.metadata.unwrap_or_default(),
        runtime_env,
    }
}

/// A submission the client got wrong: INVALID_ARGUMENT with the Go server's text (which the Go
/// server answers with UNKNOWN).
fn invalid(text: String) -> ApiError {
    ApiError::with_code(Code::InvalidArgument, text)
}

/// A submission id checked to stay one segment of the dashboard URL.
fn submission_id(id: &str) -> Result<&str, ApiError> {
    names::check_submission_id(id).map_err(|e| ApiError::invalid_input(e.to_string()))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn submission() -> RayJobSubmission {
        RayJobSubmission {
            entrypoint: "python /home/ray/samples/sample_code.py".into(),
            ..Default::default()
        }
    }

    #[test]
    fn minimal_request_has_the_entrypoint_only() {
        assert_eq!(
            dashboard_request(&RayJobSubmission::default()).unwrap(),
            json!({"entrypoint": ""})
        );
        assert_eq!(
            serde_json::to_string(&dashboard_request(&submission()).unwrap()).unwrap(),
            r#"{"entrypoint":"python /home/ray/samples/sample_code.py"}"#
        );
    }

    #[test]
    fn full_request_matches_the_go_server() {
        let mut s = submission();
        s.submission_id = "sid".into();
        s.metadata = BTreeMap::from([("job_submission_id".into(), "123".into())]);
        s.runtime_env = "pip:\n  - requests==2.26.0\n  - pendulum==2.1.2\nenv_vars:\n  counter_name: test_counter\n  N: 1.0\n  X: 0.5\n".into();
        s.entrypoint_num_cpus = 0.1;
        s.entrypoint_num_gpus = 2.0;
        s.entrypoint_resources = BTreeMap::from([
            ("custom".into(), "1.5".into()),
            ("other".into(), "3".into()),
        ]);
        let body = dashboard_request(&s).unwrap();
        assert_eq!(
            body,
            json!({
                "runtime_env": {
                    "pip": ["requests==2.26.0", "pendulum==2.1.2"],
                    "env_vars": {"counter_name": "test_counter", "N": 1, "X": 0.5}
                },
                "metadata": {"job_submission_id": "123"},
                "entrypoint_resources": {"custom": 1.5, "other": 3},
                "entrypoint": "python /home/ray/samples/sample_code.py",
                "submission_id": "sid",
                "entrypoint_num_cpus": 0.1,
                "entrypoint_num_gpus": 2
            })
        );
        // Integral numbers travel without a fraction, as Go's encoder writes them.
        let text = serde_json::to_string(&body).unwrap();
        assert!(text.contains(r#""N":1,"#), "{text}");
        assert!(text.contains(r#""entrypoint_num_gpus":2"#), "{text}");
        assert!(text.contains(r#""entrypoint_num_cpus":0.1"#), "{text}");
    }

    #[test]
    fn runtime_env_must_be_a_mapping() {
        assert_eq!(runtime_env_object("").unwrap(), None);
        assert_eq!(runtime_env_object("  \n").unwrap(), None);
        assert_eq!(runtime_env_object("# nothing\n").unwrap(), None);
        assert_eq!(runtime_env_object("null").unwrap(), None);
        assert_eq!(
            runtime_env_object("- a\n- b\n").unwrap_err().message(),
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert_eq!(
            runtime_env_object("just text").unwrap_err().message(),
            "json: cannot unmarshal string into Go value of type map[string]interface {}"
        );
        let error = runtime_env_object("a: [1, 2\nb: c: d").unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(
            error
                .message()
                .starts_with("error converting YAML to JSON: "),
            "{}",
            error.message()
        );
    }

    #[test]
    fn resources_must_be_numbers() {
        let mut s = submission();
        s.entrypoint_resources = BTreeMap::from([("custom".into(), "lots".into())]);
        let error = dashboard_request(&s).unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(
            error.message(),
            "strconv.ParseFloat: parsing \"lots\": invalid syntax"
        );
        s.entrypoint_resources = BTreeMap::from([("custom".into(), "1e40".into())]);
        assert_eq!(
            dashboard_request(&s).unwrap_err().message(),
            "strconv.ParseFloat: parsing \"1e40\": value out of range"
        );
        s.entrypoint_resources = BTreeMap::from([("custom".into(), "NaN".into())]);
        assert_eq!(
            dashboard_request(&s).unwrap_err().message(),
            "json: unsupported value: NaN"
        );
    }

    #[test]
    fn job_info_converts_like_the_go_server() {
        let info: JobInfo = serde_json::from_value(json!({
            "type": "SUBMISSION", "job_id": "02000000", "submission_id": "raysubmit_1",
            "status": "RUNNING", "entrypoint": "python x.py", "message": "Job is running",
            "error_type": "SomeError", "start_time": 1700000000123u64, "end_time": 0,
            "metadata": {}, "runtime_env": {"working_dir": "/tmp/workdir", "pip": ["numpy", "pandas"]}
        }))
        .unwrap();
        let api = to_api(info);
        assert_eq!(api.error_type, "SomeError");
        assert_eq!(api.status, "RUNNING");
        assert_eq!(api.start_time, 1700000000123);
        assert!(api.metadata.is_empty());
        assert_eq!(
            api.runtime_env,
            BTreeMap::from([
                ("pip".to_string(), "[numpy pandas]".to_string()),
                ("working_dir".to_string(), "/tmp/workdir".to_string()),
            ])
        );
        let out = serde_json::to_value(&api).unwrap();
        assert_eq!(out["startTime"], "1700000000123");
        assert!(out.get("endTime").is_none());
        assert!(out.get("metadata").is_none());
    }
}
