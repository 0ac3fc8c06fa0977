//! The command line itself: completion scripts, colors, what `--help` says about exits.

mod common;

use common::TestContext;

/// `completions bash` is a script bash accepts (`bash -n`) that completes our subcommands
/// and options; the other shells get a script too.
#[test]
fn completion_scripts_for_each_shell() {
    let ctx = TestContext::new();
    let run = ctx.run(&["completions", "bash"]);
    run.success();
    let script = ctx.write("marqo-base.bash", &run.stdout);
    let check = std::process::Command::new("bash").arg("-n").arg(&script).output().expect("run bash -n");
    assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));
    for word in ["compile", "lock", "build", "push", "pull", "--exclude-newer", "--manifest", "--color"] {
        assert!(run.stdout.contains(word), "{word} is not completed:\n{}", run.stdout);
    }
    // Sourced in an interactive-less bash, it registers a completion for the command.
    let registered = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p marqo-base", script.display()))
        .output()
        .expect("run bash");
    assert!(registered.status.success(), "{}", String::from_utf8_lossy(&registered.stderr));
    assert!(String::from_utf8_lossy(&registered.stdout).contains("marqo-base"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let run = ctx.run(&["completions", shell]);
        run.success();
        assert!(
            run.stdout.contains("compile") && run.stdout.contains("exclude-newer"),
            "{shell}: {}",
            run.stdout
        );
    }
    ctx.run(&["completions", "tcsh"]).code(2);
}

/// Errors are colored only when asked (`--color always`, which beats `NO_COLOR`) or on a
/// terminal without `NO_COLOR`; a pipe gets plain text by default.
#[test]
fn colors_follow_the_flag() {
    let ctx = TestContext::new();
    let base = ["compile", "missing.in", "--python", "3.9", "--platform", "linux/amd64"];
    let with = |extra: &[&str], no_color: bool| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let mut command = ctx.command(&args);
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let run: common::Run = command.output().expect("run marqo-base").into();
        run.code(2);
        run.stderr
    };
    let plain = with(&[], false);
    assert!(plain.starts_with("error: ") && !plain.contains('\u{1b}'), "{plain}");
    let always = with(&["--color", "always"], false);
    assert!(always.starts_with("\u{1b}[1;31merror:\u{1b}[0m "), "{always:?}");
    assert!(always.contains("missing.in"), "{always}");
    assert!(with(&["--color", "always"], true).contains('\u{1b}'), "--color always beats NO_COLOR");
    assert!(!with(&["--color", "never"], false).contains('\u{1b}'));
    assert!(!with(&["--color=auto"], true).contains('\u{1b}'));
    let bad = ctx.run(&["--color", "sometimes", "compile", "x.in"]);
    bad.code(2);
    assert!(
        bad.stderr.contains("auto") && bad.stderr.contains("always") && bad.stderr.contains("never"),
        "{}",
        bad.stderr
    );
}

/// Every exit code is in `--help`, of the command and of each subcommand.
#[test]
fn help_documents_the_exit_codes() {
    let ctx = TestContext::new();
    for args in [&["--help"][..], &["compile", "--help"], &["push", "--help"]] {
        let run = ctx.run(args);
        run.success();
        for code in ["Exit codes:", "  0 ", "  1 ", "  2 ", "  3 ", "  101 ", "  130 "] {
            assert!(run.stdout.contains(code), "{args:?} --help lacks `{code}`:\n{}", run.stdout);
        }
    }
}

/// The example workflows are valid GitHub Actions workflows (checked with `check-jsonschema`
/// and its copy of the schema GitHub's editors use, in a throwaway venv), and every option
/// they pass to marqo-base is one its `--help` lists for that command.
#[test]
fn example_workflows_are_valid_and_pass_real_options() {
    let ctx = TestContext::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/github-actions");
    let mut workflows: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    workflows.sort();
    assert!(workflows.len() >= 2, "{workflows:?}");
    let mut checked = 0;
    for workflow in &workflows {
        let text = std::fs::read_to_string(workflow).unwrap();
        // Shell lines joined where YAML folds (`>-`) or the shell continues (`\`) them.
        let joined = text.replace("\\\n", " ").replace(">-\n", "\n");
        let mut lines: Vec<String> = Vec::new();
        for line in joined.lines() {
            let trimmed = line.trim();
            match lines.last_mut() {
                Some(last) if last.starts_with("marqo-base ") && trimmed.starts_with("--") => {
                    last.push(' ');
                    last.push_str(trimmed);
                }
                _ => lines
                    .push(trimmed.trim_start_matches("run: ").trim_start_matches("pinned=$(").to_string()),
            }
        }
        for line in lines.iter().filter(|l| l.starts_with("marqo-base ")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let command = words[1];
            if command.starts_with('-') {
                continue;
            }
            let help = ctx.run(&[command, "--help"]);
            help.success();
            for option in words.iter().filter(|w| w.starts_with("--")) {
                let option = option.split('=').next().unwrap().trim_end_matches(')');
                assert!(
                    help.stdout.contains(&format!("{option} "))
                        || help.stdout.contains(&format!("{option}\n")),
                    "{}: `marqo-base {command}` has no {option}:\n{line}",
                    workflow.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} options found");
    if std::env::var_os("MARQO_BASE_SKIP_LIVE").is_some_and(|v| v == "1") {
        test_support::say_skipped(
            "the check of the workflows against GitHub's schema",
            "MARQO_BASE_SKIP_LIVE=1",
        );
        return;
    }
    let venv = ctx.dir.path().join("venv");
    let ok = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap();
    assert!(ok.success());
    let pip = std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "check-jsonschema==0.33.3"])
        .output()
        .unwrap();
    assert!(pip.status.success(), "{}", String::from_utf8_lossy(&pip.stderr));
    let check = std::process::Command::new(venv.join("bin/check-jsonschema"))
        .args(["--builtin-schema", "vendor.github-workflows"])
        .args(&workflows)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
