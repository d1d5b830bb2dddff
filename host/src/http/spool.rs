//! Request bodies too large for memory (`[limits] bodyMemory`): written to
//! a temporary file as they arrive, then handed to the plugin mapped
//! (`req.body()`) and by descriptor (`req.body_reader()` reads it with
//! `pread`).
//!
//! The file has no name from the start (`O_TMPFILE`), or loses it right
//! after it is created where the file system cannot do that: nothing is
//! left behind when the request ends, when the worker crashes, or when it
//! is killed with SIGKILL — the kernel frees the space when the last
//! descriptor closes.

use crate::sys::bodies::Mapped;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// One request's body on disk.
#[derive(Debug)]
pub struct Spool {
    file: File,
    len: u64,
    /// Set once the body is complete.
    mapped: Option<Mapped>,
}

impl Spool {
    /// An unnamed file in `folder`.
    pub fn create(folder: &Path) -> io::Result<Spool> {
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_TMPFILE)
            .open(folder)
        {
            Ok(file) => file,
            // A file system without O_TMPFILE: a fresh name, unlinked at once.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::EOPNOTSUPP | nix::libc::EISDIR)
                ) =>
            {
                let mut id = [0u8; 8];
                getrandom::fill(&mut id).map_err(|e| io::Error::other(e.to_string()))?;
                let path = folder.join(format!(".drupe-body-{:016x}", u64::from_le_bytes(id)));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                std::fs::remove_file(&path)?;
                file
            }
            Err(e) => return Err(e),
        };
        Ok(Spool {
            file,
            len: 0,
            mapped: None,
        })
    }

    /// Appends body bytes.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.len
    }

    /// The body is complete: map it for `req.body()`.
    pub fn finish(&mut self) -> io::Result<()> {
        let len =
            usize::try_from(self.len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.mapped = Some(Mapped::new(&self.file, len)?);
        Ok(())
    }

    /// The whole body (after [`Spool::finish`]; empty before).
    pub fn body(&self) -> &[u8] {
        self.mapped.as_ref().map_or(&[], Mapped::as_slice)
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_spooled_body_has_no_name_and_reads_back_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(dir.path()).unwrap();
        spool.write(b"hello ").unwrap();
        spool.write(b"world").unwrap();
        spool.finish().unwrap();
        assert_eq!(spool.body(), b"hello world");
        assert_eq!(spool.written(), 11);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a name was left"
        );
    }
}
