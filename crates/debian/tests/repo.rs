//! Against a signed apt repository built here with dpkg-deb, apt-ftparchive and gpg, served
//! on 127.0.0.1: verification, resolution on both architectures, fetching, unpacking,
//! declarative configuration, and the failure cases.
//!
//! One repository serves every scenario (building it is the slow part), so the scenarios
//! run in sequence inside one test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{client_and_cache, run, tar_gz, write_evil_deb, write_raw_deb, Deb, Repo, Server};
use debian::{fetch_debs, fetch_index, resolve, DebSource, Error, Index, LockedDeb, ResolveOptions};

fn build_packages(repo: &Repo) {
    let work = repo.dir.path().join("build");
    let pool = repo.pool();
    let both = |d: Deb, f: &dyn Fn(Deb, &str) -> Deb| {
        for arch in ["amd64", "arm64"] {
            f(d.clone().arch(arch), arch).build(&work, &pool);
        }
    };
    let triplet = |arch: &str| if arch == "amd64" { "x86_64-linux-gnu" } else { "aarch64-linux-gnu" };
    both(Deb::new("base-files", "1").field("Essential", "yes").field("Priority", "required"), &|d, _| {
        d.file("/etc/debian_version", "test\n", 0o644)
    });
    both(Deb::new("libc-test", "1.0").field("Priority", "required").field("Multi-Arch", "same"), &|d, a| {
        d.file(&format!("/usr/lib/{}/libc-test.so", triplet(a)), a, 0o644)
    });
    both(Deb::new("base-passwd", "3").field("Essential", "yes"), &|d, _| {
        d.file(
            "/usr/share/base-passwd/passwd.master",
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            0o644,
        )
        .file(
            "/usr/share/base-passwd/group.master",
            "root:x:0:\nadm:x:4:\nshadow:x:42:\nusers:x:100:\nnogroup:x:65534:\n",
            0o644,
        )
    });
    both(Deb::new("dash", "1").field("Essential", "yes").field("Pre-Depends", "libc-test"), &|d, _| {
        d.file("/bin/dash", "#!/bin/false\n", 0o755).control_file(
            "postinst",
            "#!/bin/sh\nset -e\nif true; then\n\tadd-shell /bin/dash\nfi\n",
            0o755,
        )
    });
    both(Deb::new("mawk", "1").field("Priority", "required").field("Provides", "awk"), &|d, _| {
        d.file("/usr/bin/mawk", "#!/bin/false\n", 0o755).control_file(
            "postinst",
            "#!/bin/sh\nset -e\nupdate-alternatives --quiet --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n  --slave /usr/bin/nawk nawk /usr/bin/mawk\n",
            0o755,
        )
    });
    for v in ["1.0", "2.0"] {
        both(Deb::new("libfoo", v), &|d, _| d);
    }
    both(Deb::new("pyish", "3").field("Multi-Arch", "allowed"), &|d, _| d);
    both(Deb::new("redis-tools", "1"), &|d, _| {
        d.file("/etc/redis/redis.conf", "bind 127.0.0.1\n", 0o644).control_file(
            "conffiles",
            "/etc/redis/redis.conf\n",
            0o644,
        )
    });
    both(Deb::new("hello", "1"), &|d, _| {
        d.file("/usr/bin/hello", "#!/bin/sh\necho hello\n", 0o755)
            .symlink("/usr/bin/hi", "hello")
            .control_file(
                "postinst",
                "#!/bin/sh\nupdate-alternatives --install /usr/bin/greet greet /usr/bin/hello 10\n",
                0o755,
            )
    });
    Deb::new("armonly", "1").arch("arm64").build(&work, &pool);
    let all = [
        Deb::new("libfoo-compat", "1"),
        Deb::new("app", "2.0")
            .depends("libfoo (>= 1.5) | libfoo-compat, mail-transport-agent, pyish:any")
            .field("Pre-Depends", "dash"),
        Deb::new("mta-b", "1").field("Provides", "mail-transport-agent"),
        Deb::new("mta-a", "1").field("Provides", "mail-transport-agent").field("Priority", "standard"),
        Deb::new("needs-versioned", "1").depends("virt (>= 2)"),
        Deb::new("virt-old", "1").field("Provides", "virt (= 1)"),
        Deb::new("virt-new", "1").field("Provides", "virt (= 3)"),
        Deb::new("bt", "1").depends("choice-a | choice-b"),
        Deb::new("choice-a", "1").depends("nonexistent-pkg"),
        Deb::new("choice-b", "1"),
        Deb::new("c1", "1").field("Conflicts", "c2"),
        Deb::new("c2", "1"),
        Deb::new("dep-conflict", "1").depends("x-first | x-second"),
        Deb::new("x-first", "1").field("Conflicts", "c1"),
        Deb::new("x-second", "1"),
        Deb::new("broken", "1").depends("libfoo (>= 3)"),
        Deb::new("usr-is-merged", "1"),
        Deb::new("tool-in-bin", "1").file("/bin/tool", "#!/bin/false\n", 0o755),
        Deb::new("ca-certificates", "1")
            .file(
                "/usr/share/ca-certificates/test/a.crt",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                0o644,
            )
            .file(
                "/usr/share/ca-certificates/test/b.crt",
                "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n",
                0o644,
            ),
    ];
    for d in all {
        d.build(&work, &pool);
    }
    write_evil_deb(&pool.join("evil-dotdot_1.0_all.deb"), "evil-dotdot", "./usr/../../../evil-escape");
    let control = "Package: linky\nVersion: 1\nArchitecture: all\nMaintainer: T <t@example.invalid>\nDescription: links\n";
    let data = tar_gz(&[
        ("./", b"", tar::EntryType::Directory, ""),
        ("./usr/", b"", tar::EntryType::Directory, ""),
        ("./usr/share/", b"", tar::EntryType::Directory, ""),
        ("./usr/share/a", b"same inode\n", tar::EntryType::Regular, ""),
        ("./usr/share/b", b"", tar::EntryType::Link, "./usr/share/a"),
    ]);
    write_raw_deb(&pool.join("linky_1_all.deb"), control, data);
    let outside = escape_target();
    let control = "Package: evil-link\nVersion: 1\nArchitecture: all\nMaintainer: T <t@example.invalid>\nDescription: x\n";
    let data = tar_gz(&[
        ("./", b"", tar::EntryType::Directory, ""),
        ("./etc/", b"", tar::EntryType::Directory, ""),
        ("./etc/link", b"", tar::EntryType::Symlink, outside.to_str().unwrap()),
        ("./etc/link/pwned", b"pwned\n", tar::EntryType::Regular, ""),
    ]);
    write_raw_deb(&pool.join("evil-link_1_all.deb"), control, data);
}

/// Where the evil-link package's symlink points: a directory outside every test root.
fn escape_target() -> PathBuf {
    std::env::temp_dir().join("marqo-base-debian-escape-test")
}

fn names(set: &[LockedDeb]) -> Vec<String> {
    set.iter().map(|d| format!("{}={} {}", d.name, d.version, d.arch)).collect()
}

fn req(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_repository_end_to_end() {
    common::require_tools();
    let started = std::time::Instant::now();
    let repo = Repo::new();
    build_packages(&repo);
    repo.publish("stable");
    repo.publish("tampered");
    let server = Server::start(repo.root());
    let (client, cache, _cache_dir) = client_and_cache();
    let mirror = url::Url::parse(&server.url()).unwrap();
    let source = DebSource::new(mirror.clone(), "stable", &repo.keyring);
    eprintln!("repository ready in {:?}", started.elapsed());

    let amd64 = fetch_index(&client, &cache, &source, "amd64").await.unwrap();
    let arm64 = fetch_index(&client, &cache, &source, "arm64").await.unwrap();
    assert!(amd64.by_name("armonly").next().is_none());
    assert!(arm64.by_name("armonly").next().is_some());

    resolves_chains_alternatives_and_provides(&amd64, &arm64);
    version_relations(&amd64);
    conflicts_and_failures(&amd64);
    unpacks_and_configures(&client, &cache, &source, &amd64).await;
    merged_usr(&client, &cache, &source, &amd64).await;
    refuses_unsafe_packages(&client, &cache, &source, &amd64).await;
    refuses_tampering_and_wrong_keys(&client, &repo, &mirror).await;
    works_offline_from_the_cache(&cache, &source).await;
    eprintln!("all scenarios in {:?}", started.elapsed());
}

fn resolves_chains_alternatives_and_provides(amd64: &Index, arm64: &Index) {
    let opts = ResolveOptions { essential: true, ..Default::default() };
    let request = req(&["app", "needs-versioned", "bt"]);
    let set = resolve(amd64, &request, &opts).unwrap();
    assert_eq!(
        names(&set),
        [
            "app=2.0 all",
            "base-files=1 amd64",
            "base-passwd=3 amd64",
            "bt=1 all",
            "choice-b=1 all",
            "dash=1 amd64",
            "libc-test=1.0 amd64",
            "libfoo=2.0 amd64",
            "mawk=1 amd64",
            "mta-a=1 all",
            "needs-versioned=1 all",
            "pyish=3 amd64",
            "usr-is-merged=1 all",
            "virt-new=1 all",
        ]
    );
    let set = resolve(arm64, &request, &opts).unwrap();
    assert!(names(&set).contains(&"libc-test=1.0 arm64".to_string()));
    assert!(set.iter().all(|d| d.arch == "arm64" || d.arch == "all"));
    assert!(set.iter().all(|d| d.sha256.len() == 64 && d.size > 0 && d.filename.starts_with("pool/main/")));
    // Without the essential set only what the request needs comes in.
    let set = resolve(amd64, &req(&["hello"]), &ResolveOptions::default()).unwrap();
    assert_eq!(names(&set), ["hello=1 amd64"]);
    // A virtual package asked for directly, with two providers, needs a choice.
    let err = resolve(amd64, &req(&["mail-transport-agent"]), &ResolveOptions::default()).unwrap_err();
    assert!(shown(&err).contains("mta-a, mta-b"), "{err}");
    // ... with one provider, it is taken.
    let set = resolve(amd64, &req(&["awk"]), &ResolveOptions::default()).unwrap();
    assert_eq!(names(&set), ["mawk=1 amd64"]);
}

fn version_relations(amd64: &Index) {
    let none = ResolveOptions::default();
    assert_eq!(names(&resolve(amd64, &req(&["libfoo (<< 2)"]), &none).unwrap()), ["libfoo=1.0 amd64"]);
    assert_eq!(names(&resolve(amd64, &req(&["libfoo=1.0"]), &none).unwrap()), ["libfoo=1.0 amd64"]);
    assert_eq!(names(&resolve(amd64, &req(&["libfoo (>= 1.5)"]), &none).unwrap()), ["libfoo=2.0 amd64"]);
    // A locked version is kept while the index has it.
    let locked = ResolveOptions { locked: [("libfoo".into(), "1.0".into())].into(), ..Default::default() };
    assert_eq!(names(&resolve(amd64, &req(&["libfoo"]), &locked).unwrap()), ["libfoo=1.0 amd64"]);
    // The request's version wins over what a dependency would pick: app then takes libfoo-compat.
    let set = resolve(amd64, &req(&["libfoo=1.0", "app"]), &none).unwrap();
    assert!(names(&set).contains(&"libfoo-compat=1 all".to_string()), "{:?}", names(&set));
}

/// The error as the binary shows it: the message, then its hint.
fn shown(err: &Error) -> String {
    match err.hint() {
        Some(hint) => format!("{err}\nhint: {hint}"),
        None => err.to_string(),
    }
}

fn conflicts_and_failures(amd64: &Index) {
    let none = ResolveOptions::default();
    let err = resolve(amd64, &req(&["c1", "c2"]), &none).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Conflict { .. })
            && text.contains("c1")
            && text.contains("c2")
            && text.contains("amd64"),
        "{text}"
    );
    let set = resolve(amd64, &req(&["c1", "dep-conflict"]), &none).unwrap();
    assert!(names(&set).contains(&"x-second=1 all".to_string()), "{:?}", names(&set));

    let err = resolve(amd64, &req(&["broken"]), &none).unwrap_err();
    let text = shown(&err);
    assert!(matches!(err, Error::Unsatisfiable(_)), "{text}");
    for needle in ["amd64", "broken 1", "libfoo (>= 3)", "only libfoo 2.0, 1.0", "hint:"] {
        assert!(text.contains(needle), "`{needle}` missing in: {text}");
    }
    let err = resolve(amd64, &req(&["armonly"]), &none).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }) && err.to_string().contains("amd64"), "{err}");
    let err = resolve(amd64, &req(&["choice-a"]), &none).unwrap_err();
    assert!(shown(&err).contains("nonexistent-pkg"), "{err}");
}

async fn fetch_and_pair(
    client: &fetch::Client,
    cache: &fetch::Cache,
    source: &DebSource,
    set: &[LockedDeb],
) -> Vec<(LockedDeb, PathBuf)> {
    let paths = fetch_debs(client, cache, std::slice::from_ref(source), set).await.unwrap();
    set.iter().cloned().zip(paths).collect()
}

async fn unpacks_and_configures(
    client: &fetch::Client,
    cache: &fetch::Cache,
    source: &DebSource,
    amd64: &Index,
) {
    let opts = ResolveOptions { essential: true, ..Default::default() };
    let set =
        resolve(amd64, &req(&["app", "hello", "redis-tools", "ca-certificates", "linky"]), &opts).unwrap();
    let debs = fetch_and_pair(client, cache, source, &set).await;
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let unpacked = debian::unpack(&debs, r).unwrap();

    let link = |p: &str| std::fs::read_link(r.join(p)).map(|t| t.display().to_string()).unwrap_or_default();
    assert_eq!(link("bin/sh"), "dash");
    assert_eq!(link("usr/bin/awk"), "/etc/alternatives/awk");
    assert_eq!(link("etc/alternatives/awk"), "/usr/bin/mawk");
    assert_eq!(link("usr/bin/nawk"), "/etc/alternatives/nawk");
    assert_eq!(link("usr/bin/greet"), "/etc/alternatives/greet");
    assert_eq!(link("usr/bin/hi"), "hello");
    let admin = std::fs::read_to_string(r.join("var/lib/dpkg/alternatives/awk")).unwrap();
    assert_eq!(admin, "auto\n/usr/bin/awk\nnawk\n/usr/bin/nawk\n\n/usr/bin/mawk\n5\n/usr/bin/mawk\n\n");

    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    assert!(passwd.starts_with("root:x:0:0:root:/root:/bin/bash\n"), "{passwd}");
    assert!(passwd.contains("redis:x:100:101::/var/lib/redis:/usr/sbin/nologin\n"), "{passwd}");
    let group = std::fs::read_to_string(r.join("etc/group")).unwrap();
    assert!(group.contains("redis:x:101:\n"), "{group}");
    assert!(std::fs::read_to_string(r.join("etc/shadow")).unwrap().contains("redis:*:"));
    use std::os::unix::fs::MetadataExt;
    let conf = std::fs::metadata(r.join("etc/redis/redis.conf")).unwrap();
    assert_eq!(conf.mode() & 0o7777, 0o640);
    let lib = std::fs::metadata(r.join("var/lib/redis")).unwrap();
    assert_eq!(lib.mode() & 0o7777, 0o750);
    if run(Command::new("id").arg("-u")).trim() == "0" {
        assert_eq!((conf.uid(), conf.gid()), (100, 101));
        assert_eq!(std::fs::metadata(r.join("var/log/redis")).unwrap().gid(), 4);
    }
    // The record has them whoever unpacks (an unprivileged unpack cannot chown).
    let stat = |p: &str| unpacked.owners.get(&std::fs::symlink_metadata(r.join(p)).unwrap());
    let want = |uid, gid, mode| Some(debian::Stat { uid, gid, mode });
    assert_eq!(stat("etc/redis/redis.conf"), want(100, 101, 0o640));
    assert_eq!(stat("etc/redis"), want(100, 101, 0o2770));
    assert_eq!(stat("var/log/redis"), want(100, 4, 0o2750));
    assert_eq!(stat("var/lib/redis"), want(100, 101, 0o750));
    assert_eq!(stat("usr/bin/hello"), want(0, 0, 0o755));
    assert_eq!(stat("usr/bin/hi"), want(0, 0, 0o777));
    assert_eq!(stat("etc/shadow"), want(0, 42, 0o640));
    assert_eq!(
        std::fs::read_to_string(r.join("var/lib/dpkg/statoverride")).unwrap(),
        "redis redis 640 /etc/redis/redis.conf\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/shells")).unwrap(),
        "# /etc/shells: valid login shells\n/bin/dash\n"
    );

    let bundle = std::fs::read_to_string(r.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(bundle.contains("-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBBB"), "{bundle}");
    assert_eq!(link("etc/ssl/certs/a.pem"), "/usr/share/ca-certificates/test/a.crt");

    let a = std::fs::metadata(r.join("usr/share/a")).unwrap();
    let b = std::fs::metadata(r.join("usr/share/b")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));

    // dpkg itself reads the database we wrote.
    let listing = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}/var/lib/dpkg", r.display()))
        .args(["-W", "-f", "${db:Status-Abbrev} ${Package} ${Version}\\n"]));
    for d in &set {
        assert!(
            listing.contains(&format!("ii  {} {}\n", d.name, d.version)),
            "{} missing in:\n{listing}",
            d.name
        );
    }
    let status = std::fs::read_to_string(r.join("var/lib/dpkg/status")).unwrap();
    assert!(status.contains("Package: redis-tools\nStatus: install ok installed\n"), "{status}");
    let md5 = run(Command::new("md5sum").arg(r.join("etc/redis/redis.conf")));
    let md5 = md5.split_whitespace().next().unwrap();
    assert!(status.contains(&format!("Conffiles:\n /etc/redis/redis.conf {md5}\n")), "{status}");
    assert!(r.join("var/lib/dpkg/info/libc-test:amd64.list").is_file());
    let list = std::fs::read_to_string(r.join("var/lib/dpkg/info/hello.list")).unwrap();
    assert!(
        list.starts_with("/.\n") && list.contains("/usr/bin/hello\n") && list.contains("/usr/bin/hi\n"),
        "{list}"
    );
    assert!(r.join("var/lib/dpkg/info/hello.postinst").is_file());
    let files = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}/var/lib/dpkg", r.display()))
        .args(["-L", "hello"]));
    assert!(files.contains("/usr/bin/hello"), "{files}");
}

async fn merged_usr(client: &fetch::Client, cache: &fetch::Cache, source: &DebSource, amd64: &Index) {
    let set =
        resolve(amd64, &req(&["usr-is-merged", "tool-in-bin", "dash"]), &ResolveOptions::default()).unwrap();
    let debs = fetch_and_pair(client, cache, source, &set).await;
    let root = tempfile::tempdir().unwrap();
    debian::unpack(&debs, root.path()).unwrap();
    assert_eq!(std::fs::read_link(root.path().join("bin")).unwrap(), Path::new("usr/bin"));
    assert!(root.path().join("usr/bin/tool").is_file());
    assert!(root.path().join("usr/bin/dash").is_file());
    assert_eq!(std::fs::read_link(root.path().join("usr/bin/sh")).unwrap(), Path::new("dash"));
    // dpkg's file list keeps the paths as the package ships them.
    let list = std::fs::read_to_string(root.path().join("var/lib/dpkg/info/tool-in-bin.list")).unwrap();
    assert!(list.contains("/bin/tool\n"), "{list}");
}

async fn refuses_unsafe_packages(
    client: &fetch::Client,
    cache: &fetch::Cache,
    source: &DebSource,
    amd64: &Index,
) {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("a/b/root");
    let set = resolve(amd64, &req(&["evil-dotdot"]), &ResolveOptions::default()).unwrap();
    let debs = fetch_and_pair(client, cache, source, &set).await;
    let err = debian::unpack(&debs, &root).unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }) && err.to_string().contains("evil-dotdot"), "{err}");
    for dir in [outer.path(), &outer.path().join("a"), &outer.path().join("a/b")] {
        assert!(!dir.join("evil-escape").exists());
    }

    let outside = escape_target();
    let _ = std::fs::remove_dir_all(&outside);
    std::fs::create_dir_all(&outside).unwrap();
    let set = resolve(amd64, &req(&["evil-link"]), &ResolveOptions::default()).unwrap();
    let debs = fetch_and_pair(client, cache, source, &set).await;
    let root = tempfile::tempdir().unwrap();
    debian::unpack(&debs, root.path()).unwrap();
    assert!(!outside.join("pwned").exists(), "a write went through a symlink out of the root");
    let inside = root.path().join(outside.strip_prefix("/").unwrap()).join("pwned");
    assert!(inside.is_file(), "the entry should land inside the root at {}", inside.display());
    std::fs::remove_dir_all(&outside).unwrap();
}

async fn refuses_tampering_and_wrong_keys(client: &fetch::Client, repo: &Repo, mirror: &url::Url) {
    // A fresh cache: the untouched Packages of `stable` has the hash `tampered` lists, and a
    // cached blob of that hash would (rightly) be used without a download.
    let (_, cache, _dir) = client_and_cache();
    let cache = &cache;
    // A Packages file changed after signing.
    let packages = repo.root().join("dists/tampered/main/binary-amd64/Packages.xz");
    let text = std::fs::read(repo.root().join("dists/tampered/main/binary-amd64/Packages")).unwrap();
    let text = String::from_utf8(text).unwrap().replace("Version: 2.0", "Version: 2.1");
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    std::io::Write::write_all(&mut xz, text.as_bytes()).unwrap();
    std::fs::write(&packages, xz.finish().unwrap()).unwrap();
    let tampered = DebSource::new(mirror.clone(), "tampered", &repo.keyring);
    let err = fetch_index(client, cache, &tampered, "amd64").await.unwrap_err();
    let chain =
        format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
    assert!(chain.contains("Packages") && chain.contains("sha256"), "{chain}");

    // A Release text changed after signing.
    let inrelease = repo.root().join("dists/tampered/InRelease");
    let signed = std::fs::read_to_string(&inrelease).unwrap().replacen("Origin: Test", "Origin: Evil", 1);
    std::fs::write(&inrelease, signed).unwrap();
    let err = fetch_index(client, cache, &tampered, "amd64").await.unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    assert!(shown(&err).contains("changed after signing"), "{err}");

    // The right file, the wrong key.
    let wrong = DebSource::new(mirror.clone(), "stable", &repo.wrong_keyring);
    let err = fetch_index(client, cache, &wrong, "amd64").await.unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    assert!(shown(&err).contains("not in the keyring"), "{err}");

    // A missing keyring.
    let missing = DebSource::new(mirror.clone(), "stable", "/nonexistent/keyring.gpg");
    let err = fetch_index(client, cache, &missing, "amd64").await.unwrap_err();
    assert!(matches!(err, Error::Keyring { .. }), "{err}");

    // A suite that does not exist.
    let nosuite = DebSource::new(mirror.clone(), "nosuch", &repo.keyring);
    let err = fetch_index(client, cache, &nosuite, "amd64").await.unwrap_err();
    assert!(err.to_string().contains("nosuch"), "{err}");
}

async fn works_offline_from_the_cache(cache: &fetch::Cache, source: &DebSource) {
    let offline = fetch::Client::new(fetch::ClientOptions { offline: true, ..Default::default() }).unwrap();
    let index = fetch_index(&offline, cache, source, "arm64").await.unwrap();
    assert!(index.by_name("armonly").next().is_some());
}
