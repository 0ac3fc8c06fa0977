//! `marqo-base login`, `logout`, `push` and `pull`: the registry commands. Arguments are
//! checked here; the protocol work is in the `registry` crate.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use image::FINGERPRINT_LABEL;
use oci::Platform;
use registry::{BlobAction, DockerConfig, LayoutSource, Plan, PushOptions, PushRecord, Reference, TagSpec};

use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::diagnostics::CliError;
use crate::printer::Printer;
use ops::remote::{
    client_for, docker_config_path, human, parse_size, registry_error, runtime, stored_credentials,
    PullTarget, Stored,
};

/// How many blobs are sent or fetched at once.
const PARALLEL_BLOBS: usize = 4;

pub fn exec_login(args: LoginArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let host = registry::parse_registry(&args.registry).map_err(|e| CliError::user(e.to_string()))?;
    if !args.password_stdin {
        return Err(CliError::user("no password given").with_hint(format!(
            "pipe it in: echo \"$TOKEN\" | marqo-base login {host} --username NAME --password-stdin"
        )));
    }
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| CliError::from_error("cannot read the password from stdin", e))?;
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
    let started = Instant::now();
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
    if tags.is_empty() {
        return Err(CliError::user(format!("no tag to push {} as", target.name()))
            .with_hint("pass --tag next (the next free integer), --tag NAME, or write HOST/REPO:TAG"));
    }
    let Some(oci_dir) = &args.oci else {
        return Err(CliError::user("nothing to push: --oci DIR is required")
            .with_hint("build the layout first: marqo-base build --oci out/, then push --oci out/"));
    };
    for from in &args.mount_from {
        Reference::parse(&format!("{}/{from}", target.registry)).map_err(|e| {
            CliError::user(format!("--mount-from `{from}` is not a repository: {e}"))
                .with_hint("name a repository of the same registry, such as marqo-base-dev")
        })?;
    }
    if let Some(record) = &args.record {
        ops::remote::check_writable(record)?;
    }
    let chunk_size = parse_size(&args.chunk_size)?;
    let source = LayoutSource::read(oci_dir, args.r#ref.as_deref())
        .map_err(|e| registry_error(&format!("cannot push from {}", oci_dir.display()), e))?;
    let options = PushOptions {
        tags,
        mount_from: args.mount_from.clone(),
        chunk_size,
        parallel: PARALLEL_BLOBS,
        tag_page_size: args.tags_page_size,
    };
    let client = client_for(&target.registry, stored_credentials(&target.registry)?, &args.net.options())?;
    let runtime = runtime()?;
    let spinner = printer.spinner(&format!("Asking {} what it has", target.registry));
    let plan = runtime.block_on(registry::plan_push(&client, &target, &source, &options));
    spinner.finish_and_clear();
    let plan = plan.map_err(|e| registry_error(&format!("cannot plan the push to {}", target.name()), e))?;
    print_plan(printer, &plan);
    confirm(&args, &plan)?;

    let cache = ops::env::cache()?;
    let sessions = cache.root().join("registry").join("uploads");
    let (to_send, bytes) = plan.count(|a| *a != BlobAction::Present);
    let bar = printer.bar(bytes, &format!("Pushing {to_send} blobs"), true);
    let progress = {
        let bar = bar.clone();
        Arc::new(move |n: u64| bar.inc(n)) as registry::ProgressFn
    };
    let pushed =
        runtime.block_on(registry::execute_push(&client, &plan, &source, &options, Some(sessions), progress));
    bar.finish_and_clear();
    let pushed = pushed.map_err(|e| {
        let context = format!(
            "cannot push to {}; no tag was set (run the same command again to continue: blobs \
             already sent are skipped and unfinished uploads resume)",
            target.name()
        );
        registry_error(&context, e)
    })?;
    for (digest, offset) in pushed.uploaded.iter().filter(|(_, offset)| *offset > 0) {
        printer.status(format!("Resumed the upload of {digest} at {}", human(*offset)));
    }
    if let Some(race) = &pushed.race {
        eprintln!(
            "error: another push changed {}:{} while this one ran: it points at {}, not at {} (what this push sent)",
            target.name(),
            race.tag,
            race.theirs.as_ref().map_or("nothing".to_string(), ToString::to_string),
            race.ours
        );
        eprintln!(
            "hint: everything was pushed and {}@{} is complete; push again with --tag next for a new number",
            target.name(),
            race.ours
        );
        return Ok(ExitCode::from(1));
    }
    let now = jiff::Timestamp::now();
    let pushed_at = jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string());
    let record = PushRecord::new(&plan, &pushed, FINGERPRINT_LABEL, pushed_at);
    if let Some(record_path) = &args.record {
        record.write(record_path).map_err(|e| registry_error("cannot write the record", e))?;
    }
    if format == crate::cli::Format::Json {
        // The record `--record` writes, as one document on stdout.
        let text =
            serde_json::to_string(&record).map_err(|e| CliError::from_error("cannot write the record", e))?;
        println!("{text}");
    } else {
        for tag in &pushed.tags {
            println!("{}:{tag}@{}", target.name(), plan.root.digest);
        }
    }
    printer.status(format!(
        "Pushed {} as {} in {:.2}s: {} blobs sent ({}), {} mounted, {} already there",
        target.name(),
        pushed.tags.join(", "),
        started.elapsed().as_secs_f64(),
        pushed.uploaded.len(),
        human(plan.count(|a| *a == BlobAction::Upload).1),
        pushed.mounted,
        plan.count(|a| *a == BlobAction::Present).0
    ));
    Ok(ExitCode::SUCCESS)
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
    let pulled = ops::remote::pull(&reference, &platforms, &target, &args.net.options(), printer)?;
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
        });
        println!("{doc}");
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_reference(input: &str) -> Result<Reference, CliError> {
    Reference::parse(input).map_err(|e| {
        CliError::user(e.to_string())
            .with_hint("write HOST[:PORT]/REPOSITORY[:TAG], such as 127.0.0.1:5000/marqo-base:1")
    })
}

/// The plan, on stderr: where, which tags, which platforms, which blobs go and which are there.
fn print_plan(printer: &Printer, plan: &Plan) {
    let tags: Vec<String> = plan
        .tags
        .iter()
        .map(|t| if plan.next.as_ref() == Some(t) { format!("{t} (next)") } else { t.clone() })
        .collect();
    let mut text = format!("Push to {}\n  tags:      {}\n", plan.repository.name(), tags.join(", "));
    text.push_str(&format!("  image:     {} ({})\n", plan.root.digest, plan.root.media_type));
    for image in &plan.images {
        let size: u64 = image
            .blob_digests()
            .iter()
            .filter_map(|d| plan.blobs.iter().find(|b| &b.descriptor.digest == d))
            .map(|b| b.descriptor.size)
            .sum();
        text.push_str(&format!(
            "  platform:  {} {} ({})\n",
            image.platform,
            image.descriptor.digest,
            human(size)
        ));
    }
    let (send, send_bytes) = plan.count(|a| *a == BlobAction::Upload);
    let (mount, mount_bytes) = plan.count(|a| matches!(a, BlobAction::Mount(_)));
    let (there, there_bytes) = plan.count(|a| *a == BlobAction::Present);
    text.push_str(&format!("  to send:   {send} blobs ({})\n", human(send_bytes)));
    for blob in &plan.blobs {
        match &blob.action {
            BlobAction::Upload => {
                text.push_str(&format!("    {} {}\n", blob.descriptor.digest, human(blob.descriptor.size)))
            }
            BlobAction::Mount(from) => text.push_str(&format!(
                "    {} {} (mount from {from})\n",
                blob.descriptor.digest,
                human(blob.descriptor.size)
            )),
            BlobAction::Present => {}
        }
    }
    if mount > 0 {
        text.push_str(&format!("  to mount:  {mount} blobs ({})\n", human(mount_bytes)));
    }
    text.push_str(&format!("  already there: {there} blobs ({})", human(there_bytes)));
    printer.status(text);
}

/// `--yes`, or a "y" typed on the terminal; without a terminal and `--yes`, a refusal.
fn confirm(args: &PushArgs, plan: &Plan) -> Result<(), CliError> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::user("not pushing: there is no terminal to confirm the plan on")
            .with_hint("pass --yes to push without asking (in CI, keep the approval in the CI system)"));
    }
    eprint!("Push {} as {}? [y/N] ", plan.repository.name(), plan.tags.join(", "));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::from_error("cannot read the answer", e))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::user("not pushing: the plan was not confirmed"))
    }
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
