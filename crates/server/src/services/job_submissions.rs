//! RayJobSubmissionService: jobs submitted to the Ray dashboard of a ready cluster.
//!
//! Every RPC first reads the cluster exactly like GetCluster (same checks, codes and texts),
//! requires its state to be `ready`, then calls the cluster's dashboard ([`crate::dashboard`]).

use pbjson_types::Empty;

use kuberay_api::proto::{
    DeleteRayJobSubmissionRequest, GetJobDetailsRequest, GetJobLogReply, GetJobLogRequest,
    JobSubmissionInfo, ListJobDetailsRequest, ListJobSubmissionInfo, StopRayJobSubmissionRequest,
    SubmitRayJobReply, SubmitRayJobRequest,
};
use tonic::Code;

use super::Clusters;
use crate::dashboard::{Dashboard, Dashboards};
use crate::error::ApiError;
use kuberay_core::{CoreError, job_submission, names};

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
        let body = job_submission::dashboard_request(&submission).map_err(invalid)?;
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
        Ok(job_submission::to_api(info))
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
            submissions: jobs.into_iter().map(job_submission::to_api).collect(),
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

/// A submission the client got wrong: INVALID_ARGUMENT with the Go server's text as it is (the
/// Go server answers it with UNKNOWN).
fn invalid(error: CoreError) -> ApiError {
    match error {
        CoreError::InvalidInput(text) | CoreError::InvalidData(text) => {
            ApiError::with_code(Code::InvalidArgument, text)
        }
    }
}

/// A submission id checked to stay one segment of the dashboard URL.
fn submission_id(id: &str) -> Result<&str, ApiError> {
    names::check_submission_id(id).map_err(|e| ApiError::invalid_input(e.to_string()))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuberay_api::proto::RayJobSubmission;
    use std::collections::BTreeMap;

    #[test]
    fn request_errors_keep_the_go_text_unlayered() {
        let submission = RayJobSubmission {
            runtime_env: "- a\n".into(),
            ..Default::default()
        };
        let error = job_submission::dashboard_request(&submission)
            .map_err(invalid)
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(
            error.message(),
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        let submission = RayJobSubmission {
            entrypoint_resources: BTreeMap::from([("custom".into(), "lots".into())]),
            ..Default::default()
        };
        let error = job_submission::dashboard_request(&submission)
            .map_err(invalid)
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(
            error.message(),
            "strconv.ParseFloat: parsing \"lots\": invalid syntax"
        );
    }

    #[test]
    fn submission_id_errors_are_layered_invalid_input() {
        assert_eq!(submission_id("raysubmit_1"), Ok("raysubmit_1"));
        let error = submission_id("").unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(
            error.message(),
            "Submission id is empty. Please specify a valid value.: Invalid input error: Submission id is empty. Please specify a valid value."
        );
    }
}
