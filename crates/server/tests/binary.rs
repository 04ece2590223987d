//! The built binary, started the way the Go server's Helm chart starts it.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn go_style_flags_serve_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (rpc, http) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_kuberay-apiserver"))
        .args([
            "-rpcPortFlag",
            &format!("127.0.0.1:{rpc}"),
            &format!("-httpPortFlag=127.0.0.1:{http}"),
            "--grpc_timeout=30s",
            "--enable-api-server-v2=false",
            "-collectMetricsFlag=true",
            "--backend",
            "embedded",
            "-logFilePath",
        ])
        .arg(dir.path().join("server.log"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let healthz = format!("http://127.0.0.1:{http}/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    runtime.block_on(async {
        loop {
            if let Ok(response) = client.get(&healthz).send().await {
                assert_eq!(response.status(), 200);
                break;
            }
            assert!(Instant::now() < deadline, "the server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let response = client
            .post(format!(
                "http://127.0.0.1:{http}/apis/v1/namespaces/default/compute_templates"
            ))
            .body(r#"{"name":"t","namespace":"default","cpu":1,"memory":1}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    });

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("backend: embedded"), "log file: {log}");
    assert!(log.contains("stopped"), "log file: {log}");
}

#[test]
fn json_logs_carry_each_request_and_the_level_changes_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let (rpc, http) = (free_port(), free_port());
    let log_file = dir.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kuberay-apiserver"))
        .args([
            &format!("--rpcPortFlag=127.0.0.1:{rpc}"),
            &format!("--httpPortFlag=127.0.0.1:{http}"),
            "--backend=embedded",
            "--log-format=json",
        ])
        .arg("--logFilePath")
        .arg(&log_file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http}");
    let level = format!("{base}/debug/log-level");
    let template = format!("{base}/apis/v1/namespaces/default/compute_templates/missing");
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(Instant::now() < deadline, "the server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let current = client.get(&level).send().await.unwrap();
        assert_eq!(current.status(), 200);
        assert_eq!(current.text().await.unwrap().trim(), "info");
        // A call that fails logs a warning inside its request's and call's spans.
        let missing = client.get(&template).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        // Debug from now on: every request's answer is logged.
        let set = client.put(&level).body("debug").send().await.unwrap();
        assert_eq!(set.status(), 200);
        assert_eq!(set.text().await.unwrap().trim(), "debug");
        let bad = client.put(&level).body("info,[").send().await.unwrap();
        assert_eq!(bad.status(), 400);
        let current = client.get(&level).send().await.unwrap();
        assert_eq!(current.text().await.unwrap().trim(), "debug");
        client.get(format!("{base}/healthz")).send().await.unwrap();
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log_file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    let warning = lines
        .iter()
        .find(|l| {
            l["level"] == "WARN"
                && l["fields"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("GetComputeTemplate")
        })
        .expect("the failed call's warning");
    let call = &warning["span"];
    assert_eq!(call["name"], "call", "{warning}");
    assert_eq!(
        call["rpc"],
        "/proto.ComputeTemplateService/GetComputeTemplate"
    );
    assert_eq!(call["namespace"], "default");
    assert_eq!(call["object"], "missing");
    assert_eq!(call["code"], "NotFound");
    let spans = warning["spans"].as_array().unwrap();
    assert!(
        spans.iter().any(|s| s["name"] == "request"
            && s["path"] == "/apis/v1/namespaces/default/compute_templates/missing"
            && s["method"] == "GET"
            && s["port"] == "HTTP"),
        "{warning}"
    );
    let answered = lines
        .iter()
        .find(|l| l["fields"]["message"] == "answered" && l["span"]["path"] == "/healthz")
        .expect("with debug on, the answer to /healthz is logged");
    assert_eq!(answered["span"]["status"], 200, "{answered}");
    assert!(
        answered["fields"]["elapsed_ms"].as_f64().is_some(),
        "{answered}"
    );
    assert!(
        !lines.iter().any(|l| l["fields"]["message"] == "answered"
            && l["span"]["path"] == "/apis/v1/namespaces/default/compute_templates/missing"),
        "answers are not logged at info"
    );
}
