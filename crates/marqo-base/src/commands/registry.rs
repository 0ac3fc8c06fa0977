//! `marqo-base login`, `logout`, `push` and `pull`: the registry commands. Arguments are
//! checked here; the protocol work is in the `registry` crate.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::str::FromStr;

use oci::Platform;
use ops::build::BuildOptions;
use ops::push::{Confirm, PushRequest, PushSource};
use registry::{DockerConfig, Reference, TagSpec};

use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::diagnostics::CliError;
use crate::printer::Printer;
use ops::remote::{docker_config_path, parse_size, registry_error, PullTarget, Stored};

pub fn exec_login(args: LoginArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let host = registry::parse_registry(&args.registry).map_err(|e| CliError::user(e.to_string()))?;
    if !args.password_stdin {
        return Err(CliError::user("no password given").with_hint(format!(
            "pipe it in: echo \"$TOKEN\" | marqo-base login {host} --username NAME --password-stdin"
        )));
    }
    // A password is a line; a stream that never ends (`< /dev/zero`) is refused at the limit.
    const MAX_PASSWORD: u64 = 1 << 20;
    let bytes = bounded::read_all(std::io::stdin(), MAX_PASSWORD, "the password read from stdin")
        .map_err(|e| CliError::from_error("cannot read the password from stdin", e))?;
    let password =
        String::from_utf8(bytes).map_err(|_| CliError::user("the password read from stdin is not UTF-8"))?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(CliError::user("the password read from stdin is empty")
            .with_hint("pipe the password or token into --password-stdin"));
    }
    if args.username.is_empty() {
        return Err(CliError::user("the user name is empty").with_hint("pass --username NAME"));
    }
    match ops::remote::login(&host, &args.username, password, &args.net.options())? {
        Stored::Helper(helper) => printer.status(format!(
            "Login succeeded: credentials for {host} stored with docker-credential-{helper}"
        )),
        Stored::File(path) => {
            printer.status(format!("Login succeeded: credentials for {host} stored in {}", path.display()))
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn exec_logout(args: LogoutArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let host = registry::parse_registry(&args.registry).map_err(|e| CliError::user(e.to_string()))?;
    let config_path = docker_config_path()?;
    let mut config =
        DockerConfig::read(&config_path).map_err(|e| registry_error("cannot read the credentials", e))?;
    if config
        .erase(&host)
        .map_err(|e| registry_error(&format!("cannot remove the credentials of {host}"), e))?
    {
        printer.status(format!("Removed the credentials of {host}"));
    } else {
        printer.status(format!("Not logged in to {host}: no credentials stored"));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn exec_push(
    args: PushArgs,
    printer: &Printer,
    format: crate::cli::Format,
) -> Result<ExitCode, CliError> {
    let target = parse_reference(&args.reference)?;
    if target.digest.is_some() {
        return Err(CliError::user(format!("`{}` names a digest; push sets tags", args.reference))
            .with_hint("write HOST/REPOSITORY and pass --tag"));
    }
    let mut tags = Vec::new();
    for tag in target.tag.iter().chain(&args.tags) {
        if tag == "next" {
            tags.push(TagSpec::Next);
        } else {
            registry::check_tag(tag).map_err(|e| {
                CliError::user(format!("`{tag}` is not a valid tag: {e}"))
                    .with_hint("tags are letters, digits, `_`, `.` and `-`, such as --tag 42 or --tag next")
            })?;
            tags.push(TagSpec::Named(tag.clone()));
        }
    }
    if args.by_digest && !tags.is_empty() {
        return Err(CliError::user(format!("--by-digest sets no tag, but {} names one", args.reference))
            .with_hint("drop the :TAG, or drop --by-digest"));
    }
    for from in &args.mount_from {
        Reference::parse(&format!("{}/{from}", target.registry)).map_err(|e| {
            CliError::user(format!("--mount-from `{from}` is not a repository: {e}"))
                .with_hint("name a repository of the same registry, such as marqo-base-dev")
        })?;
    }
    let source = match (&args.oci, &args.manifest, args.index) {
        (Some(dir), _, _) => PushSource::Layout { dir: dir.clone(), name: args.r#ref.clone() },
        (None, Some(manifest), _) => PushSource::Manifest(Box::new(BuildOptions {
            manifest: manifest.clone(),
            lock: args.lock.clone(),
            oci: None,
            docker_archive: None,
            platforms: args.platforms.clone(),
            tag: "latest".to_string(),
            offline: false,
            no_cache: args.no_cache,
            compression: args.compression.clone(),
            cache: args.layer_cache.cache.clone(),
            cache_write: args.layer_cache.cache_write,
            net: args.net.options(),
            mount_into: None,
            defer_cache_write: true,
            sbom_dir: None,
            sbom_format: "spdx".to_string(),
        })),
        (None, None, true) => {
            let mut from = Vec::new();
            for reference in &args.from {
                let parsed = parse_reference(reference)?;
                if parsed.digest.is_none() {
                    return Err(CliError::user(format!("--from `{reference}` names no digest")).with_hint(
                        "name each image by digest, as push --by-digest prints it: REPO@sha256:…",
                    ));
                }
                from.push(parsed);
            }
            PushSource::Index(from)
        }
        (None, None, false) => return Err(CliError::user(
            "nothing to push: pass --manifest FILE, --oci DIR or --index --from REF",
        )
        .with_hint(
            "marqo-base push REF --manifest marqo-base.toml --tag next builds what is missing and pushes it",
        )),
    };
    let request = PushRequest {
        target: target.clone(),
        tags,
        by_digest: args.by_digest,
        source,
        mount_from: args.mount_from.clone(),
        chunk_size: parse_size(&args.chunk_size)?,
        tag_page_size: args.tags_page_size,
        record: args.record.clone(),
        sign: args.sign.clone(),
        net: args.net.options(),
    };
    let confirm = Terminal { yes: args.yes, printer: *printer };
    let outcome = ops::push::push(&request, &confirm, printer)?;
    if let Some(race) = &outcome.race {
        printer.stderr(format!(
            "error: another push changed {}:{} while this one ran: it points at {}, not at {} (what this push sent)",
            target.name(),
            race.tag,
            race.theirs.as_ref().map_or("nothing".to_string(), ToString::to_string),
            race.ours
        ));
        printer.stderr(format!(
            "hint: everything was pushed and {}@{} is complete; push again with --tag next for a new number",
            target.name(),
            race.ours
        ));
        return Ok(ExitCode::from(1));
    }
    let record = &outcome.record;
    if format == crate::cli::Format::Json {
        // The record `--record` writes, as one document on stdout.
        let text =
            serde_json::to_string(record).map_err(|e| CliError::from_error("cannot write the record", e))?;
        printer.json(text);
    } else if record.tags.is_empty() {
        // By digest: each platform's image, to join with `push --index --from`.
        for platform in &record.platforms {
            printer.out(format!("{}@{}", target.name(), platform.digest));
        }
    } else {
        for tag in &record.tags {
            printer.out(format!("{}:{tag}@{}", target.name(), record.digest));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--yes`, or a "y" typed on the terminal; without a terminal and `--yes`, a refusal.
struct Terminal {
    yes: bool,
    printer: Printer,
}

impl ops::sign::Prompt for Terminal {
    fn passphrase(&self, prompt: &str) -> Result<zeroize::Zeroizing<String>, ops::Error> {
        crate::terminal::TerminalPrompt.passphrase(prompt)
    }
}

impl Confirm for Terminal {
    fn confirm(&self, question: &str) -> Result<(), ops::Error> {
        if self.yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(ops::Error::user("not pushing: there is no terminal to confirm the plan on")
                .with_hint("pass --yes to push without asking (in CI, keep the approval in the CI system)"));
        }
        self.printer.ask(&format!("{question} [y/N]"));
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| ops::Error::from_error("cannot read the answer", e))?;
        if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            Ok(())
        } else {
            Err(ops::Error::user("not pushing: the plan was not confirmed"))
        }
    }
}

pub fn exec_pull(
    args: PullArgs,
    printer: &Printer,
    format: crate::cli::Format,
) -> Result<ExitCode, CliError> {
    let reference = parse_reference(&args.reference)?;
    let mut platforms = Vec::new();
    for p in &args.platforms {
        platforms
            .push(Platform::from_str(p).map_err(|e| {
                CliError::user(e.to_string()).with_hint("for example --platform linux/arm64")
            })?);
    }
    match (&args.oci, &args.docker_archive) {
        (Some(dir), None) => {
            let non_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
            if dir.exists() && (!dir.is_dir() || non_empty) {
                return Err(CliError::user(format!(
                    "`{}` exists and is not an empty directory",
                    dir.display()
                ))
                .with_hint("name a new directory for --oci"));
            }
        }
        (None, Some(file)) => {
            if file.is_dir() {
                return Err(CliError::user(format!("`{}` is a directory", file.display()))
                    .with_hint("--docker-archive takes the path of a tar file to write"));
            }
            if platforms.is_empty() {
                platforms.push(host_platform()?);
            }
            if platforms.len() > 1 {
                return Err(CliError::user("a docker-archive holds one platform")
                    .with_hint("pass one --platform, such as --platform linux/arm64"));
            }
        }
        _ => {
            return Err(CliError::user("pass one of --oci DIR or --docker-archive FILE").with_hint(
                "--oci out writes an OCI image layout; --docker-archive img.tar is for `docker load`",
            ))
        }
    }
    let target = match (&args.oci, &args.docker_archive) {
        (Some(dir), _) => PullTarget::Oci(dir.clone()),
        (None, file) => PullTarget::DockerArchive(file.clone().unwrap_or_default()),
    };
    let pulled = ops::remote::pull(
        &reference,
        &platforms,
        &target,
        args.sbom.as_deref(),
        &args.net.options(),
        printer,
    )?;
    if format == crate::cli::Format::Json {
        let doc = serde_json::json!({
            "schema": "marqo-base.pull/1",
            "reference": pulled.reference,
            "digest": pulled.digest,
            "platforms": pulled.platforms,
            "blobs": pulled.blobs,
            "bytes": pulled.bytes,
            "out": pulled.out.display().to_string(),
            "format": pulled.format,
            "sboms": pulled.sboms.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        });
        printer.json(doc);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_reference(input: &str) -> Result<Reference, CliError> {
    Reference::parse(input).map_err(|e| {
        CliError::user(e.to_string())
            .with_hint("write HOST[:PORT]/REPOSITORY[:TAG], such as 127.0.0.1:5000/marqo-base:1")
    })
}

/// The platform of this machine, for a docker-archive pulled without `--platform`.
fn host_platform() -> Result<Platform, CliError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(Platform::new("linux", "amd64")),
        "aarch64" => Ok(Platform::new("linux", "arm64")),
        other => {
            Err(CliError::user(format!("no default platform for this machine's architecture `{other}`"))
                .with_hint("pass --platform, such as --platform linux/amd64"))
        }
    }
}
