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
