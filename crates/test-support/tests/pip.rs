//! Cross-check with the real pip: it resolves, downloads, builds and installs what the
//! builders publish. pip is required (`./test.sh` installs it): without it these tests fail.

use std::path::Path;
use std::process::{Command, Output};

use test_support::{Index, Sdist, Wheel};

/// `python3 -m pip <subcommand> <args>` (`args[0]` is the subcommand) isolated from this
/// machine's pip configuration. Panics when pip is missing: `./test.sh` installs it.
fn pip(args: &[&str]) -> Command {
    let available =
        Command::new("python3").args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success());
    assert!(
        available,
        "`python3 -m pip --version` failed: run the tests through ./test.sh, which installs pip"
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "pip", args[0], "--no-cache-dir", "--disable-pip-version-check"])
        .args(&args[1..])
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env_remove("PIP_CONSTRAINT")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run pip");
    eprintln!(
        "--- {cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn pip_download_resolves_wheels_over_json_and_pep658() {
    let index = Index::new().pep658(true);
    Wheel::new("demo-lib", "1.0").publish(&index);
    Wheel::new("demo-lib", "1.1").requires_python(">=3.6").publish(&index);
    Wheel::new("demo-lib", "1.2").yanked("broken").publish(&index);
    Wheel::new("demo-lib", "1.3").requires_python("<3").publish(&index);
    Wheel::new("demo-lib", "1.4").tag("cp27-cp27m-manylinux1_x86_64").publish(&index);
    Wheel::new("demo-app", "2.0")
        .requires("demo-lib>=1.1")
        .requires("absent; python_version < '3'")
        .publish(&index);
    let server = index.serve();
    let dl = tempfile::tempdir().unwrap();
    let mut cmd = pip(&["download", "--isolated", "--index-url", &server.url(), "-d"]);
    let out = run(cmd.arg(dl.path()).arg("demo-app"));
    assert!(out.status.success());
    assert_eq!(listing(dl.path()), ["demo_app-2.0-py3-none-any.whl", "demo_lib-1.1-py3-none-any.whl"]);
    assert_eq!(server.count("/files/demo_lib-1.1-py3-none-any.whl.metadata"), 1, "{:?}", server.requests());
}

#[test]
fn pip_builds_dynamic_sdist_metadata_with_the_in_tree_backend() {
    let index = Index::new().json(false);
    Wheel::new("helper", "1.0").file("helper/__init__.py", "").publish(&index);
    Wheel::new("hook-dep", "1.0").file("hook_dep/__init__.py", "").publish(&index);
    Wheel::new("demo-lib", "1.0").publish(&index);
    Wheel::new("extra-dep", "3.0").publish(&index);
    Sdist::new("dyn-pkg", "0.1")
        .requires("demo-lib")
        .dynamic("Requires-Dist")
        .build_requires_dist("extra-dep>=3")
        .build_requires("helper")
        .hook_build_requires("hook-dep")
        .publish(&index);
    let server = index.serve();
    let dl = tempfile::tempdir().unwrap();
    let log = dl.path().join("backend.log");
    let mut cmd = pip(&["download", "--isolated", "--index-url", &server.url(), "-d"]);
    let out = run(cmd.arg(dl.path()).arg("dyn-pkg").env("TEST_BACKEND_LOG", &log));
    assert!(out.status.success());
    assert_eq!(
        listing(dl.path()),
        [
            "backend.log",
            "demo_lib-1.0-py3-none-any.whl",
            "dyn_pkg-0.1.tar.gz",
            "extra_dep-3.0-py3-none-any.whl"
        ]
    );
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("get_requires_for_build_wheel dyn-pkg 0.1\n"), "{log}");
    assert!(log.contains("prepare_metadata_for_build_wheel dyn-pkg 0.1\n"), "{log}");
    assert_eq!(server.count("/files/hook_dep-1.0"), 1, "hook requirement installed");
}

#[test]
fn build_requirements_are_imported_so_constraints_matter() {
    let index = Index::new();
    Wheel::new("helper", "1.0").file("helper/__init__.py", "").publish(&index);
    Wheel::new("helper", "2.0")
        .file("helper/__init__.py", "raise ImportError('helper 2 breaks the build')\n")
        .publish(&index);
    Sdist::new("needs-helper", "1.0").metadata_version("2.1").build_requires("helper").publish(&index);
    let server = index.serve();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = pip(&["download", "--index-url", &server.url(), "-d"]);
    let out = run(cmd.arg(dir.path().join("dl")).arg("needs-helper"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs the module 'helper': helper 2 breaks the build"), "{stderr}");

    let constraints = dir.path().join("constraints.txt");
    std::fs::write(&constraints, "helper<2\n").unwrap();
    let mut cmd = pip(&["download", "--index-url", &server.url(), "-d"]);
    let out = run(cmd.arg(dir.path().join("dl")).arg("needs-helper").env("PIP_CONSTRAINT", &constraints));
    assert!(out.status.success());
    assert_eq!(server.count("/files/helper-1.0"), 1);
}

#[test]
fn pip_installs_a_wheel_with_a_console_script() {
    let index = Index::new();
    let name = Wheel::new("hello-tool", "1.0")
        .file("hello_tool/__init__.py", "def main():\n    print('hello from wheel')\n")
        .entry_point("console_scripts", "hello-tool", "hello_tool:main")
        .publish(&index);
    let target = tempfile::tempdir().unwrap();
    let mut cmd = pip(&["install", "--isolated", "--no-deps", "--no-index", "--target"]);
    let out = run(cmd.arg(target.path()).arg(index.file_path(&name)));
    assert!(out.status.success());
    let record = std::fs::read_to_string(target.path().join("hello_tool-1.0.dist-info/RECORD")).unwrap();
    assert!(record.contains("hello_tool/__init__.py,sha256="), "{record}");
    let script =
        Command::new(target.path().join("bin/hello-tool")).env("PYTHONPATH", target.path()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&script.stdout), "hello from wheel\n");
}

#[test]
fn pip_installs_a_wheel_built_from_an_sdist() {
    let index = Index::new();
    Sdist::new("built-tool", "0.3")
        .file("built_tool/__init__.py", "def main():\n    print('hello from sdist')\n")
        .entry_point("console_scripts", "built-tool", "built_tool:main")
        .publish(&index);
    let server = index.serve();
    let target = tempfile::tempdir().unwrap();
    let log = target.path().join("backend.log");
    let mut cmd = pip(&["install", "--isolated", "--no-deps", "--index-url", &server.url(), "--target"]);
    let out = run(cmd.arg(target.path()).arg("built-tool").env("TEST_BACKEND_LOG", &log));
    assert!(out.status.success());
    assert!(std::fs::read_to_string(log).unwrap().contains("build_wheel built-tool 0.3\n"));
    let script =
        Command::new(target.path().join("bin/built-tool")).env("PYTHONPATH", target.path()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&script.stdout), "hello from sdist\n");
}

#[test]
fn pip_find_links_and_file_index() {
    let index = Index::new();
    Wheel::new("demo-lib", "1.0").publish(&index);
    Wheel::new("demo-app", "2.0").requires("demo-lib").publish(&index);
    let server = index.serve();
    let links = [index.find_links_dir().display().to_string(), server.find_links_url()];
    for link in &links {
        let dl = tempfile::tempdir().unwrap();
        let mut cmd = pip(&["download", "--isolated", "--no-index", "--find-links", link, "-d"]);
        assert!(run(cmd.arg(dl.path()).arg("demo-app")).status.success());
        assert_eq!(listing(dl.path()), ["demo_app-2.0-py3-none-any.whl", "demo_lib-1.0-py3-none-any.whl"]);
    }
    assert_eq!(server.count("/files/demo_"), 2, "{:?}", server.requests());

    let dl = tempfile::tempdir().unwrap();
    let mut cmd = pip(&["download", "--isolated", "--index-url", &index.file_url(), "-d"]);
    assert!(run(cmd.arg(dl.path()).arg("Demo_App")).status.success());
    assert_eq!(listing(dl.path()).len(), 2);
}
