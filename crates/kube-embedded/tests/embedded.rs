//! Embedded-store specifics: durability, refusing foreign files, the public API.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use kube_embedded::{EmbeddedKube, OpenError};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": name}})).unwrap()
}

/// Reopens a store, waiting for background tasks of dropped clients to let go of it.
async fn reopen(dir: &std::path::Path) -> EmbeddedKube {
    for _ in 0..200 {
        match EmbeddedKube::open(dir) {
            Ok(k) => return k,
            Err(OpenError::AlreadyOpen { .. }) => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("reopen: {e}"),
        }
    }
    panic!("store still open");
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (uid, rv) = {
        let kube = EmbeddedKube::open(dir.path()).unwrap();
        kube.ensure_namespace("team").unwrap();
        kube.ensure_namespace("team").unwrap();
        let api: Api<ConfigMap> = Api::namespaced(kube.client(), "team");
        let c = api
            .create(&PostParams::default(), &cm("keep"))
            .await
            .unwrap();
        (
            c.metadata.uid.unwrap(),
            c.metadata.resource_version.unwrap(),
        )
    };
    let kube = reopen(dir.path()).await;
    let api: Api<ConfigMap> = Api::namespaced(kube.client(), "team");
    let c = api.get("keep").await.unwrap();
    assert_eq!(c.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(c.data.unwrap()["k"], "keep");
    // the resourceVersion counter continues after a reopen
    let d = api
        .create(&PostParams::default(), &cm("next"))
        .await
        .unwrap();
    let rv_d: u64 = d.metadata.resource_version.unwrap().parse().unwrap();
    assert!(rv_d > rv.parse::<u64>().unwrap());
    let ns: Api<Namespace> = Api::all(kube.client());
    assert!(ns.get("team").await.is_ok());

    // watching from before the reopen is too old: 410 Expired as an ERROR event
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{WatchEvent, WatchParams};
    let mut s = api
        .watch(&WatchParams::default().timeout(5), "1")
        .await
        .unwrap()
        .boxed();
    match s.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected 410, got {other:?}"),
    }
}

#[test]
fn garbage_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(kube_embedded::DB_FILE),
        vec![0x42u8; 10_000],
    )
    .unwrap();
    let err = EmbeddedKube::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, OpenError::Corrupt { .. } | OpenError::Foreign { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(kube_embedded::DB_FILE), "{msg}");
    // the file is left untouched
    assert_eq!(
        std::fs::read(dir.path().join(kube_embedded::DB_FILE)).unwrap(),
        vec![0x42u8; 10_000]
    );

    // an empty file is not silently turned into an empty store either
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(kube_embedded::DB_FILE), b"").unwrap();
    assert!(EmbeddedKube::open(dir.path()).is_err());
}

#[test]
fn foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(dir.path().join(kube_embedded::DB_FILE)).unwrap();
        let t = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("other");
            let mut table = t.open_table(def).unwrap();
            table.insert("x", 1).unwrap();
        }
        t.commit().unwrap();
    }
    let err = EmbeddedKube::open(dir.path()).unwrap_err();
    assert!(matches!(err, OpenError::Foreign { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not a kube-embedded store"),
        "{err}"
    );
}

#[test]
fn second_open_is_refused_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let _a = EmbeddedKube::open(dir.path()).unwrap();
    assert!(matches!(
        EmbeddedKube::open(dir.path()),
        Err(OpenError::AlreadyOpen { .. })
    ));
}

#[tokio::test]
async fn router_serves_http() {
    let dir = tempfile::tempdir().unwrap();
    let kube = EmbeddedKube::open(dir.path()).unwrap();
    kube.ensure_namespace("default").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = kube.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("over-http"))
        .await
        .unwrap();
    let l = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(l.items.len(), 1);
    // same data through the in-process client
    let local: Api<ConfigMap> = Api::namespaced(kube.client(), "default");
    assert!(local.get("over-http").await.is_ok());
    server.abort();
}

#[tokio::test]
async fn request_body_limit_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let kube = EmbeddedKube::open(dir.path())
        .unwrap()
        .with_max_body_bytes(8 * 1024 * 1024);
    kube.ensure_namespace("default").unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube.client(), "default");
    // Over the default 3 MiB, under the configured limit: accepted, also over HTTP.
    let big = |name: &str, size: usize| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "x".repeat(size)}}))
            .unwrap()
    };
    api.create(&PostParams::default(), &big("four", 4 << 20))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, kube.router()).into_future());
    let http = kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap()))
        .unwrap();
    let remote: Api<ConfigMap> = Api::namespaced(http, "default");
    remote
        .create(&PostParams::default(), &big("five", 5 << 20))
        .await
        .unwrap();
    // Over it: 413 with the kube-apiserver's Status, nothing stored.
    for api in [&api, &remote] {
        match api
            .create(&PostParams::default(), &big("nine", 9 << 20))
            .await
        {
            Err(kube::Error::Api(s)) => {
                assert_eq!(
                    (s.code, s.reason.as_str(), s.message.as_str()),
                    (
                        413,
                        "RequestEntityTooLarge",
                        "Request entity too large: limit is 8388608"
                    )
                );
            }
            other => panic!("expected 413, got {other:?}"),
        }
    }
    assert!(api.get_opt("nine").await.unwrap().is_none());
    server.abort();
}

/// Child side of `acknowledged_writes_survive_kill_9`: writes until killed.
#[tokio::test]
async fn child_writer_process() {
    let Some(dir) = std::env::var_os("KUBE_EMBEDDED_CHILD_DIR") else {
        return;
    };
    let kube = EmbeddedKube::open(std::path::Path::new(&dir)).unwrap();
    kube.ensure_namespace("crash").unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube.client(), "crash");
    for i in 0.. {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}")))
            .await
            .unwrap();
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "child_writer_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KUBE_EMBEDDED_CHILD_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acked = tokio::task::spawn_blocking(move || {
        let mut last = None;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ACK ") {
                let n: u64 = n.parse().unwrap();
                last = Some(n);
                if n >= 30 {
                    break;
                }
            }
        }
        last
    })
    .await
    .unwrap()
    .expect("child acknowledged writes");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let kube = EmbeddedKube::open(dir.path()).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube.client(), "crash");
    for i in 0..=acked {
        assert!(
            api.get_opt(&format!("cm-{i}")).await.unwrap().is_some(),
            "acknowledged cm-{i} lost"
        );
    }
}

const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a \
    consistent list result. You can start a new list without the continue parameter, or use the \
    continue token in this response to retrieve the remainder of the results. Continuing with \
    the provided token results in an inconsistent list - objects that were created, modified, or \
    deleted between the time the first chunk was returned and now may show up in the list.";

/// Expects the 410 of a continue token whose snapshot is gone; returns the new token.
fn expired(e: kube::Error) -> String {
    let kube::Error::Api(s) = e else {
        panic!("expected an API error, got {e:?}");
    };
    assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
    assert_eq!(s.message, INCONSISTENT_CONTINUE);
    s.metadata
        .and_then(|m| m.continue_)
        .filter(|c| !c.is_empty())
        .expect("a continue token to the latest state")
}

#[tokio::test]
async fn continue_token_expires_with_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = {
        let kube = EmbeddedKube::open(dir.path()).unwrap();
        kube.ensure_namespace("pages").unwrap();
        let api: Api<ConfigMap> = Api::namespaced(kube.client(), "pages");
        for i in 1..=5 {
            api.create(&PostParams::default(), &cm(&format!("cm-{i}")))
                .await
                .unwrap();
        }
        let lp = ListParams::default().limit(2);
        let first = api.list(&lp).await.unwrap();
        let token = first.metadata.continue_.unwrap();

        // More paginated lists, each at its own resourceVersion, than snapshots are kept
        // (32): the least recently used, the first one, is dropped.
        for i in 0..40 {
            api.create(&PostParams::default(), &cm(&format!("more-{i}")))
                .await
                .unwrap();
            let l = api.list(&lp).await.unwrap();
            assert!(l.metadata.continue_.is_some());
        }
        let err = api
            .list(&lp.clone().continue_token(&token))
            .await
            .unwrap_err();
        // The token in the error continues at the latest state (inconsistently).
        let latest = expired(err);
        let rest = api
            .list(&ListParams::default().continue_token(&latest))
            .await
            .unwrap();
        let names: Vec<_> = rest
            .items
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names.len(), 3 + 40);
        assert_eq!(&names[..3], ["cm-3", "cm-4", "cm-5"]);

        // Two first pages with a write between them, then the store is closed.
        let old = api.list(&lp).await.unwrap().metadata.continue_.unwrap();
        api.create(&PostParams::default(), &cm("last"))
            .await
            .unwrap();
        let new = api.list(&lp).await.unwrap().metadata.continue_.unwrap();
        (old, new)
    };

    // Snapshots live in memory: after a reopen a token still works if nothing has been
    // written since its first page (the current state is its snapshot) ...
    let kube = reopen(dir.path()).await;
    let api: Api<ConfigMap> = Api::namespaced(kube.client(), "pages");
    let page = api
        .list(&ListParams::default().limit(2).continue_token(&new))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    // ... and is too old otherwise.
    let err = api
        .list(&ListParams::default().limit(2).continue_token(&old))
        .await
        .unwrap_err();
    expired(err);
}

/// Child side of `acknowledged_concurrent_writes_survive_kill_9`: many concurrent writers
/// (their creates share commits) until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_concurrent_writer_process() {
    let Some(dir) = std::env::var_os("KUBE_EMBEDDED_CHILD_BURST_DIR") else {
        return;
    };
    let kube = EmbeddedKube::open(std::path::Path::new(&dir)).unwrap();
    kube.ensure_namespace("burst").unwrap();
    let mut tasks = Vec::new();
    for w in 0..32 {
        let api: Api<ConfigMap> = Api::namespaced(kube.client(), "burst");
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("cm-{w}-{i}");
                api.create(&PostParams::default(), &cm(&name))
                    .await
                    .unwrap();
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {name}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn acknowledged_concurrent_writes_survive_kill_9() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "child_concurrent_writer_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KUBE_EMBEDDED_CHILD_BURST_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read acknowledgements while the burst goes on; kill in the middle of it.
    let acked = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(name) = line.strip_prefix("ACK ") {
                acked.push(name.to_string());
                if acked.len() >= 600 {
                    break;
                }
            }
        }
        acked
    })
    .await
    .unwrap();
    child.kill().unwrap(); // SIGKILL, with creates in flight
    child.wait().unwrap();
    assert!(
        acked.len() >= 600,
        "child acknowledged {} writes",
        acked.len()
    );

    let kube = EmbeddedKube::open(dir.path()).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube.client(), "burst");
    let list = api.list(&ListParams::default()).await.unwrap();
    let present: std::collections::HashSet<String> = list
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    for name in &acked {
        assert!(present.contains(name), "acknowledged {name} lost");
    }
    // resourceVersions of what survived are unique and below the list's.
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    let mut rvs: Vec<u64> = list
        .items
        .iter()
        .map(|c| {
            c.metadata
                .resource_version
                .clone()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    rvs.sort();
    rvs.dedup();
    assert_eq!(rvs.len(), list.items.len());
    assert!(rvs.last().is_some_and(|&rv| rv <= list_rv));
}
