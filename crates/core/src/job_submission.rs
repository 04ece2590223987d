//! Job submissions to a Ray dashboard: the submit request built from a `RayJobSubmission`, the
//! dashboard's job description and its API form, and Go's `%v` formatting of dashboard values.
//!
//! Texts and number forms are the Go server's, so clients see the same requests and answers.

use std::collections::BTreeMap;

use kuberay_api::proto::{JobSubmissionInfo, RayJobSubmission};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::CoreError;

/// The dashboard's submit request, with the fields the Go server sends, in its order: the
/// runtime environment (YAML → JSON object), metadata and resources when not empty, the
/// entrypoint always, the submission id when given, CPUs and GPUs when positive.
pub fn dashboard_request(submission: &RayJobSubmission) -> Result<Value, CoreError> {
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
pub fn runtime_env_object(yaml: &str) -> Result<Option<Map<String, Value>>, CoreError> {
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
fn parse_float32(text: &str) -> Result<f32, CoreError> {
    let error = |why: &str| invalid(format!("strconv.ParseFloat: parsing {text:?}: {why}"));
    let parsed: f64 = text.parse().map_err(|_| error("invalid syntax"))?;
    let narrowed = parsed as f32;
    if narrowed.is_infinite() && parsed.is_finite() {
        return Err(error("value out of range"));
    }
    Ok(narrowed)
}

/// A float32 as a JSON number; Go's encoder refuses NaN and infinities the same way.
fn float32(value: f32) -> Result<Value, CoreError> {
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

/// A submission the client got wrong, in the Go server's words.
fn invalid(text: String) -> CoreError {
    CoreError::InvalidInput(text)
}

/// A job as the dashboard describes it (Ray's `JobDetails`); `null` and absent are alike.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobInfo {
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub runtime_env: Option<Map<String, Value>>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub entrypoint: Option<String>,
    #[serde(default)]
    pub job_id: Option<String>,
    #[serde(default)]
    pub submission_id: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub start_time: Option<u64>,
    #[serde(default)]
    pub end_time: Option<u64>,
}

impl JobInfo {
    /// Whether the job has ended (stopped, succeeded or failed).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some("STOPPED" | "SUCCEEDED" | "FAILED")
        )
    }

    /// Go's `%v` of the Go server's `*RayJobInfo` (the error type pointer shown as its text).
    pub fn go_text(&self) -> String {
        let metadata = Value::Object(
            self.metadata
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        );
        let runtime_env = Value::Object(self.runtime_env.clone().unwrap_or_default());
        format!(
            "&{{{} {} {} {} {} {} {} {} {} {}}}",
            self.error_type.as_deref().unwrap_or("<nil>"),
            go_format(&metadata),
            go_format(&runtime_env),
            self.status.as_deref().unwrap_or_default(),
            self.entrypoint.as_deref().unwrap_or_default(),
            self.job_id.as_deref().unwrap_or_default(),
            self.submission_id.as_deref().unwrap_or_default(),
            self.message.as_deref().unwrap_or_default(),
            self.start_time.unwrap_or_default(),
            self.end_time.unwrap_or_default(),
        )
    }
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

/// Go's `fmt` `%v` of a JSON value decoded the way the Go server decodes dashboard answers
/// (apimachinery's JSON: integers that fit int64 stay integers, other numbers are float64):
/// strings as they are, `true`, `<nil>`, lists `[a b]`, objects `map[k:v]` with sorted keys.
pub fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => go_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

/// Go's `%v` of a float64: the shortest digits, in `%e` form when the exponent is below -4 or
/// at least 6 (`1e+06`, `1.5e-05`), else plain (`0.5`, `123456`).
pub fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.5e-5`, `-2e0`.
    let formatted = format!("{value:e}");
    let (mantissa, exponent) = formatted
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exponent: i32 = exponent.parse().expect("a decimal exponent");
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let mut text = String::from(sign);
        text.push_str(&digits[..1]);
        if digits.len() > 1 {
            text.push('.');
            text.push_str(&digits[1..]);
        }
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        text.push_str(&format!("e{exponent_sign}{:02}", exponent.abs()));
        return text;
    }
    let point = exponent + 1; // digits before the decimal point
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{text}")
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

    /// The text of an input error; any other variant fails the test.
    fn input_error<T: std::fmt::Debug>(result: Result<T, CoreError>) -> String {
        match result.unwrap_err() {
            CoreError::InvalidInput(text) => text,
            other => panic!("not an input error: {other:?}"),
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
            input_error(runtime_env_object("- a\n- b\n")),
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert_eq!(
            input_error(runtime_env_object("just text")),
            "json: cannot unmarshal string into Go value of type map[string]interface {}"
        );
        let text = input_error(runtime_env_object("a: [1, 2\nb: c: d"));
        assert!(
            text.starts_with("error converting YAML to JSON: "),
            "{text}"
        );
    }

    #[test]
    fn resources_must_be_numbers() {
        let mut s = submission();
        s.entrypoint_resources = BTreeMap::from([("custom".into(), "lots".into())]);
        assert_eq!(
            input_error(dashboard_request(&s)),
            "strconv.ParseFloat: parsing \"lots\": invalid syntax"
        );
        s.entrypoint_resources = BTreeMap::from([("custom".into(), "1e40".into())]);
        assert_eq!(
            input_error(dashboard_request(&s)),
            "strconv.ParseFloat: parsing \"1e40\": value out of range"
        );
        s.entrypoint_resources = BTreeMap::from([("custom".into(), "NaN".into())]);
        assert_eq!(
            input_error(dashboard_request(&s)),
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

    #[test]
    fn job_info_tolerates_nulls_and_prints_like_go() {
        let info: JobInfo = serde_json::from_value(json!({
            "type": "SUBMISSION", "job_id": null, "submission_id": "s1", "driver_info": null,
            "status": "RUNNING", "entrypoint": "sleep 1", "message": null, "error_type": null,
            "start_time": 1700000000000u64, "end_time": null, "metadata": {"k": "v"},
            "runtime_env": {"env_vars": {"A": "1"}}, "driver_agent_http_address": null
        }))
        .unwrap();
        assert_eq!(
            info.go_text(),
            "&{<nil> map[k:v] map[env_vars:map[A:1]] RUNNING sleep 1  s1  1700000000000 0}"
        );
        assert!(!info.is_terminal());
        for status in ["STOPPED", "SUCCEEDED", "FAILED"] {
            let ended = JobInfo {
                status: Some(status.into()),
                ..JobInfo::default()
            };
            assert!(ended.is_terminal(), "{status}");
        }
    }

    #[test]
    fn floats_print_like_go() {
        let cases = [
            (0.5, "0.5"),
            (2.5, "2.5"),
            (1.0, "1"),
            (0.0, "0"),
            (-0.0, "-0"),
            (123456.0, "123456"),
            (1_000_000.0, "1e+06"),
            (15_000_000.0, "1.5e+07"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000015, "1.5e-05"),
            (-2.25, "-2.25"),
            (1e100, "1e+100"),
            (9.223372036854776e18, "9.223372036854776e+18"),
            (0.1, "0.1"),
            (100.5, "100.5"),
        ];
        for (value, expected) in cases {
            assert_eq!(go_float(value), expected, "{value}");
        }
    }

    #[test]
    fn values_print_like_go() {
        assert_eq!(go_format(&json!("/tmp/workdir")), "/tmp/workdir");
        assert_eq!(go_format(&json!(["numpy", "pandas"])), "[numpy pandas]");
        assert_eq!(go_format(&json!(true)), "true");
        assert_eq!(go_format(&json!(null)), "<nil>");
        assert_eq!(go_format(&json!(2)), "2");
        assert_eq!(go_format(&json!(1000000)), "1000000");
        assert_eq!(go_format(&json!(1000000.0)), "1e+06");
        assert_eq!(go_format(&json!(0.5)), "0.5");
        assert_eq!(
            go_format(&json!({"b": [1, 2.5, null], "a": {"y": "v", "x": false}})),
            "map[a:map[x:false y:v] b:[1 2.5 <nil>]]"
        );
        assert_eq!(go_format(&json!({})), "map[]");
        assert_eq!(go_format(&json!([])), "[]");
        // Beyond int64 the Go server decodes a float64.
        assert_eq!(
            go_format(&serde_json::from_str::<Value>("18446744073709551615").unwrap()),
            "1.8446744073709552e+19"
        );
    }
}
