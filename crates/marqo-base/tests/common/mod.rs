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
        std::fs::create_dir_all(dir.path().join("bin")).expect("bin");
        TestContext { dir }
    }

    /// The directory the binary runs in; relative paths in tests are relative to it.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A directory first on the binary's `PATH`, for programs a test provides.
    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// Puts a CPython 3.9 of the host on the binary's `PATH` as `python3.9` (and nothing
    /// else of its installation: `python3` stays the host's); returns the interpreter.
    /// Panics when the host has none: the tests of `.pyc` in images compile with it.
    pub fn provide_python39(&self) -> PathBuf {
        let python = host_python39().unwrap_or_else(|| {
            panic!(
                "no CPython 3.9 on this host: the tests of bytecode in images need one \
                 (python3.9 on PATH, or `pyenv install 3.9`)"
            )
        });
        let link = self.bin().join("python3.9");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&python, &link).expect("link python3.9");
        python
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the file's directory");
        }
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
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(std::iter::once(self.bin()).chain(std::env::split_paths(&path)))
            .expect("PATH");
        cmd.env("PIP_CONFIG_FILE", "/dev/null")
            .env("PATH", path)
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CACHE_HOME", self.dir.path().join("home/.cache"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("home/.config"))
            .env("MARQO_BASE_CACHE_DIR", self.cache())
            .env("NO_COLOR", "1")
            .current_dir(self.work())
            .args(args);
        cmd
    }

    /// [`TestContext::command`] for a registry command: Docker's config in the sandbox's HOME
    /// (`DOCKER_CONFIG` unset) and the system's CA bundle (`SSL_CERT_FILE` unset).
    pub fn registry_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(args);
        cmd.env_remove("DOCKER_CONFIG").env_remove("SSL_CERT_FILE");
        cmd
    }

    /// Runs `cmd` with `stdin` piped in.
    pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Run {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run marqo-base");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        Run::from(child.wait_with_output().expect("wait for marqo-base"))
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run marqo-base");
        Run::from(out)
    }
}

/// The executable of a CPython 3.9 of the host: `python3.9` on `PATH` if it runs (a pyenv
/// shim may not), else one of pyenv's versions.
pub fn host_python39() -> Option<PathBuf> {
    let probe = |program: &Path| {
        let out = Command::new(program)
            .args(["-c", "import sys; assert sys.version_info[:2] == (3, 9); print(sys.executable)"])
            .output()
            .ok()?;
        let exe = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !exe.trim().is_empty()).then(|| PathBuf::from(exe.trim()))
    };
    if let Some(found) = probe(Path::new("python3.9")) {
        return Some(found);
    }
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pyenv")))?;
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("3.9."))
        .map(|e| e.path().join("bin/python3.9"))
        .collect();
    versions.sort();
    versions.iter().rev().find_map(|python| probe(python))
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

/// A sandbox holding `examples/quickstart` (manifest, requirements, committed lock), for the
/// tests that build it from the live index and mirror; `None`, with a note, when
/// `MARQO_BASE_SKIP_LIVE=1`.
pub fn live_quickstart() -> Option<TestContext> {
    if std::env::var_os("MARQO_BASE_SKIP_LIVE").is_some_and(|v| v == "1") {
        test_support::say_skipped(
            "a test of the live index and mirror (the quickstart)",
            "MARQO_BASE_SKIP_LIVE=1",
        );
        return None;
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    let ctx = TestContext::new();
    for name in ["marqo-base.toml", "requirements.in", "marqo-base.lock"] {
        ctx.write(name, &std::fs::read_to_string(example.join(name)).expect("read the quickstart"));
    }
    Some(ctx)
}

/// Checks `doc` against `docs/json/NAME.schema.json` with the `jsonschema` validator (a
/// tool we did not write), installed once per test process into a throwaway venv from the
/// host's index. With `MARQO_BASE_SKIP_LIVE=1` (no index to install from) only the document's
/// `schema` field is checked, with a note.
pub fn validate_json(name: &str, doc: &str) {
    use std::sync::OnceLock;
    static VENV: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    let value: serde_json::Value =
        serde_json::from_str(doc).unwrap_or_else(|e| panic!("not JSON ({e}): {doc}"));
    assert_eq!(value["schema"], format!("marqo-base.{name}/1"), "{doc}");
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../docs/json/{name}.schema.json"));
    let venv = VENV.get_or_init(|| {
        if std::env::var_os("MARQO_BASE_SKIP_LIVE").is_some_and(|v| v == "1") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let venv = dir.path().join("venv");
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().expect("python3 -m venv");
        assert!(ok.success(), "python3 -m venv failed");
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "jsonschema==4.23.0"])
            .output()
            .expect("pip install jsonschema");
        assert!(pip.status.success(), "pip install jsonschema: {}", String::from_utf8_lossy(&pip.stderr));
        let python = venv.join("bin/python");
        Some((dir, python))
    });
    let Some((_, python)) = venv else {
        test_support::say_skipped(
            &format!("the check of {name} JSON against its schema"),
            "MARQO_BASE_SKIP_LIVE=1",
        );
        return;
    };
    let script = "import json, sys, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  jsonschema.Draft202012Validator.check_schema(schema)\n\
                  jsonschema.Draft202012Validator(schema).validate(json.loads(sys.stdin.read()))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .arg(&schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the validator");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), doc.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{name}: {}\n{doc}", String::from_utf8_lossy(&out.stderr));
}
