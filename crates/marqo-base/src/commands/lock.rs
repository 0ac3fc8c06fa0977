//! `marqo-base lock`: the manifest and the files it names -> `marqo-base.lock`, for every
//! platform of the image. The work is `ops::lock`.

use std::process::ExitCode;

use ops::lock::{LockOptions, LockState};

use crate::cli::{Format, LockArgs};
use crate::diagnostics::CliError;
use crate::printer::Printer;

pub fn exec(args: LockArgs, printer: &Printer, format: Format) -> Result<ExitCode, CliError> {
    let options = LockOptions {
        manifest: args.manifest,
        lock: args.lock,
        upgrade: args.upgrade,
        upgrade_package: args.upgrade_package,
        exclude_newer: args.exclude_newer,
        offline: args.offline,
        refresh: args.refresh,
        security: args.security,
    };
    if !args.check {
        ops::lock::lock(&options, printer)?;
        return Ok(ExitCode::SUCCESS);
    }
    let lock_path = options.lock_path();
    let state = ops::lock::check(&options.manifest, &lock_path)?;
    if format == Format::Json {
        let (name, reasons) = match &state {
            LockState::Fresh => ("fresh", Vec::new()),
            LockState::Missing => ("missing", Vec::new()),
            LockState::Stale(reasons) => ("stale", reasons.clone()),
        };
        let doc = serde_json::json!({
            "schema": "marqo-base.lock-check/1",
            "lock": lock_path.display().to_string(),
            "state": name,
            "reasons": reasons,
        });
        printer.json(doc);
        return Ok(if name == "fresh" { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    match state {
        LockState::Fresh => {
            printer.status(format!("{} is up to date", lock_path.display()));
            Ok(ExitCode::SUCCESS)
        }
        LockState::Missing => {
            printer.stderr(format!("{} does not exist; run `marqo-base lock`", lock_path.display()));
            Ok(ExitCode::from(1))
        }
        LockState::Stale(reasons) => {
            printer.stderr(format!("{} is stale:", lock_path.display()));
            for reason in reasons {
                printer.stderr(format!("  {reason}"));
            }
            printer.stderr("hint: run `marqo-base lock` to update it");
            Ok(ExitCode::from(1))
        }
    }
}
