//! Load from the test: client threads that send one request over and over,
//! as ordinary HTTP clients would, and count what came back.
//!
//! A keep-alive client that finds its *reused* connection closed before
//! any response retries the request once on a new connection (RFC 9112
//! §9.3.1; every browser and HTTP library does this, since a server may
//! close an idle connection at any moment); such retries are counted apart.
//! Anything else — a refused connect, a fresh connection cut, a failed
//! retry — is a failure, recorded with where it happened.

use crate::support::Client;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One connection for many requests.
    KeepAlive,
    /// A new connection per request.
    Close,
}

/// A request that failed, with what is known about where it went.
#[derive(Debug)]
pub struct Failure {
    pub what: String,
    /// When its connection was opened.
    pub opened: Instant,
    /// The last body received on that connection (for `/testkit/pid`,
    /// the worker it was talking to).
    pub last_body: Option<String>,
}

#[derive(Debug, Default)]
pub struct Tally {
    /// "STATUS BODY" of every answered request, counted.
    pub answers: BTreeMap<String, usize>,
    /// Requests retried after the server closed a reused connection.
    pub retried: usize,
    pub failures: Vec<Failure>,
}

impl Tally {
    pub fn answered(&self) -> usize {
        self.answers.values().sum()
    }

    fn merge(&mut self, other: Tally) {
        for (k, n) in other.answers {
            *self.answers.entry(k).or_default() += n;
        }
        self.retried += other.retried;
        self.failures.extend(other.failures);
    }
}

/// Client threads sending `GET path` until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Tally>>,
}

impl Load {
    pub fn start(addr: SocketAddr, path: &str, modes: &[Mode]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = modes
            .iter()
            .map(|&mode| {
                let stop = Arc::clone(&stop);
                let path = path.to_owned();
                std::thread::spawn(move || client(addr, &path, mode, &stop))
            })
            .collect();
        Load { stop, threads }
    }

    pub fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        for thread in self.threads {
            tally.merge(thread.join().expect("load client"));
        }
        tally
    }
}

struct Conn {
    client: Client,
    opened: Instant,
    last_body: Option<String>,
}

fn client(addr: SocketAddr, path: &str, mode: Mode, stop: &AtomicBool) -> Tally {
    let header = match mode {
        Mode::KeepAlive => "keep-alive",
        Mode::Close => "close",
    };
    let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: {header}\r\n\r\n");
    let mut tally = Tally::default();
    let mut conn: Option<Conn> = None;
    // Bounded in time by `stop` and in count, whatever happens.
    for _ in 0..200_000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let reused = conn.is_some();
        let mut c = match conn.take() {
            Some(c) => c,
            None => match Client::try_connect(addr) {
                Ok(client) => Conn {
                    client,
                    opened: Instant::now(),
                    last_body: None,
                },
                Err(e) => {
                    tally.failures.push(Failure {
                        what: format!("connect: {e}"),
                        opened: Instant::now(),
                        last_body: None,
                    });
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let answer = c
            .client
            .try_send(raw.as_bytes())
            .ok()
            .and_then(|()| c.client.try_read_response(false));
        match answer {
            Some(resp) => {
                let body = resp.text();
                *tally
                    .answers
                    .entry(format!("{} {body}", resp.status))
                    .or_default() += 1;
                let closing = resp
                    .header("Connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                c.last_body = Some(body);
                if mode == Mode::KeepAlive && !closing {
                    conn = Some(c);
                }
            }
            None if reused => tally.retried += 1, // the loop sends it again on a new connection
            None => tally.failures.push(Failure {
                what: "connection closed before a response".into(),
                opened: c.opened,
                last_body: c.last_body,
            }),
        }
    }
    tally
}
