//! Wheels with C extensions built from sdists for a target the host's Python is not: another
//! architecture (with a cross compiler, no emulation) or another Python version.
//!
//! The host's Python builds the extension, so its tag names the host's version
//! (`cp311-abi3`). Such a wheel is accepted for the target only when it is a stable-ABI
//! (`abi3`) wheel whose every extension module is an `*.abi3.so` of the target's
//! architecture, and every Python C-API symbol those modules use is one the target's own
//! interpreter (`/usr/bin/pythonX.Y` from the locked Debian packages) exports. That is the
//! check the dynamic loader would make when the module is imported, made before the image
//! is built.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use pep_types::Arch;

/// The architecture this program runs on, if it is one we build for.
pub fn host_arch() -> Option<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Some(Arch::Amd64),
        "aarch64" => Some(Arch::Arm64),
        _ => None,
    }
}

/// The GNU triple of a Debian cross toolchain for `arch` (`gcc-aarch64-linux-gnu`).
pub fn triple(arch: Arch) -> &'static str {
    match arch {
        Arch::Amd64 => "x86_64-linux-gnu",
        Arch::Arm64 => "aarch64-linux-gnu",
    }
}

/// The environment that makes setuptools (and most PEP 517 backends that call a C compiler)
/// build for `arch` with the cross compiler `{triple}-gcc`: `None` when it is not on `PATH`.
pub fn cross_env(arch: Arch) -> Option<Vec<(String, String)>> {
    let triple = triple(arch);
    let gcc = format!("{triple}-gcc");
    if !on_path(&gcc) {
        return None;
    }
    let mut env = vec![
        ("CC".to_string(), gcc.clone()),
        ("LDSHARED".to_string(), format!("{gcc} -shared")),
        ("_PYTHON_HOST_PLATFORM".to_string(), format!("linux-{}", arch.machine())),
    ];
    let gxx = format!("{triple}-g++");
    if on_path(&gxx) {
        env.push(("CXX".to_string(), gxx));
    }
    Some(env)
}

fn on_path(program: &str) -> bool {
    std::env::var_os(env_vars::EnvVars::PATH)
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The dynamic symbols an interpreter binary defines.
pub fn defined_symbols(elf: &[u8]) -> Result<HashSet<String>, String> {
    let file = Elf::parse(elf)?;
    Ok(file.symbols()?.into_iter().filter(|s| s.defined).map(|s| s.name).collect())
}

/// The program interpreter (`PT_INTERP`: the dynamic loader, `/lib64/ld-linux-x86-64.so.2`)
/// of an executable for `arch`; an error for another architecture or a static executable.
pub fn program_interpreter(elf: &[u8], arch: Arch) -> Result<String, String> {
    let file = Elf::parse(elf)?;
    if file.machine != machine(arch) {
        return Err(format!("not an {} executable", arch.machine()));
    }
    file.interpreter()?.ok_or_else(|| "a static executable: no dynamic loader".to_string())
}

/// The largest extension module read into memory to check its symbols (1 GiB).
const MAX_MODULE: u64 = 1 << 30;

/// The Python C-API symbols the extension modules of the wheel at `wheel` need, after
/// checking that it has some and that each is a stable-ABI (`*.abi3.so`) module for `arch`.
pub fn abi3_wheel_needs(wheel: &Path, arch: Arch) -> Result<HashSet<String>, String> {
    let file = fs_err::File::open(wheel).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a wheel: {e}"))?;
    let mut modules = 0;
    let mut needs = HashSet::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| e.to_string())?;
        let name = entry.name().to_string();
        if !name.ends_with(".so") && !name.contains(".so.") {
            continue;
        }
        if !name.ends_with(".abi3.so") {
            return Err(format!("`{name}` is built for the host's Python only (not an .abi3.so module)"));
        }
        // Read into memory: at most what the zip's directory claims, itself bounded.
        let claimed = entry.size();
        if claimed > MAX_MODULE {
            return Err(format!(
                "`{name}` claims {claimed} bytes, more than the {MAX_MODULE} an extension module may have"
            ));
        }
        let mut bytes = Vec::with_capacity(claimed as usize);
        bounded::Reader::claimed(&mut entry, claimed, name.as_str())
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read `{name}`: {e}"))?;
        let elf = Elf::parse(&bytes).map_err(|e| format!("`{name}`: {e}"))?;
        if elf.machine != machine(arch) {
            return Err(format!("`{name}` is not an {} binary", arch.machine()));
        }
        let symbols = elf.symbols().map_err(|e| format!("`{name}`: {e}"))?;
        needs.extend(
            symbols
                .into_iter()
                .filter(|s| !s.defined && (s.name.starts_with("Py") || s.name.starts_with("_Py")))
                .map(|s| s.name),
        );
        modules += 1;
    }
    if modules == 0 {
        return Err("it holds no extension module".to_string());
    }
    Ok(needs)
}

/// Checks that an interpreter defining `interpreter` has every symbol of `needs`.
pub fn check_symbols(needs: &HashSet<String>, interpreter: &HashSet<String>) -> Result<(), String> {
    let mut missing: Vec<&str> =
        needs.iter().filter(|s| !interpreter.contains(*s)).map(String::as_str).collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    Err(format!("it uses {} that the target's Python does not have", missing.join(", ")))
}

/// `e_machine` of `arch`.
fn machine(arch: Arch) -> u16 {
    match arch {
        Arch::Amd64 => 62,
        Arch::Arm64 => 183,
    }
}

/// A 64-bit little-endian ELF file, as far as its dynamic symbols go.
struct Elf<'a> {
    bytes: &'a [u8],
    machine: u16,
}

struct Symbol {
    name: String,
    defined: bool,
}

const SHT_DYNSYM: u32 = 11;
const PT_INTERP: u32 = 3;

impl<'a> Elf<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Elf<'a>, String> {
        if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
            return Err("not an ELF file".to_string());
        }
        if bytes[4] != 2 || bytes[5] != 1 {
            return Err("not a 64-bit little-endian ELF file".to_string());
        }
        Ok(Elf { bytes, machine: u16_at(bytes, 0x12)? })
    }

    /// The path in the `PT_INTERP` program header, if there is one.
    fn interpreter(&self) -> Result<Option<String>, String> {
        let b = self.bytes;
        let (phoff, phentsize, phnum) = (u64_at(b, 0x20)?, u16_at(b, 0x36)? as u64, u16_at(b, 0x38)? as u64);
        for i in 0..phnum {
            let at = usize::try_from(phoff + i * phentsize).map_err(|_| "bad program header offset")?;
            if u32_at(b, at)? != PT_INTERP {
                continue;
            }
            let path = slice(b, u64_at(b, at + 8)?, u64_at(b, at + 32)?)?;
            let path = path.split(|&c| c == 0).next().unwrap_or_default();
            return String::from_utf8(path.to_vec())
                .map(Some)
                .map_err(|_| "a loader path that is not UTF-8".into());
        }
        Ok(None)
    }

    /// The entries of `.dynsym` (the one symbol table the dynamic loader reads).
    fn symbols(&self) -> Result<Vec<Symbol>, String> {
        let b = self.bytes;
        let (shoff, shentsize, shnum) = (u64_at(b, 0x28)?, u16_at(b, 0x3a)? as u64, u16_at(b, 0x3c)? as u64);
        let section = |i: u64| -> Result<(u32, u64, u64, u32, u64), String> {
            let at = usize::try_from(shoff + i * shentsize).map_err(|_| "bad section offset")?;
            Ok((
                u32_at(b, at + 4)?,
                u64_at(b, at + 24)?,
                u64_at(b, at + 32)?,
                u32_at(b, at + 40)?,
                u64_at(b, at + 56)?,
            ))
        };
        for i in 0..shnum {
            let (kind, offset, size, link, entsize) = section(i)?;
            if kind != SHT_DYNSYM {
                continue;
            }
            let (_, str_offset, str_size, _, _) = section(u64::from(link))?;
            let strings = slice(b, str_offset, str_size)?;
            let table = slice(b, offset, size)?;
            let entsize = usize::try_from(entsize).ok().filter(|&e| e >= 24).ok_or("bad symbol size")?;
            let mut out = Vec::new();
            for sym in table.chunks_exact(entsize).skip(1) {
                let name_at = u32_at(sym, 0)? as usize;
                let shndx = u16_at(sym, 6)?;
                let name = strings.get(name_at..).ok_or("bad symbol name")?;
                let end = name.iter().position(|&c| c == 0).ok_or("unterminated symbol name")?;
                let name = String::from_utf8_lossy(&name[..end]).into_owned();
                if !name.is_empty() {
                    out.push(Symbol { name, defined: shndx != 0 });
                }
            }
            return Ok(out);
        }
        Ok(Vec::new())
    }
}

fn slice(b: &[u8], offset: u64, size: u64) -> Result<&[u8], String> {
    let start = usize::try_from(offset).map_err(|_| "bad offset")?;
    let end = start.checked_add(usize::try_from(size).map_err(|_| "bad size")?).ok_or("bad size")?;
    b.get(start..end).ok_or_else(|| "truncated ELF file".to_string())
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    Ok(u16::from_le_bytes(b.get(at..at + 2).ok_or("truncated ELF file")?.try_into().unwrap_or_default()))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    Ok(u32::from_le_bytes(b.get(at..at + 4).ok_or("truncated ELF file")?.try_into().unwrap_or_default()))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, String> {
    Ok(u64::from_le_bytes(b.get(at..at + 8).ok_or("truncated ELF file")?.try_into().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_dynamic_symbols_of_this_test_binary() {
        // The test executable links libc dynamically: it uses `malloc` without defining it.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let elf = Elf::parse(&exe).unwrap();
        assert_eq!(Some(elf.machine), host_arch().map(machine));
        let symbols = elf.symbols().unwrap();
        assert!(symbols.iter().any(|s| s.name == "malloc" && !s.defined));
    }

    #[test]
    fn reads_the_loader_of_this_test_binary() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let host = host_arch().unwrap();
        let loader = program_interpreter(&exe, host).unwrap();
        assert!(loader.starts_with('/') && loader.contains("ld-linux"), "{loader}");
        let other = if host == Arch::Amd64 { Arch::Arm64 } else { Arch::Amd64 };
        assert!(program_interpreter(&exe, other).unwrap_err().contains("not an"));
        assert!(program_interpreter(b"#!/bin/sh\n", host).unwrap_err().contains("not an ELF"));
    }

    /// A wheel with one module compiled by the host's C compiler that calls `PyLong_FromLong`.
    fn wheel_with_module(dir: &Path, module: &str) -> std::path::PathBuf {
        let c = dir.join("m.c");
        std::fs::write(&c, "long PyLong_FromLong(long); long f(void) { return PyLong_FromLong(1); }\n")
            .unwrap();
        let so = dir.join("m.so");
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&c)
            .status()
            .expect("cc runs");
        assert!(status.success());
        let wheel = dir.join(format!("{module}.whl"));
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        zip.start_file(format!("pkg/{module}"), zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut zip, &std::fs::read(&so).unwrap()).unwrap();
        zip.finish().unwrap();
        wheel
    }

    #[test]
    fn abi3_modules_are_checked_against_the_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let host = host_arch().unwrap();
        let wheel = wheel_with_module(dir.path(), "_m.abi3.so");
        let needs = abi3_wheel_needs(&wheel, host).unwrap();
        assert_eq!(needs, HashSet::from(["PyLong_FromLong".to_string()]));
        let interpreter = HashSet::from(["PyLong_FromLong".to_string(), "Py_Initialize".to_string()]);
        assert!(check_symbols(&needs, &interpreter).is_ok());
        let err = check_symbols(&needs, &HashSet::from(["Py_Initialize".to_string()])).unwrap_err();
        assert!(err.contains("PyLong_FromLong"), "{err}");

        let other = if host == Arch::Amd64 { Arch::Arm64 } else { Arch::Amd64 };
        let err = abi3_wheel_needs(&wheel, other).unwrap_err();
        assert!(err.contains("is not an"), "{err}");
        let versioned = wheel_with_module(dir.path(), "_m.cpython-311-x86_64-linux-gnu.so");
        let err = abi3_wheel_needs(&versioned, host).unwrap_err();
        assert!(err.contains("not an .abi3.so module"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Elf::parse(b"not elf").is_err());
        let mut bytes = b"\x7fELF\x02\x01".to_vec();
        bytes.resize(64, 0);
        bytes[0x28] = 0xff; // section headers past the end
        bytes[0x3c] = 1;
        bytes[0x3a] = 64;
        assert!(Elf::parse(&bytes).unwrap().symbols().is_err());
    }
}
