//! One worker process: load the plugins, then serve on the inherited
//! listening socket with `threadPool` threads on one epoll set.
//!
//! Shape (DESIGN "Worker I/O"): every thread waits on the same epoll set,
//! which holds the listener (`EPOLLEXCLUSIVE`, so one worker wakes per new
//! connection), a signalfd, and every connection registered one-shot. The
//! thread that wakes on a connection owns it until it re-arms it: it reads,
//! runs the plugin inline, writes, and re-arms — no handoff between threads.
//! With several threads each takes one event per `epoll_wait`, so a handler
//! that blocks holds up only its own connection.
//!
//! Connections live in a fixed table of slots; the epoll token is the slot
//! index plus a generation, so a stale event for a closed connection whose
//! slot was reused is recognised and dropped.

mod conn;
mod dispatch;
mod gate;

use crate::config::{Config, Limits};
use crate::http::HeadLimits;
use crate::plugin::PluginSet;
use conn::{Conn, Next};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use dispatch::CallState;

/// How a worker process ends; the master reads these from the exit status.
pub mod exit {
    /// Stopped because it was asked to.
    pub const OK: i32 = 0;
    /// Could not start: a plugin failed to load or init. Respawning would
    /// fail the same way, so the master must not retry forever.
    pub const BOOT_FAILED: i32 = 3;
    /// The master died before the worker finished starting.
    pub const ORPHANED: i32 = 4;
    /// An I/O error on the epoll set or listener.
    pub const IO_ERROR: i32 = 5;
}

const LISTENER: u64 = u64::MAX;
const SIGNALS: u64 = u64::MAX - 1;
/// How often idle and slow connections are checked against their deadlines.
const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// New connections taken per wake-up on the listener: enough to drain a
/// burst, few enough that one worker does not take a whole backlog.
const ACCEPT_BATCH: usize = 16;

/// State shared by the threads of one worker.
#[derive(Debug)]
pub struct Shared {
    pub plugins: PluginSet,
    pub limits: Limits,
    pub head_limits: HeadLimits,
    epoll: Epoll,
    listener: TcpListener,
    slots: Vec<Mutex<Slot>>,
    free: Mutex<Vec<u32>>,
    open: AtomicUsize,
    stopping: AtomicBool,
    last_sweep: AtomicU64,
    started: Instant,
    threads: usize,
    graceful_timeout: Duration,
    graceful_deadline: Mutex<Option<Instant>>,
    /// Whether the listener is in the epoll set (see `gate`).
    gate: gate::Gate,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    conn: Option<Box<Conn>>,
}

fn token(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

/// Runs a worker until it is told to stop. Never returns to the caller's
/// loop: the return value is the process exit code.
pub fn run(config: &Config, listener: TcpListener, plugins: PluginSet) -> i32 {
    let signals = match worker_signals() {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("worker {}: cannot set up signals: {e}", std::process::id());
            return exit::IO_ERROR;
        }
    };
    if let Err(errors) = plugins.init::<CallState>() {
        log::error!("worker {}: {errors}", std::process::id());
        return exit::BOOT_FAILED;
    }
    let shared = match Shared::new(config, listener, plugins, &signals) {
        Ok(shared) => Arc::new(shared),
        Err(e) => {
            log::error!("worker {}: cannot set up epoll: {e}", std::process::id());
            return exit::IO_ERROR;
        }
    };
    let threads: Vec<_> = (1..config.server.thread_pool.max(1))
        .map(|i| {
            let shared = Arc::clone(&shared);
            let signals_fd = None;
            std::thread::Builder::new()
                .name(format!("drupe-w{i}"))
                .spawn(move || event_loop(&shared, signals_fd))
        })
        .collect();
    event_loop(&shared, Some(&signals));
    for thread in threads.into_iter().flatten() {
        let _ = thread.join();
    }
    shared.plugins.shutdown();
    log::debug!(
        "worker {} stopped after {:?}",
        std::process::id(),
        shared.started.elapsed()
    );
    exit::OK
}

/// Blocks the signals the worker handles through its signalfd, and ignores
/// the ones meant for the master only (Ctrl-C reaches the whole process
/// group; the master decides what a worker does about it).
fn worker_signals() -> nix::Result<SignalFd> {
    for ignored in [
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGPIPE,
    ] {
        crate::sys::process::ignore_signal(ignored)?;
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGQUIT);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

impl Shared {
    fn new(
        config: &Config,
        listener: TcpListener,
        plugins: PluginSet,
        signals: &SignalFd,
    ) -> std::io::Result<Shared> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        // EPOLLEXCLUSIVE: one waiting worker is woken per new connection
        // instead of all of them (no thundering herd across processes).
        epoll.add(
            &listener,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, LISTENER),
        )?;
        epoll.add(
            signals.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, SIGNALS),
        )?;
        let capacity = config.limits.max_connections_per_process;
        Ok(Shared {
            plugins,
            limits: config.limits.clone(),
            head_limits: HeadLimits {
                max_request_line: config.limits.max_request_line,
                max_header_bytes: config.limits.max_header_bytes,
                max_headers: config.limits.max_headers,
            },
            epoll,
            listener,
            slots: (0..capacity).map(|_| Mutex::default()).collect(),
            free: Mutex::new((0..capacity as u32).rev().collect()),
            open: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            last_sweep: AtomicU64::new(0),
            started: Instant::now(),
            threads: config.server.thread_pool.max(1),
            graceful_timeout: config.server.graceful_timeout,
            graceful_deadline: Mutex::new(None),
            gate: gate::Gate::default(),
        })
    }
}

fn event_loop(shared: &Shared, signals: Option<&SignalFd>) {
    // With several threads, one event per wait: events handed to a thread
    // in one batch are disarmed (one-shot), and a handler that blocks would
    // hold the rest of its batch hostage. One thread can take a batch.
    let batch = if shared.threads == 1 { 64 } else { 1 };
    let mut events = vec![EpollEvent::empty(); batch];
    loop {
        let timeout = if shared.stopping() {
            50u16
        } else {
            SWEEP_EVERY.as_millis() as u16
        };
        let n = match shared.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => {
                log::error!("worker {}: epoll_wait: {e}", std::process::id());
                crate::sys::process::exit_now(exit::IO_ERROR);
            }
        };
        for event in &events[..n] {
            match event.data() {
                LISTENER => accept(shared),
                SIGNALS => {
                    if let Some(fd) = signals {
                        on_signal(shared, fd);
                    }
                }
                token => serve(shared, token),
            }
        }
        sweep_if_due(shared);
        if shared.stopping() && shared.open.load(Ordering::Acquire) == 0 {
            return;
        }
    }
}

fn on_signal(shared: &Shared, signals: &SignalFd) {
    while let Ok(Some(info)) = signals.read_signal() {
        match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGQUIT) => crate::sys::process::exit_now(exit::OK),
            Ok(Signal::SIGTERM) => begin_stop(shared),
            _ => {}
        }
    }
}

/// Graceful stop: take no new connections, close idle ones, let the ones
/// mid-request finish.
fn begin_stop(shared: &Shared) {
    if shared.stopping.swap(true, Ordering::AcqRel) {
        return;
    }
    shared.gate.stop(shared);
    if let Ok(mut deadline) = shared.graceful_deadline.lock() {
        *deadline = Some(Instant::now() + shared.graceful_timeout);
    }
    sweep(shared, Instant::now(), true);
}

fn accept(shared: &Shared) {
    for _ in 0..ACCEPT_BATCH {
        // A slot first: at maxConnectionsPerProcess the connection stays in
        // the backlog for a sibling or for later, instead of being accepted
        // and dropped.
        let Some(index) = shared.free.lock().ok().and_then(|mut free| free.pop()) else {
            return shared.gate.pause_full(shared);
        };
        let (stream, peer) = match shared.listener.accept() {
            Ok(pair) => pair,
            Err(e) => {
                release(shared, index);
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    // EMFILE and friends: the listener stays readable, so
                    // pause rather than spin; the next sweep resumes.
                    log::warn!("worker {}: accept: {e}", std::process::id());
                    shared.gate.pause_failing(shared);
                }
                return;
            }
        };
        if stream.set_nonblocking(true).is_err() {
            release(shared, index);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let conn = Box::new(Conn::new(stream, peer.to_string(), shared));
        let Ok(mut slot) = shared.slots[index as usize].lock() else {
            continue;
        };
        let event = EpollEvent::new(
            EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT,
            token(index, slot.generation),
        );
        if shared.epoll.add(&conn.stream, event).is_err() {
            drop(slot);
            release(shared, index);
            continue;
        }
        slot.conn = Some(conn);
        shared.open.fetch_add(1, Ordering::AcqRel);
    }
}

fn release(shared: &Shared, index: u32) {
    if let Ok(mut free) = shared.free.lock() {
        free.push(index);
    }
}

/// Closes the connection in `slot` (the caller holds its lock).
fn close(shared: &Shared, index: u32, slot: &mut Slot) {
    if slot.conn.take().is_some() {
        slot.generation = slot.generation.wrapping_add(1);
        shared.open.fetch_sub(1, Ordering::AcqRel);
        release(shared, index);
        shared.gate.resume(shared);
    }
}

fn serve(shared: &Shared, token: u64) {
    let index = (token & 0xffff_ffff) as u32;
    let generation = (token >> 32) as u32;
    let Some(slot) = shared.slots.get(index as usize) else {
        return;
    };
    let Ok(mut slot) = slot.lock() else { return };
    if slot.generation != generation {
        return; // stale event for a connection closed meanwhile
    }
    let Some(conn) = slot.conn.as_mut() else {
        return;
    };
    let interest = match conn.on_ready(shared) {
        Next::Read => EpollFlags::EPOLLIN,
        Next::Write => EpollFlags::EPOLLOUT,
        Next::Close => return close(shared, index, &mut slot),
    };
    // Re-arm last, while still holding the slot: a thread that wakes on the
    // connection right away waits for the lock instead of racing us.
    let mut event = EpollEvent::new(interest | EpollFlags::EPOLLONESHOT, token);
    if shared.epoll.modify(&conn.stream, &mut event).is_err() {
        close(shared, index, &mut slot);
    }
}

fn sweep_if_due(shared: &Shared) {
    let now = Instant::now();
    let tick = now.duration_since(shared.started).as_millis() as u64;
    let last = shared.last_sweep.load(Ordering::Relaxed);
    if tick.saturating_sub(last) < SWEEP_EVERY.as_millis() as u64 {
        return;
    }
    if shared
        .last_sweep
        .compare_exchange(last, tick, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        let force = shared.stopping()
            && shared
                .graceful_deadline
                .lock()
                .ok()
                .and_then(|d| *d)
                .is_some_and(|deadline| now >= deadline);
        sweep(shared, now, force);
        shared.gate.resume(shared);
    }
}

/// Closes connections past their deadline; when stopping, also every idle
/// one (and, with `force`, every one).
fn sweep(shared: &Shared, now: Instant, force: bool) {
    let stopping = shared.stopping();
    for (index, slot) in shared.slots.iter().enumerate() {
        // A slot that is locked is being served; it is not idle.
        let Ok(mut slot) = slot.try_lock() else {
            continue;
        };
        let Some(conn) = slot.conn.as_mut() else {
            continue;
        };
        let expired = now >= conn.deadline;
        if expired || force || (stopping && conn.is_idle()) {
            if expired {
                conn.on_timeout();
            }
            close(shared, index as u32, &mut slot);
        }
    }
}
