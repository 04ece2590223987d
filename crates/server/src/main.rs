#![deny(unsafe_code)]

use kuberay_apiserver::Config;

fn main() -> anyhow::Result<()> {
    give_large_buffers_back();
    give_free_memory_back();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// Makes glibc's allocator take every buffer of 128 KiB or more straight from the kernel and
/// give it back when freed. By default glibc raises that threshold to the size of the largest
/// buffer freed so far (up to 32 MiB), after which request and answer bodies, encoded objects
/// and list pages are carved from its heaps, where the freed ones stay resident and are rarely
/// reused for the next, larger one: a 4 MiB request then costs several times its size in resident
/// memory, and memory is not given back after a large list. Setting the threshold fixes it.
#[allow(unsafe_code)]
fn give_large_buffers_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; it is called before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// How often the allocator's free memory is handed back to the kernel.
const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Hands the memory glibc's heaps hold free back to the kernel every [`TRIM_INTERVAL`]. Freed
/// small allocations (the objects decoded while a watch cache lists, the messages of a large
/// answer) otherwise stay resident in the heaps of the threads that made them, so the server
/// stays at its peak after a large list instead of returning to what it holds.
#[allow(unsafe_code)]
fn give_free_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    std::thread::Builder::new()
        .name("memory-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_INTERVAL);
                // SAFETY: malloc_trim only returns free pages of the allocator's heaps to the
                // kernel; it takes the heaps' locks like any allocation.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        })
        .map(drop)
        .unwrap_or_else(|error| eprintln!("memory-trim thread not started: {error}"));
}

async fn run() -> anyhow::Result<()> {
    // One TLS crypto provider for the whole process (kube and reqwest both use rustls).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config::from_args();
    let _log_guard = kuberay_apiserver::init_logging(&config)?;
    tracing::info!("kuberay-apiserver {}", env!("CARGO_PKG_VERSION"));

    let server = kuberay_apiserver::start(config).await?;
    wait_for_signal().await;
    server.shutdown();
    server.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
