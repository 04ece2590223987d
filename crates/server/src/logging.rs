//! The process's logging: text or JSON lines on stderr (and `--logFilePath`), filtered by
//! `RUST_LOG` at start and changeable while running ([`set_filter`], served on the HTTP port as
//! `/debug/log-level`).

use std::sync::OnceLock;

use anyhow::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, reload};

use crate::config::{Config, LogFormat};

/// The filter in force, replaceable at run time; set once the logger is installed.
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the process's logger. Keep the returned guard alive while logging (it flushes the
/// log file).
pub fn init(
    config: &Config,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let json = config.log_format == LogFormat::Json;
    // Colours only on a terminal: `kubectl logs` and log collectors read plain text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr = if json {
        fmt::layer().json().with_writer(std::io::stderr).boxed()
    } else {
        fmt::layer()
            .with_ansi(terminal)
            .with_writer(std::io::stderr)
            .boxed()
    };
    let (file, guard) = match &config.log_file_path {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log file {}", path.display()))?;
            let (writer, guard) = tracing_appender::non_blocking(file);
            let layer = if json {
                fmt::layer().json().with_writer(writer).boxed()
            } else {
                fmt::layer().with_ansi(false).with_writer(writer).boxed()
            };
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .try_init()
        .context("installing the logger")?;
    let _ = FILTER.set(handle);
    Ok(guard)
}

/// The filter in force (`RUST_LOG` syntax), if this process installed the logger.
pub fn filter() -> Option<String> {
    let handle = FILTER.get()?;
    handle.with_current(|filter| filter.to_string()).ok()
}

/// Replaces the filter with `directives` (`RUST_LOG` syntax, e.g. `debug` or
/// `info,kuberay_apiserver=debug`): the filter now in force, or why not.
pub fn set_filter(directives: &str) -> Result<String, String> {
    let handle = FILTER
        .get()
        .ok_or_else(|| "this process did not install the logger".to_string())?;
    let filter = EnvFilter::builder()
        .parse(directives.trim())
        .map_err(|error| format!("invalid log filter {:?}: {error}", directives.trim()))?;
    let text = filter.to_string();
    handle
        .reload(filter)
        .map_err(|error| format!("the log filter could not be replaced: {error}"))?;
    tracing::info!("log filter set to {text}");
    Ok(text)
}
