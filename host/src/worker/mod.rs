//! One worker process: load the plugins, then serve HTTP on the listening
//! socket inherited from the master.
//!
//! # Where things are
//!
//! - this file: the worker's shared state, its event loop ([`lead`]),
//!   accepting, signals, the stop, the deadline sweep;
//! - [`pool`]: which thread runs the event loop (leader / standby);
//! - [`slots`]: the connection table and the edge-triggered hand-off;
//! - [`gate`] and [`balance`]: whether this worker takes new connections;
//! - [`conn`]: one connection's bytes, over [`transport`] (plain TCP or
//!   TLS); [`dispatch`], [`answer`],
//!   [`reserved`]: one request's response; [`static_files`]: file
//!   responses and `[static]`; [`body_out`]: bodies sent after the head
//!   (files, streams); [`access`]: the access log;
//!   [`link`]: the line to the master.
//!
//! # How it serves
//!
//! One epoll set per worker holds the listener (`EPOLLEXCLUSIVE`: the
//! kernel wakes one waiting worker per new connection), a signalfd, and
//! every connection, registered once, edge-triggered, for reading and
//! writing: no `epoll_ctl` per request, and a keep-alive request costs two
//! system calls (one read, one write). The thread that takes an event does
//! all the work inline — accept, read, parse, run the plugin, write — with
//! no hand-off between threads (DESIGN "Worker I/O" says why). Five
//! mechanisms keep that fast and fair; each is simple, their interplay is
//! not.
//!
//! 1. **Leader and standbys** ([`pool`]). One thread at a time, the leader,
//!    waits on the set and works through the batch of events it got. The
//!    other threads stand by on a condition variable. A monitor thread
//!    samples the leader every 2 ms; if the same handler call is still
//!    running and the thread sleeps in the kernel (a store call, a sleep),
//!    or has computed for 50 ms, it bumps the *epoch*: a standby becomes
//!    leader and carries on with the rest of the same batch. The old leader
//!    finishes its request, sees the epoch moved, and stands by.
//!
//!    ```text
//!                lead()                 batch empty
//!    standby ──────────▶ leader ──────────────────────▶ epoll_wait
//!       ▲                 │  ▲ ◀─────── new batch ──────────┘
//!       │      connection │  │ handler returns,
//!       │           event ▼  │ same epoch
//!       └─────────────── in handler
//!        handler returns,   the monitor finds it blocked, or computing
//!        epoch moved        for 50 ms: epoch + 1, a standby leads
//!    ```
//!
//! 2. **Pending flags** ([`slots`]). A hand-over leaves a connection's slot
//!    locked by the old leader while the new one may get the next edge for
//!    it. Edge-triggered, that edge is the only news: the new leader sets
//!    the slot's `pending` flag and moves on; the holder looks at the flag
//!    before it unlocks and serves the news itself. No edge is lost and no
//!    thread waits for a slot.
//!
//! 3. **The gate** ([`gate`]). The listener is in the set only while this
//!    worker may accept: a slot is free, and it is within its share (4).
//!    Otherwise it takes the listener out instead of accepting and
//!    dropping; connections wait in the backlog or go to a sibling. A close,
//!    the sweep, and (while paused) every 5 ms the event loop put it back
//!    once allowed. Stopping takes it out for good.
//!
//!    ```text
//!            no free slot, over share, accept fails
//!    open ─────────────────────────────────────────▶ paused
//!         ◀───── close / sweep / recheck: allowed ─────
//!    open, paused ─── SIGTERM ───▶ stopped (never back in)
//!    ```
//!
//! 4. **Balance** ([`balance`]). `EPOLLEXCLUSIVE` wakes the first idle
//!    waiter, so one worker can collect most connections. Each worker
//!    publishes its open connections in the scoreboard; one that holds more
//!    than the even share + 2 pauses its gate — but only while a ready
//!    sibling has a free thread (a sibling whose threads are all inside
//!    handlers could not take the connections). After each wake-up on the
//!    listener a worker also moves itself to the back of the listener's
//!    wait queue (`Gate::rotate`).
//!
//! 5. **The SIGUSR2 nudge**. The connection that woke a worker that then
//!    pauses for balance is still queued, and the kernel told no one else:
//!    the worker sends SIGUSR2 to the least loaded ready sibling with a
//!    free thread, whose signalfd reads it as "look at the listener" and
//!    accepts. (Workers use USR2 only among themselves.)
//!
//! How they meet: when every thread is inside a handler, nobody waits on
//! the set, so the kernel's exclusive wake-ups go to siblings (1); the
//! scoreboard's busy marks, set around each plugin call, tell balance
//! which siblings can take work (4, 5); the gate is the one place the
//! listener enters or leaves the set (3), whether for room, for balance or
//! for the stop; and the pending flags (2) are what make a hand-over (1)
//! safe with edge-triggered connections.
//!
//! # Supervision and stopping
//!
//! Once serving, the worker says so on the master's pipe ([`link`]);
//! SIGTERM is a graceful stop, SIGQUIT an immediate one, SIGUSR1 reopens
//! the log files. A stopping worker takes the listener out of its set,
//! accepts everything already queued (so no connection waits for a
//! wake-up that went to it, nor is reset) and closes its copy of the
//! socket; it closes idle connections after a short linger, and lets
//! requests under way finish within `gracefulTimeout`. A request the
//! master gave up on (past `requestTimeout`) is answered 504 first
//! ([`expiry`]). If every thread is inside a handler, the monitor thread
//! reads the signals.

mod access;
mod answer;
mod balance;
mod body_out;
mod conn;
mod dispatch;
mod expiry;
mod gate;
pub mod link;
mod origin;
mod pool;
mod reserved;
mod slots;
mod static_files;
mod transport;

use crate::board::scoreboard::Scoreboard;
use crate::config::{Config, Limits, TrustedProxies};
use crate::http::HeadLimits;
use crate::plugin::PluginSet;
use conn::Conn;
use link::Link;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use pool::{Pool, Step};
use slots::{close, release, serve, token, SlotCell};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use transport::Transport;

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
/// How often a stopping worker sweeps: it waits for its last connections.
const SWEEP_WHILE_STOPPING: Duration = Duration::from_millis(100);
/// How long a stopping worker keeps an idle keep-alive connection open. A
/// busy client sends its next request within this and gets it answered
/// with `Connection: close`, instead of finding the connection closed under
/// it (clients retry that, but only idempotent requests).
const STOP_LINGER: Duration = Duration::from_millis(300);
/// New connections taken per wake-up on the listener: enough to drain a
/// burst, few enough that one worker does not take a whole backlog. Each
/// wake-up costs an `epoll_wait` return and two `epoll_ctl` (`rotate`);
/// under a stream of short connections 4 shares those among several
/// (one at a time cost ~10% more system calls per connection), and the
/// two workers still split connections evenly.
const ACCEPT_BATCH: usize = 4;

/// State shared by the threads of one worker.
#[derive(Debug)]
pub struct Shared {
    pub plugins: PluginSet,
    /// `[static]` folders, open.
    pub statics: static_files::Statics,
    pub limits: Limits,
    pub head_limits: HeadLimits,
    /// `[server] proxyProtocol` and `trustedProxies` (see `origin`).
    pub proxy_protocol: bool,
    pub trusted_proxies: TrustedProxies,
    epoll: Epoll,
    listener: TcpListener,
    slots: Vec<SlotCell>,
    free: Mutex<Vec<u32>>,
    open: AtomicUsize,
    stopping: AtomicBool,
    last_sweep: AtomicU64,
    started: Instant,
    /// Read by whichever thread leads when a signal arrives.
    signals: SignalFd,
    /// Slots kept for the stop, beyond `maxConnectionsPerProcess`: the
    /// connections still queued then were accepted by the kernel already,
    /// and are served rather than reset. The listen queue holds no more.
    reserve: usize,
    pool: Pool,
    /// `None` when `[log] accessLog = off`.
    access: Option<access::AccessLog>,
    graceful_timeout: Duration,
    graceful_deadline: Mutex<Option<Instant>>,
    /// Idle connections of a stopping worker are closed from then on.
    linger_until: Mutex<Option<Instant>>,
    /// Whether the listener is in the epoll set (see `gate`).
    gate: gate::Gate,
    /// Set on every accept; the idle sweep trims the heap once after.
    served_since_trim: AtomicBool,
    /// This worker's connection count in the scoreboard (see `balance`).
    balance: balance::Balance,
    /// Requests past `requestTimeout` (see `expiry`).
    expiry: expiry::Expiry,
    /// `[tls]`: every connection starts with a handshake.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

/// Runs a worker until it is told to stop. Never returns to the caller's
/// loop: the return value is the process exit code.
pub fn run(
    config: &Config,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    plugins: PluginSet,
    link: Link,
) -> i32 {
    // Settings only: each handler thread connects on its first store call.
    crate::store::configure(&config.store);
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
    let shared = match Shared::new(config, listener, tls, plugins, signals, link.board.clone()) {
        Ok(shared) => Arc::new(shared),
        Err(e) => {
            // An access log that cannot be opened, or no epoll: retrying
            // would fail the same way.
            log::error!("worker {}: cannot start serving: {e}", std::process::id());
            return exit::BOOT_FAILED;
        }
    };
    let mut threads: Vec<_> = (1..config.server.thread_pool.max(1))
        .map(|i| {
            let shared = Arc::clone(&shared);
            let tracker = link.tracker(i);
            std::thread::Builder::new()
                .name(format!("drupe-w{i}"))
                .spawn(move || {
                    dispatch::attach(tracker);
                    serve_as_pool_thread(&shared)
                })
        })
        .collect();
    if config.server.thread_pool > 1 {
        let shared = Arc::clone(&shared);
        threads.push(
            std::thread::Builder::new()
                .name("drupe-monitor".into())
                .spawn(move || shared.pool.monitor(|| on_signal(&shared))),
        );
    }
    dispatch::attach(link.tracker(0));
    // Plugins initialised, listener in the epoll set, threads started: from
    // here on this worker serves.
    link.report_ready();
    serve_as_pool_thread(&shared);
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
    let mask = crate::sys::process::set_signal_mask(&[
        Signal::SIGTERM,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ])?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

impl Shared {
    fn new(
        config: &Config,
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        plugins: PluginSet,
        signals: SignalFd,
        board: Option<(Arc<Scoreboard>, usize)>,
    ) -> std::io::Result<Shared> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(&listener, listener_event())?;
        epoll.add(
            signals.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, SIGNALS),
        )?;
        let capacity = config.limits.max_connections_per_process;
        let reserve = config.server.socket_queue_size as usize;
        Ok(Shared {
            plugins,
            statics: static_files::Statics::open(&config.statics)?,
            limits: config.limits.clone(),
            head_limits: HeadLimits::from(&config.limits),
            proxy_protocol: config.server.proxy_protocol,
            trusted_proxies: config.server.trusted_proxies.clone(),
            epoll,
            listener,
            slots: (0..capacity + reserve)
                .map(|_| SlotCell::default())
                .collect(),
            free: Mutex::new((0..capacity as u32).rev().collect()),
            open: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            last_sweep: AtomicU64::new(0),
            started: Instant::now(),
            signals,
            reserve,
            pool: Pool::new(),
            access: access::AccessLog::open(&config.log.access_log)?,
            graceful_timeout: config.server.graceful_timeout,
            graceful_deadline: Mutex::new(None),
            linger_until: Mutex::new(None),
            gate: gate::Gate::default(),
            served_since_trim: AtomicBool::new(false),
            balance: balance::Balance::new(board.clone()),
            expiry: expiry::Expiry::new(board),
            tls,
        })
    }
}

/// A thread of the pool: lead the event loop whenever it is this thread's
/// turn, until the worker is done.
fn serve_as_pool_thread(shared: &Shared) {
    let mut events = [EpollEvent::empty(); pool::BATCH];
    while let Some(epoch) = shared.pool.lead() {
        lead(shared, epoch, &mut events);
        if let Some(log) = &shared.access {
            access::flush(log);
        }
    }
}

/// The event loop, run by the leader of `epoch` until leadership passes on.
fn lead(shared: &Shared, epoch: u64, events: &mut [EpollEvent]) {
    loop {
        match shared.pool.next(epoch) {
            Step::Resign => return,
            Step::Event(event) => match event.data() {
                LISTENER => accept(shared),
                SIGNALS => on_signal(shared),
                token => {
                    shared.pool.enter(epoch);
                    serve(shared, token, hung_up(&event), readable(&event));
                    shared.pool.leave(epoch);
                }
            },
            Step::Refill => {
                if shared.stopping() {
                    let open = shared.open.load(Ordering::Acquire);
                    if open == 0 {
                        shared.pool.finish();
                        return;
                    }
                    if open <= shared.expiry.given_up() {
                        exit_with_handlers_stuck(shared);
                    }
                }
                sweep_if_due(shared);
                if let Some(log) = &shared.access {
                    access::flush(log); // before possibly sleeping
                }
                // A worker that paused accepting looks again soon: its
                // siblings' counts change without telling it.
                let paused = shared.gate.resume(shared);
                let timeout = if shared.stopping() {
                    50u16
                } else if paused {
                    gate::RECHECK.as_millis() as u16
                } else {
                    SWEEP_EVERY.as_millis() as u16
                };
                let n = match shared.epoll.wait(events, timeout) {
                    Ok(n) => n,
                    Err(nix::errno::Errno::EINTR) => 0,
                    Err(e) => {
                        log::error!("worker {}: epoll_wait: {e}", std::process::id());
                        crate::sys::process::exit_now(exit::IO_ERROR);
                    }
                };
                shared.pool.refill(epoch, &events[..n]);
            }
        }
    }
}

fn on_signal(shared: &Shared) {
    while let Ok(Some(info)) = shared.signals.read_signal() {
        match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGQUIT) => crate::sys::process::exit_now(exit::OK),
            // From the master: a stop, and maybe requests past
            // requestTimeout to answer (see `expiry`).
            Ok(Signal::SIGTERM) => {
                shared.expiry.answer_expired();
                begin_stop(shared);
            }
            // A sibling left queued connections to us (see `balance`):
            // take what we may, and re-register the listener so that what
            // is still queued is reported to us.
            Ok(Signal::SIGUSR2) => accept(shared),
            Ok(Signal::SIGUSR1) => match crate::logging::reopen_all() {
                Ok(()) => log::info!("worker {} reopened its log files", std::process::id()),
                Err(e) => log::error!("worker {}: reopening logs: {e}", std::process::id()),
            },
            _ => {}
        }
    }
}

/// Graceful stop: take no new connections, close idle ones (after a short
/// linger, see `STOP_LINGER`), let the ones mid-request finish.
fn begin_stop(shared: &Shared) {
    if shared.stopping.swap(true, Ordering::SeqCst) {
        return;
    }
    // Out of the epoll set first: the set holds the socket's file, which
    // every process shares, so closing this descriptor alone would leave
    // it there, still reporting new connections.
    shared.gate.stop(shared);
    // Everything the kernel has queued was accepted already, from the
    // client's point of view: take it all, past maxConnectionsPerProcess
    // if need be (the reserve slots), and serve it. Then close this
    // process's copy of the socket: once the master and every sibling have
    // closed theirs too (a whole-host stop), new connections are refused
    // at once instead of waiting in a queue nobody reads; in a worker that
    // stops alone (reload, maxRequests, requestTimeout), the others go on
    // taking them.
    if let Ok(mut free) = shared.free.lock() {
        let first = shared.slots.len() - shared.reserve;
        free.extend((first..shared.slots.len()).rev().map(|i| i as u32));
    }
    accept_upto(shared, usize::MAX);
    if let Err(e) = crate::sys::net::close_listener(&shared.listener) {
        log::error!(
            "worker {}: cannot close the listening socket: {e}",
            std::process::id()
        );
    }
    if let Ok(mut deadline) = shared.graceful_deadline.lock() {
        *deadline = Some(Instant::now() + shared.graceful_timeout);
    }
    if let Ok(mut linger) = shared.linger_until.lock() {
        *linger = Some(Instant::now() + STOP_LINGER);
    }
}

/// A stopping worker whose only connections left are held by handlers
/// past `requestTimeout`, answered already: those threads may never
/// return, so neither joining them nor the plugins' `shutdown` (which
/// could wait for them) can be done. The process ends here.
fn exit_with_handlers_stuck(shared: &Shared) -> ! {
    if let Some(log) = &shared.access {
        access::flush(log);
    }
    log::info!(
        "worker {} stopped after {:?}, leaving {} handler(s) past requestTimeout behind",
        std::process::id(),
        shared.started.elapsed(),
        shared.expiry.given_up()
    );
    crate::sys::process::exit_now(exit::OK)
}

fn accept(shared: &Shared) {
    // A stopping worker leaves new connections to its siblings.
    if shared.stopping() {
        return;
    }
    if shared.balance.over_share() {
        shared.gate.pause_full(shared);
        // The connection that woke us is still queued, and the kernel may
        // have told no one else: wake the least loaded sibling (its
        // signalfd reads SIGUSR2 as "look at the listener").
        if let Some(pid) = shared.balance.least_loaded_sibling() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGUSR2);
        }
        return;
    }
    accept_upto(shared, ACCEPT_BATCH);
    // Move this worker's wait entry to the back of the listener's queue:
    // `EPOLLEXCLUSIVE` wakes the first idle waiter, so without this the
    // same worker is woken for every burst. Costs two epoll_ctl per wake-up
    // on the listener, never per request on a kept-alive connection.
    shared.gate.rotate(shared);
}

fn accept_upto(shared: &Shared, max: usize) {
    for _ in 0..max {
        // A slot first: at maxConnectionsPerProcess the connection stays in
        // the backlog for a sibling or for later, instead of being accepted
        // and dropped.
        let Some(index) = shared.free.lock().ok().and_then(|mut free| free.pop()) else {
            return shared.gate.pause_full(shared);
        };
        let (stream, peer) = match crate::sys::net::accept_nonblocking(&shared.listener) {
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
        // TCP_NODELAY comes from the listener (see `master::listen`).
        let stream = match &shared.tls {
            None => Transport::plain(stream),
            Some(config) => match Transport::tls(stream, config) {
                Ok(stream) => stream,
                Err(e) => {
                    log::warn!("worker {}: TLS: {e}", std::process::id());
                    release(shared, index);
                    continue;
                }
            },
        };
        let conn = Box::new(Conn::new(stream, peer, shared));
        let cell = &shared.slots[index as usize];
        cell.pending.store(false, Ordering::SeqCst);
        cell.readable.store(false, Ordering::SeqCst);
        let Ok(mut slot) = cell.slot.lock() else {
            continue;
        };
        // Edge-triggered, for reading and writing, once for the life of
        // the connection: no epoll_ctl per request (see `serve`). With
        // EPOLLRDHUP, so that a FIN that came with the last request is
        // seen (see `conn`).
        let event = EpollEvent::new(
            EpollFlags::EPOLLIN
                | EpollFlags::EPOLLOUT
                | EpollFlags::EPOLLRDHUP
                | EpollFlags::EPOLLET,
            token(index, slot.generation),
        );
        if shared.epoll.add(&conn.stream, event).is_err() {
            drop(slot);
            release(shared, index);
            continue;
        }
        slot.conn = Some(conn);
        let open = shared.open.fetch_add(1, Ordering::AcqRel) + 1;
        shared.served_since_trim.store(true, Ordering::Relaxed);
        shared.balance.publish(open);
    }
}

/// Whether a connection's event says the client has shut its side.
fn hung_up(event: &EpollEvent) -> bool {
    event.events().contains(EpollFlags::EPOLLRDHUP)
}

/// Whether a connection's event may bring input (or an error or EOF that
/// only a read reveals). One that only says "writable" does not: the
/// kernel reports what is ready when the event is taken, and input that
/// arrives later raises an edge of its own. A fresh connection's first
/// event is often that, just after it joins the set, before its request
/// has arrived; reading then would be a wasted `recvfrom`.
fn readable(event: &EpollEvent) -> bool {
    event.events().intersects(
        EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR,
    )
}

/// The listener's registration. `EPOLLEXCLUSIVE`: one waiting worker is
/// woken per new connection instead of all of them.
fn listener_event() -> EpollEvent {
    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, LISTENER)
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
        shared.gate.resume(shared);
        // With no connection left, hand freed memory back to the system:
        // after large bodies glibc keeps it in its arenas (its mmap
        // threshold rises with each large free), and an idle worker should
        // not look as big as its busiest moment.
        let open = shared.open.load(Ordering::Relaxed);
        if open == 0 && shared.served_since_trim.swap(false, Ordering::Relaxed) {
            crate::sys::process::trim_heap();
        }
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
    for (index, cell) in shared.slots.iter().enumerate() {
        // A slot that is locked is being served; it is not idle.
        let Ok(mut slot) = cell.slot.try_lock() else {
            continue;
        };
        let Some(conn) = slot.conn.as_mut() else {
            continue;
        };
        let expired = now >= conn.deadline;
        if expired || force || (close_idle && conn.is_idle() && !has_input(conn.stream.tcp())) {
            if expired {
                conn.on_timeout(shared);
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
