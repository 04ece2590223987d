//! The generated Swagger 2.0 documents.

use kuberay_api::swagger::{FILES, get};
use serde_json::{Value, json};

fn doc(name: &str) -> Value {
    serde_json::from_str(get(name).unwrap_or_else(|| panic!("{name} missing"))).expect("valid JSON")
}

#[test]
fn one_document_per_proto_file_plus_merged() {
    let names: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "cluster.swagger.json",
            "config.swagger.json",
            "error.swagger.json",
            "job.swagger.json",
            "job_submission.swagger.json",
            "serve.swagger.json",
            "kuberay_api.swagger.json",
        ]
    );
    for (name, text) in FILES {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["swagger"], "2.0", "{name}");
        assert_eq!(v["consumes"], json!(["application/json"]), "{name}");
        assert_eq!(v["produces"], json!(["application/json"]), "{name}");
        assert!(v["definitions"]["googlerpcStatus"].is_object(), "{name}");
        assert!(v["definitions"]["protobufAny"].is_object(), "{name}");
        // Every $ref resolves.
        check_refs(&v, &v, name);
    }
    assert_eq!(
        doc("cluster.swagger.json")["info"]["title"],
        "cluster.proto"
    );
}

fn check_refs(root: &Value, v: &Value, name: &str) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let key = r.strip_prefix("#/definitions/").expect("local ref");
                assert!(
                    root["definitions"].get(key).is_some(),
                    "{name}: dangling {r}"
                );
            }
            for child in map.values() {
                check_refs(root, child, name);
            }
        }
        Value::Array(items) => {
            for child in items {
                check_refs(root, child, name);
            }
        }
        _ => {}
    }
}

#[test]
fn paths_and_operations() {
    let config = doc("config.swagger.json");
    let create = &config["paths"]["/apis/v1/namespaces/{namespace}/compute_templates"]["post"];
    assert_eq!(
        create["operationId"],
        "ComputeTemplateService_CreateComputeTemplate"
    );
    assert_eq!(create["tags"], json!(["ComputeTemplateService"]));
    let params = create["parameters"].as_array().unwrap();
    assert_eq!(
        params[0],
        json!({"name": "namespace", "description": "The namespace to create the template in.", "in": "path", "required": true, "type": "string"})
    );
    assert_eq!(params[1]["in"], "body");
    assert_eq!(params[1]["required"], true);
    assert_eq!(
        params[1]["schema"],
        json!({"$ref": "#/definitions/protoComputeTemplate"})
    );
    assert_eq!(
        create["responses"]["200"]["schema"],
        json!({"$ref": "#/definitions/protoComputeTemplate"})
    );
    assert_eq!(
        create["responses"]["default"]["schema"],
        json!({"$ref": "#/definitions/googlerpcStatus"})
    );
    let delete =
        &config["paths"]["/apis/v1/namespaces/{namespace}/compute_templates/{name}"]["delete"];
    assert_eq!(
        delete["responses"]["200"]["schema"],
        json!({"type": "object", "properties": {}})
    );

    // ImageTemplateService is not served and not documented.
    let text = get("config.swagger.json").unwrap();
    assert!(!text.contains("image_templates"));
    assert!(!text.contains("ImageTemplate"));
    assert_eq!(config["tags"], json!([{"name": "ComputeTemplateService"}]));

    let cluster = doc("cluster.swagger.json");
    let list = &cluster["paths"]["/apis/v1/namespaces/{namespace}/clusters"]["get"];
    let params = list["parameters"].as_array().unwrap();
    let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["namespace", "continue", "limit"]);
    assert_eq!(params[1]["in"], "query");
    assert_eq!(params[2]["type"], "string");
    assert_eq!(params[2]["format"], "int64");

    let serve = doc("serve.swagger.json");
    let list = &serve["paths"]["/apis/v1/services"]["get"];
    let params = list["parameters"].as_array().unwrap();
    assert_eq!(params[0]["name"], "pageToken");
    assert_eq!(params[1]["name"], "pageSize");
    assert_eq!(params[1]["type"], "integer");
    assert_eq!(params[1]["format"], "int32");
    let update = &serve["paths"]["/apis/v1/namespaces/{namespace}/services/{name}"]["put"];
    assert_eq!(update["operationId"], "RayServeService_UpdateRayService");

    let js = doc("job_submission.swagger.json");
    let stop = &js["paths"]["/apis/v1/namespaces/{namespace}/jobsubmissions/{clustername}/{submissionid}"]
        ["post"];
    assert_eq!(stop["operationId"], "RayJobSubmissionService_StopRayJob");
    let params = stop["parameters"].as_array().unwrap();
    assert!(params.iter().all(|p| p["in"] == "path"));
    assert_eq!(params.len(), 3);

    let error = doc("error.swagger.json");
    assert_eq!(error["paths"], json!({}));
}

#[test]
fn definitions() {
    let cluster = doc("cluster.swagger.json");
    let defs = &cluster["definitions"];
    assert_eq!(
        defs["ClusterEnvironment"],
        json!({"type": "string", "enum": ["DEV", "TESTING", "STAGING", "PRODUCTION"], "default": "DEV", "description": "The purpose of a cluster."})
    );
    assert_eq!(defs["VolumeAccessMode"]["default"], "RWO");
    assert!(defs["EnvValueFromSource"].is_object());
    let c = &defs["protoCluster"];
    assert_eq!(c["type"], "object");
    assert_eq!(
        c["properties"]["environment"]["$ref"],
        "#/definitions/ClusterEnvironment"
    );
    assert_eq!(c["properties"]["createdAt"]["type"], "string");
    assert_eq!(c["properties"]["createdAt"]["format"], "date-time");
    assert_eq!(c["properties"]["createdAt"]["readOnly"], true);
    assert_eq!(c["properties"]["annotations"]["type"], "object");
    assert_eq!(
        c["properties"]["annotations"]["additionalProperties"],
        json!({"type": "string"})
    );
    assert_eq!(
        c["required"],
        json!(["name", "namespace", "user", "clusterSpec"])
    );
    // Properties are written in declaration order (checked on the text: serde_json's Map is
    // sorted in this test build).
    let text = get("cluster.swagger.json").unwrap();
    let def = &text[text.find("\"protoCluster\": {").unwrap()..];
    let pos = |k: &str| def.find(&format!("\"{k}\": {{")).unwrap();
    assert!(pos("name") < pos("namespace"));
    assert!(pos("user") < pos("version"));
    assert!(pos("clusterSpec") < pos("annotations"));
    assert!(pos("events") < pos("serviceEndpoint"));
    let env = &defs["protoEnvironmentVariables"]["properties"]["valuesFrom"];
    assert_eq!(
        env["additionalProperties"],
        json!({"$ref": "#/definitions/protoEnvValueFrom"})
    );
    let sc = &defs["protoSecurityContext"]["properties"]["privileged"];
    assert_eq!(sc["type"], "boolean");

    let config = doc("config.swagger.json");
    let ct = &config["definitions"]["protoComputeTemplate"]["properties"];
    assert_eq!(ct["cpu"]["type"], "integer");
    assert_eq!(
        ct["extendedResources"]["additionalProperties"]["type"],
        "integer"
    );

    let js = doc("job_submission.swagger.json");
    let info = &js["definitions"]["protoJobSubmissionInfo"]["properties"];
    assert_eq!(
        info["startTime"],
        json!({"type": "string", "format": "uint64", "description": "Start time in milliseconds since the epoch."})
    );
    let sub = &js["definitions"]["protoRayJobSubmission"]["properties"];
    assert_eq!(sub["entrypointNumCpus"]["type"], "number");
    assert_eq!(sub["entrypointNumCpus"]["format"], "float");

    let serve = doc("serve.swagger.json");
    let svc = &serve["definitions"]["protoRayService"]["properties"];
    assert!(svc.get("serveConfigV2").is_some());
    // Only reachable messages are defined.
    assert!(
        serve["definitions"]
            .get("protoWorkerGroupUpdateSpec")
            .is_none()
    );
    assert!(serve["definitions"].get("protoClusterSpec").is_some());
}

#[test]
fn merged_document_contains_everything_served() {
    let merged = doc("kuberay_api.swagger.json");
    let paths = merged["paths"].as_object().unwrap();
    let ops: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(ops, 27);
    let tags: Vec<&str> = merged["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "ClusterService",
            "ComputeTemplateService",
            "RayJobService",
            "RayJobSubmissionService",
            "RayServeService"
        ]
    );
    for name in [
        "protoCluster",
        "protoComputeTemplate",
        "protoRayJob",
        "protoRayService",
        "protoJobSubmissionInfo",
    ] {
        assert!(merged["definitions"].get(name).is_some(), "{name}");
    }
    // operationIds are unique even though two RPCs are called DeleteRayJob.
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|p| p.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before);
}
