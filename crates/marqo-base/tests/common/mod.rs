//! A sandbox for running the real binary: its own cache, HOME and pip configuration (none),
//! a working directory, and helpers to run `marqo-base` and read what it wrote.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct TestContext {
    pub dir: tempfile::TempDir,
}

impl Default for TestContext {
    fn default() -> Self {
        TestContext::new()
    }
}

impl TestContext {
    pub fn new() -> TestContext {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::create_dir_all(dir.path().join("work")).expect("work");
        TestContext { dir }
    }

    /// The directory the binary runs in; relative paths in tests are relative to it.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.work().join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.work().join(name).exists()
    }

    /// `marqo-base ARGS` in the sandbox: no host pip configuration, its own cache.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_marqo-base"));
        for (key, _) in std::env::vars() {
            if key.starts_with("PIP_") || key.starts_with("MARQO_BASE_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.env("PIP_CONFIG_FILE", "/dev/null")
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CACHE_HOME", self.dir.path().join("home/.cache"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("home/.config"))
            .env("MARQO_BASE_CACHE_DIR", self.cache())
            .env("NO_COLOR", "1")
            .current_dir(self.work())
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run marqo-base");
        Run::from(out)
    }
}

/// What one run printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(&self) -> &Run {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Pins (`name==version` with marker) of a requirements.txt, without comments, hashes and
/// option lines (`--extra-index-url ...`).
pub fn pins(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && !l.starts_with('-') && !l.trim().is_empty())
        .map(|l| l.trim_end_matches(" \\").to_string())
        .collect()
}

/// Replaces the crate version in generated headers and the ports of local test servers, so
/// snapshots survive releases and runs.
pub fn redact_version(text: &str) -> String {
    let ports = regex::Regex::new(r"127\.0\.0\.1:\d+").expect("regex");
    ports.replace_all(&text.replace(env!("CARGO_PKG_VERSION"), "[VERSION]"), "127.0.0.1:[PORT]").into_owned()
}

/// The option lines of a requirements.txt (`--index-url URL`, `--find-links DIR`, ...).
pub fn option_lines(text: &str) -> Vec<String> {
    text.lines().filter(|l| l.starts_with("--")).map(str::to_string).collect()
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
