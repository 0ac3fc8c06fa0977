//! Owners and modes of an unpacked root as dpkg would set them, recorded beside the tree
//! rather than read back from it: an unprivileged unpack cannot `chown`, and the kernel
//! clears a setgid bit that a non-member of the group sets, so the tree on disk is only right
//! when the unpack runs as root. A layer built from the record has the same bytes either way.
//!
//! The record is keyed by inode, as the file system keeps owners: every name of a hard-linked
//! file shares one entry, and a path that is replaced gets a new one.
//!
//! dpkg takes an entry's owner from the tar header's user and group *names*, looked up in the
//! target system's `/etc/passwd` and `/etc/group`, and falls back to the header's numeric ids
//! when a name is empty or unknown there (`tar_entry_update_from_system`). Here the target's
//! account files are the ones configuration generates (base-passwd's master copies and the
//! system users), which exist only once every package is unpacked: names are kept with each
//! entry and resolved at the end (`resolve_names`, called by [`crate::unpack()`]). What configuration sets itself
//! (statoverrides, a postinst's `chown`, generated files) is numeric and never remapped.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The owner, group and permission bits (setuid, setgid and sticky included) of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Permission bits (`0o2755`); `0o777` for a symlink.
    pub mode: u32,
}

/// What was recorded for one inode.
#[derive(Debug, Clone)]
struct Record {
    /// The path it was last written at (for putting resolved owners on disk).
    path: PathBuf,
    stat: Stat,
    /// The header's user name, until it is resolved (never for configuration's entries).
    user: Option<String>,
    /// The header's group name, likewise.
    group: Option<String>,
}

/// The owners and modes of every inode an unpack wrote, by `(device, inode)`.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    by_inode: BTreeMap<(u64, u64), Record>,
}

fn key(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl Owners {
    /// What the file at `meta` (from `symlink_metadata`) should have, if the unpack wrote it.
    pub fn get(&self, meta: &std::fs::Metadata) -> Option<Stat> {
        self.by_inode.get(&key(meta)).map(|r| r.stat)
    }

    /// How many inodes are recorded.
    pub fn len(&self) -> usize {
        self.by_inode.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.by_inode.is_empty()
    }

    /// Records a package's entry, written at `path`: its numeric stat and the header's names
    /// (empty names are not kept: the ids stand).
    pub(crate) fn record_entry(
        &mut self,
        meta: &std::fs::Metadata,
        path: PathBuf,
        stat: Stat,
        user: &str,
        group: &str,
    ) {
        let name = |n: &str| (!n.is_empty()).then(|| n.to_string());
        let record = Record { path, stat, user: name(user), group: name(group) };
        self.by_inode.insert(key(meta), record);
    }

    /// Records a path added to the root after the unpack (a byte-compiled module, its
    /// `__pycache__`), owned by root with `mode`.
    pub fn record_added(&mut self, meta: &std::fs::Metadata, path: PathBuf, mode: u32) {
        self.record(meta, path, Stat { uid: 0, gid: 0, mode });
    }

    /// Records something configuration wrote, or a directory the unpack created: numeric.
    pub(crate) fn record(&mut self, meta: &std::fs::Metadata, path: PathBuf, stat: Stat) {
        self.by_inode.insert(key(meta), Record { path, stat, user: None, group: None });
    }

    /// A new owner (and mode, when given) for an inode, as `dpkg-statoverride` or a
    /// postinst's `chown` sets it; an unrecorded inode keeps the mode it has on disk.
    pub(crate) fn set_owner(
        &mut self,
        meta: &std::fs::Metadata,
        path: PathBuf,
        uid: u64,
        gid: u64,
        mode: Option<u32>,
    ) {
        let current = self.by_inode.get(&key(meta)).map_or(meta.mode() & 0o7777, |r| r.stat.mode);
        let stat = Stat { uid, gid, mode: mode.unwrap_or(current) };
        self.record(meta, path, stat);
    }

    /// Forgets an inode whose last name is being removed (its number may be reused).
    pub(crate) fn forget(&mut self, meta: &std::fs::Metadata) {
        if meta.is_dir() || meta.nlink() <= 1 {
            self.by_inode.remove(&key(meta));
        }
    }

    /// Resolves the kept names through the target's account files (`passwd` and `group`
    /// text, empty when the image has none), as dpkg does: a known name gives its id, an
    /// unknown one leaves the header's id. Returns the paths whose owner changed and their
    /// new stat, for the tree on disk.
    pub(crate) fn resolve_names(&mut self, passwd: &str, group: &str) -> Vec<(PathBuf, Stat)> {
        let users = ids(passwd);
        let groups = ids(group);
        let mut changed = Vec::new();
        for record in self.by_inode.values_mut() {
            let before = record.stat;
            if let Some(id) = record.user.take().and_then(|n| users.get(n.as_str()).copied()) {
                record.stat.uid = id;
            }
            if let Some(id) = record.group.take().and_then(|n| groups.get(n.as_str()).copied()) {
                record.stat.gid = id;
            }
            if record.stat != before {
                changed.push((record.path.clone(), record.stat));
            }
        }
        changed
    }
}

/// Name to id of an account file (`name:password:id:...`): the first line with a name wins,
/// as `getpwnam` and `getgrnam` read them; malformed lines are skipped.
fn ids(text: &str) -> BTreeMap<&str, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else { continue };
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if let Ok(id) = id.trim().parse::<u64>() {
            out.entry(name).or_insert(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_files_map_names_to_ids() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nbad line\n:x:5:5\nredis:x:100:101::/:/x\nroot:x:7:7::/:/x\n";
        let got = ids(passwd);
        assert_eq!(got.get("root"), Some(&0), "the first line wins");
        assert_eq!(got.get("redis"), Some(&100));
        assert_eq!(got.len(), 2);
        assert_eq!(ids("mail:x:8:\nstaff:x:50:alice,bob\nodd:x:notanumber:\n").get("staff"), Some(&50));
        assert!(ids("").is_empty());
    }

    #[test]
    fn names_resolve_through_the_accounts_else_the_ids_stand() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, name).unwrap();
            (std::fs::symlink_metadata(&path).unwrap(), path)
        };
        let mut owners = Owners::default();
        let (mailer, mailer_path) = write("mailer");
        let (odd, odd_path) = write("odd");
        let (conf, conf_path) = write("conf");
        let stat = |uid, gid, mode| Stat { uid, gid, mode };
        // The header's ids differ from the image's: the names decide.
        owners.record_entry(&mailer, mailer_path.clone(), stat(0, 1234, 0o2755), "root", "mail");
        // A group the image does not know: its id stands.
        owners.record_entry(&odd, odd_path, stat(0, 4321, 0o644), "root", "nosuchgroup");
        owners.record_entry(&conf, conf_path.clone(), stat(0, 0, 0o644), "root", "root");
        owners.set_owner(&conf, conf_path, 100, 101, Some(0o640));
        let changed = owners.resolve_names("root:x:0:0::/:/x\n", "root:x:0:\nmail:x:8:\n");
        assert_eq!(changed, [(mailer_path, stat(0, 8, 0o2755))]);
        assert_eq!(owners.get(&mailer), Some(stat(0, 8, 0o2755)));
        assert_eq!(owners.get(&odd), Some(stat(0, 4321, 0o644)));
        assert_eq!(owners.get(&conf), Some(stat(100, 101, 0o640)), "an override is not remapped");
        assert_eq!(owners.len(), 3);
        owners.forget(&odd);
        assert_eq!(owners.get(&odd), None);
    }
}
