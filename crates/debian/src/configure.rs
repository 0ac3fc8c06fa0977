//! What maintainer scripts would do that an image needs, done declaratively from the
//! unpacked files and the packages' control data, without running anything:
//!
//! - the dpkg database: `/var/lib/dpkg/status` (`Status: install ok installed` plus the
//!   control fields and `Conffiles`), `info/<pkg>.list` (`<pkg>:<arch>` for
//!   `Multi-Arch: same`), `info/<pkg>.md5sums`, `.conffiles` and the other control members;
//! - users and groups: `/etc/passwd` and `/etc/group` from base-passwd's master copies,
//!   `/etc/shadow` and `/etc/gshadow`, plus the system users packages create with `adduser`
//!   (see [`SYSTEM_USERS`]), their directories and `dpkg-statoverride`s;
//! - `update-alternatives --install` links: every literal one in a `postinst` (mawk's `awk`,
//!   ...) and OpenJDK's tools (`java`, `keytool`, ...), highest priority wins as in auto mode,
//!   with `/var/lib/dpkg/alternatives/<name>` so `update-alternatives --display` works;
//! - `update-ca-certificates`: the CA bundle `/etc/ssl/certs/ca-certificates.crt`, the
//!   per-certificate `.pem` links and `openssl rehash`'s `<subject hash>.N` links in
//!   `/etc/ssl/certs`, `/etc/ca-certificates.conf`, and the manifest's own certificates
//!   ([`ConfigureOptions::local_certificates`]) in `/usr/local/share/ca-certificates`;
//! - ca-certificates-java's truststore `/etc/ssl/certs/java/cacerts` (JKS, from every
//!   `/etc/ssl/certs/*.pem`, aliases `debian:<file>`) and the mode of `/etc/default/cacerts`;
//! - `/etc/shells` from literal `add-shell` calls, `/bin/sh -> dash` when no package ships
//!   `/bin/sh`, and tzdata's `/etc/localtime` (UTC).
//!
//! `/etc/ld.so.cache` is written by [`crate::unpack`] after these, since `ldconfig` reads the
//! configured root (alternatives' links to libraries among it): see [`crate::ldcache`].
//! [`crate::scripts`] lists what the scripts do beyond all this.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::certs::{pem_blocks, read_pem_certificates, Certificate, LocalCertificate};
use crate::deb::ControlFiles;
use crate::deb822;
use crate::error::io_error;
use crate::jks::{write_truststore, TrustedEntry};
use crate::resolve::LockedDeb;
use crate::Error;

/// What configuration takes besides the packages.
#[derive(Debug, Clone, Default)]
pub struct ConfigureOptions {
    /// Certificates to trust besides the packages' (the manifest's `ca_certificates`), as
    /// files in `/usr/local/share/ca-certificates`.
    pub local_certificates: Vec<LocalCertificate>,
    /// The time things are made at, in seconds (`SOURCE_DATE_EPOCH`, else 0): the creation
    /// time of each Java truststore entry.
    pub mtime: u64,
    /// Files the root gets besides the packages' (apt's sources and the keyrings they name),
    /// by relative path, owned by root with mode 0644.
    pub files: Vec<(String, Vec<u8>)>,
    /// The packages asked for by name: apt's `extended_states` marks every other package
    /// that neither `Essential: yes` nor `Priority: required` brings as auto-installed.
    pub manual: BTreeSet<String>,
}

/// A package once unpacked: what configuration needs to know about it.
#[derive(Debug, Clone)]
pub struct InstalledPackage {
    /// The lock entry.
    pub locked: LockedDeb,
    /// Its control archive.
    pub control: ControlFiles,
    /// Every path it shipped, absolute (`/usr/bin/python3.9`), in archive order.
    pub files: Vec<String>,
    /// md5 of each conffile, by absolute path.
    pub conffile_md5: BTreeMap<String, String>,
}

/// Something configuration adds to the root, after every package is unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generated {
    /// A regular file.
    File {
        /// Relative path (`etc/passwd`).
        path: String,
        /// Permission bits.
        mode: u32,
        /// Owner.
        uid: u64,
        /// Group.
        gid: u64,
        /// Content.
        content: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// Relative path.
        path: String,
        /// Target as it should be written.
        target: String,
    },
    /// A directory.
    Dir {
        /// Relative path.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Owner.
        uid: u64,
        /// Group.
        gid: u64,
    },
    /// New owner and mode of a path a package shipped (a `dpkg-statoverride` or `chown`).
    Owner {
        /// Relative path.
        path: String,
        /// Owner.
        uid: u64,
        /// Group.
        gid: u64,
        /// Permission bits, when they change too.
        mode: Option<u32>,
    },
}

/// A system account that a package's `postinst` creates with `adduser --system`.
#[derive(Debug, Clone, Copy)]
pub struct SystemUser {
    /// The package whose `postinst` creates it.
    pub package: &'static str,
    /// The user name.
    pub name: &'static str,
    /// Its own group of the same name (`--group`), or `nogroup`.
    pub own_group: bool,
    /// Home directory.
    pub home: &'static str,
    /// Directories the `postinst` creates or chowns: path, mode, group (`None` = the user's).
    pub dirs: &'static [(&'static str, u32, Option<&'static str>)],
    /// `dpkg-statoverride --add` entries: path, mode.
    pub overrides: &'static [(&'static str, u32)],
}

/// The system users known here, in the order apt would usually create them (which
/// decides their uids, from 100 up as `adduser --system` picks them).
pub const SYSTEM_USERS: &[SystemUser] = &[
    SystemUser {
        package: "apt",
        name: "_apt",
        own_group: false,
        home: "/nonexistent",
        dirs: &[],
        overrides: &[],
    },
    SystemUser {
        package: "redis-tools",
        name: "redis",
        own_group: true,
        home: "/var/lib/redis",
        dirs: &[
            ("/var/log/redis", 0o2750, Some("adm")),
            ("/var/lib/redis", 0o750, None),
            ("/etc/redis", 0o2770, None),
        ],
        overrides: &[("/etc/redis/redis.conf", 0o640)],
    },
    SystemUser {
        package: "dbus",
        name: "messagebus",
        own_group: true,
        home: "/nonexistent",
        dirs: &[],
        overrides: &[],
    },
];

/// Reads files of the unpacked root, which configuration derives things from.
use crate::fresh::Tree as Root;

/// Everything configuration adds for these packages (sorted by name), reading the
/// unpacked files under `root` where it needs content (master passwd files, certificates).
pub fn configure(
    installed: &[InstalledPackage],
    root: &Path,
    options: &ConfigureOptions,
) -> Result<Vec<Generated>, Error> {
    let tree = Root { root };
    let mut out = Vec::new();
    let names: BTreeSet<&str> = installed.iter().map(|p| p.locked.name.as_str()).collect();
    let shipped: BTreeSet<&str> = installed.iter().flat_map(|p| p.files.iter().map(String::as_str)).collect();

    let accounts = accounts(&tree, &names)?;
    let mut statoverride = Vec::new();
    if let Some(accounts) = &accounts {
        out.extend(accounts.files(&tree, names.contains("passwd"), options.mtime));
        for user in SYSTEM_USERS.iter().filter(|u| names.contains(u.package)) {
            let (uid, gid) = accounts.ids(user.name);
            for (dir, mode, group) in user.dirs {
                let gid = group.map_or(gid, |g| accounts.gid(g));
                out.push(Generated::Dir {
                    path: dir.trim_start_matches('/').to_string(),
                    mode: *mode,
                    uid,
                    gid,
                });
            }
            for (path, mode) in user.overrides {
                out.push(Generated::Owner {
                    path: path.trim_start_matches('/').to_string(),
                    uid,
                    gid,
                    mode: Some(*mode),
                });
                statoverride.push(format!("{} {} {:o} {path}\n", user.name, user.name, mode));
            }
        }
    }

    let alternatives = alternatives(installed, &shipped);
    for alt in alternatives.values() {
        out.extend(alt.generated());
    }

    // The comment ca-certificates' postinst starts a new /etc/ca-certificates.conf with.
    let postinst = installed
        .iter()
        .find(|p| p.locked.name == "ca-certificates")
        .and_then(|p| p.control.get("postinst"))
        .map(|s| String::from_utf8_lossy(s).into_owned());
    let header = postinst.as_deref().and_then(|s| here_document(s, "cat > /etc/ca-certificates.conf <<"));
    out.extend(ca_certificates(&tree, header.as_deref(), &names, &shipped, options)?);
    for (path, content) in &options.files {
        out.push(Generated::File {
            path: path.clone(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            content: content.clone(),
        });
    }

    // dash's postinst claims /bin/sh (debconf's dash/sh defaults to yes): it diverts
    // /bin/sh and sh(1) and makes them links to dash.
    let mut diversions = String::new();
    if names.contains("dash") {
        for (path, distrib, target) in [
            ("/usr/share/man/man1/sh.1.gz", "/usr/share/man/man1/sh.distrib.1.gz", "dash.1.gz"),
            ("/bin/sh", "/bin/sh.distrib", "dash"),
        ] {
            let rel = path.trim_start_matches('/');
            let shipped_link = std::fs::read_link(root.join(rel)).is_ok_and(|t| t.as_os_str() == target);
            if !shipped_link {
                out.push(Generated::Symlink { path: rel.into(), target: target.into() });
            }
            diversions.push_str(&format!("{path}\n{distrib}\ndash\n"));
        }
    }

    // Before bookworm, packages call add-shell; since, debianutils' update-shells reads
    // their files in /usr/share/debianutils/shells.d (see crate::fresh). add-shell appends
    // to the template debianutils' postinst copies, in the order packages are configured.
    let update_shells = names.contains("debianutils") && tree.read("usr/sbin/update-shells").is_some();
    let mut shells: Vec<String> = Vec::new();
    for p in installed {
        let Some(script) = p.control.get("postinst") else { continue };
        for shell in String::from_utf8_lossy(script)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("add-shell ").map(|x| x.trim().to_string()))
            .filter(|x| x.starts_with('/') && !x.contains('$'))
        {
            if !shells.contains(&shell) {
                shells.push(shell);
            }
        }
    }
    if !shells.is_empty() && !shipped.contains("/etc/shells") && !update_shells {
        let template =
            tree.read("usr/share/debianutils/shells").map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut text = template.unwrap_or_else(|| "# /etc/shells: valid login shells\n".to_string());
        for s in &shells {
            if !text.lines().any(|l| l == s) {
                text.push_str(s);
                text.push('\n');
            }
        }
        out.push(file("etc/shells", 0o644, text.into_bytes()));
    }

    if names.contains("tzdata") && !shipped.contains("/etc/localtime") {
        out.push(Generated::Symlink {
            path: "etc/localtime".into(),
            target: "/usr/share/zoneinfo/Etc/UTC".into(),
        });
        out.push(file("etc/timezone", 0o644, b"Etc/UTC\n".to_vec()));
    }

    let group_id = |name: &str| accounts.as_ref().map(|a| a.gid(name)).filter(|g| *g != 0 || name == "root");
    let fresh = crate::fresh::fresh_install(&tree, installed, &group_id, &options.manual, &out);
    out.extend(fresh);
    out.extend(dpkg_database(installed, &alternatives, &diversions, &statoverride.concat())?);
    Ok(out)
}

/// The text of the here-document a script's line starting with `command` (after white
/// space) opens: `cat > FILE <<EOF` up to the line `EOF`.
fn here_document(script: &str, command: &str) -> Option<String> {
    let mut lines = script.lines();
    let opening = lines.find(|l| l.trim_start().starts_with(command))?;
    let delimiter = opening.rsplit("<<").next()?.trim().trim_matches(['\'', '"', '-']);
    if delimiter.is_empty() {
        return None;
    }
    let mut text = String::new();
    for line in lines {
        if line.trim() == delimiter {
            return Some(text);
        }
        text.push_str(line);
        text.push('\n');
    }
    None
}

/// A regular file owned by root.
pub(crate) fn file(path: &str, mode: u32, content: Vec<u8>) -> Generated {
    Generated::File { path: path.to_string(), mode, uid: 0, gid: 0, content }
}

/// `/etc/passwd`, `/etc/group` and their shadow files.
struct Accounts {
    passwd: Vec<Vec<String>>,
    group: Vec<Vec<String>>,
}

fn accounts(tree: &Root<'_>, names: &BTreeSet<&str>) -> Result<Option<Accounts>, Error> {
    if !names.contains("base-passwd") {
        return Ok(None);
    }
    let read = |rel: &str| -> Result<Vec<Vec<String>>, Error> {
        let bytes = tree.read(rel).ok_or_else(|| Error::Deb {
            path: format!("base-passwd: /{rel}"),
            reason: "missing from the unpacked package".to_string(),
        })?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(':').map(str::to_string).collect())
            .collect())
    };
    let mut acc = Accounts {
        passwd: read("usr/share/base-passwd/passwd.master")?,
        group: read("usr/share/base-passwd/group.master")?,
    };
    for user in SYSTEM_USERS.iter().filter(|u| names.contains(u.package)) {
        // `adduser --system` leaves an existing user as it is (bookworm's base-passwd
        // has _apt).
        if acc.passwd.iter().any(|p| p[0] == user.name) {
            continue;
        }
        let gid = if user.own_group {
            let gid = free_id(&acc.group, 2);
            acc.group.push(vec![user.name.into(), "x".into(), gid.to_string(), String::new()]);
            gid
        } else {
            acc.gid("nogroup")
        };
        let uid = free_id(&acc.passwd, 2);
        acc.passwd.push(vec![
            user.name.into(),
            "x".into(),
            uid.to_string(),
            gid.to_string(),
            String::new(),
            user.home.into(),
            "/usr/sbin/nologin".into(),
        ]);
    }
    Ok(Some(acc))
}

/// The first id from 100 (adduser's first system id) not used in column `col`.
fn free_id(rows: &[Vec<String>], col: usize) -> u64 {
    let used: BTreeSet<u64> = rows.iter().filter_map(|r| r.get(col)?.parse().ok()).collect();
    (100..).find(|id| !used.contains(id)).unwrap_or(999)
}

impl Accounts {
    fn gid(&self, group: &str) -> u64 {
        self.group.iter().find(|g| g[0] == group).and_then(|g| g.get(2)?.parse().ok()).unwrap_or(0)
    }

    fn ids(&self, user: &str) -> (u64, u64) {
        self.passwd
            .iter()
            .find(|p| p[0] == user)
            .map(|p| {
                (
                    p.get(2).and_then(|x| x.parse().ok()).unwrap_or(0),
                    p.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
                )
            })
            .unwrap_or((0, 0))
    }

    /// The four files. With `shadow` (the passwd package's `shadowconfig on`: pwconv and
    /// grpconv) the passwords move to the shadow files and `x` takes their place; the last
    /// change is the day of `mtime` (as shadow's tools take `SOURCE_DATE_EPOCH`), left
    /// empty at 0, which would force a password change; the ageing fields come from
    /// `/etc/login.defs`.
    fn files(&self, tree: &Root<'_>, shadow: bool, mtime: u64) -> Vec<Generated> {
        let defs = String::from_utf8_lossy(&tree.read("etc/login.defs").unwrap_or_default()).into_owned();
        let def = |key: &str, default: &str| -> String {
            defs.lines()
                .rev()
                .find_map(|l| {
                    let mut words = l.split_whitespace();
                    (words.next() == Some(key)).then(|| words.next().unwrap_or(default).to_string())
                })
                .unwrap_or_else(|| default.to_string())
        };
        let ageing = format!(
            "{}:{}:{}:{}",
            if mtime > 0 { (mtime / 86_400).to_string() } else { String::new() },
            def("PASS_MIN_DAYS", "0"),
            def("PASS_MAX_DAYS", "99999"),
            def("PASS_WARN_AGE", "7"),
        );
        // What the shadow files hold: the password field, or for an account already
        // shadowed (`x`, as adduser makes system users) a locked one.
        let password = |row: &Vec<String>, locked: &str| match row.get(1).map(String::as_str) {
            Some("x") | None => locked.to_string(),
            Some(p) => p.to_string(),
        };
        let join = |rows: &[Vec<String>]| {
            rows.iter()
                .map(|r| {
                    let mut r = r.clone();
                    if shadow && r.len() > 1 {
                        r[1] = "x".into();
                    }
                    format!("{}\n", r.join(":"))
                })
                .collect::<String>()
        };
        let shadow_text: String = self
            .passwd
            .iter()
            .map(|p| {
                if shadow {
                    format!("{}:{}:{ageing}:::\n", p[0], password(p, "*"))
                } else {
                    format!("{}:*:::::::\n", p[0])
                }
            })
            .collect();
        let gshadow: String = self
            .group
            .iter()
            .map(|g| {
                let pw = if shadow { password(g, "!") } else { "*".into() };
                format!("{}:{pw}::{}\n", g[0], g.get(3).map(String::as_str).unwrap_or(""))
            })
            .collect();
        let shadow_gid = self.gid("shadow");
        vec![
            file("etc/passwd", 0o644, join(&self.passwd).into_bytes()),
            file("etc/group", 0o644, join(&self.group).into_bytes()),
            Generated::File {
                path: "etc/shadow".into(),
                mode: 0o640,
                uid: 0,
                gid: shadow_gid,
                content: shadow_text.into_bytes(),
            },
            Generated::File {
                path: "etc/gshadow".into(),
                mode: 0o640,
                uid: 0,
                gid: shadow_gid,
                content: gshadow.into_bytes(),
            },
        ]
    }
}

/// A slave link of an alternative: link, name, path.
pub type Slave = (String, String, String);

/// One choice of an alternative: path, priority, slaves.
pub type Choice = (String, i64, Vec<Slave>);

/// One `update-alternatives` link group.
#[derive(Debug, Clone, Default)]
pub struct Alternative {
    /// The generic name (`awk`).
    pub name: String,
    /// The link (`/usr/bin/awk`).
    pub link: String,
    /// Every installed choice: path, priority, slaves (link, name, path).
    pub choices: Vec<Choice>,
}

impl Alternative {
    /// The choice auto mode picks: the highest priority (the first listed on a tie).
    fn best(&self) -> Option<&Choice> {
        self.choices.iter().fold(None, |best, c| match best {
            Some(b) if b.1 >= c.1 => Some(b),
            _ => Some(c),
        })
    }

    fn generated(&self) -> Vec<Generated> {
        let Some((path, _, slaves)) = self.best() else { return Vec::new() };
        let mut out = vec![
            Generated::Symlink {
                path: self.link.trim_start_matches('/').to_string(),
                target: format!("/etc/alternatives/{}", self.name),
            },
            Generated::Symlink { path: format!("etc/alternatives/{}", self.name), target: path.clone() },
        ];
        for (link, name, target) in slaves {
            out.push(Generated::Symlink {
                path: link.trim_start_matches('/').to_string(),
                target: format!("/etc/alternatives/{name}"),
            });
            out.push(Generated::Symlink { path: format!("etc/alternatives/{name}"), target: target.clone() });
        }
        out
    }

    /// The administrative file `/var/lib/dpkg/alternatives/<name>`.
    fn admin_file(&self) -> String {
        let mut slave_names: Vec<(String, String)> = Vec::new();
        for (_, _, slaves) in &self.choices {
            for (link, name, _) in slaves {
                if !slave_names.iter().any(|(_, n)| n == name) {
                    slave_names.push((link.clone(), name.clone()));
                }
            }
        }
        let mut text = format!("auto\n{}\n", self.link);
        for (link, name) in &slave_names {
            text.push_str(&format!("{name}\n{link}\n"));
        }
        text.push('\n');
        for (path, priority, slaves) in &self.choices {
            text.push_str(&format!("{path}\n{priority}\n"));
            for (_, name) in &slave_names {
                let target =
                    slaves.iter().find(|(_, n, _)| n == name).map(|(_, _, t)| t.as_str()).unwrap_or("");
                text.push_str(target);
                text.push('\n');
            }
        }
        text.push('\n');
        text
    }
}

/// The alternatives the packages' `postinst`s would install, by name.
fn alternatives(installed: &[InstalledPackage], shipped: &BTreeSet<&str>) -> BTreeMap<String, Alternative> {
    let mut out: BTreeMap<String, Alternative> = BTreeMap::new();
    let mut add =
        |link: &str, name: &str, path: &str, priority: i64, slaves: Vec<(String, String, String)>| {
            if !shipped.contains(path) {
                return;
            }
            let slaves = slaves.into_iter().filter(|(_, _, t)| shipped.contains(t.as_str())).collect();
            let alt = out.entry(name.to_string()).or_insert_with(|| Alternative {
                name: name.to_string(),
                link: link.to_string(),
                choices: Vec::new(),
            });
            alt.choices.push((path.to_string(), priority, slaves));
        };
    for p in installed {
        let Some(script) = p.control.get("postinst") else { continue };
        let script = String::from_utf8_lossy(script).replace("\\\n", " ");
        for line in script.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = words.iter().position(|w| *w == "--install") else { continue };
            if !words[..at].contains(&"update-alternatives") {
                continue;
            }
            let args = &words[at + 1..];
            if args.len() < 4 || args[..4].iter().any(|a| a.contains('$')) {
                continue;
            }
            let Ok(priority) = args[3].parse::<i64>() else { continue };
            let mut slaves = Vec::new();
            let mut rest = &args[4..];
            while let ["--slave", link, name, path, tail @ ..] = rest {
                if ![link, name, path].iter().any(|a| a.contains('$')) {
                    slaves.push((link.to_string(), name.to_string(), path.to_string()));
                }
                rest = tail;
            }
            add(args[0], args[1], args[2], priority, slaves);
        }
        // OpenJDK installs its tools in a loop: every tool in jre_tools / jdk_tools.
        if p.locked.name.starts_with("openjdk-") {
            let priority = script
                .lines()
                .find_map(|l| l.trim().strip_prefix("priority="))
                .and_then(|v| v.trim().parse::<i64>().ok());
            let basedir = script.lines().find_map(|l| l.trim().strip_prefix("basedir=")).map(str::trim);
            let tools: Vec<&str> = script
                .lines()
                .filter_map(|l| {
                    let l = l.trim();
                    l.strip_prefix("jre_tools=").or_else(|| l.strip_prefix("jdk_tools="))
                })
                .flat_map(|v| v.trim_matches(|c| c == '\'' || c == '"').split_whitespace())
                .collect();
            if let (Some(priority), Some(basedir)) = (priority, basedir) {
                for tool in tools {
                    let man = format!("{basedir}/man/man1/{tool}.1.gz");
                    add(
                        &format!("/usr/bin/{tool}"),
                        tool,
                        &format!("{basedir}/bin/{tool}"),
                        priority,
                        vec![(format!("/usr/share/man/man1/{tool}.1.gz"), format!("{tool}.1.gz"), man)],
                    );
                }
                let binfmt = format!("{basedir}/lib/jar.binfmt");
                let slaves = if shipped.contains(binfmt.as_str()) {
                    vec![("/usr/share/binfmts/jar".to_string(), "jexec-binfmt".to_string(), binfmt)]
                } else {
                    Vec::new()
                };
                add("/usr/bin/jexec", "jexec", &format!("{basedir}/lib/jexec"), priority, slaves);
            }
        }
    }
    out
}

/// The local certificates' directory, as ca-certificates' `postinst` makes it.
const LOCAL_CERTS: &str = "usr/local/share/ca-certificates";

/// `update-ca-certificates` (every certificate under /usr/share/ca-certificates enabled, then
/// the local ones) and, with ca-certificates-java, its truststore.
fn ca_certificates(
    tree: &Root<'_>,
    header: Option<&str>,
    names: &BTreeSet<&str>,
    shipped: &BTreeSet<&str>,
    options: &ConfigureOptions,
) -> Result<Vec<Generated>, Error> {
    let local = &options.local_certificates;
    if !names.contains("ca-certificates") {
        if let Some(first) = local.first() {
            return Err(Error::Certificate {
                file: first.name.clone(),
                reason: "certificates to trust need the ca-certificates package, which is not in the set"
                    .to_string(),
                hint: "add \"ca-certificates\" to [debian] packages and run `marqo-base lock`".to_string(),
            });
        }
        return Ok(Vec::new());
    }
    let certs: Vec<&str> = shipped
        .iter()
        .copied()
        .filter(|p| p.starts_with("/usr/share/ca-certificates/") && p.ends_with(".crt"))
        .collect();
    let mut conf = header
        .unwrap_or(
            "# Automatically generated by marqo-base, as update-ca-certificates would.\n\
         # Lines of certificates that should not be trusted start with `!`.\n",
        )
        .to_string();
    let mut bundle = Vec::new();
    let mut out = Vec::new();
    // The `.pem` links of /etc/ssl/certs by name: their target and the certificate file.
    let mut links: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    let mut add = |target: &str, base: &str, mut pem: Vec<u8>| {
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        bundle.extend_from_slice(&pem);
        links.insert(format!("{}.pem", pem_link_name(base)), (target.to_string(), pem));
    };
    for cert in certs {
        let rel = cert.trim_start_matches("/usr/share/ca-certificates/");
        conf.push_str(rel);
        conf.push('\n');
        let pem = tree.read(cert.trim_start_matches('/')).ok_or_else(|| Error::Deb {
            path: format!("ca-certificates: {cert}"),
            reason: "listed but not readable in the root".to_string(),
        })?;
        let base = rel.rsplit('/').next().unwrap_or(rel).trim_end_matches(".crt");
        add(cert, base, pem);
    }
    out.push(Generated::Dir { path: LOCAL_CERTS.into(), mode: 0o755, uid: 0, gid: 0 });
    let mut local: Vec<&LocalCertificate> = local.iter().collect();
    local.sort_by(|a, b| a.name.cmp(&b.name));
    for cert in local {
        let path = format!("{LOCAL_CERTS}/{}", cert.name);
        out.push(file(&path, 0o644, cert.pem.clone()));
        add(&format!("/{path}"), cert.name.trim_end_matches(".crt"), cert.pem.clone());
    }
    for (name, (target, _)) in &links {
        out.push(Generated::Symlink { path: format!("etc/ssl/certs/{name}"), target: target.clone() });
    }
    out.extend(rehash_links(tree, shipped, &links));
    out.push(file("etc/ca-certificates.conf", 0o644, conf.into_bytes()));
    out.push(file("etc/ssl/certs/ca-certificates.crt", 0o644, bundle));
    if names.contains("ca-certificates-java") {
        out.extend(java_truststore(tree, shipped, &links, options.mtime)?);
    }
    Ok(out)
}

/// The name of a certificate's link in /etc/ssl/certs, as update-ca-certificates makes it
/// from the file's name without `.crt`.
fn pem_link_name(base: &str) -> String {
    base.chars()
        .map(|c| match c {
            ' ' | ',' => '_',
            '(' | ')' => '=',
            c => c,
        })
        .collect()
}

/// The certificate files `openssl rehash /etc/ssl/certs` reads, by name: the `.pem` links
/// and any `.pem`, `.crt` or `.cer` file a package ships there.
fn rehash_links(
    tree: &Root<'_>,
    shipped: &BTreeSet<&str>,
    links: &BTreeMap<String, (String, Vec<u8>)>,
) -> Vec<Generated> {
    let mut files: BTreeMap<String, Vec<u8>> =
        links.iter().map(|(name, (_, pem))| (name.clone(), pem.clone())).collect();
    for path in shipped {
        let Some(name) = path.strip_prefix("/etc/ssl/certs/").filter(|n| !n.contains('/')) else { continue };
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if !matches!(ext.as_deref(), Some("pem" | "crt" | "cer")) || files.contains_key(name) {
            continue;
        }
        if let Some(bytes) = tree.read(path.trim_start_matches('/')) {
            files.insert(name.to_string(), bytes);
        }
    }
    // In name order (openssl rehash takes the directory's order): the first of each subject
    // hash is `.0`, a later one with another certificate `.1`, a duplicate none.
    let mut buckets: BTreeMap<u32, Vec<[u8; 20]>> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, pem) in &files {
        let cert = match read_pem_certificates(pem) {
            Ok(mut certs) if certs.len() == 1 => certs.remove(0),
            Ok(_) => {
                tracing::debug!("/etc/ssl/certs/{name}: not exactly one certificate, so no hash link");
                continue;
            }
            Err(e) => {
                tracing::warn!("/etc/ssl/certs/{name}: {e}; it gets no hash link");
                continue;
            }
        };
        let hash = cert.subject_hash();
        let seen = buckets.entry(hash).or_default();
        let fingerprint = cert.sha1_fingerprint();
        if seen.contains(&fingerprint) {
            continue;
        }
        out.push(Generated::Symlink {
            path: format!("etc/ssl/certs/{hash:08x}.{}", seen.len()),
            target: name.clone(),
        });
        seen.push(fingerprint);
    }
    out
}

/// ca-certificates-java's `postinst`: every `*.pem` under /etc/ssl/certs into the JKS
/// truststore `/etc/ssl/certs/java/cacerts` as `debian:<file name>` (the password from
/// `/etc/default/cacerts`, else `changeit`), and `chmod 600 /etc/default/cacerts`.
fn java_truststore(
    tree: &Root<'_>,
    shipped: &BTreeSet<&str>,
    links: &BTreeMap<String, (String, Vec<u8>)>,
    mtime: u64,
) -> Result<Vec<Generated>, Error> {
    let mut files: BTreeMap<String, Vec<u8>> =
        links.iter().map(|(name, (_, pem))| (format!("/etc/ssl/certs/{name}"), pem.clone())).collect();
    for path in shipped.iter().filter(|p| p.starts_with("/etc/ssl/certs/") && p.ends_with(".pem")) {
        if !files.contains_key(*path) {
            if let Some(bytes) = tree.read(path.trim_start_matches('/')) {
                files.insert(path.to_string(), bytes);
            }
        }
    }
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (path, pem) in &files {
        // Java reads the first certificate of a file; one it cannot read is skipped.
        let first = pem_blocks(pem)
            .ok()
            .and_then(|blocks| blocks.into_iter().find(|b| b.label == "CERTIFICATE"))
            .and_then(|b| Certificate::from_der(b.der).ok());
        let Some(cert) = first else {
            tracing::warn!("{path}: not a certificate Java can read; left out of the Java truststore");
            continue;
        };
        let name = path.rsplit('/').next().unwrap_or(path);
        entries.insert(crate::jks::java_lowercase(&format!("debian:{name}")), cert.der().to_vec());
    }
    let password = tree
        .read("etc/default/cacerts")
        .and_then(|text| {
            String::from_utf8_lossy(&text).lines().find_map(|l| {
                let v = l.trim().strip_prefix("storepass=")?;
                Some(v.trim_matches(|c| c == '\'' || c == '"').to_string())
            })
        })
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "changeit".to_string());
    let entries: Vec<TrustedEntry> =
        entries.into_iter().map(|(alias, der)| TrustedEntry { alias, der }).collect();
    let store = write_truststore(&entries, &password, mtime.saturating_mul(1000)).map_err(|reason| {
        Error::Deb { path: "ca-certificates-java: /etc/ssl/certs/java/cacerts".into(), reason }
    })?;
    let mut out = Vec::new();
    if !shipped.contains("/etc/ssl/certs/java") {
        out.push(Generated::Dir { path: "etc/ssl/certs/java".into(), mode: 0o755, uid: 0, gid: 0 });
    }
    out.push(file("etc/ssl/certs/java/cacerts", 0o644, store));
    if shipped.contains("/etc/default/cacerts") {
        out.push(Generated::Owner { path: "etc/default/cacerts".into(), uid: 0, gid: 0, mode: Some(0o600) });
    }
    Ok(out)
}

/// `/var/lib/dpkg`: status, info files, alternatives, diversions, statoverride.
fn dpkg_database(
    installed: &[InstalledPackage],
    alternatives: &BTreeMap<String, Alternative>,
    diversions: &str,
    statoverride: &str,
) -> Result<Vec<Generated>, Error> {
    let mut out = Vec::new();
    for dir in [
        "var/lib/dpkg",
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/lib/dpkg/alternatives",
    ] {
        out.push(Generated::Dir { path: dir.into(), mode: 0o755, uid: 0, gid: 0 });
    }
    let mut status = String::new();
    for p in installed {
        status.push_str(&status_stanza(p)?);
        status.push('\n');
        let info_name = if p.control_multi_arch_same() {
            format!("{}:{}", p.locked.name, p.locked.arch)
        } else {
            p.locked.name.clone()
        };
        let mut list = String::from("/.\n");
        for f in &p.files {
            list.push_str(f);
            list.push('\n');
        }
        out.push(file(&format!("var/lib/dpkg/info/{info_name}.list"), 0o644, list.into_bytes()));
        for (name, mode, bytes) in &p.control.others {
            let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            out.push(file(&format!("var/lib/dpkg/info/{info_name}.{name}"), mode, bytes.clone()));
        }
    }
    // The database layout version: without it dpkg takes the database for the pre-multiarch
    // format and looks for `info/NAME.list` where `Multi-Arch: same` packages have
    // `info/NAME:ARCH.list` (`dpkg --audit`: "missing the list control file").
    out.push(file("var/lib/dpkg/info/format", 0o644, b"1\n".to_vec()));
    out.push(file("var/lib/dpkg/status", 0o644, status.into_bytes()));
    // dpkg writes neither `available` nor an empty `statoverride` on an install.
    out.push(file("var/lib/dpkg/diversions", 0o644, diversions.as_bytes().to_vec()));
    if !statoverride.is_empty() {
        out.push(file("var/lib/dpkg/statoverride", 0o644, statoverride.as_bytes().to_vec()));
    }
    for alt in alternatives.values() {
        out.push(file(
            &format!("var/lib/dpkg/alternatives/{}", alt.name),
            0o644,
            alt.admin_file().into_bytes(),
        ));
    }
    Ok(out)
}

impl InstalledPackage {
    fn control_multi_arch_same(&self) -> bool {
        deb822::single_paragraph(&self.control.control)
            .ok()
            .and_then(|p| p.get("Multi-Arch"))
            .is_some_and(|v| v == "same")
    }
}

/// The fields dpkg knows, in the order it writes them to its status file; any other
/// field follows, in the control file's order.
const DPKG_FIELD_ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// The status file paragraph: the control fields with `Status` and `Conffiles`, in the
/// order dpkg writes them ([`DPKG_FIELD_ORDER`]).
fn status_stanza(p: &InstalledPackage) -> Result<String, Error> {
    let para = deb822::single_paragraph(&p.control.control).map_err(|source| Error::Syntax {
        file: format!("control of {} {}", p.locked.name, p.locked.version),
        source,
    })?;
    let mut conffiles = String::new();
    for c in p.control.conffiles() {
        let md5 = p.conffile_md5.get(&c).map(String::as_str).unwrap_or("newconffile");
        conffiles.push_str(&format!(" {c} {md5}\n"));
    }
    let mut known: BTreeMap<usize, String> = BTreeMap::new();
    let mut others = String::new();
    let position = |name: &str| DPKG_FIELD_ORDER.iter().position(|f| f.eq_ignore_ascii_case(name));
    for f in &para.fields {
        // Keep continuation lines as written.
        let raw = format!("{}\n", field_text(para.text, f.name, f.value));
        match position(f.name) {
            Some(i) => {
                known.insert(i, raw);
            }
            None => others.push_str(&raw),
        }
    }
    known.insert(position("Status").unwrap_or(0), "Status: install ok installed\n".to_string());
    if !conffiles.is_empty() {
        known.insert(position("Conffiles").unwrap_or(0), format!("Conffiles:\n{conffiles}"));
    }
    let mut text: String = known.into_values().collect();
    text.push_str(&others);
    Ok(text)
}

/// The field as it appears in the paragraph (`Name: value` with its continuation lines).
fn field_text(paragraph: &str, name: &str, value: &str) -> String {
    // `value` is a slice of `paragraph`: take the text from the name to the value's end.
    let base = paragraph.as_ptr() as usize;
    let value_end = value.as_ptr() as usize + value.len() - base;
    let name_start = name.as_ptr() as usize - base;
    if value.is_empty() || value_end > paragraph.len() || name_start > value_end {
        return format!("{name}: {value}");
    }
    paragraph[name_start..value_end].to_string()
}

/// Reads a root's `/var/lib/dpkg/status` back (for tests and `tree`): package name to
/// (version, status).
pub fn read_status(root: &Path) -> Result<BTreeMap<String, (String, String)>, Error> {
    let path = root.join("var/lib/dpkg/status");
    let text = fs_err::read_to_string(&path).map_err(io_error("read", &path))?;
    let mut out = BTreeMap::new();
    for p in deb822::paragraphs(&text) {
        let p = p.map_err(|source| Error::Syntax { file: path.display().to_string(), source })?;
        if let (Some(name), Some(version), Some(status)) =
            (p.get("Package"), p.get("Version"), p.get("Status"))
        {
            out.insert(name.to_string(), (version.to_string(), status.to_string()));
        }
    }
    Ok(out)
}
