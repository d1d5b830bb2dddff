//! Is a library whole? A `.so` cut off by an unfinished copy still has a
//! valid ELF header, so `dlopen` maps it — and the process dies of SIGBUS
//! when the loader touches a page past the end of the file. Reading the
//! headers first turns that into a message naming the file.
//!
//! Only sizes are checked: where the program headers, the loaded segments
//! and the section headers end, against the file's length. Anything else
//! wrong with the file (not ELF at all, another architecture) is left to
//! `dlopen`, which explains it well enough.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// `PT_LOAD`: a segment mapped from the file.
const PT_LOAD: u32 = 1;

/// Checks that the file at `path` holds everything its ELF headers
/// describe. Files that are not ELF pass (for `dlopen` to refuse).
pub fn check_complete(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let needed = match needed_length(&|offset, buf: &mut [u8]| file.read_exact_at(buf, offset)) {
        Ok(needed) => needed,
        Err(Short) => return Err(truncated(len, None)),
    };
    match needed {
        Some(needed) if needed > len => Err(truncated(len, Some(needed))),
        _ => Ok(()),
    }
}

fn truncated(len: u64, needed: Option<u64>) -> String {
    let needs = needed.map_or_else(
        || "is cut off inside its ELF headers".to_owned(),
        |n| format!("but its ELF headers describe {n}"),
    );
    format!(
        "truncated: the file has {len} bytes {needs} (was it still being copied? copy to a temporary name and rename it into place)"
    )
}

/// A read went past the end of the file.
#[derive(Debug)]
struct Short;

/// How long the file must be, from its headers; `None` if it is not ELF.
/// `read(offset, buf)` fills `buf` from the file.
fn needed_length(
    read: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
) -> Result<Option<u64>, Short> {
    let mut ident = [0u8; 16];
    if read(0, &mut ident[..4]).is_err() || ident[..4] != *b"\x7fELF" {
        return Ok(None);
    }
    read(0, &mut ident).map_err(|_| Short)?;
    let wide = match ident[4] {
        1 => false,
        2 => true,
        _ => return Ok(None),
    };
    let big = match ident[5] {
        1 => false,
        2 => true,
        _ => return Ok(None),
    };
    let mut header = [0u8; 64];
    let header = &mut header[..if wide { 64 } else { 52 }];
    read(0, header).map_err(|_| Short)?;
    let field = |bytes: &[u8], at: usize, size: usize| -> u64 {
        let b = &bytes[at..at + size];
        let mut v = 0u64;
        for i in 0..size {
            let byte = if big { b[i] } else { b[size - 1 - i] };
            v = (v << 8) | u64::from(byte);
        }
        v
    };
    let word = if wide { 8 } else { 4 };
    // e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum (ELF gABI).
    let (phoff, shoff, rest) = if wide {
        (0x20, 0x28, 0x36)
    } else {
        (0x1c, 0x20, 0x2a)
    };
    let ph_offset = field(header, phoff, word);
    let sh_offset = field(header, shoff, word);
    let ph_size = field(header, rest, 2);
    let ph_count = field(header, rest + 2, 2);
    let sh_size = field(header, rest + 4, 2);
    let sh_count = field(header, rest + 6, 2);
    let end =
        |offset: u64, size: u64, count: u64| offset.saturating_add(size.saturating_mul(count));
    let mut needed = (header.len() as u64)
        .max(end(ph_offset, ph_size, ph_count))
        .max(if sh_offset == 0 {
            0
        } else {
            end(sh_offset, sh_size, sh_count)
        });
    // p_type, p_offset and p_filesz of each program header.
    let (offset_at, filesz_at) = if wide { (8, 32) } else { (4, 16) };
    let entry_len = if wide { 56 } else { 32 };
    if ph_size < entry_len as u64 {
        return Ok(Some(needed));
    }
    let mut entry = vec![0u8; entry_len];
    for i in 0..ph_count {
        read(ph_offset + i * ph_size, &mut entry).map_err(|_| Short)?;
        if field(&entry, 0, 4) == u64::from(PT_LOAD) {
            let segment =
                field(&entry, offset_at, word).saturating_add(field(&entry, filesz_at, word));
            needed = needed.max(segment);
        }
    }
    Ok(Some(needed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// This test binary is an ELF file like any plugin.
    fn own_binary() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    fn check_bytes(bytes: &[u8]) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.so");
        std::fs::write(&path, bytes).unwrap();
        check_complete(&path)
    }

    #[test]
    fn a_whole_file_passes_and_a_cut_one_is_truncated() {
        let whole = own_binary();
        assert_eq!(check_bytes(&whole), Ok(()));
        for keep in [whole.len() - 1, whole.len() / 2, 40, 5] {
            let why = check_bytes(&whole[..keep]).unwrap_err();
            assert!(
                why.starts_with(&format!("truncated: the file has {keep} bytes")),
                "{why}"
            );
        }
    }

    #[test]
    fn what_is_not_elf_is_left_to_dlopen() {
        assert_eq!(check_bytes(b""), Ok(()));
        assert_eq!(check_bytes(b"#!/bin/sh\necho not a library\n"), Ok(()));
    }
}
