//! SIGINT and SIGTERM, which `serve` and `proxy` drain on.

use crate::CliError;

/// Resolves on the first SIGINT or SIGTERM; the handlers are installed on return.
#[cfg(unix)]
pub(crate) fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    use tokio::signal::unix::{signal, SignalKind};
    let watch = |kind, name| {
        signal(kind).map_err(|source| CliError::Signal {
            signal: name,
            source,
        })
    };
    let mut term = watch(SignalKind::terminate(), "SIGTERM")?;
    let mut int = watch(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub(crate) fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
