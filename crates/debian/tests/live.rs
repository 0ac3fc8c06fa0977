//! Against the live Debian mirror named in this host's apt sources (skipped with a note when
//! `MARQO_BASE_SKIP_LIVE=1`): the Marqo system set of bullseye for amd64 and arm64,
//! resolved, fetched, unpacked and run (chroot for amd64, qemu-aarch64-static for arm64),
//! and the python3.9 set compared with what `apt-get install --simulate` picks.
//!
//! The cache is the user's (`MARQO_BASE_CACHE_DIR` or `~/.cache/marqo-base`), so a second
//! run fetches only the `InRelease`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use debian::{
    fetch_debs, fetch_index_with, fetch_release, resolve, DebSource, Index, LockedDeb, ResolveOptions,
};

const SUITE: &str = "bullseye";
const MARQO_SET: &[&str] = &["python3.9", "libgomp1", "ffmpeg", "redis-server", "openjdk-17-jre-headless"];

fn skip() -> bool {
    if std::env::var("MARQO_BASE_SKIP_LIVE").is_ok_and(|v| v == "1") {
        // Straight to stderr, not captured: the run's output says what was skipped.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED the live Debian mirror test (crates/debian/tests/live.rs): MARQO_BASE_SKIP_LIVE=1\n",
        );
        return true;
    }
    false
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn dir_size(path: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn sh(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

async fn fetch_and_unpack(
    client: &fetch::Client,
    cache: &fetch::Cache,
    source: &DebSource,
    set: &[LockedDeb],
    root: &Path,
) -> Vec<(LockedDeb, PathBuf)> {
    let t = Instant::now();
    let paths = fetch_debs(client, cache, std::slice::from_ref(source), set).await.unwrap();
    let fetched = t.elapsed();
    let debs: Vec<(LockedDeb, PathBuf)> = set.iter().cloned().zip(paths).collect();
    let t = Instant::now();
    debian::unpack(&debs, root).unwrap();
    eprintln!(
        "  fetch {:.1}s ({:.0} MB of .debs), unpack {:.1}s -> {:.0} MB",
        fetched.as_secs_f64(),
        mb(set.iter().map(|d| d.size).sum()),
        t.elapsed().as_secs_f64(),
        mb(dir_size(root))
    );
    debs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bullseye_marqo_set_on_amd64_and_arm64() {
    if skip() {
        return;
    }
    let started = Instant::now();
    let source = DebSource::from_host_apt(Some(SUITE)).expect("a Debian mirror in this host's apt sources");
    let client = fetch::Client::new(fetch::ClientOptions::default()).unwrap();
    let cache = fetch::Cache::from_env().unwrap();

    let t = Instant::now();
    let release = fetch_release(&client, &cache, &source).await.unwrap();
    let (amd64, arm64) = tokio::join!(
        fetch_index_with(&client, &cache, &source, &release, "amd64"),
        fetch_index_with(&client, &cache, &source, &release, "arm64"),
    );
    let (amd64, arm64) = (amd64.unwrap(), arm64.unwrap());
    eprintln!("indexes: {} + {} packages in {:.1}s", amd64.len(), arm64.len(), t.elapsed().as_secs_f64());

    let request: Vec<String> = MARQO_SET.iter().map(|s| s.to_string()).collect();
    let opts = ResolveOptions { essential: true, ..Default::default() };
    let mut sets = BTreeMap::new();
    for index in [&amd64, &arm64] {
        let t = Instant::now();
        let set = resolve(index, &request, &opts).unwrap();
        eprintln!(
            "{}: {} packages, {:.0} MB of .debs, resolved in {:.0} ms",
            index.arch(),
            set.len(),
            mb(set.iter().map(|d| d.size).sum()),
            t.elapsed().as_secs_f64() * 1000.0
        );
        sets.insert(index.arch().to_string(), set);
    }
    let java = sets["amd64"].iter().find(|d| d.name == "openjdk-17-jre-headless").unwrap();
    eprintln!("java: openjdk-17-jre-headless {} from {SUITE} main", java.version);

    let amd64_root = tempfile::tempdir().unwrap();
    eprintln!("amd64:");
    fetch_and_unpack(&client, &cache, &source, &sets["amd64"], amd64_root.path()).await;
    check_amd64(amd64_root.path());
    drop(amd64_root);

    let arm64_root = tempfile::tempdir().unwrap();
    eprintln!("arm64:");
    fetch_and_unpack(&client, &cache, &source, &sets["arm64"], arm64_root.path()).await;
    check_arm64(arm64_root.path());
    drop(arm64_root);

    compare_with_apt(&amd64, &source);

    // bookworm: merged /usr comes from usr-is-merged in the essential closure.
    let t = Instant::now();
    let bookworm = DebSource::from_host_apt(Some("bookworm")).unwrap();
    let index = debian::fetch_index(&client, &cache, &bookworm, "arm64").await.unwrap();
    let set = resolve(&index, &["python3".to_string()], &opts).unwrap();
    assert!(set.iter().any(|d| d.name == "usr-is-merged"), "bookworm's essential set has usr-is-merged");
    eprintln!(
        "bookworm arm64: python3 + essential = {} packages ({:.1}s)",
        set.len(),
        t.elapsed().as_secs_f64()
    );
    eprintln!("live test done in {:.1}s", started.elapsed().as_secs_f64());
}

fn check_amd64(root: &Path) {
    let r = root.display().to_string();
    let (ok, text) = sh(Command::new("dpkg-query")
        .arg(format!("--admindir={r}/var/lib/dpkg"))
        .args(["-W", "redis-server"]));
    assert!(ok && text.starts_with("redis-server\t"), "{text}");
    let link =
        |p: &str| std::fs::read_link(root.join(p)).map(|t| t.display().to_string()).unwrap_or_default();
    assert_eq!(link("usr/bin/java"), "/etc/alternatives/java");
    assert!(link("etc/alternatives/java").ends_with("/bin/java"), "{}", link("etc/alternatives/java"));
    assert_eq!(link("bin/sh"), "dash");
    assert!(std::fs::read_to_string(root.join("etc/passwd")).unwrap().contains("\nredis:x:"));
    let bundle = std::fs::metadata(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(bundle.len() > 100_000, "CA bundle of {} bytes", bundle.len());
    assert!(is_root(), "the chroot checks need root (CI runs as root): run as root, or --skip this test");
    let (ok, text) = sh(Command::new("chroot").arg(root).args([
        "/usr/bin/python3.9",
        "-c",
        "import ssl, sqlite3; print('ok', ssl.OPENSSL_VERSION)",
    ]));
    assert!(ok && text.starts_with("ok"), "python3.9 in the amd64 root: {text}");
    eprintln!("  chroot python3.9: {}", text.trim());
    let (ok, text) = sh(Command::new("chroot").arg(root).args(["redis-server", "--version"]));
    assert!(ok && text.contains("Redis server v="), "redis-server: {text}");
    eprintln!("  chroot redis-server: {}", text.trim());
    // The JVM finds libjli.so through $ORIGIN, which needs /proc (as in any container).
    let (ok, text) = sh(Command::new("unshare")
        .args(["--fork", "--pid", "--mount"])
        .arg(format!("--mount-proc={r}/proc"))
        .arg("chroot")
        .arg(root)
        .args(["java", "-version"]));
    assert!(ok && text.contains("openjdk version \"17"), "java -version: {text}");
    eprintln!("  chroot java -version (with /proc): {}", text.lines().next().unwrap_or(""));
    let (ok, text) = sh(Command::new("chroot").arg(root).args([
        "sh",
        "-c",
        "ffmpeg -hide_banner -version | head -1; awk 'BEGIN{print 6*7}'; id redis",
    ]));
    assert!(ok && text.contains("ffmpeg version") && text.contains("42"), "{text}");
    eprintln!("  chroot ffmpeg/awk/id: {}", text.replace('\n', " | "));
    let (ok, text) = sh(Command::new("chroot").arg(root).args(["dpkg", "-l", "libgomp1"]));
    assert!(ok && text.contains("ii  libgomp1"), "dpkg -l in the root: {text}");
}

fn check_arm64(root: &Path) {
    let qemu = "qemu-aarch64-static";
    if Command::new(qemu).arg("--version").output().is_err() {
        panic!("{qemu} is missing: apt-get install --no-install-recommends qemu-user-static");
    }
    let (ok, text) = sh(Command::new(qemu)
        .arg("-L")
        .arg(root)
        .arg(root.join("usr/bin/python3.9"))
        .args(["-c", "import sqlite3, ssl; print('ok')"])
        .env("PYTHONHOME", root.join("usr")));
    assert!(ok && text.trim_end().ends_with("ok"), "python3.9 under qemu: {text}");
    eprintln!("  qemu-aarch64 python3.9: {}", text.trim());
    let (ok, text) =
        sh(Command::new(qemu).arg("-L").arg(root).arg(root.join("usr/bin/redis-server")).arg("--version"));
    assert!(ok && text.contains("Redis server v="), "redis-server under qemu: {text}");
}

/// Runs `apt-get install --simulate` for python3.9 plus the essential/required set in a
/// private apt root (no host state touched) and compares the packages and versions.
fn compare_with_apt(index: &Index, source: &DebSource) {
    let t = Instant::now();
    let base: Vec<String> = index
        .packages()
        .filter(|p| p.essential() || p.priority() == debian::Priority::Required)
        .map(|p| p.name().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let ours =
        resolve(index, &["python3.9".to_string()], &ResolveOptions { essential: true, ..Default::default() })
            .unwrap();

    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    for d in [
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "etc/apt/trusted.gpg.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/lib/dpkg",
        "var/log/apt",
    ] {
        std::fs::create_dir_all(w.join(d)).unwrap();
    }
    std::fs::write(w.join("var/lib/dpkg/status"), "").unwrap();
    std::fs::write(
        w.join("etc/apt/sources.list"),
        format!("deb [signed-by={}] {} {} main\n", source.keyring.display(), source.mirror, source.suite),
    )
    .unwrap();
    let d = w.display();
    let conf = format!(
        "Dir \"{d}/\";\nDir::State::status \"{d}/var/lib/dpkg/status\";\nDir::Etc \"{d}/etc/apt/\";\nDir::Etc::Parts \"{d}/etc/apt/apt.conf.d/\";\nDir::Etc::TrustedParts \"{d}/etc/apt/trusted.gpg.d/\";\nDir::Log \"{d}/var/log/apt/\";\nAPT::Architecture \"amd64\";\nAPT::Architectures {{ \"amd64\"; }};\nAcquire::Languages \"none\";\nAPT::Sandbox::User \"root\";\nAPT::Install-Recommends \"false\";\n"
    );
    std::fs::write(w.join("apt.conf"), conf).unwrap();
    let apt = |args: &[&str]| sh(Command::new("apt-get").env("APT_CONFIG", w.join("apt.conf")).args(args));
    let (ok, text) = apt(&["-q", "update"]);
    assert!(ok, "private apt-get update: {text}");
    let mut args = vec!["-q", "install", "--simulate", "python3.9"];
    args.extend(base.iter().map(String::as_str));
    let (ok, text) = apt(&args);
    assert!(ok, "apt-get --simulate: {text}");
    let apt_set: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter_map(|l| {
            let (name, rest) = l.split_once(' ')?;
            let version = rest.trim_start_matches('(').split_whitespace().next()?;
            Some((name.split(':').next()?.to_string(), version.to_string()))
        })
        .collect();
    let our_set: BTreeMap<String, String> =
        ours.iter().map(|d| (d.name.clone(), d.version.clone())).collect();
    let only_ours: Vec<String> =
        our_set.iter().filter(|(n, _)| !apt_set.contains_key(*n)).map(|(n, v)| format!("{n}={v}")).collect();
    let only_apt: Vec<String> =
        apt_set.iter().filter(|(n, _)| !our_set.contains_key(*n)).map(|(n, v)| format!("{n}={v}")).collect();
    let versions: Vec<String> = our_set
        .iter()
        .filter_map(|(n, v)| apt_set.get(n).filter(|a| *a != v).map(|a| format!("{n}: ours {v}, apt {a}")))
        .collect();
    eprintln!(
        "apt comparison (python3.9 + {} essential/required, amd64): ours {} packages, apt {}; only ours: {:?}; only apt: {:?}; version differences: {:?} ({:.1}s)",
        base.len(),
        our_set.len(),
        apt_set.len(),
        only_ours,
        only_apt,
        versions,
        t.elapsed().as_secs_f64()
    );
    assert!(versions.is_empty(), "versions differ from apt: {versions:?}");
    assert!(only_ours.is_empty() && only_apt.is_empty(), "package sets differ from apt");
}
