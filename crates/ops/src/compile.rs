//! Compiling: requirements.in -> pinned requirements.txt (pip-compile's format), for every
//! target at once, or `--check` of existing outputs.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use pep_types::{Arch, PackageName, Req, Target, Version, VersionOrUrl};
use py_resolver::{render_target, render_universal, OutputOptions, RequirementSet, ResolveOptions};
use pypi_client::{IndexArgs, IndexStrategy};

use crate::python::{
    open_source, parse_date, parse_exclude_newer_packages, resolve_with_progress, SourceSetup,
};
use crate::{Error, Reporter};

/// What `compile` is asked to do: pip-compile's options, as `marqo-base compile --help`
/// describes them (`glibc` `2.28` and `index_strategy` `first-index` by default there).
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Requirement files to compile (pip's requirements format), or a `pyproject.toml`.
    pub src_files: Vec<PathBuf>,
    /// Optional dependencies (extras) of a `pyproject.toml` input to add. Repeatable.
    pub extras: Vec<String>,
    /// Every extra of a `pyproject.toml` input.
    pub all_extras: bool,

    /// Target Python version, X.Y or X.Y.Z [default: the host's python3].
    pub python: Option<String>,
    /// Target platform, repeatable: linux/amd64, linux/arm64 [default: the host's].
    pub platforms: Vec<String>,
    /// The target's glibc: wheels tagged manylinux up to this level are accepted.
    pub glibc: String,

    /// Output file. With several targets, a template: {arch}, {platform}, {python}
    /// (e.g. '{arch}-requirements.txt'), or one file with --universal.
    pub output_file: Option<String>,
    /// One output file for all targets, with environment markers where they differ.
    pub universal: bool,
    /// Exit 1 (and say what changed) if the output files are not what compile would write.
    pub check: bool,

    /// Keep extras in pins (by default they are stripped, as with pip-compile --strip-extras).
    pub no_strip_extras: bool,
    /// Accepted for pip-compile compatibility: stripping extras is the default.
    pub strip_extras: bool,
    /// Do not write `# via` annotations.
    pub no_annotate: bool,
    /// Write `--hash` options for every file of each pinned version the target can install.
    pub generate_hashes: bool,

    /// Ignore files uploaded after this date or time (RFC 3339 or YYYY-MM-DD, UTC).
    pub exclude_newer: Option<String>,
    /// Re-resolve everything, ignoring the pins in the existing output.
    pub upgrade: bool,
    /// Re-resolve one package (NAME), or move it to a version (NAME==VERSION). Repeatable.
    pub upgrade_package: Vec<String>,
    /// Constraint files (pip's -c).
    pub constraints: Vec<PathBuf>,
    /// Constraints for the environments that build sdists (e.g. setuptools<70).
    pub build_constraints: Vec<PathBuf>,
    /// Allow pre-releases.
    pub pre: bool,
    /// Never build sdists: fail on a package that needs a build to tell its dependencies.
    pub no_build: bool,

    /// Base URL of the package index (as pip's --index-url; default: pip's configuration).
    pub index_url: Option<String>,
    /// More indexes, asked after --index-url (see --index-strategy). Repeatable.
    pub extra_index_url: Vec<String>,
    /// How a name on several indexes is served: first-index (the first index that has the
    /// name serves all its files), unsafe-first-match (versions of earlier indexes first),
    /// unsafe-best-match (all indexes merged, the best version wins: what pip does).
    pub index_strategy: String,
    /// Directories or pages of distribution files (pip's --find-links). Repeatable.
    pub find_links: Vec<String>,
    /// Ignore the package index (only --find-links).
    pub no_index: bool,
    /// CA bundle for TLS (as pip's --cert).
    pub cert: Option<PathBuf>,
    /// Do not write the --index-url / --extra-index-url lines into the output.
    pub no_emit_index_url: bool,
    /// Do not write the --find-links lines into the output.
    pub no_emit_find_links: bool,

    /// Only wheels for these packages (comma-separated names, :all: or :none:). Repeatable.
    pub only_binary: Vec<String>,
    /// Only sdists for these packages (comma-separated names, :all: or :none:). Repeatable.
    pub no_binary: Vec<String>,
    /// Prefer an older version with a wheel over a newer one with only an sdist.
    pub prefer_binary: bool,
    /// A cutoff for one package instead of --exclude-newer: NAME=DATE, or NAME=false to use
    /// all of its files (for an index that publishes no upload times). Repeatable.
    pub exclude_newer_package: Vec<String>,

    /// Use only the cache; fail if something is missing.
    pub offline: bool,
    /// Revalidate every cached index page.
    pub refresh: bool,
}

/// What a compile did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileOutcome {
    /// These files were written.
    Written(Vec<PathBuf>),
    /// `--check`: each output file, and the pin lines that differ (`- old`, `+ new`); `None`
    /// when the file does not exist, empty when it is up to date.
    Checked(Vec<(PathBuf, Option<Vec<String>>)>),
}

impl CompileOutcome {
    /// `--check` found a difference.
    pub fn is_stale(&self) -> bool {
        match self {
            CompileOutcome::Written(_) => false,
            CompileOutcome::Checked(files) => {
                files.iter().any(|(_, diff)| diff.as_ref().is_none_or(|d| !d.is_empty()))
            }
        }
    }
}

/// Where each target's output goes.
struct Plan {
    targets: Vec<Arc<Target>>,
    /// One path per target, or one path for all with `--universal`.
    outputs: Vec<PathBuf>,
}

/// Resolves the requirement files for every target and writes (or, with `check`, compares)
/// the outputs.
pub fn compile(args: &CompileOptions, printer: &dyn Reporter) -> Result<CompileOutcome, Error> {
    let extras = py_resolver::ExtraSelection { names: args.extras.clone(), all: args.all_extras };
    let set = RequirementSet::read_inputs(&args.src_files, &args.constraints, &extras)
        .map_err(|e| Error::from_error(e.to_string(), e))?;
    let plan = plan(args)?;
    refuse_overwriting_inputs(&plan.outputs, &set.files)?;
    if !args.check {
        for out in &plan.outputs {
            output_target(out)?;
        }
    }
    let (upgrade, extra_constraints) = upgrade_packages(&args.upgrade_package)?;
    let index_strategy = IndexStrategy::from_str(&args.index_strategy).map_err(Error::user)?;
    let mut format = set.format.clone();
    for value in &args.only_binary {
        format.only_binary(value).map_err(|e| Error::user(format!("--only-binary: {e}")))?;
    }
    for value in &args.no_binary {
        format.no_binary(value).map_err(|e| Error::user(format!("--no-binary: {e}")))?;
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
    let preferences = read_preferences(&plan, args)?;

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
    let (_, source) = open_source(setup, &plan.targets)?;
    let mut pip_options =
        source.client().config().requirements_options(!args.no_emit_index_url, !args.no_emit_find_links);
    pip_options.extend(format.pip_lines());
    if args.prefer_binary || set.prefer_binary {
        pip_options.push("--prefer-binary".to_string());
    }
    let resolutions = resolve_with_progress(&source, &plan.targets, &set, &preferences, &options, printer)?;

    let out_opts = OutputOptions {
        command: header_command(args),
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
        return Ok(check(&rendered));
    }
    for (path, text) in &rendered {
        write_atomic(&output_target(path)?, text.as_bytes())
            .map_err(|e| Error::from_error(format!("cannot write `{}`", path.display()), e))?;
        printer.status(format!("Wrote {}", path.display()));
    }
    Ok(CompileOutcome::Written(rendered.into_iter().map(|(path, _)| path).collect()))
}

/// Targets from --platform x --python, and the output path of each.
fn plan(args: &CompileOptions) -> Result<Plan, Error> {
    let python = match &args.python {
        Some(p) => p.clone(),
        None => host_python_version()?,
    };
    let mut arches = Vec::new();
    if args.platforms.is_empty() {
        arches.push(Arch::host().ok_or_else(|| {
            Error::user("this host's architecture is not one we resolve for")
                .with_hint("pass --platform linux/amd64 or linux/arm64")
        })?);
    }
    for p in &args.platforms {
        let arch = Arch::from_str(p).map_err(|e| Error::user(e.to_string()))?;
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    let targets = arches
        .into_iter()
        .map(|a| Target::new(a, &python, &args.glibc).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::user(e.to_string()))?;
    let template = match &args.output_file {
        Some(o) => o.clone(),
        None => default_output(&args.src_files),
    };
    let is_template = ["{arch}", "{platform}", "{python}"].iter().any(|k| template.contains(k));
    let outputs = if args.universal {
        if is_template {
            return Err(Error::user("--universal writes one file; the output name must not be a template"));
        }
        vec![PathBuf::from(template)]
    } else if targets.len() > 1 && !is_template {
        return Err(Error::user(format!("{} targets but one output file `{template}`", targets.len()))
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

/// An output that is one of the files read (`-o requirements.in`, a `-r` or `-c` file) would
/// be replaced by pins: refused, as pip-compile does.
fn refuse_overwriting_inputs(outputs: &[PathBuf], inputs: &[PathBuf]) -> Result<(), Error> {
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    for out in outputs {
        if let Some(input) = inputs.iter().find(|input| same(out, input)) {
            return Err(Error::user(format!(
                "the output file `{}` is an input (`{}`); compiling would replace it with pins",
                out.display(),
                input.display()
            ))
            .with_hint("name another output file with -o, such as requirements.txt"));
        }
    }
    Ok(())
}

/// The file an output is written to: the output itself, or, when it is a symbolic link, the
/// file the link points to (as pip-compile writes through it; the link stays). An existing
/// file without write permission is refused rather than replaced.
fn output_target(out: &Path) -> Result<PathBuf, Error> {
    let mut target = out.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&target).map_err(|e| {
                    Error::from_error(format!("cannot read the link `{}`", target.display()), e)
                })?;
                target = target.parent().unwrap_or(Path::new("")).join(link);
            }
            Ok(m) if m.permissions().readonly() => {
                return Err(Error::user(format!("the output file `{}` is read-only", target.display()))
                    .with_hint("make it writable (chmod u+w) or name another output file with -o"));
            }
            Ok(m) if m.is_dir() => {
                return Err(Error::user(format!("the output `{}` is a directory", target.display()))
                    .with_hint("name an output file with -o, such as requirements.txt"));
            }
            _ => return Ok(target),
        }
    }
    Err(Error::user(format!("the output `{}` is a loop of symbolic links", out.display())))
}

/// pip-compile's default: `requirements.in` -> `requirements.txt` beside it.
fn default_output(src: &[PathBuf]) -> String {
    match src {
        [one] if one.extension().is_some_and(|e| e == "in") => {
            one.with_extension("txt").display().to_string()
        }
        // pip-compile: a project's requirements.txt goes beside its pyproject.toml.
        [one] if one.file_name().is_some_and(|n| n == "pyproject.toml") => {
            one.with_file_name("requirements.txt").display().to_string()
        }
        _ => "requirements.txt".to_string(),
    }
}

fn host_python_version() -> Result<String, Error> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        _ => Err(Error::user("no --python given and no python3 on this host to ask")
            .with_hint("pass the target version, e.g. --python 3.9")),
    }
}

/// `-P name` upgrades one package; `-P name==1.2` also constrains it to that version.
fn upgrade_packages(specs: &[String]) -> Result<(BTreeSet<PackageName>, Vec<Req>), Error> {
    let mut names = BTreeSet::new();
    let mut constraints = Vec::new();
    for spec in specs {
        let req = pep_types::parse_requirement(spec).map_err(|e| {
            Error::user(format!("bad -P value `{spec}`: {}", e.to_string().lines().next().unwrap_or("")))
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
fn read_preferences(plan: &Plan, args: &CompileOptions) -> Result<Vec<HashMap<PackageName, Version>>, Error> {
    let mut out = Vec::new();
    for (i, target) in plan.targets.iter().enumerate() {
        let path = if args.universal { &plan.outputs[0] } else { &plan.outputs[i] };
        let mut prefs = HashMap::new();
        if !args.upgrade && path.exists() {
            let text = bounded::read_file_to_string(path, bounded::MAX_TEXT_FILE, "the output file")
                .map_err(|e| Error::from_error(format!("cannot read `{}`", path.display()), e))?;
            let base = path.parent().unwrap_or(Path::new("."));
            let set = RequirementSet::parse_str(&text, &path.display().to_string(), base)
                .map_err(|e| {
                    Error::from_error(format!("cannot read the existing pins in `{}`", path.display()), e)
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
fn header_command(args: &CompileOptions) -> String {
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
    if args.all_extras {
        parts.push("--all-extras".into());
    }
    for e in &args.extras {
        parts.push(format!("--extra {}", shell_quote(e)));
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

/// `--check`: what we would write against what is there.
fn check(rendered: &[(PathBuf, String)]) -> CompileOutcome {
    let files = rendered
        .iter()
        .map(|(path, text)| {
            let current = bounded::read_file_to_string(path, bounded::MAX_TEXT_FILE, "the output file");
            let diff = current.ok().map(
                |current| {
                    if &current == text {
                        Vec::new()
                    } else {
                        pin_diff(&current, text)
                    }
                },
            );
            (path.clone(), diff)
        })
        .collect();
    CompileOutcome::Checked(files)
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
