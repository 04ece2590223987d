//! A real Ray head for the job-submission tests.
//!
//! [`ensure_installed`] creates (once) a virtualenv with `ray[default,serve]` from PyPI in a cache
//! directory outside the repository and reuses it afterwards: `$KUBERAY_TEST_RAY_CACHE`, else
//! `$XDG_CACHE_HOME/kuberay-apiserver-ray`, else `~/.cache/kuberay-apiserver-ray`. The Python
//! used to create it is `$KUBERAY_TEST_PYTHON`, else `python3`. pip's output goes to `pip.log`
//! there.
//!
//! [`RayHead::start`] runs `ray start --head --block` in a process group of its own, on loopback,
//! with free ports, a short temporary directory and token authentication, and waits until the
//! dashboard accepts jobs. Dropping the head stops exactly that process group and the processes
//! it spawned (workers and job entrypoints run in groups of their own), even when a test panics.
#![allow(dead_code)]

pub mod fixtures;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kuberay_local_ray::process::{Proc, group_and_descendants, processes, signal};

/// The Ray release the tests run against.
pub const RAY_VERSION: &str = "2.60.0";

/// Prefix of the temporary directories of our heads, followed by the test process id.
const TEMP_PREFIX: &str = "kuberay-ray-";

/// The cache directory holding the virtualenv.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBERAY_TEST_RAY_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("kuberay-apiserver-ray");
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/kuberay-apiserver-ray")
}

/// Whether `venv` holds the pinned Ray release.
fn has_ray(venv: &Path) -> bool {
    venv.join("bin/ray").exists() && has_package(venv, &format!("ray-{RAY_VERSION}.dist-info"))
}

/// Whether Ray Serve's dependencies are there too (`ray[serve]`).
fn has_serve(venv: &Path) -> bool {
    has_package(venv, "fastapi") && has_package(venv, "uvicorn")
}

fn has_package(venv: &Path, name: &str) -> bool {
    let Ok(lib) = std::fs::read_dir(venv.join("lib")) else {
        return false;
    };
    lib.flatten()
        .any(|entry| entry.path().join("site-packages").join(name).is_dir())
}

fn run_logged(command: &mut Command, log: &Path) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let status = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| format!("running {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({status}); its output is in {}:\n{}",
            log.display(),
            tail(log, 40)
        ))
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A directory that exists while one process installs; removed on drop. A lock older than
/// half an hour is taken for the leftover of a killed run.
struct InstallLock(PathBuf);

impl InstallLock {
    fn take(path: &Path) -> Result<InstallLock, String> {
        loop {
            match std::fs::create_dir(path) {
                Ok(()) => return Ok(InstallLock(path.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(1800))
                        .unwrap_or(false);
                    if stale {
                        let _ = std::fs::remove_dir(path);
                    } else {
                        std::thread::sleep(Duration::from_secs(2));
                    }
                }
                Err(e) => return Err(format!("creating {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The virtualenv with the pinned Ray, created on first use (this takes minutes). With
/// `KUBERAY_TEST_REQUIRE_RAY` set (as CI sets it), failing to install Ray fails the test
/// instead of letting the caller skip it.
pub fn ensure_installed() -> Result<PathBuf, String> {
    let installed = install();
    if let Err(error) = &installed {
        assert!(
            std::env::var_os("KUBERAY_TEST_REQUIRE_RAY").is_none(),
            "Ray could not be installed: {error}"
        );
    }
    installed
}

fn install() -> Result<PathBuf, String> {
    let cache = cache_dir();
    let venv = cache.join("venv");
    if has_ray(&venv) && has_serve(&venv) {
        return Ok(venv);
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("creating {}: {e}", cache.display()))?;
    // One installer at a time (test runs of several checkouts may share the cache).
    let _lock = InstallLock::take(&cache.join("install.lock"))?;
    if has_ray(&venv) && has_serve(&venv) {
        return Ok(venv);
    }
    let log = cache.join("pip.log");
    let python = std::env::var("KUBERAY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "installing ray[default,serve]=={RAY_VERSION} into {} (log: {})",
        venv.display(),
        log.display()
    );
    // A virtualenv with Ray but not Serve's dependencies gets them added; anything else
    // incomplete is made again.
    if !has_ray(&venv) {
        if venv.exists() {
            std::fs::remove_dir_all(&venv)
                .map_err(|e| format!("removing the incomplete {}: {e}", venv.display()))?;
        }
        run_logged(Command::new(&python).arg("-m").arg("venv").arg(&venv), &log)?;
    }
    run_logged(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                &format!("ray[default,serve]=={RAY_VERSION}"),
            ])
            .env("PIP_NO_INPUT", "1"),
        &log,
    )?;
    if has_ray(&venv) && has_serve(&venv) {
        Ok(venv)
    } else {
        Err(format!(
            "pip finished but {} has no ray {RAY_VERSION}",
            venv.display()
        ))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Stops a process group and its descendants: SIGTERM, then SIGKILL for what is left.
fn stop_group(pgid: u32) {
    let mut targets = group_and_descendants(pgid);
    signal(&targets, false);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Processes spawned while stopping are caught too.
        targets.extend(group_and_descendants(pgid));
        targets.retain(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if targets.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(&targets, true);
}

/// Stops heads left by earlier test runs that were killed before they could clean up: process
/// groups whose command lines name one of our temporary directories of a test process that is
/// gone.
fn stop_stale_heads() {
    let mut stale = BTreeSet::new();
    for Proc { pid, pgid, .. } in processes() {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        let Some(at) = cmdline.find(&format!("/{TEMP_PREFIX}")) else {
            continue;
        };
        let owner: String = cmdline[at + 1 + TEMP_PREFIX.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if let Ok(owner) = owner.parse::<u32>()
            && owner != std::process::id()
            && !Path::new(&format!("/proc/{owner}")).exists()
        {
            stale.insert(pgid);
        }
    }
    for pgid in stale {
        eprintln!("stopping a Ray head left by an earlier test run (process group {pgid})");
        stop_group(pgid);
    }
}

/// A running Ray head owned by this test process.
pub struct RayHead {
    pub venv: PathBuf,
    pub dashboard_url: String,
    pub gcs_address: String,
    pub token: String,
    pub temp_dir: PathBuf,
    pgid: u32,
    keep_logs: bool,
}

impl RayHead {
    /// Installs Ray if needed, starts a head and waits until its dashboard accepts jobs.
    /// A head that fails to come up is stopped and started once more (its logs are kept and
    /// named in the error).
    pub async fn start() -> Result<RayHead, String> {
        let venv = tokio::task::spawn_blocking(ensure_installed)
            .await
            .map_err(|e| e.to_string())??;
        stop_stale_heads();
        match Self::start_once(&venv, 1).await {
            Ok(head) => Ok(head),
            Err(first) => {
                eprintln!("the Ray head did not come up, trying once more: {first}");
                Self::start_once(&venv, 2)
                    .await
                    .map_err(|second| format!("{first}\n\nand again:\n{second}"))
            }
        }
    }

    async fn start_once(venv: &Path, attempt: u32) -> Result<RayHead, String> {
        let venv = venv.to_path_buf();
        // Unix socket paths under the temporary directory must stay short.
        let base = std::env::temp_dir();
        let base = if base.as_os_str().len() <= 16 {
            base
        } else {
            PathBuf::from("/tmp")
        };
        let temp_dir = base.join(format!("{TEMP_PREFIX}{}-{attempt}", std::process::id()));
        let _ = std::fs::remove_dir_all(&temp_dir);
        std::fs::create_dir_all(&temp_dir).map_err(|e| e.to_string())?;
        let log = temp_dir.join("ray-start.log");

        let gcs_port = free_port();
        let dashboard_port = free_port();
        let token = {
            use std::hash::{BuildHasher, Hasher};
            let mut value = String::new();
            for _ in 0..2 {
                let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
                hasher.write_u32(std::process::id());
                value.push_str(&format!("{:016x}", hasher.finish()));
            }
            value
        };
        let path = match std::env::var_os("PATH") {
            Some(path) => {
                let mut parts = vec![venv.join("bin")];
                parts.extend(std::env::split_paths(&path));
                std::env::join_paths(parts).map_err(|e| e.to_string())?
            }
            None => venv.join("bin").into_os_string(),
        };
        let resources = r#"{"kuberay_test": 4}"#;
        let mut command = Command::new(venv.join("bin/ray"));
        command
            .args(["start", "--head", "--block", "--disable-usage-stats"])
            .args(["--node-ip-address", "127.0.0.1"])
            .args(["--dashboard-host", "127.0.0.1"])
            .args(["--include-dashboard", "true"])
            .args(["--num-cpus", "1", "--num-gpus", "0"])
            .args(["--resources", resources])
            .arg(format!("--temp-dir={}", temp_dir.display()))
            .arg(format!("--port={gcs_port}"))
            .arg(format!("--dashboard-port={dashboard_port}"));
        for flag in [
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
            "--ray-client-server-port",
            "--node-manager-port",
            "--object-manager-port",
        ] {
            command.arg(format!("{flag}={}", free_port()));
        }
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        command
            .env("PATH", path)
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .env("RAY_AUTH_MODE", "token")
            .env("RAY_AUTH_TOKEN", &token)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {command:?}: {e}"))?;
        let head = RayHead {
            venv,
            dashboard_url: format!("http://127.0.0.1:{dashboard_port}"),
            gcs_address: format!("127.0.0.1:{gcs_port}"),
            token,
            temp_dir,
            pgid: child.id(),
            keep_logs: false,
        };

        let mut head = head;
        match head.wait_until_ready(&mut child, &log).await {
            Ok(()) => Ok(head),
            Err(error) => {
                head.keep_logs = true;
                Err(format!(
                    "{error}\n(Ray's logs are kept in {})",
                    head.temp_dir.display()
                ))
            }
        }
    }

    async fn wait_until_ready(
        &self,
        child: &mut std::process::Child,
        log: &Path,
    ) -> Result<(), String> {
        let head = self;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("ray start exited ({status}):\n{}", tail(log, 60)));
            }
            let answer = client
                .get(format!("{}/api/jobs/", head.dashboard_url))
                .header("x-ray-authorization", format!("Bearer {}", head.token))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the Ray dashboard did not come up within 180 s:\n{}",
                    tail(log, 60)
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        head.warm_up(&client).await
    }

    /// Submits a trivial job directly and waits for it, so the job agent is up before the
    /// tests measure anything against the dashboard timeout.
    async fn warm_up(&self, client: &reqwest::Client) -> Result<(), String> {
        let auth = format!("Bearer {}", self.token);
        let deadline = Instant::now() + Duration::from_secs(150);
        let id = loop {
            let answer = client
                .post(format!("{}/api/jobs/", self.dashboard_url))
                .header("x-ray-authorization", &auth)
                .json(&serde_json::json!({"entrypoint": "true"}))
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let last = match answer {
                Ok(r) if r.status().is_success() => {
                    let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                    break body["job_id"].as_str().unwrap_or_default().to_string();
                }
                Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(format!("the warm-up job could not be submitted: {last}"));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        loop {
            let answer = client
                .get(format!("{}/api/jobs/{id}", self.dashboard_url))
                .header("x-ray-authorization", &auth)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let info: serde_json::Value = match answer {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(e) => serde_json::Value::String(e.to_string()),
            };
            match info["status"].as_str() {
                Some("SUCCEEDED") => return Ok(()),
                Some("FAILED" | "STOPPED") => {
                    return Err(format!(
                        "the warm-up job did not succeed: {info}\n{}",
                        self.job_log(client, &id).await
                    ));
                }
                _ if Instant::now() > deadline => {
                    return Err(format!(
                        "the warm-up job did not finish: {info}\n{}",
                        self.job_log(client, &id).await
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }

    async fn job_log(&self, client: &reqwest::Client, id: &str) -> String {
        let answer = client
            .get(format!("{}/api/jobs/{id}/logs", self.dashboard_url))
            .header("x-ray-authorization", format!("Bearer {}", self.token))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match answer {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        }
    }

    /// Runs a Ray driver (`ray.init` against this head) outside any submission and returns its
    /// job id: a job of type DRIVER, which the dashboard refuses to give logs of.
    pub fn run_driver(&self) -> Result<String, String> {
        let script = "import ray\nray.init(address='auto', log_to_driver=False)\nprint(ray.get_runtime_context().get_job_id())\n";
        let output = Command::new(self.venv.join("bin/python"))
            .args(["-c", script])
            .env("RAY_ADDRESS", &self.gcs_address)
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .env("RAY_AUTH_MODE", "token")
            .env("RAY_AUTH_TOKEN", &self.token)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!(
                "the driver failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .last()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .ok_or_else(|| format!("the driver printed no job id: {stdout}"))
    }

    /// Stops the head's processes (also done on drop).
    pub fn stop(&mut self) {
        if self.pgid == 0 {
            return;
        }
        stop_group(self.pgid);
        self.pgid = 0;
        if self.keep_logs || std::thread::panicking() {
            eprintln!(
                "Ray logs kept in {} for the failed test",
                self.temp_dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.temp_dir);
        }
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        self.stop();
    }
}
