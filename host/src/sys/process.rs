//! Process primitives: fork, death signal, exit.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::{ForkResult, Pid};
use std::io;

/// Which side of a fork we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Forks the calling process.
///
/// The master calls this only while it is single-threaded and holds no
/// store connection (DESIGN: "fork before threads or connections"), which
/// is what makes the child's copy of the address space consistent.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: fork is only unsound when other threads hold locks that the
    // child then needs; the master never starts a thread (see module doc of
    // `master`), so the child inherits no lock held by a thread that does
    // not exist in it.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// Asks the kernel to send `signal` to this process when its parent dies,
/// so a worker never outlives its master, even after `kill -9` of the
/// master. Returns an error if the parent is already gone (the race between
/// fork and prctl), in which case the caller should exit.
pub fn die_with_parent(signal: Signal, expected_parent: Pid) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(signal).map_err(io::Error::from)?;
    // The parent may have died between fork and prctl; then we were already
    // re-parented and the death signal will never come.
    if nix::unistd::getppid() != expected_parent {
        return Err(io::Error::other(
            "the master exited while this worker started",
        ));
    }
    Ok(())
}

/// Ends the process at once, without running destructors or atexit
/// handlers: for a forked child that must not flush or free state it shares
/// with the parent, and for an immediate stop.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and takes no pointers.
    unsafe { nix::libc::_exit(code) }
}

/// Sets `signal`'s disposition to "ignore".
pub fn ignore_signal(signal: Signal) -> nix::Result<()> {
    // SAFETY: SIG_IGN runs no handler code, so none of `signal`'s
    // async-signal-safety requirements apply.
    unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigIgn) }.map(drop)
}

/// Restores `signal`'s default disposition (in a freshly forked child).
pub fn default_signal(signal: Signal) -> nix::Result<()> {
    // SAFETY: SIG_DFL runs no handler code.
    unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) }.map(drop)
}

/// Makes `blocked` the calling thread's signal mask — exactly those
/// signals blocked, every other one delivered — and returns it as a set,
/// for a signalfd that reads them. The master blocks what it reads from
/// its signalfd; a forked child starts again from an empty mask, and a
/// worker blocks what its own signalfd reads.
pub fn set_signal_mask(blocked: &[Signal]) -> nix::Result<SigSet> {
    let mut mask = SigSet::empty();
    for &signal in blocked {
        mask.add(signal);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
    Ok(mask)
}

/// Returns free memory at the top of the heap and in glibc's arenas to the
/// system (`malloc_trim(0)`).
pub fn trim_heap() {
    // SAFETY: malloc_trim takes no pointers and only walks the allocator's
    // own free lists, under its own locks.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// The open-files limit (`RLIMIT_NOFILE`) before and after raising its
/// soft value to the hard one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub was: u64,
    pub now: u64,
}

/// Raises this process's soft open-files limit to its hard limit, for it
/// and every child it forks afterwards: a worker holds a descriptor per
/// connection, and the usual soft default (1024) is far below what
/// `maxConnectionsPerProcess` allows, while the hard limit is what the
/// administrator granted.
pub fn raise_open_files_limit() -> io::Result<OpenFiles> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    // An unlimited hard limit cannot be the soft one (the kernel caps
    // descriptors at fs.nr_open and refuses more).
    let wanted = if hard == RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(soft)
    } else {
        hard
    };
    if wanted > soft {
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).map_err(io::Error::from)?;
    }
    Ok(OpenFiles {
        was: soft,
        now: wanted.max(soft),
    })
}

/// Whether a process with this pid exists (in this pid namespace), whoever
/// owns it: `kill(pid, 0)` fails with `ESRCH` only when there is none.
pub fn exists(pid: i32) -> bool {
    pid > 0
        && !matches!(
            nix::sys::signal::kill(Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}
