//! `marqo-base compile`: requirements.in -> pinned requirements.txt, for every target. The
//! work is `ops::compile`.

use std::process::ExitCode;

use ops::compile::{CompileOptions, CompileOutcome};

use crate::cli::{CompileArgs, Format};
use crate::diagnostics::CliError;
use crate::printer::Printer;

pub fn exec(args: CompileArgs, printer: &Printer, format: Format) -> Result<ExitCode, CliError> {
    let options = CompileOptions {
        src_files: args.src_files,
        extras: args.extras,
        all_extras: args.all_extras,
        python: args.python,
        platforms: args.platforms,
        glibc: args.glibc,
        output_file: args.output_file,
        universal: args.universal,
        check: args.check,
        no_strip_extras: args.no_strip_extras,
        strip_extras: args.strip_extras,
        no_annotate: args.no_annotate,
        generate_hashes: args.generate_hashes,
        exclude_newer: args.exclude_newer,
        upgrade: args.upgrade,
        upgrade_package: args.upgrade_package,
        constraints: args.constraints,
        build_constraints: args.build_constraints,
        pre: args.pre,
        no_build: args.no_build,
        index_url: args.index_url,
        extra_index_url: args.extra_index_url,
        index_strategy: args.index_strategy,
        find_links: args.find_links,
        no_index: args.no_index,
        cert: args.cert,
        no_emit_index_url: args.no_emit_index_url,
        no_emit_find_links: args.no_emit_find_links,
        only_binary: args.only_binary,
        no_binary: args.no_binary,
        prefer_binary: args.prefer_binary,
        exclude_newer_package: args.exclude_newer_package,
        offline: args.offline,
        refresh: args.refresh,
    };
    let outcome = ops::compile::compile(&options, printer)?;
    if let (Format::Json, CompileOutcome::Checked(files)) = (format, &outcome) {
        let files: Vec<serde_json::Value> = files
            .iter()
            .map(|(path, diff)| {
                let state = match diff {
                    None => "missing",
                    Some(d) if d.is_empty() => "fresh",
                    Some(_) => "stale",
                };
                serde_json::json!({
                    "path": path.display().to_string(),
                    "state": state,
                    "changes": diff.clone().unwrap_or_default(),
                })
            })
            .collect();
        printer.json(serde_json::json!({ "schema": "marqo-base.compile-check/1", "files": files }));
        return Ok(if outcome.is_stale() { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    if let CompileOutcome::Checked(files) = &outcome {
        for (path, diff) in files {
            match diff {
                Some(diff) if diff.is_empty() => printer.status(format!("{} is up to date", path.display())),
                Some(diff) => {
                    printer.stderr(format!("{} is stale:", path.display()));
                    for line in diff {
                        printer.stderr(format!("  {line}"));
                    }
                }
                None => printer.stderr(format!("{} does not exist", path.display())),
            }
        }
    }
    Ok(if outcome.is_stale() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
