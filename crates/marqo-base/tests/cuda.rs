//! `marqo-base compile` with Marqo's headline case: the torch family from a CUDA index shaped
//! like PyTorch's (static HTML, `%2B` in hrefs, `linux_x86_64` wheels, no sizes, upload times
//! or PEP 658 metadata) next to a generated default index, both served on 127.0.0.1. Index
//! strategies, `--only-binary`/`--no-binary`/`--prefer-binary`, the `--exclude-newer` hint
//! and the index options written into the output, checked by pip itself.

mod common;

use common::{option_lines, pins, TestContext};
use test_support::{publish_default_torch, torch_cu116_index, Index, Sdist, Wheel};

/// Marqo's torch lines, as its requirements.in has them, with the CUDA index `cuda`.
fn marqo_torch_lines(cuda: &str) -> String {
    format!(
        "--extra-index-url {cuda}\n\
         torch==1.13.1+cu116; platform_machine == \"x86_64\"\n\
         torchaudio==0.13.1; platform_machine == \"x86_64\"\n\
         torchvision==0.14.1+cu116; platform_machine == \"x86_64\"\n\
         torch==1.13.1; platform_machine == \"arm64\" or platform_machine == \"aarch64\"\n\
         torchaudio==0.13.1; platform_machine == \"arm64\" or platform_machine == \"aarch64\"\n\
         torchvision==0.14.1; platform_machine == \"arm64\" or platform_machine == \"aarch64\"\n"
    )
}

fn compile_both<'a>(extra: &[&'a str], default: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "compile",
        "requirements.in",
        "--python",
        "3.9",
        "--platform",
        "linux/amd64",
        "--platform",
        "linux/arm64",
        "-o",
        "{arch}-requirements.txt",
        "--index-url",
        default,
    ];
    args.extend_from_slice(extra);
    args
}

fn need_pip() {
    let ok = std::process::Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "`python3 -m pip` does not run: ./test.sh installs pip");
}

/// `pip install --dry-run -r FILE` for a target platform, with no index given but the
/// file's own option lines (`--isolated`: no pip configuration, no environment).
fn pip_dry_run(ctx: &TestContext, file: &str, platforms: &[&str]) -> String {
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-m", "pip", "install", "--isolated", "--no-cache-dir", "--dry-run", "--ignore-installed"])
        .args(["--python-version", "3.9", "--implementation", "cp", "--only-binary", ":all:"])
        .args(["--target", "pip-target", "--no-deps", "-r", file]);
    for p in platforms {
        cmd.args(["--platform", p]);
    }
    let out = cmd
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .current_dir(ctx.work())
        .output()
        .expect("run pip");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "pip refused {file}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn marqo_cuda_lines_compile_for_both_platforms_with_best_match() {
    let default = Index::new();
    publish_default_torch(&default);
    let cuda = torch_cu116_index();
    let (default, cuda) = (default.serve(), cuda.serve());
    let ctx = TestContext::new();
    ctx.write("requirements.in", &marqo_torch_lines(&cuda.url()));
    ctx.run(&compile_both(&["--index-strategy", "unsafe-best-match"], &default.url())).success();

    let amd = ctx.read("amd64-requirements.txt");
    let arm = ctx.read("arm64-requirements.txt");
    // Marqo's committed amd64 file: the +cu116 builds, torchaudio's included (0.13.1+cu116
    // sorts above 0.13.1 and `==0.13.1` ignores local labels), and no nvidia-* packages.
    assert_eq!(
        pins(&amd),
        [
            "idna==2.8",
            "numpy==1.23.4",
            "pillow==10.4.0",
            "requests==2.28.1",
            "torch==1.13.1+cu116",
            "torchaudio==0.13.1+cu116",
            "torchvision==0.14.1+cu116",
            "typing-extensions==4.12.2",
        ],
        "{amd}"
    );
    assert_eq!(
        pins(&arm),
        [
            "idna==2.8",
            "numpy==1.23.4",
            "pillow==10.4.0",
            "requests==2.28.1",
            "torch==1.13.1",
            "torchaudio==0.13.1",
            "torchvision==0.14.1",
            "typing-extensions==4.12.2",
        ],
        "{arm}"
    );
    // The index options, as pip-compile writes them, so `pip install -r` finds the files.
    let options = [format!("--index-url {}", default.url()), format!("--extra-index-url {}", cuda.url())];
    assert_eq!(option_lines(&amd), options);
    assert_eq!(option_lines(&arm), options);
    // Metadata came from range requests into the wheels: the page has no PEP 658 files.
    assert!(cuda.count("/files/torch-1.13.1+cu116-cp39-cp39-linux_x86_64.whl") >= 1, "{:?}", cuda.requests());
    assert_eq!(cuda.count("/files/torch-1.13.1+cu116-cp39-cp39-win_amd64.whl"), 0);

    need_pip();
    let plan = pip_dry_run(&ctx, "amd64-requirements.txt", &["linux_x86_64", "manylinux2014_x86_64"]);
    assert!(plan.contains("torch-1.13.1+cu116"), "{plan}");
    pip_dry_run(&ctx, "arm64-requirements.txt", &["manylinux2014_aarch64"]);
    // Stable: a second run changes nothing, and --check agrees.
    let url = default.url();
    let mut args = compile_both(&["--index-strategy", "unsafe-best-match"], &url);
    ctx.run(&args).success();
    assert_eq!(ctx.read("amd64-requirements.txt"), amd);
    args.push("--check");
    ctx.run(&args).success();
}

#[test]
fn first_index_explains_the_version_it_hides() {
    let default = Index::new();
    publish_default_torch(&default);
    let cuda = torch_cu116_index();
    let (default, cuda) = (default.serve(), cuda.serve());
    let ctx = TestContext::new();
    ctx.write("requirements.in", &marqo_torch_lines(&cuda.url()));
    let run = ctx.run(&compile_both(&[], &default.url()));
    run.code(2);
    eprintln!("{}", run.stderr);
    assert!(run.stderr.contains("no solution for linux/amd64"), "{}", run.stderr);
    assert!(run.stderr.contains("1.13.1+cu116"), "{}", run.stderr);
    assert!(run.stderr.contains(&cuda.url()), "{}", run.stderr);
    assert!(run.stderr.contains("--index-strategy unsafe-best-match"), "{}", run.stderr);
}

#[test]
fn a_cuda_index_alone_serves_linux_wheels() {
    let cuda = torch_cu116_index();
    // What torchvision needs besides torch, on the same index (PyTorch's has them too).
    publish_default_torch_deps(&cuda);
    let cuda = cuda.serve();
    let ctx = TestContext::new();
    ctx.write("requirements.in", "torch==1.13.1+cu116\ntorchvision==0.14.1\ntorchaudio==0.13.1\n");
    ctx.run(&[
        "compile",
        "requirements.in",
        "--python",
        "3.9",
        "--platform",
        "linux/amd64",
        "--index-url",
        &cuda.url(),
    ])
    .success();
    let out = ctx.read("requirements.txt");
    assert!(pins(&out).contains(&"torch==1.13.1+cu116".to_string()), "{out}");
    assert!(pins(&out).contains(&"torchvision==0.14.1+cu116".to_string()), "{out}");
    assert!(pins(&out).contains(&"torchaudio==0.13.1+cu116".to_string()), "{out}");
    assert_eq!(option_lines(&out), [format!("--index-url {}", cuda.url())]);
    // The same index for arm64 has no torch at all: a linux_x86_64 wheel is x86_64 only.
    let run = ctx.run(&[
        "compile",
        "requirements.in",
        "--python",
        "3.9",
        "--platform",
        "linux/arm64",
        "--index-url",
        &cuda.url(),
        "-o",
        "arm.txt",
    ]);
    run.code(2);
    assert!(run.stderr.contains("torch"), "{}", run.stderr);
}

fn publish_default_torch_deps(index: &Index) {
    for name in ["numpy", "pillow"] {
        Wheel::new(name, "10.4.0").tag("cp39-cp39-linux_x86_64").publish(index);
    }
    Wheel::new("typing-extensions", "4.12.2").publish(index);
    Wheel::new("requests", "2.28.1").publish(index);
}

#[test]
fn index_strategies_pick_as_uv_names_them() {
    let first = Index::new();
    Wheel::new("shared", "1.0").publish(&first);
    Wheel::new("shared", "1.5").publish(&first);
    let second = Index::new();
    Wheel::new("shared", "2.0").publish(&second);
    Wheel::new("shared", "1.5").tag("cp39-cp39-manylinux2014_x86_64").publish(&second);
    let (s1, s2) = (first.serve(), second.serve());
    let ctx = TestContext::new();
    let compile = |strategy: &str, spec: &str| {
        ctx.write("requirements.in", &format!("shared{spec}\n"));
        let run = ctx.run(&[
            "compile",
            "requirements.in",
            "--python",
            "3.9",
            "--platform",
            "linux/amd64",
            "--index-url",
            &s1.url(),
            "--extra-index-url",
            &s2.url(),
            "--index-strategy",
            strategy,
            "--generate-hashes",
            "--upgrade",
        ]);
        run.success();
        ctx.read("requirements.txt")
    };
    // first-index: the first index that has the name serves it all.
    assert_eq!(pins(&compile("first-index", "")), ["shared==1.5"]);
    // unsafe-first-match: the first index's versions first, later ones when none fits.
    assert_eq!(pins(&compile("unsafe-first-match", "")), ["shared==1.5"]);
    assert_eq!(pins(&compile("unsafe-first-match", ">1.5")), ["shared==2.0"]);
    // ... and a version on both comes from the first alone (one hash).
    let first_match = compile("unsafe-first-match", "==1.5");
    assert_eq!(first_match.matches("--hash=sha256:").count(), 1, "{first_match}");
    // unsafe-best-match: all merged, the newest wins; the same version's files from both.
    assert_eq!(pins(&compile("unsafe-best-match", "")), ["shared==2.0"]);
    let best = compile("unsafe-best-match", "==1.5");
    assert_eq!(best.matches("--hash=sha256:").count(), 2, "{best}");
    let bad = ctx.run(&["compile", "requirements.in", "--index-strategy", "best"]);
    bad.code(2);
    assert!(bad.stderr.contains("unsafe-best-match"), "{}", bad.stderr);
}

#[test]
fn exclude_newer_names_the_index_without_upload_times() {
    let default = Index::new();
    publish_default_torch(&default);
    let cuda = torch_cu116_index();
    let (default, cuda) = (default.serve(), cuda.serve());
    let ctx = TestContext::new();
    ctx.write("requirements.in", &marqo_torch_lines(&cuda.url()));
    let cutoff = ["--index-strategy", "unsafe-best-match", "--exclude-newer", "2025-05-30"];
    let run = ctx.run(&compile_both(&cutoff, &default.url()));
    run.code(2);
    assert!(run.stderr.contains(&format!("{} publishes no upload times", cuda.url())), "{}", run.stderr);
    assert!(run.stderr.contains("--exclude-newer-package torch=false"), "{}", run.stderr);

    let mut exempt = cutoff.to_vec();
    for flag in ["torch=false", "torchvision=false", "torchaudio=false"] {
        exempt.extend(["--exclude-newer-package", flag]);
    }
    ctx.run(&compile_both(&exempt, &default.url())).success();
    let amd = ctx.read("amd64-requirements.txt");
    assert!(pins(&amd).contains(&"torch==1.13.1+cu116".to_string()), "{amd}");
    assert!(amd.contains("--exclude-newer-package torch=false"), "the header names the exemption:\n{amd}");
    // Succeeding without an index's undated files still says so: torchaudio not exempt
    // resolves to the default index's plain build, with a warning naming the CUDA index.
    let partial: Vec<&str> = exempt[..exempt.len() - 2].to_vec();
    let run = ctx.run(&compile_both(&partial, &default.url()));
    run.success();
    assert!(pins(&ctx.read("amd64-requirements.txt")).contains(&"torchaudio==0.13.1".to_string()));
    assert!(
        run.stderr.contains(&format!("{} publishes no upload times", cuda.url()))
            && run.stderr.contains("--exclude-newer-package torchaudio=false"),
        "{}",
        run.stderr
    );
    // A package cut off on its own date: the default index's files are dated 2020-01-01.
    let mut early = exempt.clone();
    early.extend(["--exclude-newer-package", "typing-extensions=2019-01-01"]);
    let run = ctx.run(&compile_both(&early, &default.url()));
    run.code(2);
    assert!(run.stderr.contains("typing-extensions"), "{}", run.stderr);
    let bad = ctx.run(&compile_both(&["--exclude-newer-package", "torch"], &default.url()));
    bad.code(2);
    assert!(bad.stderr.contains("NAME=DATE"), "{}", bad.stderr);
}

/// `fmt` 2.0 is an sdist only (static metadata); 1.0 has a wheel.
fn format_index() -> Index {
    let index = Index::new();
    Wheel::new("fmt", "1.0").publish(&index);
    Sdist::new("fmt", "2.0").publish(&index);
    index
}

#[test]
fn only_binary_no_binary_and_prefer_binary() {
    let index = format_index();
    let server = index.serve();
    let url = server.url();
    let ctx = TestContext::new();
    let compile = |input: &str, flags: &[&str]| {
        ctx.write("requirements.in", input);
        let mut args =
            vec!["compile", "requirements.in", "--python", "3.9", "--platform", "linux/amd64", "-i", &url];
        args.extend_from_slice(flags);
        args.extend(["--no-emit-index-url", "--upgrade"]);
        let run = ctx.run(&args);
        run.success();
        ctx.read("requirements.txt")
    };
    assert_eq!(pins(&compile("fmt\n", &[])), ["fmt==2.0"]);
    let out = compile("fmt\n", &["--only-binary", ":all:"]);
    assert_eq!(pins(&out), ["fmt==1.0"]);
    assert_eq!(option_lines(&out), ["--only-binary :all:"]);
    let out = compile("--only-binary fmt\nfmt\n", &[]);
    assert_eq!(pins(&out), ["fmt==1.0"]);
    assert_eq!(option_lines(&out), ["--only-binary fmt"]);
    let out = compile("fmt\n", &["--prefer-binary"]);
    assert_eq!(pins(&out), ["fmt==1.0"]);
    assert_eq!(option_lines(&out), ["--prefer-binary"]);
    // --no-binary fmt leaves only the sdist: ==1.0 has none.
    ctx.write("requirements.in", "fmt==1.0\n");
    let run = ctx.run(&[
        "compile",
        "requirements.in",
        "--python",
        "3.9",
        "--platform",
        "linux/amd64",
        "-i",
        &server.url(),
        "--no-binary",
        "fmt",
    ]);
    run.code(2);
    assert!(run.stderr.contains("fmt"), "{}", run.stderr);
    // A name beats :all: of the other option, as in pip.
    let out = compile("fmt\n", &["--only-binary", ":all:", "--no-binary", "fmt"]);
    assert_eq!(pins(&out), ["fmt==2.0"]);
    let bad = ctx.run(&["compile", "requirements.in", "--only-binary", "not a name"]);
    bad.code(2);
}

#[test]
fn emitted_options_can_be_left_out() {
    let index = format_index();
    let server = index.serve();
    let ctx = TestContext::new();
    let links = ctx.work().join("links");
    std::fs::create_dir_all(&links).unwrap();
    ctx.write("requirements.in", "fmt\n");
    let links_str = links.display().to_string();
    let base =
        ["compile", "requirements.in", "--python", "3.9", "--platform", "linux/amd64", "-f", &links_str];
    let url = server.url();
    let mut with_index = base.to_vec();
    with_index.extend(["-i", &url]);
    ctx.run(&with_index).success();
    let out = ctx.read("requirements.txt");
    assert_eq!(option_lines(&out), [format!("--index-url {url}"), format!("--find-links {links_str}")]);
    let mut quiet = with_index.clone();
    quiet.extend(["--no-emit-index-url", "--no-emit-find-links"]);
    ctx.run(&quiet).success();
    assert_eq!(option_lines(&ctx.read("requirements.txt")), Vec::<String>::new());
    // Credentials in an index URL never reach the file.
    let secret = url.replace("http://", "http://user:s3cret@");
    let mut creds = base.to_vec();
    creds.extend(["-i", &secret]);
    ctx.run(&creds).success();
    let out = ctx.read("requirements.txt");
    assert!(!out.contains("s3cret") && !out.contains("user@"), "{out}");
}

#[test]
fn lock_takes_the_index_strategy_from_the_manifest() {
    let default = Index::new();
    publish_default_torch(&default);
    let cuda = torch_cu116_index();
    let (default, cuda) = (default.serve(), cuda.serve());
    let ctx = TestContext::new();
    ctx.write(
        "requirements.in",
        &format!("--index-url {}\n{}", default.url(), marqo_torch_lines(&cuda.url())),
    );
    let manifest = "[image]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
                    [python]\nversion = \"3.9\"\nrequirements = [\"requirements.in\"]\n";
    ctx.write("marqo-base.toml", manifest);
    let run = ctx.run(&["lock"]);
    run.code(2);
    assert!(run.stderr.contains("--index-strategy unsafe-best-match"), "{}", run.stderr);

    ctx.write("marqo-base.toml", &format!("{manifest}index_strategy = \"unsafe-best-match\"\n"));
    ctx.run(&["lock"]).success();
    let lock = ctx.read("marqo-base.lock");
    for (name, version, platform) in [
        ("torch", "1.13.1+cu116", "linux/amd64"),
        ("torchaudio", "0.13.1+cu116", "linux/amd64"),
        ("torch", "1.13.1", "linux/arm64"),
    ] {
        let entry = format!("name = \"{name}\"\nversion = \"{version}\"\nplatforms = [\"{platform}\"]\n");
        assert!(lock.contains(&entry), "{entry}\n{lock}");
    }
    assert!(!lock.contains("nvidia"), "{lock}");
    ctx.run(&["lock", "--check"]).success();
}
