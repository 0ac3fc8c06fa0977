//! `/etc/ld.so.cache` as `ldconfig` writes it, without running anything: the shared objects
//! of a root's library directories, by `DT_SONAME`, for the root's architecture.
//!
//! The directories are those `ldconfig` reads: the lines of `/etc/ld.so.conf` (with its
//! `include` globs, `/etc/ld.so.conf.d/*.conf` on Debian, in name order), then the system
//! directories of Debian's multiarch glibc (`/lib/<triplet>`, `/usr/lib/<triplet>`, `/lib`,
//! `/usr/lib`, as its `ldconfig -v` lists them). A
//! directory reached twice (on a merged-/usr root `/lib/x` is `/usr/lib/x`) is read once,
//! under its first name. In each, as glibc 2.31's `search_dir`: files named `lib*.so*` or
//! `ld-*.so*` that are ELF shared objects of the architecture; a symbolic link counts as its
//! target, and names the entry itself when its name is its target's soname (or a `.so` prefix
//! of it, the development link); a file is preferred to a link of the same soname, else the
//! higher version. Entries are `<dir>/<soname>`, sorted as `ldconfig` sorts them: sonames in
//! descending order with numbers compared as numbers (`_dl_cache_libcmp`), then the higher
//! flags, then the higher OS ABI version, then the order the directories came in.
//!
//! The format is the one bullseye's `ldconfig` (glibc 2.31-13) writes by default, checked
//! byte for byte against it: only the new format, `glibc-ld.so.cache1.1`, a 48-byte header
//! (magic, version, count, string table length, a flags byte saying little-endian as the
//! 2.33 format does and Debian's 2.31 writes, no extension offset, unused bytes), 24-byte entries (flags,
//! key, value, OS ABI version, hwcap), and the string table (each entry's soname then path,
//! NUL-terminated, not shared), offsets from the start of the file. Not done: hwcap
//! subdirectories (`tls`, `haswell`, ...; none in the packages of Marqo's image) are not
//! read, with a warning, and a `hwcap` line of the configuration is ignored.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use crate::unpack::RootWriter;

const MAGIC: &[u8; 20] = b"glibc-ld.so.cache1.1";
const HEADER_SIZE: usize = 48;
const ENTRY_SIZE: usize = 24;

const FLAG_ELF: u32 = 0x0001;
const FLAG_ELF_LIBC6: u32 = 0x0003;
const FLAG_X8664_LIB64: u32 = 0x0300;
const FLAG_X8664_LIBX32: u32 = 0x0800;
const FLAG_ARM_LIBHF: u32 = 0x0900;
const FLAG_AARCH64_LIB64: u32 = 0x0a00;
const FLAG_ARM_LIBSF: u32 = 0x0b00;

/// One entry of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The name programs ask for (`libz.so.1`).
    pub soname: String,
    /// Where it is (`/lib/x86_64-linux-gnu/libz.so.1`).
    pub path: String,
    /// `ldconfig`'s flags: the type (3, libc6) and the architecture (`0x0300` x86-64,
    /// `0x0a00` AArch64).
    pub flags: u32,
    /// The OS ABI version of the `.note.ABI-tag` (`0x00030200` for Linux 3.2.0), else 0.
    pub osversion: u32,
}

/// The entries of a root's cache, in cache order, and what was left out with a reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdCache {
    pub entries: Vec<CacheEntry>,
    /// Things `ldconfig` would read that are not (hwcap subdirectories).
    pub warnings: Vec<String>,
}

/// The multiarch triplet of a Debian architecture we build for.
fn triplet(arch: &str) -> Option<&'static str> {
    match arch {
        "amd64" => Some("x86_64-linux-gnu"),
        "arm64" => Some("aarch64-linux-gnu"),
        _ => None,
    }
}

/// Reads the library directories of the unpacked `root` (of Debian architecture `arch`) as
/// `ldconfig -r root` would. `None` for an architecture other than amd64 and arm64.
pub fn read_ld_cache(root: &Path, arch: &str) -> Option<LdCache> {
    let triplet = triplet(arch)?;
    let tree = RootWriter::new(root);
    let mut dirs: Vec<String> = Vec::new();
    let mut seen_conf = BTreeSet::new();
    read_conf(&tree, "/etc/ld.so.conf", &mut dirs, &mut seen_conf, 0);
    dirs.push(format!("/lib/{triplet}"));
    dirs.push(format!("/usr/lib/{triplet}"));
    // Debian's ldconfig reads these too (arm64's loader is /lib/ld-linux-aarch64.so.1).
    dirs.push("/lib".to_string());
    dirs.push("/usr/lib".to_string());

    let mut cache = LdCache::default();
    let mut visited: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut found: Vec<(usize, CacheEntry)> = Vec::new();
    for dir in dirs {
        let Ok(real) = tree.resolve(&dir, true) else { continue };
        let Ok(meta) = std::fs::metadata(&real) else { continue };
        if !meta.is_dir() || !visited.insert((meta.dev(), meta.ino())) {
            continue;
        }
        for entry in search_dir(&tree, &dir, &real, arch, &mut cache.warnings) {
            found.push((found.len(), entry));
        }
    }
    found.sort_by(|(a_at, a), (b_at, b)| {
        libcmp(&b.soname, &a.soname)
            .then(b.flags.cmp(&a.flags))
            .then(b.osversion.cmp(&a.osversion))
            .then(a_at.cmp(b_at))
    });
    cache.entries = found.into_iter().map(|(_, e)| e).collect();
    Some(cache)
}

/// The directories one configuration file names, in order, following `include` lines.
fn read_conf(
    tree: &RootWriter,
    path: &str,
    dirs: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
    depth: usize,
) {
    if depth > 8 || !seen.insert(path.to_string()) {
        return;
    }
    let Ok(real) = tree.resolve(path, true) else { return };
    let Ok(text) = std::fs::read(&real) else { return };
    for line in String::from_utf8_lossy(&text).lines() {
        let line = line.split('#').next().unwrap_or("").trim_start();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("include").filter(|r| r.starts_with([' ', '\t'])) {
            for pattern in rest.split([' ', '\t']).filter(|p| !p.is_empty()) {
                for file in glob(tree, pattern) {
                    read_conf(tree, &file, dirs, seen, depth + 1);
                }
            }
        } else if line.get(..5).is_some_and(|w| w.eq_ignore_ascii_case("hwcap"))
            && line[5..].starts_with([' ', '\t'])
        {
            // Extra hwcap names only matter for hwcap subdirectories, which are not read.
        } else {
            // `dir=type` names a library type for old a.out and libc5 files: only the path counts.
            let dir = line.split('=').next().unwrap_or("").trim_end().trim_end_matches('/');
            if dir.starts_with('/') {
                dirs.push(dir.to_string());
            }
        }
    }
}

/// The files a configuration `include` pattern matches inside the root, in name order: a
/// `*` glob in the last component (what Debian's configuration uses), else the path itself.
fn glob(tree: &RootWriter, pattern: &str) -> Vec<String> {
    if !pattern.starts_with('/') {
        return Vec::new();
    }
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    if !name.contains(['*', '?', '[']) {
        return vec![pattern.to_string()];
    }
    let Ok(real) = tree.resolve(dir, true) else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(real) else { return Vec::new() };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && wildcard(name, n))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

/// `*` and `?` matching as `glob(3)` does within one name (no `[...]` classes), retrying
/// only the last `*`.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|c| *c == b'*')
}

/// A library found in one directory, before its directory's candidates are merged.
struct Found {
    name: String,
    soname: String,
    flags: u32,
    osversion: u32,
    is_link: bool,
}

/// The names `ldconfig` would read as hwcap subdirectories for `arch`.
fn is_hwcap_dir(name: &str, arch: &str) -> bool {
    match arch {
        "amd64" => matches!(name, "haswell" | "xeon_phi" | "x86_64" | "avx512_1" | "tls"),
        _ => name == "tls",
    }
}

/// One directory's entries, as `search_dir` adds them (`dir` as the configuration names it,
/// `real` where it is on disk).
fn search_dir(
    tree: &RootWriter,
    dir: &str,
    real: &Path,
    arch: &str,
    warnings: &mut Vec<String>,
) -> Vec<CacheEntry> {
    let Ok(read) = std::fs::read_dir(real) else { return Vec::new() };
    let mut names: Vec<String> =
        read.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut libs: Vec<Found> = Vec::new();
    for name in names {
        let looks_like_lib = (name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so");
        if !looks_like_lib && !is_hwcap_dir(&name, arch) {
            continue;
        }
        let path = real.join(&name);
        let Ok(lmeta) = std::fs::symlink_metadata(&path) else { continue };
        let is_link = lmeta.file_type().is_symlink();
        // The target, resolved inside the root.
        let target = if is_link {
            match tree.resolve(&format!("{dir}/{name}"), true) {
                Ok(t) => t,
                Err(_) => continue,
            }
        } else {
            path.clone()
        };
        let Ok(meta) = std::fs::metadata(&target) else { continue };
        if meta.is_dir() {
            if is_hwcap_dir(&name, arch) {
                warnings.push(format!("{dir}/{name}: a hwcap subdirectory, not read for ld.so.cache"));
            }
            continue;
        }
        if !looks_like_lib || !meta.is_file() || name.ends_with(".#prelink#") || name.contains(".#prelink#.")
        {
            continue;
        }
        let Some(elf) = read_elf(&target, arch) else { continue };
        let mut soname = elf.soname.unwrap_or_else(|| name.clone());
        let mut is_link = is_link;
        if is_link && name != soname && !(name.ends_with(".so") && soname.starts_with(&name)) {
            is_link = false;
        }
        if is_link {
            soname = name.clone();
        }
        match libs.iter_mut().find(|l| l.soname == soname) {
            Some(known) => {
                if (!is_link && known.is_link)
                    || (is_link == known.is_link && libcmp(&known.name, &name) == std::cmp::Ordering::Less)
                {
                    known.name = name;
                    known.is_link = is_link;
                    known.osversion = elf.osversion;
                    // An untyped ELF file and a libc6 one of the same soname: the newer's type.
                    if matches!(
                        (known.flags, elf.flags),
                        (FLAG_ELF, FLAG_ELF_LIBC6) | (FLAG_ELF_LIBC6, FLAG_ELF)
                    ) {
                        known.flags = elf.flags;
                    }
                }
            }
            None => libs.push(Found { name, soname, flags: elf.flags, osversion: elf.osversion, is_link }),
        }
    }
    // `ldconfig` adds a directory's libraries from the head of a list it pushes onto.
    libs.into_iter()
        .rev()
        .map(|l| CacheEntry {
            path: format!("{dir}/{}", l.soname),
            soname: l.soname,
            flags: l.flags,
            osversion: l.osversion,
        })
        .collect()
}

/// What `ldconfig` takes from an ELF shared object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub soname: Option<String>,
    pub flags: u32,
    pub osversion: u32,
}

/// Reads the shared object at `path` as `ldconfig` for `arch` would (`process_elf_file`);
/// `None` for anything it skips: not ELF, not `ET_DYN`, another architecture, no dynamic
/// segment, or cut short.
pub fn read_elf(path: &Path, arch: &str) -> Option<ElfInfo> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let at = |offset: u64, size: u64| -> Option<Vec<u8>> {
        if offset.checked_add(size)? > len || size > 1 << 24 {
            return None;
        }
        let mut buf = vec![0u8; size as usize];
        file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    };
    parse_elf(&at, len, arch)
}

/// [`read_elf`] over a reader of `(offset, size)` ranges of a file of `len` bytes.
fn parse_elf(at: &dyn Fn(u64, u64) -> Option<Vec<u8>>, len: u64, arch: &str) -> Option<ElfInfo> {
    // Smaller than an a.out header or an ELF header: not checked.
    if len < 64 {
        return None;
    }
    let ident = at(0, 64)?;
    if &ident[..4] != b"\x7fELF" || ident[5] != 1 {
        return None;
    }
    let class64 = match ident[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let u16_at = |b: &[u8], o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |b: &[u8], o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |b: &[u8], o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let word = |b: &[u8], o: usize| if class64 { u64_at(b, o) } else { u32_at(b, o).map(u64::from) };
    let e_type = u16_at(&ident, 16)?;
    let machine = u16_at(&ident, 18)?;
    let e_flags = u32_at(&ident, if class64 { 48 } else { 36 })?;
    // The architecture's own rule for what a file is (sysdeps/unix/sysv/linux/*/readelflib.c).
    let arch_flags = match (arch, machine, class64) {
        ("amd64", 62, true) => Some(FLAG_X8664_LIB64 | FLAG_ELF_LIBC6),
        ("amd64", 62, false) => Some(FLAG_X8664_LIBX32 | FLAG_ELF_LIBC6),
        ("amd64", 3, false) => None,
        ("amd64", _, _) => return None,
        ("arm64", _, true) => Some(FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6),
        ("arm64", _, false) => None,
        _ => return None,
    };
    if e_type != 3 {
        return None;
    }
    let (phoff, phentsize, phnum) = if class64 {
        (u64_at(&ident, 32)?, u16_at(&ident, 54)? as u64, u16_at(&ident, 56)? as u64)
    } else {
        (u32_at(&ident, 28)? as u64, u16_at(&ident, 42)? as u64, u16_at(&ident, 44)? as u64)
    };
    let want = if class64 { 56 } else { 32 };
    if phentsize < want {
        return None;
    }
    let phdrs = at(phoff, phentsize.checked_mul(phnum)?)?;
    struct Phdr {
        kind: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
        align: u64,
    }
    let mut segments = Vec::new();
    for i in 0..phnum as usize {
        let p = &phdrs[i * phentsize as usize..];
        segments.push(if class64 {
            Phdr {
                kind: u32_at(p, 0)?,
                offset: u64_at(p, 8)?,
                vaddr: u64_at(p, 16)?,
                filesz: u64_at(p, 32)?,
                align: u64_at(p, 48)?,
            }
        } else {
            Phdr {
                kind: u32_at(p, 0)?,
                offset: u32_at(p, 4)? as u64,
                vaddr: u32_at(p, 8)? as u64,
                filesz: u32_at(p, 16)? as u64,
                align: u32_at(p, 28)? as u64,
            }
        });
    }
    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const PT_NOTE: u32 = 4;
    let mut flags = FLAG_ELF;
    let mut osversion = 0;
    let mut dynamic = None;
    for seg in &segments {
        match seg.kind {
            PT_DYNAMIC => dynamic = Some((seg.offset, seg.filesz)),
            PT_INTERP => {
                let bytes = at(seg.offset, seg.filesz.min(256))?;
                let interp = bytes.split(|b| *b == 0).next().unwrap_or(&[]);
                if known_interpreter(interp) {
                    flags = FLAG_ELF_LIBC6;
                }
            }
            PT_NOTE if osversion == 0 && seg.filesz >= 32 && seg.align >= 4 => {
                let align = if seg.align < 4 { 4 } else { seg.align };
                if align != 4 && align != 8 {
                    continue;
                }
                let notes = at(seg.offset, seg.filesz.min(1 << 16))?;
                osversion = abi_tag(&notes, align).unwrap_or(0);
            }
            _ => {}
        }
    }
    let (dyn_offset, dyn_size) = dynamic.filter(|(_, size)| *size > 0)?;
    let dynamic = at(dyn_offset, dyn_size)?;
    let dyn_size = if class64 { 16 } else { 8 };
    let entries: Vec<(u64, u64)> = dynamic
        .chunks_exact(dyn_size)
        .map(|d| Some((word(d, 0)?, word(d, dyn_size / 2)?)))
        .collect::<Option<Vec<_>>>()?;
    let entries: Vec<(u64, u64)> = entries.into_iter().take_while(|(tag, _)| *tag != 0).collect();
    const DT_NEEDED: u64 = 1;
    const DT_STRTAB: u64 = 5;
    const DT_STRSZ: u64 = 10;
    const DT_SONAME: u64 = 14;
    let strtab = entries.iter().find(|(tag, _)| *tag == DT_STRTAB)?.1;
    let strsz = entries.iter().find(|(tag, _)| *tag == DT_STRSZ).map(|(_, v)| *v);
    let load_offset = segments
        .iter()
        .find(|s| s.kind == PT_LOAD && strtab >= s.vaddr && strtab - s.vaddr < s.filesz)
        .map_or(0, |s| s.vaddr.wrapping_sub(s.offset));
    // The string table, read once: its size as the dynamic section gives it, within the file.
    let strings = strtab.wrapping_sub(load_offset);
    if strings >= len {
        return None;
    }
    let table = at(strings, strsz.unwrap_or(1 << 20).min(len - strings).min(1 << 24))?;
    let string = |index: u64| -> Option<String> {
        let rest = table.get(usize::try_from(index).ok()?..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let mut soname = None;
    for (tag, value) in entries {
        if tag == DT_NEEDED {
            let name = string(value)?;
            if flags == FLAG_ELF && matches!(name.as_str(), "libc.so.6" | "libm.so.6") {
                flags = FLAG_ELF_LIBC6;
            }
        } else if tag == DT_SONAME {
            soname = Some(string(value)?);
        } else {
            continue;
        }
        if soname.is_some() && flags != FLAG_ELF {
            break;
        }
    }
    let flags = match arch_flags {
        Some(f) => f,
        // ARM 32-bit objects on arm64: the EABI float flags.
        None if arch == "arm64" && e_flags & 0xff00_0000 == 0x0500_0000 => {
            if e_flags & 0x400 != 0 {
                FLAG_ARM_LIBHF | FLAG_ELF_LIBC6
            } else if e_flags & 0x200 != 0 {
                FLAG_ARM_LIBSF | FLAG_ELF_LIBC6
            } else {
                FLAG_ELF_LIBC6
            }
        }
        None => flags,
    };
    Some(ElfInfo { soname, flags, osversion })
}

fn known_interpreter(path: &[u8]) -> bool {
    matches!(
        path,
        b"/lib/ld-linux-x86-64.so.2"
            | b"/lib/ld-linux.so.2"
            | b"/libx32/ld-linux-x32.so.2"
            | b"/lib64/ld-linux-x86-64.so.2"
            | b"/lib/ld-linux-aarch64.so.1"
            | b"/lib/ld-linux-aarch64_be.so.1"
            | b"/lib/ld-linux-aarch64_ilp32.so.1"
            | b"/lib/ld-linux-aarch64_be_ilp32.so.1"
            | b"/lib/ld-linux.so.3"
            | b"/lib/ld-linux-armhf.so.3"
    )
}

/// The OS ABI version of the first `NT_GNU_ABI_TAG` note in a note segment, walked as
/// glibc 2.31 walks it (a note that would leave less than 32 bytes ends the walk).
fn abi_tag(notes: &[u8], align: u64) -> Option<u32> {
    let word = |o: usize| Some(u32::from_le_bytes(notes.get(o..o + 4)?.try_into().ok()?));
    let up = |x: u64| (x + align - 1) & !(align - 1);
    let mut at = 0usize;
    let mut size = notes.len() as u64;
    loop {
        let (namesz, descsz, kind) = (word(at)?, word(at + 4)?, word(at + 8)?);
        if namesz == 4 && descsz == 16 && kind == 1 && notes.get(at + 12..at + 16)? == b"GNU\0" {
            let v = |i: usize| word(at + 16 + 4 * i);
            return Some((v(0)? << 24) | ((v(1)? & 0xff) << 16) | ((v(2)? & 0xff) << 8) | (v(3)? & 0xff));
        }
        let next = up(up(12 + namesz as u64) + descsz as u64);
        if size < 32 || size - 32 < next || next == 0 {
            return None;
        }
        size -= next;
        at += next as usize;
    }
}

/// glibc's `_dl_cache_libcmp`: runs of digits compare as numbers, a digit sorts after any
/// other character.
pub fn libcmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if a[i].is_ascii_digit() {
            if j < b.len() && b[j].is_ascii_digit() {
                let (mut x, mut y) = (0u64, 0u64);
                while i < a.len() && a[i].is_ascii_digit() {
                    x = x.saturating_mul(10).saturating_add((a[i] - b'0') as u64);
                    i += 1;
                }
                while j < b.len() && b[j].is_ascii_digit() {
                    y = y.saturating_mul(10).saturating_add((b[j] - b'0') as u64);
                    j += 1;
                }
                if x != y {
                    return x.cmp(&y);
                }
            } else {
                return Ordering::Greater;
            }
        } else if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        } else if j >= b.len() || a[i] != b[j] {
            return a[i].cmp(b.get(j).unwrap_or(&0));
        } else {
            i += 1;
            j += 1;
        }
    }
    0u8.cmp(b.get(j).unwrap_or(&0))
}

impl LdCache {
    /// The file's bytes (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = HEADER_SIZE + ENTRY_SIZE * self.entries.len();
        let mut entries = Vec::with_capacity(ENTRY_SIZE * self.entries.len());
        for e in &self.entries {
            let key = base + strings.len();
            strings.extend_from_slice(e.soname.as_bytes());
            strings.push(0);
            let value = base + strings.len();
            strings.extend_from_slice(e.path.as_bytes());
            strings.push(0);
            entries.extend_from_slice(&e.flags.to_le_bytes());
            entries.extend_from_slice(&(key as u32).to_le_bytes());
            entries.extend_from_slice(&(value as u32).to_le_bytes());
            entries.extend_from_slice(&e.osversion.to_le_bytes());
            entries.extend_from_slice(&0u64.to_le_bytes());
        }
        let mut out = Vec::with_capacity(base + strings.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        // The byte order (2: little-endian, both architectures'), then no extensions.
        out.push(2);
        out.extend_from_slice(&[0u8; 19]);
        out.extend(entries);
        out.extend(strings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn library_names_compare_as_ldconfig_compares_them() {
        assert_eq!(libcmp("libz.so.1", "libz.so.1"), Equal);
        assert_eq!(libcmp("libfoo.so.10", "libfoo.so.9"), Greater);
        assert_eq!(libcmp("libfoo.so.1", "libfoo.so.01"), Equal);
        assert_eq!(libcmp("libfoo.so", "libfoo.so.1"), Less);
        assert_eq!(libcmp("libfoo1.so", "libfoo.so"), Greater, "a digit sorts after a letter");
        assert_eq!(libcmp("libc.so.6", "libm.so.6"), Less);
        let mut names = vec!["libc.so.6", "libz.so.1", "libm.so.6", "libgomp.so.1"];
        names.sort_by(|a, b| libcmp(b, a));
        assert_eq!(names, ["libz.so.1", "libm.so.6", "libgomp.so.1", "libc.so.6"]);
    }

    #[test]
    fn wildcards_match_within_a_name() {
        assert!(wildcard("*.conf", "libc.conf"));
        assert!(!wildcard("*.conf", "libc.conf.dpkg-old"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*a*b*c", "xxaxxbxxc"));
        assert!(!wildcard("*a*b*c", "xxaxxbxx"));
        // Many stars against a long name that does not match: quick, not exponential.
        assert!(!wildcard(&"*a".repeat(40), &"a".repeat(39)));
    }

    #[test]
    fn the_abi_tag_is_found_after_other_notes() {
        let mut notes = Vec::new();
        // NT_GNU_BUILD_ID (4, 20, 3, "GNU"), then NT_GNU_ABI_TAG Linux 3.2.0.
        for w in [4u32, 20, 3] {
            notes.extend(w.to_le_bytes());
        }
        notes.extend(b"GNU\0");
        notes.extend([0xab; 20]);
        for w in [4u32, 16, 1] {
            notes.extend(w.to_le_bytes());
        }
        notes.extend(b"GNU\0");
        for w in [0u32, 3, 2, 0] {
            notes.extend(w.to_le_bytes());
        }
        assert_eq!(abi_tag(&notes, 4), Some(0x0003_0200));
        assert_eq!(abi_tag(&notes[..36], 4), None);
    }

    #[test]
    fn the_file_is_glibc_2_31s_new_format() {
        let cache = LdCache {
            entries: vec![CacheEntry {
                soname: "libz.so.1".into(),
                path: "/lib/x86_64-linux-gnu/libz.so.1".into(),
                flags: 0x0303,
                osversion: 0x0003_0200,
            }],
            warnings: Vec::new(),
        };
        let bytes = cache.to_bytes();
        assert_eq!(&bytes[..20], b"glibc-ld.so.cache1.1");
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 10 + 32);
        assert_eq!(bytes[28], 2, "little-endian");
        assert_eq!(&bytes[29..48], &[0; 19]);
        assert_eq!(&bytes[48..60], &[3, 3, 0, 0, 72, 0, 0, 0, 82, 0, 0, 0]);
        assert_eq!(&bytes[60..64], &[0, 2, 3, 0]);
        assert_eq!(&bytes[72..], b"libz.so.1\0/lib/x86_64-linux-gnu/libz.so.1\0");
    }

    #[test]
    fn garbage_is_skipped_not_a_panic() {
        let cases: [&[u8]; 4] = [b"", b"\x7fELF", &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0], &[0xff; 200]];
        for bytes in cases {
            let at = |o: u64, n: u64| bytes.get(o as usize..(o + n) as usize).map(<[u8]>::to_vec);
            assert_eq!(parse_elf(&at, bytes.len() as u64, "amd64"), None);
        }
        let mut header = [0u8; 64];
        header[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        header[16] = 3;
        header[18] = 62;
        header[32] = 0xff; // program headers far past the end
        header[54] = 56;
        header[56] = 4;
        let at = |o: u64, n: u64| header.get(o as usize..(o + n) as usize).map(<[u8]>::to_vec);
        assert_eq!(parse_elf(&at, 64, "amd64"), None);
    }
}
