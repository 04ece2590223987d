use kuberay_apiserver::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
