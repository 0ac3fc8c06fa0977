//! What goes where: results on stdout, summaries on stderr unless quiet, progress only on a
//! terminal, logs through `tracing` at the chosen verbosity.
//!
//! Everything the binary prints goes through here, and all of it is escaped with
//! [`fetch::escape_lines`] (JSON with [`fetch::escape_json`]): a tag, an annotation, an error
//! body or a version from a hostile server cannot move the cursor or rewrite a line. Only the
//! printer's own colours reach the terminal raw. `main.rs` denies `println!` and friends
//! elsewhere, so new output cannot bypass it.

use std::io::IsTerminal;
use std::time::Duration;

use fetch::{escape_json, escape_lines};
use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::field::MakeExt;

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
        // A log line's text is escaped as everything else the printer shows.
        let fields = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
            let text = format!("{value:?}");
            match field.name() {
                "message" => write!(writer, "{}", escape_lines(&text)),
                name => write!(writer, "{name}={}", fetch::escape(&text)),
            }
        })
        .delimited(" ");
        let builder = tracing_subscriber::fmt()
            .fmt_fields(fields)
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
            self.stderr(message);
        }
    }

    /// A line on stderr, even when quiet (what a failed check found).
    #[allow(clippy::print_stderr)]
    pub fn stderr(&self, message: impl AsRef<str>) {
        eprintln!("{}", escape_lines(message.as_ref()));
    }

    /// `label` (`error:`, `hint:`) in `color`, then `message`, on stderr, even when quiet.
    #[allow(clippy::print_stderr)]
    pub fn labelled(&self, label: &str, color: u8, message: impl AsRef<str>) {
        eprintln!("{} {}", self.paint(label, color), escape_lines(message.as_ref()));
    }

    /// `question` on stderr, without a newline: the answer is typed after it.
    #[allow(clippy::print_stderr)]
    pub fn ask(&self, question: &str) {
        eprint!("{} ", escape_lines(question));
    }

    /// A result line (or lines) on stdout.
    #[allow(clippy::print_stdout)]
    pub fn out(&self, text: impl AsRef<str>) {
        println!("{}", escape_lines(text.as_ref()));
    }

    /// A result on stdout as it is (each line ends with its own newline).
    #[allow(clippy::print_stdout)]
    pub fn out_text(&self, text: &str) {
        print!("{}", escape_lines(text));
    }

    /// [`Printer::out_text`] that reports a failed write (a closed pipe) instead of panicking.
    pub fn write_out(&self, text: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(escape_lines(text).as_bytes())?;
        stdout.flush()
    }

    /// A JSON document on stdout, on one line.
    #[allow(clippy::print_stdout)]
    pub fn json(&self, doc: impl std::fmt::Display) {
        println!("{}", escape_json(&doc.to_string()));
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
        bar.set_message(escape_lines(message).into_owned());
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
        bar.set_message(escape_lines(message).into_owned());
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
