//! Tests against the live package index this machine's pip uses. They are skipped (pass
//! with a note) when `MARQO_BASE_SKIP_LIVE=1`, which `.ci/run` sets when the index does not
//! answer. They use the host's pip configuration on purpose: that is how a user runs us.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::{pins, Run};

fn skip() -> bool {
    if std::env::var_os("MARQO_BASE_SKIP_LIVE").is_some_and(|v| v == "1") {
        eprintln!("MARQO_BASE_SKIP_LIVE=1: skipping a test that needs the live package index");
        return true;
    }
    false
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/marqo-base").join(name)
}

/// `name==version` of each pin; pip-compile copies markers from the input onto some lines
/// (`torch==1.13.1 ; platform_machine == "aarch64"`), which say nothing about the pin.
fn pin_set(text: &str) -> BTreeSet<String> {
    pins(text).iter().filter_map(|p| p.split_whitespace().next()).map(str::to_string).collect()
}

/// Marqo's requirements compiled for both platforms in one run reproduce what Marqo
/// committed: exactly for arm64; for amd64 apart from what the fixture's README lists (the
/// CUDA local versions, and what the default index's x86_64 torch wheel adds).
#[test]
fn marqo_fixture() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exclude_newer = std::fs::read_to_string(example("exclude-newer")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_marqo-base"))
        .current_dir(dir.path())
        .env("MARQO_BASE_CACHE_DIR", dir.path().join("cache"))
        .args(["compile", "--python", "3.9", "--platform", "linux/amd64", "--platform", "linux/arm64"])
        .args(["-o", "{arch}-requirements.txt", "--exclude-newer", exclude_newer.trim()])
        .arg("-b")
        .arg(example("build-constraints.txt"))
        .arg(example("requirements.in"))
        .output()
        .unwrap();
    Run::from(out).success();
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();

    let arm = pin_set(&read("arm64-requirements.txt"));
    let arm_ref = pin_set(&std::fs::read_to_string(example("reference/arm64-requirements.txt")).unwrap());
    assert_eq!(
        arm.symmetric_difference(&arm_ref).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "arm64 pins differ from Marqo's"
    );

    let amd = pin_set(&read("amd64-requirements.txt"));
    let amd_ref: BTreeSet<String> =
        pin_set(&std::fs::read_to_string(example("reference/amd64-gpu-requirements.txt")).unwrap())
            .into_iter()
            .map(|p| p.replace("+cu116", ""))
            .collect();
    let torch_extras: BTreeSet<String> = amd.difference(&amd_ref).cloned().collect();
    assert!(
        torch_extras
            .iter()
            .all(|p| p.starts_with("nvidia-") || p.starts_with("setuptools==") || p.starts_with("wheel==")),
        "amd64 has pins Marqo's file does not: {torch_extras:?}"
    );
    assert!(torch_extras.iter().any(|p| p.starts_with("nvidia-cudnn-cu11==")), "{torch_extras:?}");
    let missing: Vec<&String> = amd_ref.difference(&amd).collect();
    assert!(missing.is_empty(), "amd64 lacks Marqo's pins: {missing:?}");
}
