//! `marqo-base`: lock Python requirements and Debian packages for every target platform from
//! any host.

// All output goes through `printer::Printer`, which escapes what a server sent.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod diagnostics;
mod printer;
mod terminal;

use std::process::ExitCode;

fn main() -> ExitCode {
    ops::env::tune_allocator();
    let cli = cli::parse();
    let printer = printer::Printer::new(cli.global.quiet, cli.global.verbose, cli.global.color);
    printer.init_logging();
    // An interrupted build, rootfs or pull removes the trees it was writing before it exits.
    if let Err(err) = ops::env::clean_up_on_signals() {
        tracing::warn!("{err}");
    }
    let format = cli.global.format;
    let json = format == cli::Format::Json;
    let result = match cli.command {
        cli::Command::Tree(args) => commands::graph::exec_tree(args, &printer, format),
        cli::Command::Why(args) => commands::graph::exec_why(args, &printer, format),
        cli::Command::Diff(args) => commands::graph::exec_diff(args, &printer, format),
        cli::Command::Build(args) => commands::build::exec(args, &printer, format),
        cli::Command::Pull(args) => commands::registry::exec_pull(args, &printer, format),
        cli::Command::Push(args) => commands::registry::exec_push(args, &printer, format),
        cli::Command::Verify(args) => commands::sign::exec_verify(args, &printer, format),
        cli::Command::Outdated(args) => commands::outdated::exec(args, &printer, format),
        cli::Command::Lock(args) if !json || args.check => commands::lock::exec(args, &printer, format),
        cli::Command::Compile(args) if !json || args.check => commands::compile::exec(*args, &printer, format),
        _ if json => Err(ops::Error::user(
            "`--format json` is available for tree, why, diff, lock --check, compile --check, outdated, build, push, pull and verify",
        )
        .with_hint("leave --format out for this command's text output")),
        cli::Command::Debian(args) => commands::debian::exec(args, &printer),
        cli::Command::Lock(args) => commands::lock::exec(args, &printer, format),
        cli::Command::Compile(args) => commands::compile::exec(*args, &printer, format),
        cli::Command::Login(args) => commands::registry::exec_login(args, &printer),
        cli::Command::Logout(args) => commands::registry::exec_logout(args, &printer),
        cli::Command::Cache(args) => commands::cache::exec(args, &printer),
        cli::Command::Key(args) => commands::sign::exec_key(args, &printer),
        cli::Command::Completions(args) => {
            let mut command = cli::command();
            // Our own text only: nothing here came from a server.
            clap_complete::generate(args.shell, &mut command, "marqo-base", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => diagnostics::report(&err, &printer),
    }
}
