//! What the master checks on every turn of its loop, from the worker table
//! and the shared-memory scoreboard:
//!
//! - a request running past `requestTimeout` (gunicorn's `timeout`,
//!   uWSGI's harakiri): plugin code cannot be interrupted safely, and a
//!   handler that never returns holds its thread forever, so its worker
//!   must go — but without cutting its other requests. The master marks
//!   the call given up in the scoreboard and stops the worker gracefully;
//!   the worker answers the stuck client 504 and finishes the rest
//!   (`worker::expiry`), while a replacement starts at once (a stopping
//!   worker does not hold its pool position). The log names the route and
//!   the pid.
//! - a worker past its `maxRequests`: it is marked retiring, and
//!   `manage_workers` replaces it like a reload does (replacement first).
//! - a stopping worker past its `gracefulTimeout`: killed.
//! - a worker that never says it is ready within `BOOT_TIMEOUT`: killed,
//!   which counts as a crash (respawned with backoff).

use super::table::{State, Worker};
use super::Master;
use crate::board::scoreboard::{self, Scoreboard};
use crate::config::Server;
use nix::sys::signal::{kill, Signal};
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// How long a worker may take to load and initialise its plugins.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// A worker's `maxRequests` limit: the setting plus a random jitter of up
/// to `maxRequestsJitter`, so that workers started together are not all
/// replaced together. 0 = no limit.
pub(super) fn draw_max_requests(server: &Server) -> u64 {
    if server.max_requests == 0 {
        return 0;
    }
    if server.max_requests_jitter == 0 {
        return server.max_requests;
    }
    // std's RandomState is seeded from the OS: random enough to spread
    // replacements, without a dependency for it.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(scoreboard::now_ms());
    let jitter = hasher.finish() % (server.max_requests_jitter.saturating_add(1));
    server.max_requests.saturating_add(jitter)
}

/// What to do about one worker, decided from a look at it.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Fine,
    /// Kill it now; the text says why, for the log.
    Kill(String),
    /// Calls past `requestTimeout`, as `(thread, since_ms)`; the text
    /// names them, for the log.
    TimedOut(String, Vec<(usize, u64)>),
    /// It reached `maxRequests`.
    Retire(u64),
}

/// Looks at one worker. `next` is lowered to when a running request
/// will pass the timeout, so the master wakes up just then.
fn judge(
    worker: &Worker,
    board: &Scoreboard,
    server: &Server,
    now: Instant,
    now_ms: u64,
    next: &mut Option<Instant>,
) -> Verdict {
    if worker.killed {
        return Verdict::Fine;
    }
    match worker.state() {
        State::Stopping { deadline } if now >= deadline => {
            return Verdict::Kill(format!(
                "did not finish its requests within gracefulTimeout ({}s)",
                server.graceful_timeout.as_secs()
            ))
        }
        State::Starting if now.duration_since(worker.started) >= BOOT_TIMEOUT => {
            return Verdict::Kill(format!(
                "did not become ready within {}s",
                BOOT_TIMEOUT.as_secs()
            ))
        }
        _ => {}
    }
    let Some(slot) = worker.board else {
        return Verdict::Fine;
    };
    let timeout_ms = server.request_timeout.as_millis() as u64;
    if timeout_ms > 0 {
        let mut why = Vec::new();
        let mut calls = Vec::new();
        // Calls given up already are the worker's to answer.
        for busy in board.busy(slot).filter(|b| !b.expired) {
            // Both clocks are truncated to the millisecond: the call may
            // have run up to 1 ms less than their difference. Never give
            // up before the limit.
            let ran = now_ms.saturating_sub(busy.since_ms + 1);
            if ran >= timeout_ms {
                why.push(format!("{} for {:.1}s", busy.route, ran as f64 / 1000.0));
                calls.push((busy.thread, busy.since_ms));
                continue;
            }
            let due = now + Duration::from_millis(timeout_ms - ran);
            *next = Some(next.map_or(due, |n| n.min(due)));
        }
        if !calls.is_empty() {
            let why = format!(
                "has run {}, past requestTimeout ({}s)",
                why.join(", "),
                server.request_timeout.as_secs()
            );
            return Verdict::TimedOut(why, calls);
        }
    }
    if worker.max_requests > 0 && worker.state() == State::Ready && !worker.retiring {
        let served = board.requests_served(slot);
        if served >= worker.max_requests {
            return Verdict::Retire(served);
        }
    }
    Verdict::Fine
}

impl Master {
    /// Kills the workers that stopped too slowly or never booted, gives up
    /// on requests past `requestTimeout` (stopping their worker), and marks
    /// workers past `maxRequests` for replacement (gunicorn's
    /// `murder_workers`).
    pub(super) fn murder_workers(&mut self) {
        let now = Instant::now();
        let now_ms = scoreboard::now_ms();
        let server = &self.generations.current.config.server;
        let deadline = now + server.graceful_timeout;
        let board = &self.pool.board;
        let mut next = None;
        for worker in &mut self.pool.table.workers {
            match judge(worker, board, server, now, now_ms, &mut next) {
                Verdict::Fine => {}
                Verdict::Kill(why) => {
                    log::error!(
                        "worker {} (generation {}) {why}; killing it",
                        worker.pid,
                        worker.generation
                    );
                    let _ = kill(worker.pid, Signal::SIGKILL);
                    worker.killed = true;
                    if worker.state() != State::Starting {
                        // Replaced at once; its death is no crash.
                        worker.set_state(State::Stopping { deadline: now }, board);
                    }
                }
                Verdict::TimedOut(why, calls) => {
                    log::error!(
                        "worker {} (generation {}) {why}; answering 504 and replacing the worker \
                         (its other requests may finish within gracefulTimeout)",
                        worker.pid,
                        worker.generation
                    );
                    if let Some(slot) = worker.board {
                        for (thread, since_ms) in calls {
                            if let Some(call) = board.thread(slot, thread) {
                                call.expire(since_ms);
                            }
                        }
                    }
                    if !worker.stopping() {
                        worker.set_state(State::Stopping { deadline }, board);
                    }
                    // Even if it was stopping already: the signal is what
                    // makes it answer the given-up calls.
                    let _ = kill(worker.pid, Signal::SIGTERM);
                }
                Verdict::Retire(served) => {
                    log::info!(
                        "worker {} served {served} requests (maxRequests {}); replacing it",
                        worker.pid,
                        worker.max_requests
                    );
                    worker.retiring = true;
                }
            }
        }
        self.pool.next_check = next;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nix::unistd::Pid;

    fn server(text: &str) -> Server {
        crate::config::Config::parse(text.as_bytes(), std::path::Path::new("/x/drupe.ini"))
            .unwrap()
            .server
    }

    fn worker(state: State, max_requests: u64) -> Worker {
        let mut w = Worker::new(Pid::from_raw(1234), 1, 0, Some(0), Instant::now()).in_state(state);
        w.max_requests = max_requests;
        w
    }

    #[test]
    fn a_request_past_the_timeout_kills_and_names_the_route() {
        let board = Scoreboard::new(1, 2).unwrap();
        let s = server("[server]\nrequestTimeout = 2\n");
        let w = worker(State::Ready, 0);
        let (now, now_ms) = (Instant::now(), scoreboard::now_ms());
        board
            .thread(0, 1)
            .unwrap()
            .begin(b"GET", b"/testkit/sleep/5000", 7);
        let mut next = None;
        assert_eq!(judge(&w, &board, &s, now, now_ms, &mut next), Verdict::Fine);
        let due = next.expect("a wake-up for the busy thread");
        assert!(due > now + Duration::from_millis(1900) && due <= now + Duration::from_secs(2));
        let later = now_ms + 2500;
        let since = board.busy(0).next().unwrap().since_ms;
        match judge(&w, &board, &s, now, later, &mut None) {
            Verdict::TimedOut(why, calls) => {
                assert!(why.contains("GET /testkit/sleep/5000"), "{why}");
                assert!(why.contains("requestTimeout (2s)"), "{why}");
                assert_eq!(calls, [(1, since)]);
            }
            other => panic!("{other:?}"),
        }
        let off = server("[server]\nrequestTimeout = 0\n");
        assert_eq!(
            judge(&w, &board, &off, now, later, &mut None),
            Verdict::Fine
        );
    }

    #[test]
    fn a_call_is_never_given_up_before_the_limit_on_millisecond_clocks() {
        // Began at 10.999 ms (read as 10), judged at 1010.0 ms (read as
        // 1010): it has run 999 ms, not 1000.
        let board = Scoreboard::new(1, 1).unwrap();
        let s = server("[server]\nrequestTimeout = 1\n");
        let w = worker(State::Ready, 0);
        board.thread(0, 0).unwrap().begin(b"GET", b"/edge", 3);
        let since = board.busy(0).next().unwrap().since_ms;
        let mut next = None;
        assert_eq!(
            judge(&w, &board, &s, Instant::now(), since + 1000, &mut next),
            Verdict::Fine
        );
        assert!(next.is_some(), "woken again when it may be due");
        assert!(matches!(
            judge(&w, &board, &s, Instant::now(), since + 1001, &mut None),
            Verdict::TimedOut(..)
        ));
    }

    #[test]
    fn a_given_up_call_is_judged_once_and_answered_by_one_thread() {
        let board = Scoreboard::new(1, 1).unwrap();
        let s = server("[server]\nrequestTimeout = 1\n");
        let w = worker(State::Ready, 0);
        let call = board.thread(0, 0).unwrap();
        call.begin(b"GET", b"/stuck", 42);
        let since = board.busy(0).next().unwrap().since_ms;
        let later = scoreboard::now_ms() + 1500;
        assert!(matches!(
            judge(&w, &board, &s, Instant::now(), later, &mut None),
            Verdict::TimedOut(..)
        ));
        assert!(call.expire(since));
        assert!(!call.expire(since), "given up once");
        assert_eq!(
            judge(&w, &board, &s, Instant::now(), later, &mut None),
            Verdict::Fine,
            "the worker answers it now"
        );
        let mut fds = Vec::new();
        assert!(call.answer_expired(|fd| fds.push(fd)));
        assert!(!call.answer_expired(|fd| fds.push(fd)), "answered once");
        assert_eq!(fds, [42]);
        assert_eq!(board.answered(0), 1);
        assert_eq!(call.end(), scoreboard::Ended::Answered);
        assert_eq!(board.answered(0), 0);
        // A call that ends before anyone answered it: its own thread sends
        // the 504; one that ends in time is not touched.
        call.begin(b"GET", b"/late", 42);
        let since = board.busy(0).next().unwrap().since_ms;
        assert!(call.expire(since));
        assert_eq!(call.end(), scoreboard::Ended::Expired);
        assert!(!call.answer_expired(|_| panic!("ended already")));
        call.begin(b"GET", b"/quick", 42);
        assert!(!call.expire(since + 1_000_000));
        assert_eq!(call.end(), scoreboard::Ended::InTime);
    }

    #[test]
    fn max_requests_retires_a_ready_worker_once() {
        let board = Scoreboard::new(1, 1).unwrap();
        let s = server("");
        let slot = board.thread(0, 0).unwrap();
        for _ in 0..3 {
            slot.count();
        }
        let (now, ms) = (Instant::now(), scoreboard::now_ms());
        assert_eq!(
            judge(&worker(State::Ready, 4), &board, &s, now, ms, &mut None),
            Verdict::Fine
        );
        assert_eq!(
            judge(&worker(State::Ready, 3), &board, &s, now, ms, &mut None),
            Verdict::Retire(3)
        );
        let mut retiring = worker(State::Ready, 3);
        retiring.retiring = true;
        assert_eq!(
            judge(&retiring, &board, &s, now, ms, &mut None),
            Verdict::Fine
        );
        assert_eq!(
            judge(&worker(State::Ready, 0), &board, &s, now, ms, &mut None),
            Verdict::Fine
        );
    }

    #[test]
    fn a_stopping_worker_past_its_deadline_is_killed() {
        let board = Scoreboard::new(1, 1).unwrap();
        let s = server("");
        let now = Instant::now();
        let w = worker(State::Stopping { deadline: now }, 0);
        assert!(matches!(
            judge(&w, &board, &s, now, 0, &mut None),
            Verdict::Kill(_)
        ));
        let w = worker(
            State::Stopping {
                deadline: now + Duration::from_secs(1),
            },
            0,
        );
        assert_eq!(judge(&w, &board, &s, now, 0, &mut None), Verdict::Fine);
    }

    #[test]
    fn jitter_stays_in_range() {
        let s = server("[server]\nmaxRequests = 100\nmaxRequestsJitter = 10\n");
        for _ in 0..50 {
            let n = draw_max_requests(&s);
            assert!((100..=110).contains(&n), "{n}");
        }
        assert_eq!(draw_max_requests(&server("")), 0);
        assert_eq!(draw_max_requests(&server("[server]\nmaxRequests = 7\n")), 7);
    }
}
