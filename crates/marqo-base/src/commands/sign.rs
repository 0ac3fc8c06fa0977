//! `marqo-base key generate` and `marqo-base verify`: signing keys and signature checks.
//! The formats are in the `sign` crate, the work in `ops::sign`.

use std::process::ExitCode;

use ops::sign::{Verdict, VerifyRequest};
use registry::Reference;

use crate::cli::{Format, KeyArgs, KeyCommand, VerifyArgs};
use crate::diagnostics::CliError;
use crate::printer::Printer;
use crate::terminal::TerminalPrompt;

pub fn exec_key(args: KeyArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    match args.command {
        KeyCommand::Generate(args) => {
            let generated = ops::sign::generate_key(&args.key, &TerminalPrompt, printer)?;
            printer.out(generated.public.display().to_string());
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn exec_verify(args: VerifyArgs, printer: &Printer, format: Format) -> Result<ExitCode, CliError> {
    let reference = Reference::parse(&args.reference).map_err(|e| {
        CliError::user(e.to_string())
            .with_hint("write HOST[:PORT]/REPOSITORY[:TAG] or HOST/REPOSITORY@sha256:…")
    })?;
    let request = VerifyRequest { reference, public_key: args.key.clone(), net: args.net.options() };
    let verification = ops::sign::verify(&request, printer)?;
    if format == Format::Json {
        let text = serde_json::to_string(&verification)
            .map_err(|e| CliError::from_error("cannot write the verification", e))?;
        printer.json(text);
    } else {
        for check in &verification.manifests {
            let verdict = match &check.verdict {
                Verdict::Signed { signatures } => format!("signed ({signatures} signature(s) by this key)"),
                Verdict::Unsigned => "UNSIGNED: no signature".to_string(),
                Verdict::OtherKeys { signatures } => {
                    format!("NOT SIGNED BY THIS KEY: {signatures} signature(s), all by other keys")
                }
                Verdict::Mismatch { reasons } => format!("MISMATCH: {}", reasons.join("; ")),
            };
            // One line per manifest: a newline in the registry's platform string makes none.
            printer.out(format!("{:<14} {} {verdict}", fetch::escape(&check.what), check.digest));
        }
    }
    if verification.all_signed() {
        printer.status(format!("Verified {} with the key {}", verification.reference, verification.key));
        return Ok(ExitCode::SUCCESS);
    }
    let bad: Vec<String> = verification
        .manifests
        .iter()
        .filter(|m| !matches!(m.verdict, Verdict::Signed { .. }))
        .map(|m| {
            let why = match m.verdict {
                Verdict::Unsigned => "unsigned",
                Verdict::OtherKeys { .. } => "signed by another key",
                _ => "signed for another image or repository",
            };
            format!("{} {} ({why})", m.what, m.digest)
        })
        .collect();
    printer.labelled(
        "error:",
        31,
        format!(
            "{} is not signed by {} ({}): {}",
            verification.reference,
            args.key.display(),
            verification.key,
            bad.join(", ")
        ),
    );
    printer.labelled(
        "hint:",
        36,
        "push it with `marqo-base push … --sign KEY`, or check that this is the public key of the signing key",
    );
    Ok(ExitCode::from(1))
}
