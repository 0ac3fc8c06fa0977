//! What goes where: results and summaries on stderr unless quiet, progress only on a
//! terminal, logs through `tracing` at the chosen verbosity.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Decides what the user sees on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub quiet: bool,
    pub verbose: u8,
    /// Whether stderr gets ANSI colors (`--color`, `NO_COLOR`, a terminal).
    pub color: bool,
}

impl Printer {
    pub fn new(quiet: bool, verbose: u8, color: crate::cli::ColorMode) -> Printer {
        let color = match color {
            crate::cli::ColorMode::Always => true,
            crate::cli::ColorMode::Never => false,
            crate::cli::ColorMode::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os(env_vars::EnvVars::NO_COLOR).is_none()
            }
        };
        Printer { quiet, verbose, color }
    }

    /// `text` in bold `color` (an ANSI SGR code: 31 red, 36 cyan) when colors are on.
    pub fn paint(&self, text: &str, color: u8) -> String {
        if self.color {
            format!("\x1b[1;{color}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Routes `tracing` to stderr: warnings by default, more with -v; `RUST_LOG` wins.
    pub fn init_logging(&self) {
        let level = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, _) => "debug",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
        let ansi = self.color;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_target(false);
        // With -vv, each line says when it happened: the timeline of a slow run.
        let _ = if self.verbose >= 2 {
            builder.with_timer(tracing_subscriber::fmt::time::uptime()).try_init()
        } else {
            builder.without_time().try_init()
        };
    }

    /// A status line for the user (stderr), unless quiet.
    pub fn status(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    /// A spinner on a terminal; hidden in CI logs, pipes and quiet mode.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// A progress bar to `total` on a terminal (bytes when `bytes`, else items); hidden in CI
    /// logs, pipes and quiet mode.
    pub fn bar(&self, total: u64, message: &str, bytes: bool) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() || total == 0 {
            return ProgressBar::hidden();
        }
        let template = if bytes {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({elapsed}, eta {eta})"
        } else {
            "{msg} [{bar:30}] {pos}/{len} ({elapsed})"
        };
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

impl ops::Reporter for Printer {
    fn message(&self, text: &str) {
        self.status(text);
    }

    fn spinner(&self, message: &str) -> ProgressBar {
        Printer::spinner(self, message)
    }

    fn bar(&self, total: u64, message: &str, bytes: bool) -> ProgressBar {
        Printer::bar(self, total, message, bytes)
    }
}
