//! Tests against the live package index this machine's pip uses. They are skipped (pass
//! with a note) when `MARQO_BASE_SKIP_LIVE=1`, which `.ci/run` sets when the index does not
//! answer. They use the host's pip configuration on purpose: that is how a user runs us.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{pins, Run};

fn skip() -> bool {
    if std::env::var_os("MARQO_BASE_SKIP_LIVE").is_some_and(|v| v == "1") {
        test_support::say_skipped("a test of the live package index", "MARQO_BASE_SKIP_LIVE=1");
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

/// `marqo-base compile INPUT` in `dir` (its own cache) for both platforms with Marqo's cutoff
/// and build constraints, writing `{arch}-requirements.txt`; `extra` flags go before INPUT.
fn compile_both(dir: &Path, input: &Path, extra: &[&str]) -> Run {
    let exclude_newer = std::fs::read_to_string(example("exclude-newer")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_marqo-base"))
        .current_dir(dir)
        .env("MARQO_BASE_CACHE_DIR", dir.join("cache"))
        .args(["compile", "--python", "3.9", "--platform", "linux/amd64", "--platform", "linux/arm64"])
        .args(["-o", "{arch}-requirements.txt", "--exclude-newer", exclude_newer.trim()])
        .args(extra)
        .arg("-b")
        .arg(example("build-constraints.txt"))
        .arg(input)
        .output()
        .unwrap();
    Run::from(out)
}

/// Marqo's own requirements.in, `--extra-index-url` line and `+cu116` pins as Marqo wrote
/// them, with that line pointed at a local stand-in of PyTorch's CUDA index (the torch family
/// with the real wheels' metadata): compiled for both platforms in one run with pip's index
/// merging, the pins are exactly those of both files Marqo committed.
#[test]
fn marqo_requirements_with_the_cuda_index() {
    if skip() {
        return;
    }
    let cuda = test_support::torch_cu116_index();
    let cuda = cuda.serve();
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(example("requirements.in")).unwrap();
    // Marqo's one `--extra-index-url` line (PyTorch's cu116 index) now names the stand-in.
    let extra: Vec<&str> = original.lines().filter(|l| l.starts_with("--extra-index-url ")).collect();
    assert!(matches!(extra.as_slice(), [line] if line.ends_with("/whl/cu116")), "{extra:?}");
    let input = original.replace(extra[0], &format!("--extra-index-url {}", cuda.url()));
    std::fs::write(dir.path().join("requirements.in"), input).unwrap();
    // The CUDA index publishes no upload times (static HTML): its packages are exempt.
    let strategy = ["--index-strategy", "unsafe-best-match", "--exclude-newer-package", "torch=false"];
    let exempt =
        ["--exclude-newer-package", "torchvision=false", "--exclude-newer-package", "torchaudio=false"];
    compile_both(dir.path(), Path::new("requirements.in"), &[&strategy[..], &exempt[..]].concat()).success();
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let reference =
        |name: &str| pin_set(&std::fs::read_to_string(example(&format!("reference/{name}"))).unwrap());
    for (ours, theirs) in [
        ("amd64-requirements.txt", "amd64-gpu-requirements.txt"),
        ("arm64-requirements.txt", "arm64-requirements.txt"),
    ] {
        let text = read(ours);
        let got = pin_set(&text);
        let want = reference(theirs);
        assert_eq!(
            got.symmetric_difference(&want).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "{ours} differs from Marqo's {theirs}"
        );
        assert!(text.contains(&format!("--extra-index-url {}\n", cuda.url())), "{text}");
    }
    assert!(reference("amd64-gpu-requirements.txt").contains("torchaudio==0.13.1+cu116"));
}

/// The flagship's requirements (torch from the default index) for both platforms in one run:
/// exactly Marqo's arm64 pins; for amd64 Marqo's pins with the plain torch family, plus what
/// the default index's x86_64 torch wheel adds (its `nvidia-*-cu11` packages, setuptools,
/// wheel).
#[test]
fn marqo_requirements_from_the_default_index() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    compile_both(dir.path(), &example("requirements-default-index.in"), &[]).success();
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
