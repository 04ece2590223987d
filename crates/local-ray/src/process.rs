//! One Ray node as a supervised local process: `ray start ... --block` in a process group of its
//! own, restarted with back-off when it exits, stopped with SIGTERM and, after a grace period,
//! SIGKILL.
//!
//! A node's processes are found three ways, so that none is left behind: its process group,
//! the descendants of its processes, and every process whose environment carries the node's
//! marker ([`MARKER_VAR`]): Ray starts workers and job entrypoints in sessions of their own,
//! and a process whose parent died is adopted by init, but all of them inherit the environment.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::plan::NodePorts;

/// Environment variable every process of a node carries: `<root>/<namespace>/<cluster>/<node>`.
pub const MARKER_VAR: &str = "KUBERAY_LOCAL_RAY_NODE";

/// Longest wait between restarts of a node that keeps exiting.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A node that ran this long before exiting is restarted after the shortest wait again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How to start a node.
#[derive(Clone, Debug)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Ray's `--temp-dir` of the node; its `ray start` output goes to `ray-start.log` there.
    pub temp_dir: PathBuf,
    pub marker: String,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// What a node's supervisor reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessState {
    /// The `ray start` process (also the process group id) while it runs.
    pub pid: Option<u32>,
    /// How many times it was started.
    pub starts: u32,
}

/// A node that exited on its own, for the cluster's events.
#[derive(Clone, Debug)]
pub struct Exited {
    pub node: String,
    pub how: String,
    pub restart_in: Duration,
    pub log: PathBuf,
}

/// A supervised node.
pub struct NodeProcess {
    pub name: String,
    pub ports: NodePorts,
    pub marker: String,
    state: watch::Receiver<ProcessState>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl NodeProcess {
    /// Starts the node and its supervisor.
    pub fn spawn(
        name: String,
        ports: NodePorts,
        launch: Launch,
        exits: mpsc::UnboundedSender<Exited>,
    ) -> NodeProcess {
        NodeProcess::supervised(name, ports, launch, None, exits)
    }

    /// Supervises a node that is already running (started by an earlier run of the server,
    /// which ended without stopping it): it is watched until it exits, then started again from
    /// `launch` as any node is.
    pub fn adopt(
        name: String,
        ports: NodePorts,
        launch: Launch,
        running: u32,
        exits: mpsc::UnboundedSender<Exited>,
    ) -> NodeProcess {
        NodeProcess::supervised(name, ports, launch, Some(running), exits)
    }

    fn supervised(
        name: String,
        ports: NodePorts,
        launch: Launch,
        running: Option<u32>,
        exits: mpsc::UnboundedSender<Exited>,
    ) -> NodeProcess {
        let (state_tx, state) = watch::channel(ProcessState::default());
        let stop = CancellationToken::new();
        let marker = launch.marker.clone();
        let task = tokio::spawn(supervise(
            name.clone(),
            launch,
            running,
            state_tx,
            stop.clone(),
            exits,
        ));
        NodeProcess {
            name,
            ports,
            marker,
            state,
            stop,
            task,
        }
    }

    pub fn state(&self) -> ProcessState {
        self.state.borrow().clone()
    }

    /// Stops every process of the node and waits until they are gone.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn supervise(
    name: String,
    launch: Launch,
    mut adopted: Option<u32>,
    state: watch::Sender<ProcessState>,
    stop: CancellationToken,
    exits: mpsc::UnboundedSender<Exited>,
) {
    let mut backoff = Duration::from_secs(1);
    let log = launch.temp_dir.join("ray-start.log");
    loop {
        if let Some(pid) = adopted.take() {
            match watch_adopted(&name, pid, &launch, &state, &stop).await {
                Some(how) => {
                    if report_and_wait(&name, how, &log, &mut backoff, &exits, &stop).await {
                        return;
                    }
                    continue;
                }
                None => return,
            }
        }
        let spawned = spawn_once(&launch, &log);
        let how = match spawned {
            Ok(mut child) => {
                let pid = child.id().unwrap_or_default();
                state.send_modify(|s| {
                    s.pid = Some(pid);
                    s.starts += 1;
                });
                tracing::info!(
                    "local Ray node {name} started (pid {pid}, log {})",
                    log.display()
                );
                let started = Instant::now();
                tokio::select! {
                    status = child.wait() => {
                        // What the node left running goes too, so a restart starts clean.
                        terminate(pid, &launch.marker, launch.grace).await;
                        state.send_modify(|s| s.pid = None);
                        if started.elapsed() > HEALTHY_RUN {
                            backoff = Duration::from_secs(1);
                        }
                        match status {
                            Ok(status) => format!("exited ({status})"),
                            Err(error) => format!("could not be waited for: {error}"),
                        }
                    }
                    _ = stop.cancelled() => {
                        tracing::info!("stopping local Ray node {name} (pid {pid})");
                        let (_, _) = tokio::join!(
                            terminate(pid, &launch.marker, launch.grace),
                            child.wait()
                        );
                        state.send_modify(|s| s.pid = None);
                        tracing::info!("local Ray node {name} stopped");
                        return;
                    }
                }
            }
            Err(error) => error,
        };
        if report_and_wait(&name, how, &log, &mut backoff, &exits, &stop).await {
            return;
        }
    }
}

/// Reports a node that exited and waits out the back-off; true when the node is to stop.
async fn report_and_wait(
    name: &str,
    how: String,
    log: &Path,
    backoff: &mut Duration,
    exits: &mpsc::UnboundedSender<Exited>,
    stop: &CancellationToken,
) -> bool {
    if stop.is_cancelled() {
        return true;
    }
    tracing::warn!(
        "local Ray node {name} {how}; restarting in {backoff:?} (log {})",
        log.display()
    );
    let _ = exits.send(Exited {
        node: name.to_string(),
        how,
        restart_in: *backoff,
        log: log.to_path_buf(),
    });
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = stop.cancelled() => return true,
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    false
}

/// Watches a node this process did not start (so cannot wait for) until it exits (`Some`, how)
/// or the node is stopped (`None`, after stopping it).
async fn watch_adopted(
    name: &str,
    pid: u32,
    launch: &Launch,
    state: &watch::Sender<ProcessState>,
    stop: &CancellationToken,
) -> Option<String> {
    state.send_modify(|s| {
        s.pid = Some(pid);
        s.starts += 1;
    });
    tracing::info!("local Ray node {name} found running (pid {pid}): supervising it again");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => {
                tracing::info!("stopping local Ray node {name} (pid {pid})");
                terminate(pid, &launch.marker, launch.grace).await;
                state.send_modify(|s| s.pid = None);
                tracing::info!("local Ray node {name} stopped");
                return None;
            }
        }
        if !is_alive(pid) {
            terminate(pid, &launch.marker, launch.grace).await;
            state.send_modify(|s| s.pid = None);
            return Some("exited".into());
        }
    }
}

/// Whether `pid` runs (exists and is not a zombie).
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .is_some_and(|i| !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')))
    })
}

/// A node left running by an earlier run of the server: the leader of its process group (the
/// `ray start --block` process), with its marker and the arguments after `ray`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningNode {
    pub pid: u32,
    pub marker: String,
    pub args: Vec<String>,
}

/// The nodes running whose marker starts with `prefix`.
pub fn running_nodes(prefix: &str) -> Vec<RunningNode> {
    processes()
        .into_iter()
        .filter(|p| !p.zombie && p.pid == p.pgid && p.pid != std::process::id())
        .filter_map(|p| {
            let marker = marker_of(p.pid).filter(|m| m.starts_with(prefix))?;
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", p.pid)).ok()?;
            let words: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            let start = words.iter().position(|w| w == "start")?;
            let args = words[start..].to_vec();
            args.iter().any(|a| a == "--block").then_some(RunningNode {
                pid: p.pid,
                marker,
                args,
            })
        })
        .collect()
}

fn spawn_once(launch: &Launch, log: &Path) -> Result<tokio::process::Child, String> {
    std::fs::create_dir_all(&launch.temp_dir)
        .map_err(|e| format!("could not create {}: {e}", launch.temp_dir.display()))?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("could not open {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(&launch.program);
    command
        .args(&launch.args)
        .env_remove("RAY_ADDRESS")
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("PATH", search_path(&launch.program))
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .env(MARKER_VAR, &launch.marker)
        .current_dir(&launch.temp_dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(false)
        .process_group(0);
    command
        .spawn()
        .map_err(|e| format!("could not be started ({}): {e}", launch.program.display()))
}

/// One process, from `/proc`.
#[derive(Clone, Copy, Debug)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// Exited, not yet waited for.
    pub zombie: bool,
}

/// Every process of the machine (of this PID namespace).
pub fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(state), Some(ppid), Some(pgid)) = (
            fields.first(),
            fields.get(1).and_then(|v| v.parse().ok()),
            fields.get(2).and_then(|v| v.parse().ok()),
        ) {
            out.push(Proc {
                pid,
                ppid,
                pgid,
                zombie: *state == "Z" || *state == "X",
            });
        }
    }
    out
}

/// The marker of a process, when it has one (only our own processes can be read).
pub fn marker_of(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let key = format!("{MARKER_VAR}=");
    environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(key.as_bytes()))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

/// Live processes of process group `pgid`, their descendants, and those whose marker `matches`.
fn members(pgid: Option<u32>, matches: &dyn Fn(&str) -> bool, known: &mut BTreeSet<u32>) {
    let all = processes();
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for p in &all {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let alive: BTreeSet<u32> = all.iter().filter(|p| !p.zombie).map(|p| p.pid).collect();
    known.retain(|pid| alive.contains(pid));
    for p in all.iter().filter(|p| !p.zombie) {
        let ours = Some(p.pgid) == pgid
            || known.contains(&p.pid)
            || (p.pid != std::process::id() && marker_of(p.pid).is_some_and(|m| matches(&m)));
        if ours {
            known.insert(p.pid);
        }
    }
    let mut todo: Vec<u32> = known.iter().copied().collect();
    while let Some(pid) = todo.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            if alive.contains(child) && known.insert(*child) {
                todo.push(*child);
            }
        }
    }
    known.remove(&std::process::id());
}

/// The live members of process group `pgid` and all their descendants.
pub fn group_and_descendants(pgid: u32) -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    members(Some(pgid), &|_| false, &mut found);
    found
}

/// Sends SIGTERM (or SIGKILL when `kill`) to each of `pids`.
#[cfg(unix)]
pub fn signal(pids: &BTreeSet<u32>, kill: bool) {
    use rustix::process::{Pid, Signal, kill_process};
    let signal = if kill { Signal::KILL } else { Signal::TERM };
    for pid in pids {
        if let Some(pid) = Pid::from_raw(*pid as i32) {
            let _ = kill_process(pid, signal);
        }
    }
}

/// Stops process group `pgid` (0: none) and every process related to it or marked `marker`:
/// SIGTERM, then SIGKILL for what is left after `grace`.
pub async fn terminate(pgid: u32, marker: &str, grace: Duration) {
    let marker = marker.to_string();
    stop_matching(
        if pgid == 0 { None } else { Some(pgid) },
        move |m| m == marker,
        grace,
    )
    .await;
}

/// Stops every process whose marker starts with `prefix` (leftovers of an earlier run that
/// ended without stopping its nodes). Returns how many there were.
pub async fn terminate_marked(prefix: &str, grace: Duration) -> usize {
    terminate_marked_except(prefix, Vec::new(), grace).await
}

/// Stops every process whose marker starts with `prefix` but with none of `keep`. Returns how
/// many there were.
pub async fn terminate_marked_except(prefix: &str, keep: Vec<String>, grace: Duration) -> usize {
    let prefix = prefix.to_string();
    stop_matching(
        None,
        move |m| m.starts_with(&prefix) && !keep.iter().any(|k| m.starts_with(k.as_str())),
        grace,
    )
    .await
}

async fn stop_matching(
    pgid: Option<u32>,
    matches: impl Fn(&str) -> bool + Send + 'static,
    grace: Duration,
) -> usize {
    let mut known = BTreeSet::new();
    members(pgid, &matches, &mut known);
    let found = known.len();
    if known.is_empty() {
        return 0;
    }
    signal(&known, false);
    let deadline = Instant::now() + grace;
    let mut killed = false;
    let hard_deadline = deadline + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Processes started while stopping are caught too.
        members(pgid, &matches, &mut known);
        if known.is_empty() {
            break;
        }
        let now = Instant::now();
        if now > deadline && !killed {
            tracing::info!(
                "{} processes still running after {grace:?}: SIGKILL",
                known.len()
            );
            killed = true;
        }
        if killed {
            signal(&known, true);
        }
        if now > hard_deadline {
            tracing::warn!("processes {known:?} did not exit after SIGKILL");
            break;
        }
    }
    found
}

/// Sends SIGKILL to every process whose marker starts with `prefix`, without waiting.
pub fn kill_marked_now(prefix: &str) {
    let pids = marked(prefix);
    if !pids.is_empty() {
        signal(&pids, true);
    }
}

/// Processes (pids) whose marker starts with `prefix`.
pub fn marked(prefix: &str) -> BTreeSet<u32> {
    let mut known = BTreeSet::new();
    members(None, &|m: &str| m.starts_with(prefix), &mut known);
    known
}

/// `PATH` for a node: the directory of the `ray` executable first, so that a job's `python`
/// is the Python Ray is installed in (as in a Ray container image), then the server's own.
fn search_path(program: &Path) -> std::ffi::OsString {
    let own = std::env::var_os("PATH").unwrap_or_default();
    let Some(dir) = program.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return own;
    };
    let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&own));
    std::env::join_paths(dirs).unwrap_or(own)
}

/// A free loopback port (the kernel's choice, released at once).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Ports for a new node.
pub fn allocate_ports(head: bool) -> std::io::Result<NodePorts> {
    // Bound together, so one allocation never hands out the same port twice.
    let listeners: Vec<std::net::TcpListener> = (0..if head { 10 } else { 6 })
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    Ok(NodePorts {
        node_manager: ports[0],
        object_manager: ports[1],
        metrics: ports[2],
        agent_listen: ports[3],
        agent_grpc: ports[4],
        runtime_env_agent: ports[5],
        head: head.then(|| crate::plan::HeadPorts {
            gcs: ports[6],
            dashboard: ports[7],
            client: ports[8],
            serve: ports[9],
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_node_is_restarted_and_stopped_with_everything_it_started() {
        let dir = std::env::temp_dir().join(format!("krl-test-{}", std::process::id()));
        let marker = format!("test-{}/ns/c/n", std::process::id());
        // A parent that starts a detached grandchild in a session of its own, then exits
        // after a while: the grandchild keeps running and is found by its marker.
        let script = "setsid sleep 300 & sleep 1; exit 3";
        let launch = Launch {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![("A".into(), "b".into())],
            temp_dir: dir.clone(),
            marker: marker.clone(),
            grace: Duration::from_secs(2),
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let node = NodeProcess::spawn("n".into(), allocate_ports(false).unwrap(), launch, tx);
        let exited = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("the node exits")
            .unwrap();
        assert!(exited.how.contains('3'), "{}", exited.how);
        assert_eq!(exited.restart_in, Duration::from_secs(1));
        // The grandchild of the first run was stopped when its node exited.
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.state().starts < 2 {
            assert!(Instant::now() < deadline, "not restarted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!marked(&marker).is_empty());
        node.stop().await;
        assert!(marked(&marker).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn ports_differ() {
        let ports = allocate_ports(true).unwrap();
        let head = ports.head.unwrap();
        let all = BTreeSet::from([
            ports.node_manager,
            ports.object_manager,
            ports.metrics,
            ports.agent_listen,
            ports.agent_grpc,
            ports.runtime_env_agent,
            head.gcs,
            head.dashboard,
            head.client,
            head.serve,
        ]);
        assert_eq!(all.len(), 10);
    }

    #[tokio::test]
    async fn a_node_left_running_is_found_supervised_restarted_and_stopped() {
        use std::os::unix::process::CommandExt;
        let dir = std::env::temp_dir().join(format!("krl-adopt-{}", std::process::id()));
        let prefix = format!("adopt-{}/ns/c/", std::process::id());
        let marker = format!("{prefix}n");
        // A node an earlier server started and left: a process group leader whose command
        // line reads like `... start ... --block`, carrying the marker.
        let args: Vec<String> = ["-c", "sleep 300; true", "start", "--block"]
            .into_iter()
            .map(String::from)
            .collect();
        let mut orphan = std::process::Command::new("/bin/sh")
            .args(&args)
            .env(MARKER_VAR, &marker)
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = orphan.id();
        let found = running_nodes(&prefix);
        assert_eq!(
            found,
            vec![RunningNode {
                pid,
                marker: marker.clone(),
                args: vec!["start".into(), "--block".into()],
            }]
        );
        let launch = Launch {
            program: PathBuf::from("/bin/sh"),
            args,
            env: Vec::new(),
            temp_dir: dir.clone(),
            marker: marker.clone(),
            grace: Duration::from_secs(2),
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let node = NodeProcess::adopt("n".into(), allocate_ports(false).unwrap(), launch, pid, tx);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            node.state(),
            ProcessState {
                pid: Some(pid),
                starts: 1
            }
        );
        // It exits: it is started again, now as a child.
        signal(&BTreeSet::from([pid]), true);
        let _ = orphan.wait();
        let exited = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("the exit is noticed")
            .unwrap();
        assert_eq!(exited.how, "exited");
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.state().starts < 2 || node.state().pid.is_none() {
            assert!(Instant::now() < deadline, "not restarted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_ne!(node.state().pid, Some(pid));
        node.stop().await;
        assert!(marked(&prefix).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
