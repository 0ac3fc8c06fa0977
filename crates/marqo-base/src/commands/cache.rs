//! `marqo-base cache`: the work is `ops::cache`.

use std::process::ExitCode;

use ops::remote::human;

use crate::cli::{CacheArgs, CacheCommand};
use crate::diagnostics::CliError;
use crate::printer::Printer;

pub fn exec(args: CacheArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    match args.command {
        CacheCommand::Dir => printer.out(ops::cache::dir()?.display().to_string()),
        CacheCommand::Size => {
            let (root, sizes) = ops::cache::size()?;
            printer.out(root.display().to_string());
            for s in &sizes {
                printer.out(format!(
                    "  {:<12} {:>8} files {:>11}  {}",
                    s.kind,
                    s.files,
                    human(s.bytes),
                    s.what
                ));
                for (sort, files, bytes) in &s.sorts {
                    printer.out(format!("    {:<10} {:>8} files {:>11}  {sort}", "", files, human(*bytes)));
                }
            }
            let (files, bytes) = sizes.iter().fold((0, 0), |(f, b), s| (f + s.files, b + s.bytes));
            printer.out(format!("  {:<12} {:>8} files {:>11}", "total", files, human(bytes)));
        }
        CacheCommand::Clean { kinds } => {
            let removed = ops::cache::clean(&kinds, printer)?;
            printer.status(format!(
                "Removed {} {} ({}) from {}",
                removed.entries,
                if removed.entries == 1 { "entry" } else { "entries" },
                human(removed.bytes),
                ops::cache::dir()?.display()
            ));
        }
        CacheCommand::Prune { older_than } => {
            let age = ops::cache::parse_age(&older_than)?;
            let removed = ops::cache::prune(age, printer)?;
            printer.status(format!(
                "Removed {} {} unused for {older_than} ({})",
                removed.entries,
                if removed.entries == 1 { "entry" } else { "entries" },
                human(removed.bytes)
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
