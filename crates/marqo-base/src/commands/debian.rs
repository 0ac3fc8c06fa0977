//! `marqo-base debian resolve|rootfs`: a Debian suite's packages resolved for each
//! architecture and printed as a locked set, or fetched and unpacked into a root filesystem
//! without running anything. The work is in the `debian` crate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use debian::{LockedDeb, ResolveOptions};
use ops::debian::{check_output, Session, SourceArgs};

use crate::cli::{DebianArgs, DebianCommand, DebianResolveArgs, DebianRootfsArgs, DebianSetArgs};
use crate::diagnostics::CliError;
use crate::printer::Printer;

/// The Debian architectures the image is built for.
const ARCHES: &[&str] = &["amd64", "arm64"];

pub fn exec(args: DebianArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    match args.command {
        DebianCommand::Resolve(args) => exec_resolve(args, printer),
        DebianCommand::Rootfs(args) => exec_rootfs(args, printer),
    }
}

/// `debian resolve`: the locked set of each architecture on stdout, a summary on stderr.
fn exec_resolve(args: DebianResolveArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let arches = parse_arches(&args.set.arches)?;
    let session = Session::open(&source_of(&args.set))?;
    let resolved = session.resolve(&args.set.packages, &set_options(&args.set), &arches, printer)?;

    let mut out = String::new();
    for (i, set) in resolved.sets.iter().enumerate() {
        if resolved.sets.len() > 1 {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("# {}\n", set.arch));
        }
        for deb in &set.debs {
            out.push_str(&format!("{deb}\n"));
        }
    }
    printer.write_out(&out).map_err(|e| CliError::from_error("cannot write the package set to stdout", e))?;
    printer.status(format!(
        "Done in {:.2}s (indexes {:.2}s, resolution {:.2}s)",
        started.elapsed().as_secs_f64(),
        resolved.index_time.as_secs_f64(),
        resolved.resolve_time.as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

/// `debian rootfs`: resolve, fetch every `.deb` once (hash-checked, cached, in parallel),
/// and unpack each architecture's set into its directory.
fn exec_rootfs(args: DebianRootfsArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let arches = parse_arches(&args.set.arches)?;
    let outputs = output_dirs(&args.out, &arches)?;
    // Refuse a directory in the way before any network traffic.
    for out in &outputs {
        check_output(out, args.force)?;
    }
    let session = Session::open(&source_of(&args.set))?;
    let resolved = session.resolve(&args.set.packages, &set_options(&args.set), &arches, printer)?;

    // A package of architecture `all` is usually in every set: fetch each file once.
    let mut unique: Vec<LockedDeb> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for deb in resolved.sets.iter().flat_map(|s| &s.debs) {
        if seen.insert(deb.sha256.clone()) {
            unique.push(deb.clone());
        }
    }
    let (paths, fetch_time) = session.fetch_debs(&unique, printer)?;

    let unpack_started = Instant::now();
    ops::debian::unpack_sets(&resolved, &args.set.packages, &paths, &unique, &outputs, args.force, printer)?;
    let unpack_time = unpack_started.elapsed();
    printer.status(format!(
        "Done in {:.2}s (indexes {:.2}s, resolution {:.2}s, fetch {:.2}s, unpack {:.2}s)",
        started.elapsed().as_secs_f64(),
        resolved.index_time.as_secs_f64(),
        resolved.resolve_time.as_secs_f64(),
        fetch_time.as_secs_f64(),
        unpack_time.as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

/// The suite of `debian ...`'s flags.
fn source_of(args: &DebianSetArgs) -> SourceArgs<'_> {
    SourceArgs {
        suite: &args.suite,
        mirror: args.mirror.as_deref(),
        keyring: args.keyring.as_deref(),
        offline: args.offline,
    }
}

fn set_options(args: &DebianSetArgs) -> ResolveOptions {
    ResolveOptions { essential: !args.no_essential, recommends: args.recommends, ..Default::default() }
}

/// `--arch` values as Debian names, each once, in the order given; the host's by default.
fn parse_arches(given: &[String]) -> Result<Vec<&'static str>, CliError> {
    if given.is_empty() {
        let host = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => {
                return Err(CliError::user(format!(
                    "this host's architecture `{other}` is not one we resolve for"
                ))
                .with_hint("pass --arch amd64 or --arch arm64"))
            }
        };
        return Ok(vec![host]);
    }
    let mut out: Vec<&'static str> = Vec::new();
    for text in given {
        let name = text.strip_prefix("linux/").unwrap_or(text);
        let name = if name == "arm64/v8" { "arm64" } else { name };
        let arch = ARCHES.iter().copied().find(|a| *a == name).ok_or_else(|| {
            CliError::user(format!("unsupported architecture `{text}`"))
                .with_hint("use amd64 or arm64 (or linux/amd64, linux/arm64)")
        })?;
        if !out.contains(&arch) {
            out.push(arch);
        }
    }
    Ok(out)
}

/// One output directory per architecture: `--out` itself, or with several architectures the
/// `{arch}` template filled in.
fn output_dirs(template: &str, arches: &[&str]) -> Result<Vec<PathBuf>, CliError> {
    if arches.len() > 1 && !template.contains("{arch}") {
        return Err(CliError::user(format!("{} architectures but one --out `{template}`", arches.len()))
            .with_hint("use a template such as --out 'rootfs-{arch}', or one --arch"));
    }
    let dirs: Vec<PathBuf> = arches.iter().map(|a| PathBuf::from(template.replace("{arch}", a))).collect();
    for dir in &dirs {
        if dir.file_name().is_none() {
            return Err(CliError::user(format!(
                "--out `{}` does not name a directory to create",
                dir.display()
            ))
            .with_hint("name a new or empty directory, such as --out rootfs"));
        }
    }
    Ok(dirs)
}
