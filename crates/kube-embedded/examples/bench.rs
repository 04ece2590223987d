//! Throughput benchmark through `kube::Client`:
//!
//! ```text
//! cargo run --release -p kube-embedded --example bench
//! cargo run --release -p kube-embedded --example bench -- --kubeconfig PATH
//! ```
//!
//! Measures, against a fresh embedded store in a temporary directory (every
//! create is durable: fsync before the answer), and with `--kubeconfig` (or
//! `BENCH_KUBECONFIG`) also against that cluster, in a scratch namespace that is
//! deleted afterwards:
//! * durable creates/s with 1, 8 and 64 concurrent clients,
//! * gets/s with 1 and 64 concurrent clients,
//! * the time to list 10,000 ConfigMaps in one page and paged by 500 (median of 5).
//!
//! `BENCH_SECS` sets the duration of each throughput run (default 3).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

const LIST_OBJECTS: usize = 10_000;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One system under test: how to make clients for it.
struct Target {
    name: String,
    make_client: Box<dyn Fn() -> Client>,
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "x"}},
        "data": {"a": "some value", "b": "another value", "c": name},
    }))
    .expect("valid configmap")
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

/// Creates for `secs` seconds from `clients` concurrent clients; returns creates/s.
async fn bench_creates(t: &Target, ns: &str, clients: usize, secs: f64) -> Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let api: Api<ConfigMap> = Api::namespaced((t.make_client)(), ns);
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                api.create(
                    &PostParams::default(),
                    &configmap(&format!("c{clients}-{c}-{i}")),
                )
                .await?;
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            Ok::<_, kube::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Gets the objects of `names` round-robin for `secs` seconds; returns gets/s.
async fn bench_gets(
    t: &Target,
    ns: &str,
    names: Arc<Vec<String>>,
    clients: usize,
    secs: f64,
) -> Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let api: Api<ConfigMap> = Api::namespaced((t.make_client)(), ns);
        let (done, names) = (done.clone(), names.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c * 7919;
            while Instant::now() < deadline {
                api.get(&names[i % names.len()]).await?;
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            Ok::<_, kube::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Creates `n` ConfigMaps with 64 concurrent clients.
async fn fill(t: &Target, ns: &str, n: usize) -> Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let api: Api<ConfigMap> = Api::namespaced((t.make_client)(), ns);
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return Ok::<_, kube::Error>(());
                }
                api.create(&PostParams::default(), &configmap(&format!("obj-{i:05}")))
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time to list every object of `ns` with the given page size (None: one page).
async fn bench_list(client: &Client, ns: &str, page: Option<u32>) -> Result<Duration> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0;
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams::default();
            if let Some(p) = page {
                lp = lp.limit(p);
            }
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let l = api.list(&lp).await?;
            // (a real cluster also has kube-root-ca.crt in every namespace)
            n += l
                .items
                .iter()
                .filter(|c| {
                    c.metadata
                        .name
                        .as_ref()
                        .is_some_and(|n| n.starts_with("obj-"))
                })
                .count();
            match l.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => token = Some(c),
                None => break,
            }
        }
        times.push(start.elapsed());
        if n != LIST_OBJECTS {
            return Err(format!("listed {n} objects, expected {LIST_OBJECTS}").into());
        }
    }
    Ok(median(times))
}

/// Rows of (what, value, unit) for one target.
async fn run(t: &Target, secs: f64) -> Result<Vec<(String, f64, &'static str)>> {
    let admin = (t.make_client)();
    let id = std::process::id();
    let ns = format!("bench-{id}");
    let list_ns = format!("bench-list-{id}");
    create_namespace(&admin, &ns).await?;
    create_namespace(&admin, &list_ns).await?;
    let mut rows = Vec::new();
    let result: Result<()> = async {
        for clients in [1, 8, 64] {
            let r = bench_creates(t, &ns, clients, secs).await?;
            eprintln!("{}: creates, {clients} clients: {r:.0}/s", t.name);
            rows.push((format!("durable creates, {clients} clients"), r, "/s"));
        }
        eprintln!("{}: creating {LIST_OBJECTS} objects to list...", t.name);
        fill(t, &list_ns, LIST_OBJECTS).await?;
        let names: Arc<Vec<String>> =
            Arc::new((0..LIST_OBJECTS).map(|i| format!("obj-{i:05}")).collect());
        for clients in [1, 64] {
            let r = bench_gets(t, &list_ns, names.clone(), clients, secs).await?;
            eprintln!("{}: gets, {clients} clients: {r:.0}/s", t.name);
            rows.push((format!("gets, {clients} clients"), r, "/s"));
        }
        let one = bench_list(&admin, &list_ns, None).await?;
        rows.push((
            format!("list {LIST_OBJECTS}, one page"),
            one.as_secs_f64() * 1e3,
            "ms",
        ));
        let paged = bench_list(&admin, &list_ns, Some(500)).await?;
        rows.push((
            format!("list {LIST_OBJECTS}, pages of 500"),
            paged.as_secs_f64() * 1e3,
            "ms",
        ));
        Ok(())
    }
    .await;
    let nss: Api<Namespace> = Api::all(admin);
    for n in [&ns, &list_ns] {
        let _ = nss.delete(n, &DeleteParams::default()).await;
    }
    result?;
    Ok(rows)
}

#[tokio::main]
async fn main() -> Result<()> {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let mut args = std::env::args().skip(1);
    let mut kubeconfig = std::env::var_os("BENCH_KUBECONFIG").map(std::path::PathBuf::from);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--kubeconfig" => kubeconfig = args.next().map(Into::into),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }

    // A cluster first: one brought up for a test run may not stay long.
    let theirs = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(&path)?;
            let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
            let real = Target {
                name: format!("cluster ({})", path.display()),
                make_client: Box::new(move || {
                    Client::try_from(config.clone()).expect("client from kubeconfig")
                }),
            };
            Some(run(&real, secs).await?)
        }
        None => None,
    };

    let dir = tempfile::tempdir()?;
    let kube = kube_embedded::EmbeddedKube::open(dir.path())?;
    let embedded = {
        let kube = kube.clone();
        Target {
            name: "embedded".into(),
            make_client: Box::new(move || kube.client()),
        }
    };
    eprintln!("embedded store in {}", dir.path().display());
    let ours = run(&embedded, secs).await?;

    println!();
    match &theirs {
        None => {
            println!("| {:<32} | {:>12} |", "measure", "embedded");
            println!("|{:-<34}|{:->14}|", "", "");
            for (what, v, unit) in &ours {
                println!("| {what:<32} | {:>12} |", fmt(*v, unit));
            }
        }
        Some(theirs) => {
            println!(
                "| {:<32} | {:>12} | {:>12} | {:>18} |",
                "measure", "embedded", "kube-apiserver", "embedded/apiserver"
            );
            println!("|{:-<34}|{:->14}|{:->16}|{:->20}|", "", "", "", "");
            for ((what, v, unit), (_, w, _)) in ours.iter().zip(theirs) {
                // For times, report the speed-up (apiserver time / embedded time).
                let ratio = if *unit == "ms" { w / v } else { v / w };
                println!(
                    "| {what:<32} | {:>12} | {:>14} | {:>17.1}x |",
                    fmt(*v, unit),
                    fmt(*w, unit),
                    ratio
                );
            }
        }
    }
    println!(
        "\n({secs} s per throughput run; list times are the median of 5; {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

fn fmt(v: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{v:.1} ms"),
        _ => format!("{v:.0}{unit}"),
    }
}
