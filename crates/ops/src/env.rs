//! What one process shares: its tokio runtime. Every stage runs its network work on this one
//! multi-threaded runtime (blocking on it from the calling thread), so a `build` or `lock`
//! starts one set of worker threads, not one per stage.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::Error;

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
