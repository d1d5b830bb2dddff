//! The pipe on which workers tell the master they serve (`worker::link`):
//! it wakes the master's poll at once, which is what lets a reload stop an
//! old worker the moment its replacement is ready.

use super::MasterError;
use crate::worker::link;
use nix::fcntl::OFlag;
use nix::unistd::Pid;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

#[derive(Debug)]
pub(super) struct Inbox {
    read: OwnedFd,
    /// Every worker inherits the write end.
    write: Arc<OwnedFd>,
    /// Bytes of a message not yet complete (never expected: messages are
    /// written whole; kept so a short read cannot misalign the stream).
    partial: Vec<u8>,
}

impl Inbox {
    pub fn new() -> Result<Inbox, MasterError> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| MasterError::Io(format!("cannot create the worker pipe: {e}")))?;
        Ok(Inbox {
            read,
            write: Arc::new(write),
            partial: Vec::new(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The write end, for a worker about to be forked.
    pub fn sender(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.write)
    }

    /// The workers that said "ready" since the last call.
    pub fn ready(&mut self) -> Vec<Pid> {
        let mut ready = Vec::new();
        let mut buf = [0u8; 64 * link::MESSAGE_LEN];
        loop {
            let n = match nix::unistd::read(&self.read, &mut buf) {
                Ok(0) | Err(_) => return ready,
                Ok(n) => n,
            };
            self.partial.extend_from_slice(&buf[..n]);
            let whole = self.partial.len() / link::MESSAGE_LEN * link::MESSAGE_LEN;
            let messages: Vec<u8> = self.partial.drain(..whole).collect();
            for chunk in messages.chunks_exact(link::MESSAGE_LEN) {
                let mut msg = [0u8; link::MESSAGE_LEN];
                msg.copy_from_slice(chunk);
                let (pid, event) = link::decode(msg);
                if event == link::READY {
                    ready.push(Pid::from_raw(pid));
                }
            }
        }
    }
}
