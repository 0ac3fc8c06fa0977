//! How the pipeline reports progress: a trait the binary implements (with indicatif on a
//! terminal, plain lines in CI logs, nothing with `--quiet`), so no library prints.

use indicatif::ProgressBar;

/// Receives the pipeline's status lines and makes its progress indicators.
pub trait Reporter: Sync {
    /// A status line for the user ("Resolved 187 packages for linux/amd64 in 0.31s").
    fn message(&self, text: &str);
    /// A spinner for work of unknown length; hidden where progress is not shown.
    fn spinner(&self, message: &str) -> ProgressBar;
    /// A bar to `total` (bytes when `bytes`, else items); hidden where progress is not shown.
    fn bar(&self, total: u64, message: &str, bytes: bool) -> ProgressBar;
}

impl dyn Reporter + '_ {
    /// [`Reporter::message`] of anything string-like.
    pub fn status(&self, text: impl AsRef<str>) {
        self.message(text.as_ref());
    }
}

/// A reporter that shows nothing (tests, library callers that want silence).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn message(&self, _: &str) {}
    fn spinner(&self, _: &str) -> ProgressBar {
        ProgressBar::hidden()
    }
    fn bar(&self, _: u64, _: &str, _: bool) -> ProgressBar {
        ProgressBar::hidden()
    }
}
