//! `marqo-base compile`: requirements.in -> pinned requirements.txt, for every target.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use pep_types::{Arch, PackageName, Req, Target, Version, VersionOrUrl};
use py_resolver::{render_target, render_universal, OutputOptions, RequirementSet, ResolveOptions};
use pypi_client::{IndexArgs, IndexStrategy};

use crate::cli::CompileArgs;
use crate::diagnostics::CliError;
use crate::printer::Printer;
use ops::python::{
    open_source, parse_date, parse_exclude_newer_packages, resolve_with_progress, SourceSetup,
};

/// Where each target's output goes.
struct Plan {
    targets: Vec<Arc<Target>>,
    /// One path per target, or one path for all with `--universal`.
    outputs: Vec<PathBuf>,
}

pub fn exec(args: CompileArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let set = RequirementSet::read_files(&args.src_files, &args.constraints)
        .map_err(|e| CliError::from_error(e.to_string(), e))?;
    let plan = plan(&args)?;
    let (upgrade, extra_constraints) = upgrade_packages(&args.upgrade_package)?;
    let index_strategy = IndexStrategy::from_str(&args.index_strategy).map_err(CliError::user)?;
    let mut format = set.format.clone();
    for value in &args.only_binary {
        format.only_binary(value).map_err(|e| CliError::user(format!("--only-binary: {e}")))?;
    }
    for value in &args.no_binary {
        format.no_binary(value).map_err(|e| CliError::user(format!("--no-binary: {e}")))?;
    }
    let options = ResolveOptions {
        prereleases: args.pre || set.pre,
        upgrade_all: args.upgrade,
        upgrade,
        extra_constraints,
        index_strategy,
        format: format.clone(),
        prefer_binary: args.prefer_binary || set.prefer_binary,
    };
    let preferences = read_preferences(&plan, &args)?;

    let index_args = IndexArgs {
        index_url: args.index_url.clone().or(set.index_url.clone()),
        extra_index_urls: args.extra_index_url.iter().chain(&set.extra_index_urls).cloned().collect(),
        find_links: args.find_links.iter().chain(&set.find_links).cloned().collect(),
        no_index: args.no_index || set.no_index,
        cert: args.cert.clone(),
    };
    let setup = SourceSetup {
        index_args,
        exclude_newer: args.exclude_newer.as_deref().map(parse_date).transpose()?,
        build_constraints: args.build_constraints.clone(),
        no_build: args.no_build,
        offline: args.offline,
        refresh: args.refresh,
        pinned: Vec::new(),
        index_strategy,
        exclude_newer_packages: parse_exclude_newer_packages(&args.exclude_newer_package)?,
        exclude_newer_exempt: Vec::new(),
    };
    let (runtime, source) = open_source(setup, &plan.targets)?;
    let mut pip_options =
        source.client().config().requirements_options(!args.no_emit_index_url, !args.no_emit_find_links);
    pip_options.extend(format.pip_lines());
    if args.prefer_binary || set.prefer_binary {
        pip_options.push("--prefer-binary".to_string());
    }
    let resolutions = resolve_with_progress(&source, &plan.targets, &set, &preferences, &options, printer)?;
    drop(runtime);

    let out_opts = OutputOptions {
        command: header_command(&args),
        annotate: !args.no_annotate,
        hashes: args.generate_hashes,
        strip_extras: !args.no_strip_extras,
        pip_options,
    };
    let rendered: Vec<(PathBuf, String)> = if args.universal {
        vec![(plan.outputs[0].clone(), render_universal(&resolutions, &out_opts))]
    } else {
        plan.outputs.iter().cloned().zip(resolutions.iter().map(|r| render_target(r, &out_opts))).collect()
    };
    if args.check {
        return check(&rendered, printer);
    }
    for (path, text) in &rendered {
        write_atomic(path, text.as_bytes())
            .map_err(|e| CliError::from_error(format!("cannot write `{}`", path.display()), e))?;
        printer.status(format!("Wrote {}", path.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Targets from --platform x --python, and the output path of each.
fn plan(args: &CompileArgs) -> Result<Plan, CliError> {
    let python = match &args.python {
        Some(p) => p.clone(),
        None => host_python_version()?,
    };
    let mut arches = Vec::new();
    if args.platforms.is_empty() {
        arches.push(Arch::host().ok_or_else(|| {
            CliError::user("this host's architecture is not one we resolve for")
                .with_hint("pass --platform linux/amd64 or linux/arm64")
        })?);
    }
    for p in &args.platforms {
        let arch = Arch::from_str(p).map_err(|e| CliError::user(e.to_string()))?;
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    let targets = arches
        .into_iter()
        .map(|a| Target::new(a, &python, &args.glibc).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::user(e.to_string()))?;
    let template = match &args.output_file {
        Some(o) => o.clone(),
        None => default_output(&args.src_files),
    };
    let is_template = ["{arch}", "{platform}", "{python}"].iter().any(|k| template.contains(k));
    let outputs = if args.universal {
        if is_template {
            return Err(CliError::user(
                "--universal writes one file; the output name must not be a template",
            ));
        }
        vec![PathBuf::from(template)]
    } else if targets.len() > 1 && !is_template {
        return Err(CliError::user(format!("{} targets but one output file `{template}`", targets.len()))
            .with_hint(
            "use a template such as -o '{arch}-requirements.txt', or --universal for one file with markers",
        ));
    } else {
        targets
            .iter()
            .map(|t| {
                PathBuf::from(
                    template
                        .replace("{arch}", t.arch.name())
                        .replace("{platform}", &t.platform().replace('/', "-"))
                        .replace("{python}", &t.python_short()),
                )
            })
            .collect()
    };
    Ok(Plan { targets, outputs })
}

/// pip-compile's default: `requirements.in` -> `requirements.txt` beside it.
fn default_output(src: &[PathBuf]) -> String {
    match src {
        [one] if one.extension().is_some_and(|e| e == "in") => {
            one.with_extension("txt").display().to_string()
        }
        _ => "requirements.txt".to_string(),
    }
}

fn host_python_version() -> Result<String, CliError> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        _ => Err(CliError::user("no --python given and no python3 on this host to ask")
            .with_hint("pass the target version, e.g. --python 3.9")),
    }
}

/// `-P name` upgrades one package; `-P name==1.2` also constrains it to that version.
fn upgrade_packages(specs: &[String]) -> Result<(BTreeSet<PackageName>, Vec<Req>), CliError> {
    let mut names = BTreeSet::new();
    let mut constraints = Vec::new();
    for spec in specs {
        let req = Req::from_str(spec).map_err(|e| {
            CliError::user(format!("bad -P value `{spec}`: {}", e.to_string().lines().next().unwrap_or("")))
        })?;
        names.insert(req.name.clone());
        if matches!(req.version_or_url, Some(VersionOrUrl::VersionSpecifier(_))) {
            constraints.push(req);
        }
    }
    Ok((names, constraints))
}

/// Existing pins to keep, per target: from that target's file, or the universal file's
/// lines whose markers hold for it.
fn read_preferences(plan: &Plan, args: &CompileArgs) -> Result<Vec<HashMap<PackageName, Version>>, CliError> {
    let mut out = Vec::new();
    for (i, target) in plan.targets.iter().enumerate() {
        let path = if args.universal { &plan.outputs[0] } else { &plan.outputs[i] };
        let mut prefs = HashMap::new();
        if !args.upgrade && path.exists() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::from_error(format!("cannot read `{}`", path.display()), e))?;
            let base = path.parent().unwrap_or(Path::new("."));
            let set = RequirementSet::parse_str(&text, &path.display().to_string(), base)
                .map_err(|e| {
                    CliError::from_error(format!("cannot read the existing pins in `{}`", path.display()), e)
                })
                .map_err(|e| e.with_hint("fix or delete the file, or pass --upgrade"))?;
            for entry in set.requirements {
                if !entry.req.marker.evaluate(target.markers(), &[]) {
                    continue;
                }
                if let Some(VersionOrUrl::VersionSpecifier(spec)) = &entry.req.version_or_url {
                    if let [one] = spec.iter().collect::<Vec<_>>().as_slice() {
                        if *one.operator() == pep_types::Operator::Equal {
                            prefs.insert(entry.req.name.clone(), one.version().clone());
                        }
                    }
                }
            }
        }
        out.push(prefs);
    }
    Ok(out)
}

/// The command line in the header: the inputs and everything that shapes the output, and
/// nothing that depends on the host or the run (index URLs, cache flags, --check).
fn header_command(args: &CompileArgs) -> String {
    let mut parts = vec!["marqo-base compile".to_string()];
    if let Some(p) = &args.python {
        parts.push(format!("--python {p}"));
    }
    for p in &args.platforms {
        parts.push(format!("--platform {p}"));
    }
    if args.glibc != "2.28" {
        parts.push(format!("--glibc {}", args.glibc));
    }
    if args.universal {
        parts.push("--universal".into());
    }
    if let Some(o) = &args.output_file {
        parts.push(format!("--output-file {}", shell_quote(o)));
    }
    if args.no_strip_extras {
        parts.push("--no-strip-extras".into());
    }
    if args.no_annotate {
        parts.push("--no-annotate".into());
    }
    if args.generate_hashes {
        parts.push("--generate-hashes".into());
    }
    if let Some(d) = &args.exclude_newer {
        parts.push(format!("--exclude-newer {d}"));
    }
    for p in &args.exclude_newer_package {
        parts.push(format!("--exclude-newer-package {}", shell_quote(p)));
    }
    if args.index_strategy != IndexStrategy::default().name() {
        parts.push(format!("--index-strategy {}", args.index_strategy));
    }
    for v in &args.only_binary {
        parts.push(format!("--only-binary {}", shell_quote(v)));
    }
    for v in &args.no_binary {
        parts.push(format!("--no-binary {}", shell_quote(v)));
    }
    if args.prefer_binary {
        parts.push("--prefer-binary".into());
    }
    if args.no_emit_index_url {
        parts.push("--no-emit-index-url".into());
    }
    if args.no_emit_find_links {
        parts.push("--no-emit-find-links".into());
    }
    if args.pre {
        parts.push("--pre".into());
    }
    for c in &args.constraints {
        parts.push(format!("-c {}", c.display()));
    }
    for b in &args.build_constraints {
        parts.push(format!("-b {}", b.display()));
    }
    for s in &args.src_files {
        parts.push(s.display().to_string());
    }
    parts.join(" ")
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `--check`: compare what we would write with what is there; exit 1 naming the changes.
fn check(rendered: &[(PathBuf, String)], printer: &Printer) -> Result<ExitCode, CliError> {
    let mut stale = false;
    for (path, text) in rendered {
        let current = std::fs::read_to_string(path).ok();
        match current {
            Some(current) if &current == text => printer.status(format!("{} is up to date", path.display())),
            Some(current) => {
                stale = true;
                eprintln!("{} is stale:", path.display());
                for line in pin_diff(&current, text) {
                    eprintln!("  {line}");
                }
            }
            None => {
                stale = true;
                eprintln!("{} does not exist", path.display());
            }
        }
    }
    Ok(if stale { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Pin lines that differ: `- old` / `+ new`; if only annotations differ, say so.
fn pin_diff(old: &str, new: &str) -> Vec<String> {
    let pins = |s: &str| -> BTreeSet<String> {
        s.lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| l.trim_end_matches(" \\").to_string())
            .collect()
    };
    let (a, b) = (pins(old), pins(new));
    let mut out: Vec<String> = a.difference(&b).map(|l| format!("- {l}")).collect();
    out.extend(b.difference(&a).map(|l| format!("+ {l}")));
    if out.is_empty() {
        out.push("the pins are the same; annotations, hashes or the header differ".into());
    }
    out
}

/// Temp file in the same directory, fsync, rename: a reader sees the old or the new file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    // Temp files are private (0600); the output is a file people share and commit. Keep
    // the mode of the file we replace, else the usual 0644.
    let mode = std::fs::metadata(path).map(|m| m.permissions()).unwrap_or_else(|_| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o644)
    });
    tmp.as_file().set_permissions(mode)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
