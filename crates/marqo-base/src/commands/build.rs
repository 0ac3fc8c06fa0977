//! `marqo-base build`: the lock of a manifest turned into a multi-platform OCI image layout,
//! with no daemon, no emulation and nothing run from the image. The work is `ops::build`.

use std::process::ExitCode;

use ops::build::BuildOptions;

use crate::cli::{BuildArgs, Format};
use crate::diagnostics::CliError;
use crate::printer::Printer;

pub fn exec(args: BuildArgs, printer: &Printer, format: Format) -> Result<ExitCode, CliError> {
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
        cache: args.layer_cache.cache,
        cache_write: args.layer_cache.cache_write,
        net: args.net.options(),
        mount_into: None,
        defer_cache_write: false,
        sbom_dir: args.sbom,
        sbom_format: args.sbom_format,
    };
    let built = ops::build::build(&options, printer)?;
    if format == Format::Json {
        let platforms: Vec<serde_json::Value> = built
            .platforms
            .iter()
            .map(|p| {
                serde_json::json!({
                    "platform": p.platform,
                    "manifest": p.manifest,
                    "layers": p.layers,
                    "compressed_bytes": p.compressed,
                    "uncompressed_bytes": p.uncompressed,
                    "sbom": p.sbom,
                    "sbom_components": p.sbom_components,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "schema": "marqo-base.build/1",
            "out": built.out.display().to_string(),
            "tag": built.tag,
            "kind": built.kind,
            "digest": built.digest,
            "platforms": platforms,
        });
        printer.json(doc);
    }
    Ok(ExitCode::SUCCESS)
}
