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
//!
//! Supervision ([`link`]): once serving, the worker says so on the master's
//! pipe; SIGTERM is a graceful stop, SIGQUIT an immediate one, SIGUSR1
//! reopens the log files. A stopping worker takes nothing new from the
//! shared listener except what was already queued when it stopped (so no
//! connection waits for a wake-up that went to it), and an eventfd wakes
//! every thread as soon as the last connection is done.

mod conn;
mod dispatch;
pub mod link;

use crate::config::{Config, Limits};
use crate::http::HeadLimits;
use crate::plugin::PluginSet;
use conn::{Conn, Next};
use link::Link;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
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
const WAKE: u64 = u64::MAX - 2;
/// How often idle and slow connections are checked against their deadlines.
const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// How often a stopping worker sweeps: it waits for its last connections.
const SWEEP_WHILE_STOPPING: Duration = Duration::from_millis(100);
/// How long a stopping worker keeps an idle keep-alive connection open. A
/// busy client sends its next request within this and gets it answered
/// with `Connection: close`, instead of finding the connection closed under
/// it (clients retry that, but only idempotent requests).
const STOP_LINGER: Duration = Duration::from_millis(300);
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
    /// Read by whichever thread wakes on it: a thread busy in a handler
    /// must not leave a pending signal to spin the others.
    signals: SignalFd,
    /// Always readable, registered one-shot and disarmed: arming it wakes
    /// one thread, which passes it on (see `wake_all`).
    wake: EventFd,
    /// At most this many queued connections are taken when stopping: the
    /// listen backlog can hold no more than that.
    drain_limit: usize,
    slots: Vec<Mutex<Slot>>,
    free: Mutex<Vec<u32>>,
    open: AtomicUsize,
    stopping: AtomicBool,
    last_sweep: AtomicU64,
    started: Instant,
    threads: usize,
    graceful_timeout: Duration,
    graceful_deadline: Mutex<Option<Instant>>,
    /// Idle connections of a stopping worker are closed from then on.
    linger_until: Mutex<Option<Instant>>,
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
pub fn run(config: &Config, listener: TcpListener, plugins: PluginSet, link: Link) -> i32 {
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
    let shared = match Shared::new(config, listener, plugins, signals) {
        Ok(shared) => Arc::new(shared),
        Err(e) => {
            log::error!("worker {}: cannot set up epoll: {e}", std::process::id());
            return exit::IO_ERROR;
        }
    };
    let threads: Vec<_> = (1..config.server.thread_pool.max(1))
        .map(|i| {
            let shared = Arc::clone(&shared);
            let tracker = link.tracker(i);
            std::thread::Builder::new()
                .name(format!("drupe-w{i}"))
                .spawn(move || {
                    dispatch::attach(tracker);
                    event_loop(&shared)
                })
        })
        .collect();
    dispatch::attach(link.tracker(0));
    // Plugins initialised, listener in the epoll set, threads waiting on
    // it: from here on this worker serves.
    link.report_ready();
    event_loop(&shared);
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
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGPIPE,
    ] {
        crate::sys::process::ignore_signal(ignored)?;
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGQUIT);
    mask.add(Signal::SIGUSR1);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

impl Shared {
    fn new(
        config: &Config,
        listener: TcpListener,
        plugins: PluginSet,
        signals: SignalFd,
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
        let wake = EventFd::from_value_and_flags(1, EfdFlags::EFD_CLOEXEC)?;
        epoll.add(
            wake.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLONESHOT, WAKE),
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
            signals,
            wake,
            drain_limit: config.server.socket_queue_size as usize,
            slots: (0..capacity).map(|_| Mutex::default()).collect(),
            free: Mutex::new((0..capacity as u32).rev().collect()),
            open: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            last_sweep: AtomicU64::new(0),
            started: Instant::now(),
            threads: config.server.thread_pool.max(1),
            graceful_timeout: config.server.graceful_timeout,
            graceful_deadline: Mutex::new(None),
            linger_until: Mutex::new(None),
        })
    }
}

fn event_loop(shared: &Shared) {
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
                SIGNALS => on_signal(shared),
                WAKE => {
                    if shared.stopping() && shared.open.load(Ordering::SeqCst) == 0 {
                        wake_all(shared); // pass it on to the next thread
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

fn on_signal(shared: &Shared) {
    while let Ok(Some(info)) = shared.signals.read_signal() {
        match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGQUIT) => crate::sys::process::exit_now(exit::OK),
            Ok(Signal::SIGTERM) => begin_stop(shared),
            Ok(Signal::SIGUSR1) => match crate::logging::reopen_all() {
                Ok(()) => log::info!("worker {} reopened its log files", std::process::id()),
                Err(e) => log::error!("worker {}: reopening logs: {e}", std::process::id()),
            },
            _ => {}
        }
    }
}

/// Wakes one thread waiting on the epoll set; a woken thread that finds
/// the worker stopped and empty calls this again before it leaves, so the
/// threads leave one after another without waiting for a timeout.
fn wake_all(shared: &Shared) {
    let mut event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, WAKE);
    let _ = shared.epoll.modify(shared.wake.as_fd(), &mut event);
}

/// Graceful stop: take no new connections, close idle ones (after a short
/// linger, see `STOP_LINGER`), let the ones mid-request finish.
fn begin_stop(shared: &Shared) {
    if shared.stopping.swap(true, Ordering::SeqCst) {
        return;
    }
    let _ = shared.epoll.delete(&shared.listener);
    // With EPOLLEXCLUSIVE the kernel woke only this worker for connections
    // that are queued now; if it left them, they would wait in the shared
    // backlog until some later connection woke a sibling. Take them and
    // serve them (once: anything queued after the delete wakes a sibling).
    accept_upto(shared, shared.drain_limit);
    if let Ok(mut deadline) = shared.graceful_deadline.lock() {
        *deadline = Some(Instant::now() + shared.graceful_timeout);
    }
    if let Ok(mut linger) = shared.linger_until.lock() {
        *linger = Some(Instant::now() + STOP_LINGER);
    }
    if shared.open.load(Ordering::SeqCst) == 0 {
        wake_all(shared);
    }
}

fn accept(shared: &Shared) {
    // A stopping worker leaves new connections to its siblings.
    if !shared.stopping() {
        accept_upto(shared, ACCEPT_BATCH);
    }
}

fn accept_upto(shared: &Shared, max: usize) {
    for _ in 0..max {
        let (stream, peer) = match shared.listener.accept() {
            Ok(pair) => pair,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                // EMFILE and friends: leave the connection in the backlog
                // (or to a sibling) rather than spinning.
                log::warn!("worker {}: accept: {e}", std::process::id());
                return;
            }
        };
        let Some(index) = shared.free.lock().ok().and_then(|mut free| free.pop()) else {
            log::warn!(
                "worker {}: maxConnectionsPerProcess reached; closing a new connection",
                std::process::id()
            );
            return;
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
        let last = shared.open.fetch_sub(1, Ordering::SeqCst) == 1;
        release(shared, index);
        if last && shared.stopping.load(Ordering::SeqCst) {
            wake_all(shared);
        }
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
    let every = if shared.stopping() {
        SWEEP_WHILE_STOPPING
    } else {
        SWEEP_EVERY
    };
    if tick.saturating_sub(last) < every.as_millis() as u64 {
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
    }
}

/// Closes connections past their deadline; when stopping (after
/// `STOP_LINGER`), also every idle one (and, with `force`, every one).
fn sweep(shared: &Shared, now: Instant, force: bool) {
    let close_idle = shared.stopping()
        && shared
            .linger_until
            .lock()
            .ok()
            .and_then(|l| *l)
            .is_some_and(|until| now >= until);
    for (index, slot) in shared.slots.iter().enumerate() {
        // A slot that is locked is being served; it is not idle.
        let Ok(mut slot) = slot.try_lock() else {
            continue;
        };
        let Some(conn) = slot.conn.as_mut() else {
            continue;
        };
        let expired = now >= conn.deadline;
        if expired || force || (close_idle && conn.is_idle() && !has_input(&conn.stream)) {
            if expired {
                conn.on_timeout();
            }
            close(shared, index as u32, &mut slot);
        }
    }
}

/// Whether a request (or EOF) is waiting to be read: an idle keep-alive
/// connection whose client just sent its next request is served, not cut.
fn has_input(stream: &std::net::TcpStream) -> bool {
    matches!(stream.peek(&mut [0u8; 1]), Ok(n) if n > 0)
}
