//! What one process shares: its tokio runtime, and what happens to its temporary trees when
//! it is interrupted. Every stage runs its network work on this one multi-threaded runtime
//! (blocking on it from the calling thread), so a `build` or `lock` starts one set of worker
//! threads, not one per stage.

use std::path::Path;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::{Error, Reporter};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The process's runtime, started on first use.
pub fn runtime() -> Result<&'static Runtime, Error> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::from_error("cannot start the async runtime", e))?;
    // Two threads may race to start it; the loser's runtime is dropped unused.
    Ok(RUNTIME.get_or_init(|| built))
}

/// Removes the hidden staging trees (`.NAME.tmp-*`) that an interrupted run left beside
/// `out`, with one status line; trees another live process is writing are left alone (see
/// [`oci::remove_stale`]).
pub fn remove_stale_staging(out: &Path, printer: &dyn Reporter) {
    let removed = oci::remove_stale(out);
    if removed.is_empty() {
        return;
    }
    let names: Vec<String> =
        removed.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    printer.status(format!(
        "Removed {} temporary {} left beside {} by an interrupted run: {}",
        removed.len(),
        if removed.len() == 1 { "tree" } else { "trees" },
        out.display(),
        names.join(", ")
    ));
}

/// From now on, SIGINT and SIGTERM remove the staging trees this process is writing and
/// then end it with exit code 130 or 143 (128 + the signal, as a shell reports it). The
/// handlers are in place when this returns; a small thread waits for the signals.
pub fn clean_up_on_signals() -> Result<(), Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::from_error("cannot start the signal handler", e))?;
    let (mut interrupt, mut terminate) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
        })
        .map_err(|e| Error::from_error("cannot install the signal handlers", e))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let code = runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => 130,
                    _ = terminate.recv() => 143,
                }
            });
            oci::remove_active();
            std::process::exit(code);
        })
        .map_err(|e| Error::from_error("cannot start the signal handler", e))?;
    Ok(())
}
