//! `marqo-base outdated`: what a lock misses, for a nightly CI job. The work is
//! `ops::outdated`.

use std::process::ExitCode;

use ops::outdated::{Outdated, OutdatedOptions};

use crate::cli::{Format, OutdatedArgs};
use crate::diagnostics::CliError;
use crate::printer::Printer;

pub fn exec(args: OutdatedArgs, printer: &Printer, format: Format) -> Result<ExitCode, CliError> {
    let options = OutdatedOptions {
        manifest: args.manifest,
        lock: args.lock,
        no_cves: args.no_cves,
        no_python: args.no_python || args.security,
        offline: args.offline,
    };
    let report = ops::outdated::outdated(&options, printer)?;
    let found = match args.security {
        true => report.security().count(),
        false => report.debian.len() + report.python.len(),
    };
    match format {
        Format::Json => printer.json(json(&report, args.security)),
        _ => printer.out_text(&text(&report, args.security)),
    }
    if found == 0 {
        printer.status(match args.security {
            true => format!("No security update is missing from {}", report.lock.display()),
            false => format!("{} is up to date", report.lock.display()),
        });
        return Ok(ExitCode::SUCCESS);
    }
    let security = report.security().count();
    printer.status(format!(
        "{} Debian updates ({security} security), {} Python updates missing from {}",
        report.debian.len(),
        report.python.len(),
        report.lock.display()
    ));
    if security > 0 {
        printer
            .status("hint: `marqo-base lock --security` takes the security updates and moves nothing else");
    }
    Ok(ExitCode::from(1))
}

/// One line per update: `name locked -> candidate (suite) [security] CVE-...`, per platform.
fn text(report: &Outdated, security_only: bool) -> String {
    let mut out = String::new();
    for u in report.debian.iter().filter(|u| u.security || !security_only) {
        let platforms: Vec<&str> = u.platforms.iter().map(|p| p.as_str()).collect();
        out.push_str(&format!(
            "debian {} {} -> {} ({}) {}{}{}",
            u.name,
            u.locked,
            u.candidate,
            u.suite,
            platforms.join(" "),
            if u.security { " security" } else { "" },
            if u.held { " held" } else { "" },
        ));
        match (&u.cves, u.changelog_complete) {
            (Some(cves), _) if !cves.is_empty() => out.push_str(&format!(": {}", cves.join(" "))),
            _ => {}
        }
        out.push('\n');
    }
    if !security_only {
        for u in &report.python {
            let platforms: Vec<&str> = u.platforms.iter().map(|p| p.as_str()).collect();
            out.push_str(&format!(
                "python {} {} -> {} {}\n",
                u.name,
                u.locked,
                u.latest,
                platforms.join(" ")
            ));
        }
    }
    out
}

/// The report as `marqo-base.outdated/1` (docs/json/outdated.schema.json).
fn json(report: &Outdated, security_only: bool) -> serde_json::Value {
    let platforms =
        |list: &[lockfile::TargetPlatform]| list.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>();
    let debian: Vec<serde_json::Value> = report
        .debian
        .iter()
        .filter(|u| u.security || !security_only)
        .map(|u| {
            serde_json::json!({
                "name": u.name,
                "arch": u.arch,
                "platforms": platforms(&u.platforms),
                "locked": u.locked,
                "locked_suite": u.locked_suite,
                "candidate": u.candidate,
                "suite": u.suite,
                "security": u.security,
                "held": u.held,
                "cves": u.cves,
                "changelog_complete": u.changelog_complete,
            })
        })
        .collect();
    let python: Vec<serde_json::Value> = match security_only {
        true => Vec::new(),
        false => report
            .python
            .iter()
            .map(|u| {
                serde_json::json!({
                    "name": u.name,
                    "platforms": platforms(&u.platforms),
                    "locked": u.locked,
                    "latest": u.latest,
                })
            })
            .collect(),
    };
    serde_json::json!({
        "schema": "marqo-base.outdated/1",
        "lock": report.lock.display().to_string(),
        "suites": report.suites,
        "security_only": security_only,
        "debian": debian,
        "python": python,
    })
}
