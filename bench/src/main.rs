//! drupe's benchmark: drupe side by side with nginx, axum and actix-web on
//! this machine, in one run, measured interleaved (drupe, nginx, axum,
//! actix-web, drupe, …) and reported as medians and ratios, never as
//! absolute numbers to compare across runs.
//!
//! Run it with `cargo xtask bench` (which installs wrk, nginx, redis-server
//! and perf when missing and builds everything, the peers in `bench/peers`
//! too, in release mode). It prints a report and writes it to
//! `bench/RESULTS.md`. Every load targets 127.0.0.1 only, runs for a bounded
//! time, and stops by itself.

mod files;
mod https;
mod probe;
mod servers;
mod side_by_side;
mod syscalls;
mod wrk;

use servers::{Drupe, Peer};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wrk::{Load, Run};

struct Args {
    /// Rounds of drupe's own sections (store, echo, scaling).
    rounds: usize,
    /// Rounds of the side-by-side section: four servers, and most loads
    /// twice (access log off and on), so fewer rounds keep the whole run
    /// near 15 minutes on 2 cores.
    side_rounds: usize,
    seconds: f64,
    out: PathBuf,
    /// `--only files|https`: that section alone (a shorter run).
    only: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        rounds: 5,
        side_rounds: 3,
        seconds: 5.0,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md"),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rounds" => {
                args.rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N");
                args.side_rounds = args.rounds;
            }
            "--seconds" => {
                args.seconds = it.next().and_then(|v| v.parse().ok()).expect("--seconds S")
            }
            "--out" => args.out = it.next().map(PathBuf::from).expect("--out FILE"),
            "--only" => args.only = Some(it.next().expect("--only files|https")),
            "--quick" => {
                args.rounds = 1;
                args.side_rounds = 1;
                args.seconds = 1.0;
            }
            other => {
                panic!(
                    "unknown argument {other}; use --rounds N --seconds S --out FILE --quick \
                     --only files|https"
                )
            }
        }
    }
    args
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Medians of several runs of one load.
#[derive(Debug, Default, Clone)]
struct Summary {
    rps: f64,
    p50: f64,
    p99: f64,
    errors: u64,
}

fn summarise(runs: &[Run]) -> Summary {
    let pick = |f: fn(&Run) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
    Summary {
        rps: pick(|r| r.requests_per_sec),
        p50: pick(|r| r.p50_ms),
        p99: pick(|r| r.p99_ms),
        errors: runs.iter().map(|r| r.errors).sum(),
    }
}

pub(crate) struct Report {
    text: String,
}

impl Report {
    pub(crate) fn line(&mut self, line: impl AsRef<str>) {
        println!("{}", line.as_ref());
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }
}

const POST_SCRIPT: &str = "wrk.method = \"POST\"\n";
const ECHO_SCRIPT: &str = "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", 1048576)\n";
const PID_SCRIPT: &str = r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body) counts[body] = (counts[body] or 0) + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for pid, n in pairs(t:get("counts")) do io.write("PID ", pid, " ", n, "\n") end
  end
end
"#;

fn main() {
    let args = parse_args();
    let release = servers::release_dir();
    let scripts = tempfile::tempdir().expect("temp dir");
    let script = |name: &str, body: &str| {
        let path = scripts.path().join(name);
        std::fs::write(&path, body).expect("lua script");
        path
    };
    let post = script("post.lua", POST_SCRIPT);
    let echo = script("echo.lua", ECHO_SCRIPT);
    let pids = script("pid.lua", PID_SCRIPT);
    let duration = Duration::from_secs_f64(args.seconds);
    let mut report = Report {
        text: String::new(),
    };
    let started = Instant::now();

    report.line("# drupe benchmark results");
    report.line("");
    report.line(format!(
        "`cargo xtask bench` — {} rounds of {:.0} s per load ({} side by side), medians; wrk -t1 on loopback; \
         2 workers for every server; access logs off unless a row says otherwise; drupe with its default threadPool.",
        args.rounds, args.seconds, args.side_rounds
    ));
    report.line("");
    report.line("## Machine");
    report.line("");
    for (key, value) in probe::machine() {
        report.line(format!("- {key}: {value}"));
    }
    report.line("");

    if let Some(section) = &args.only {
        let rounds = args.rounds.min(3);
        match section.as_str() {
            "files" => files::run(&mut report, &release, rounds, duration),
            "https" => https::run(&mut report, &release, rounds, duration),
            other => panic!("--only {other}: the sections that run alone are files and https"),
        }
        std::fs::write(&args.out, &report.text).expect("write the report");
        eprintln!("wrote {}", args.out.display());
        return;
    }

    let all_plugins: &[&str] = &["hello", "counter", "session", "testkit", "benchjson"];
    let site = |processes, threads, store: Option<String>, access_log| Drupe {
        release: &release,
        plugins: all_plugins,
        processes,
        threads,
        store,
        access_log,
        files: None,
        tls: None,
    };

    // 1. drupe side by side with nginx, axum and actix-web.
    let peers = servers::peers_release_dir();
    side_by_side::run(
        &mut report,
        side_by_side::Timing {
            rounds: args.side_rounds,
            duration,
            syscall_duration: duration.min(Duration::from_secs(2)),
        },
        &|i, access_log| match side_by_side::NAMES[i] {
            "drupe" => site(2, None, None, access_log).start(),
            "nginx" => servers::nginx(2, access_log),
            "axum" => Peer::Axum.start(&peers, access_log),
            "actix-web" => Peer::Actix.start(&peers, access_log),
            name => panic!("no server named {name}"),
        },
    );
    let drupe = site(2, None, None, false).start();

    // 2. Even load between the two workers.
    report.line("## How requests and connections split between 2 workers (/testkit/pid)");
    report.line("");
    report
        .line("| load | requests per worker | share of the busiest | sockets per worker mid-run |");
    report.line("|---|---|---|---|");
    for (label, close) in [
        ("keep-alive, 50 connections", false),
        ("Connection: close, 50 connections", true),
    ] {
        let load = Load {
            url: drupe.url("/testkit/pid"),
            connections: 50,
            duration,
            close,
            script: Some(&pids),
        };
        let workers = drupe.workers();
        let sampler = std::thread::spawn(move || {
            std::thread::sleep(duration / 2);
            workers
                .iter()
                .map(|&p| probe::sockets(p))
                .collect::<Vec<_>>()
        });
        let run = wrk::run(&load);
        let sockets = sampler.join().unwrap_or_default();
        let counts: Vec<u64> = run
            .extra
            .iter()
            .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
            .collect();
        let total: u64 = counts.iter().sum();
        let busiest = counts.iter().max().copied().unwrap_or(0);
        report.line(format!(
            "| {label} | {} | {:.0}% | {} |",
            counts
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" / "),
            100.0 * busiest as f64 / total.max(1) as f64,
            sockets
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" / ")
        ));
    }
    report.line("");

    // 3. A blocking handler must not hold up other requests.
    report.line(
        "## A handler that blocks: GET /hello while 4 requests sleep 2 s in /testkit/sleep/2000",
    );
    report.line("");
    report.line("| threadPool | /hello req/s alone | /hello req/s with sleepers | p99 ms | max latency ms | sleeper answers |");
    report.line("|---|---|---|---|---|---|");
    drop(drupe);
    for threads in [None, Some(1)] {
        let server = site(2, threads, None, false).start();
        let alone = wrk::run(&Load {
            url: server.url("/hello"),
            connections: 50,
            duration,
            close: false,
            script: None,
        });
        let addr = server.addr;
        let stop = Instant::now() + duration;
        let sleepers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut answered = 0;
                    while Instant::now() < stop {
                        if http_get(addr, "/testkit/sleep/2000").is_some_and(|s| s == 200) {
                            answered += 1;
                        }
                    }
                    answered
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let with = wrk::run(&Load {
            url: server.url("/hello"),
            connections: 50,
            duration,
            close: false,
            script: None,
        });
        let answered: u32 = sleepers.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        report.line(format!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.1} | {answered} |",
            threads.map_or("default (8)".to_owned(), |t| t.to_string()),
            alone.requests_per_sec,
            with.requests_per_sec,
            with.p99_ms,
            with.max_ms
        ));
    }
    report.line("");

    // 4. The shared store.
    let redis = servers::redis();
    let sqlite_site = site(2, None, None, false).start();
    let redis_site = site(2, None, Some(format!("redis://{}/0", redis.addr)), false).start();
    report.line("## The shared store: POST /counter/x against GET /hello on the same server");
    report.line("");
    report.line("| store | GET /hello req/s | POST /counter/x req/s | counter/hello | counter p99 ms | errors |");
    report.line("|---|---|---|---|---|---|");
    for (label, server) in [("sqlite", &sqlite_site), ("redis", &redis_site)] {
        let (mut hello, mut counter) = (Vec::new(), Vec::new());
        for _ in 0..args.rounds {
            hello.push(wrk::run(&Load {
                url: server.url("/hello"),
                connections: 50,
                duration,
                close: false,
                script: None,
            }));
            counter.push(wrk::run(&Load {
                url: server.url("/counter/x"),
                connections: 50,
                duration,
                close: false,
                script: Some(&post),
            }));
        }
        let (h, c) = (summarise(&hello), summarise(&counter));
        report.line(format!(
            "| {label} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
            h.rps,
            c.rps,
            c.rps / h.rps,
            c.p99,
            c.errors
        ));
    }
    report.line("");
    drop((sqlite_site, redis_site, redis));

    // 5. Large bodies: files sent with sendfile, HTTPS, then uploads.
    files::run(&mut report, &release, args.rounds.min(3), duration);
    https::run(&mut report, &release, args.rounds.min(3), duration);
    let server = site(2, None, None, false).start();
    let mut runs = Vec::new();
    for _ in 0..args.rounds {
        runs.push(wrk::run(&Load {
            url: server.url("/testkit/echo"),
            connections: 16,
            duration,
            close: false,
            script: Some(&echo),
        }));
    }
    let s = summarise(&runs);
    report.line("## 1 MiB POST echoed by /testkit/echo (16 connections)");
    report.line("");
    report.line(format!(
        "{:.0} req/s ({:.0} MiB/s each way), p50 {:.2} ms, p99 {:.2} ms, errors {}.",
        s.rps, s.rps, s.p50, s.p99, s.errors
    ));
    report.line("");

    // 6. Memory.
    let idle: Vec<u64> = server
        .workers()
        .iter()
        .map(|&p| probe::rss_kib(p))
        .collect();
    drop(server);
    let fresh = site(2, None, None, false).start();
    let fresh_idle: Vec<u64> = fresh.workers().iter().map(|&p| probe::rss_kib(p)).collect();
    let warm = wrk::run(&Load {
        url: fresh.url("/hello"),
        connections: 50,
        duration: Duration::from_secs(2),
        close: false,
        script: None,
    });
    let before: Vec<u64> = fresh.workers().iter().map(|&p| probe::rss_kib(p)).collect();
    let mut served = 0u64;
    let long_started = Instant::now();
    while served < 1_000_000 && long_started.elapsed() < Duration::from_secs(120) {
        served += wrk::run(&Load {
            url: fresh.url("/hello"),
            connections: 50,
            duration: Duration::from_secs(5),
            close: false,
            script: None,
        })
        .requests;
    }
    let after: Vec<u64> = fresh.workers().iter().map(|&p| probe::rss_kib(p)).collect();
    report.line("## Memory");
    report.line("");
    report.line(format!(
        "- RSS per idle worker with the example plugins, just started: {} KiB",
        join(&fresh_idle)
    ));
    report.line(format!(
        "- after {} warm-up requests: {} KiB; after {served} more: {} KiB",
        warm.requests,
        join(&before),
        join(&after)
    ));
    report.line(format!(
        "- 1.5 s after the 1 MiB echo load above ended: {} KiB",
        join(&idle)
    ));
    report.line("");
    drop(fresh);

    // 7. Scaling with processes on CPU-bound work.
    report.line("## Scaling with processes: GET /testkit/spin/5 (CPU-bound), 8 connections");
    report.line("");
    let mut spin = Vec::new();
    for processes in [1, 2] {
        let server = site(processes, None, None, false).start();
        let mut runs = Vec::new();
        for _ in 0..args.rounds.min(3) {
            runs.push(wrk::run(&Load {
                url: server.url("/testkit/spin/5"),
                connections: 8,
                duration,
                close: false,
                script: None,
            }));
        }
        spin.push(summarise(&runs).rps);
    }
    report.line(format!(
        "1 process: {:.0} req/s; 2 processes: {:.0} req/s; **{:.2}×** (the ideal on 2 cores is 2×, one core of each also runs wrk).",
        spin[0], spin[1], spin[1] / spin[0]
    ));
    report.line("");

    // 8. Start-up.
    let mut startup = Vec::new();
    for _ in 0..5 {
        let drupe = site(2, None, None, false);
        let t0 = Instant::now();
        let (mut child, addr, _dir) = drupe.launch();
        while http_get(addr, "/hello") != Some(200) {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "drupe did not answer within 20 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        startup.push(t0.elapsed().as_secs_f64() * 1000.0);
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
    }
    report.line("## Start-up");
    report.line("");
    report.line(format!(
        "From launching the master to the first 200 on /hello, example plugins loaded: median {:.1} ms (of 5: {}).",
        median(&mut startup.clone()),
        startup.iter().map(|t| format!("{t:.1}")).collect::<Vec<_>>().join(", ")
    ));
    report.line("");

    report.line(format!(
        "_Total benchmark time: {:.0} s._",
        started.elapsed().as_secs_f64()
    ));
    std::fs::write(&args.out, &report.text).expect("write RESULTS.md");
    eprintln!("wrote {}", args.out.display());
}

fn join(values: &[u64]) -> String {
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// One GET on a fresh connection; the status, if any answer came.
pub(crate) fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1)?.parse().ok()
}
