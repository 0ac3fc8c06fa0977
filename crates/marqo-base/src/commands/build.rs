//! `marqo-base build`: the lock of a manifest turned into a multi-platform OCI image layout,
//! with no daemon, no emulation and nothing run from the image. The work is `ops::build`.

use std::process::ExitCode;

use ops::build::BuildOptions;

use crate::cli::BuildArgs;
use crate::diagnostics::CliError;
use crate::printer::Printer;

pub fn exec(args: BuildArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let options = BuildOptions {
        manifest: args.manifest,
        lock: args.lock,
        oci: args.oci,
        docker_archive: args.docker_archive,
        platforms: args.platforms,
        tag: args.tag,
        offline: args.offline,
        no_cache: args.no_cache,
        compression: args.compression,
    };
    ops::build::build(&options, printer)?;
    Ok(ExitCode::SUCCESS)
}
