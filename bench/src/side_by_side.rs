//! drupe side by side with nginx, axum and actix-web in one run. For each
//! load the four servers take turns (drupe, nginx, axum, actix-web, drupe,
//! …), first with every access log off, then with each server writing its
//! access log to a file. Besides requests per second, what a request costs
//! the server: CPU time and context switches of all its processes (read
//! from `/proc` before and after each run) and system calls (a separate
//! short run under perf, see [`crate::syscalls`]).

use crate::servers::Server;
use crate::wrk::{self, Load, Run};
use crate::{median, probe, syscalls, Report};
use std::time::Duration;

/// The contenders, in the order they take turns and appear in the tables.
pub const NAMES: [&str; 4] = ["drupe", "nginx", "axum", "actix-web"];
const DRUPE: usize = 0;
const ALL: &[usize] = &[0, 1, 2, 3];

/// One load, and which contenders serve it.
struct Case {
    label: &'static str,
    path: &'static str,
    connections: usize,
    close: bool,
    /// Measured with access logs on as well as off.
    with_log: bool,
    /// Indexes into [`NAMES`].
    servers: &'static [usize],
    /// Also counted under perf.
    syscalls: bool,
}

const CASES: [Case; 5] = [
    Case {
        label: "keep-alive, 50 connections, GET /hello",
        path: "/hello",
        connections: 50,
        close: false,
        with_log: true,
        servers: ALL,
        syscalls: true,
    },
    Case {
        label: "keep-alive, 50 connections, GET /hello/{name}",
        path: "/hello/bench",
        connections: 50,
        close: false,
        with_log: true,
        servers: ALL,
        syscalls: true,
    },
    Case {
        label: "Connection: close, 50 connections, GET /hello",
        path: "/hello",
        connections: 50,
        close: true,
        with_log: true,
        servers: ALL,
        syscalls: true,
    },
    Case {
        label: "keep-alive, 256 connections, GET /hello",
        path: "/hello",
        connections: 256,
        close: false,
        with_log: false,
        servers: ALL,
        syscalls: false,
    },
    // drupe answers through the `benchjson` plugin (SDK `Json`); nginx
    // cannot serialise a struct, so it has no row here.
    Case {
        label: "keep-alive, 50 connections, GET /json/{name}",
        path: "/json/bench",
        connections: 50,
        close: false,
        with_log: true,
        servers: &[0, 2, 3],
        syscalls: false,
    },
];

/// One run of one contender.
#[derive(Debug, Default, Clone)]
struct Sample {
    run: Run,
    cpu_us: f64,
    switches: f64,
    /// Lines in its access log per request wrk counted (a check that it
    /// logs every request).
    log_lines: f64,
}

/// The runs of one case with one access-log setting.
struct Row {
    case: usize,
    log: bool,
    samples: [Vec<Sample>; 4],
    syscalls: [Option<f64>; 4],
}

impl Row {
    fn median(&self, i: usize, f: fn(&Sample) -> f64) -> Option<f64> {
        let values: Vec<f64> = self.samples[i].iter().map(f).collect();
        (!values.is_empty()).then(|| median(&mut values.clone()))
    }
}

/// How long each run lasts.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub rounds: usize,
    pub duration: Duration,
    /// The separate run under perf, per contender and row.
    pub syscall_duration: Duration,
}

/// Measures every case and writes the section. `start(i, access_log)`
/// starts contender `NAMES[i]`.
pub fn run(report: &mut Report, timing: Timing, start: &dyn Fn(usize, bool) -> Server) {
    let tick_us = probe::micros_per_tick();
    let perf = syscalls::available();
    let mut rows = Vec::new();
    let mut rss = Vec::new();
    for log in [false, true] {
        let servers: Vec<Server> = (0..NAMES.len()).map(|i| start(i, log)).collect();
        let pids: Vec<Vec<i32>> = servers.iter().map(Server::processes).collect();
        let load = |i: usize, case: &Case, duration| Load {
            url: servers[i].url(case.path),
            connections: case.connections,
            duration,
            close: case.close,
            script: None,
        };
        for (c, case) in CASES.iter().enumerate() {
            if log && !case.with_log {
                continue;
            }
            let mut row = Row {
                case: c,
                log,
                samples: Default::default(),
                syscalls: [None; 4],
            };
            for _ in 0..timing.rounds {
                for &i in case.servers {
                    let load = load(i, case, timing.duration);
                    row.samples[i].push(sample(&servers[i], &pids[i], &load, tick_us));
                }
            }
            if perf.is_ok() && case.syscalls {
                for &i in case.servers {
                    truncate_log(&servers[i]);
                    let load = load(i, case, timing.syscall_duration);
                    match syscalls::per_request(&pids[i], &load) {
                        Ok((calls, _)) => row.syscalls[i] = Some(calls),
                        Err(e) => eprintln!("bench: {}: {e}", NAMES[i]),
                    }
                }
            }
            rows.push(row);
        }
        if !log {
            rss = servers
                .iter()
                .map(|s| {
                    let workers = s.workers();
                    let pids = if workers.is_empty() {
                        s.processes()
                    } else {
                        workers
                    };
                    pids.iter()
                        .map(|&p| format!("{} KiB", probe::rss_kib(p)))
                        .collect::<Vec<_>>()
                        .join(" / ")
                })
                .collect();
        }
    }
    rows.sort_by_key(|r| (r.case, r.log));
    write(report, timing, &rows, &rss, perf.err());
}

/// One wrk run with the server's CPU time and context switches around it.
fn sample(server: &Server, pids: &[i32], load: &Load<'_>, tick_us: f64) -> Sample {
    truncate_log(server);
    let cpu = || pids.iter().map(|&p| probe::cpu_ticks(p)).sum::<u64>();
    let switches = || {
        pids.iter()
            .map(|&p| probe::context_switches(p))
            .sum::<u64>()
    };
    let (cpu_before, switches_before) = (cpu(), switches());
    let run = wrk::run(load);
    let (cpu_after, switches_after) = (cpu(), switches());
    let requests = run.requests.max(1) as f64;
    let lines = server.access_log.as_deref().map_or(0, probe::count_lines);
    Sample {
        cpu_us: cpu_after.saturating_sub(cpu_before) as f64 * tick_us / requests,
        switches: switches_after.saturating_sub(switches_before) as f64 / requests,
        log_lines: lines as f64 / requests,
        run,
    }
}

/// Empties the server's access log between runs, so that a whole run never
/// fills the disk (~100 bytes a request). Every server here opens it
/// `O_APPEND`, so its next line lands at the new end.
fn truncate_log(server: &Server) {
    if let Some(path) = &server.access_log {
        let _ = std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(0));
    }
}

fn write(
    report: &mut Report,
    timing: Timing,
    rows: &[Row],
    rss: &[String],
    perf_error: Option<String>,
) {
    let on_off = |log: bool| if log { "on" } else { "off" };
    let cell =
        |v: Option<f64>, decimals: usize| v.map_or("—".to_owned(), |v| format!("{v:.decimals$}"));
    let each = |row: &Row, f: &dyn Fn(usize) -> String| {
        (0..NAMES.len())
            .map(|i| {
                if row.samples[i].is_empty() {
                    "—".to_owned()
                } else {
                    f(i)
                }
            })
            .collect::<Vec<_>>()
    };

    report.line("## drupe side by side with nginx, axum and actix-web");
    report.line("");
    report.line(format!(
        "{} interleaved rounds of {:.0} s per load and access-log setting: drupe, nginx, axum and \
         actix-web in turn, each with 2 workers (processes for drupe and nginx, runtime threads \
         for axum and actix-web). Access log off, then on to a file: drupe `[log] accessLog = FILE`, \
         nginx a plain `access_log FILE;`, axum a middleware writing each line, actix-web \
         `middleware::Logger` through env_logger (see `bench/peers`). The best peer is the fastest \
         of nginx, axum and actix-web.",
        timing.rounds,
        timing.duration.as_secs_f64()
    ));
    report.line("");
    report.line("| load | access log | drupe req/s | nginx req/s | axum req/s | actix-web req/s | drupe / best peer | errors |");
    report.line("|---|---|---|---|---|---|---|---|");
    for row in rows {
        let case = &CASES[row.case];
        let rps: Vec<Option<f64>> = (0..NAMES.len())
            .map(|i| row.median(i, |s| s.run.requests_per_sec))
            .collect();
        let best = (1..NAMES.len())
            .filter_map(|i| Some((i, rps[i]?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let ratio = match (rps[DRUPE], best) {
            (Some(d), Some((i, b))) => format!("**{:.2}** ({})", d / b, NAMES[i]),
            _ => "—".to_owned(),
        };
        let errors = each(row, &|i| {
            row.samples[i]
                .iter()
                .map(|s| s.run.errors)
                .sum::<u64>()
                .to_string()
        });
        report.line(format!(
            "| {} | {} | {} | {} | {} | {} | {ratio} | {} |",
            case.label,
            on_off(row.log),
            cell(rps[0], 0),
            cell(rps[1], 0),
            cell(rps[2], 0),
            cell(rps[3], 0),
            errors.join(" / ")
        ));
    }
    report.line("");
    report.line(
        "The JSON row: drupe through the `benchjson` plugin (SDK `Json`), the peers through \
         serde_json, the same struct; nginx cannot serialise, so it has none.",
    );
    report.line("");

    report.line("### Latency, p50 / p99 ms");
    report.line("");
    report.line("| load | access log | drupe | nginx | axum | actix-web |");
    report.line("|---|---|---|---|---|---|");
    for row in rows {
        let latency = each(row, &|i| {
            format!(
                "{} / {}",
                cell(row.median(i, |s| s.run.p50_ms), 2),
                cell(row.median(i, |s| s.run.p99_ms), 2)
            )
        });
        report.line(format!(
            "| {} | {} | {} |",
            CASES[row.case].label,
            on_off(row.log),
            latency.join(" | ")
        ));
    }
    report.line("");

    report.line("### What a request costs the server");
    report.line("");
    report.line("Medians per request, summed over all the server's processes and threads; each cell reads drupe / nginx / axum / actix-web. CPU time is user + system from `/proc/PID/stat`; context switches voluntary + involuntary from `/proc/PID/task/*/status`.");
    report.line("");
    report.line("| load | access log | CPU µs | context switches | system calls |");
    report.line("|---|---|---|---|---|");
    for row in rows {
        let cpu = each(row, &|i| cell(row.median(i, |s| s.cpu_us), 1));
        let switches = each(row, &|i| cell(row.median(i, |s| s.switches), 2));
        let calls = each(row, &|i| cell(row.syscalls[i], 2));
        report.line(format!(
            "| {} | {} | {} | {} | {} |",
            CASES[row.case].label,
            on_off(row.log),
            cpu.join(" / "),
            switches.join(" / "),
            calls.join(" / ")
        ));
    }
    report.line("");
    match perf_error {
        None => report.line(format!(
            "System calls: a separate {:.0} s run per cell, after that load's measured rounds, under \
             `perf stat -e raw_syscalls:sys_enter -p PIDS` (every thread of every process of \
             the server); counting them slows every system call, so those runs are not part of \
             the figures above.",
            timing.syscall_duration.as_secs_f64()
        )),
        Some(e) => report.line(format!("System calls: not measured on this machine ({e}).")),
    }
    report.line("");
    report.line(format!(
        "RSS after the loads with access logs off: {}.",
        NAMES
            .iter()
            .zip(rss)
            .map(|(name, rss)| format!("{name} {rss}"))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    report.line("(per worker process for drupe and nginx; the one process for axum and actix-web)");
    report.line("");

    report.line("## Access log");
    report.line("");
    let hello: Vec<&Row> = rows.iter().filter(|r| r.case == 0).collect();
    let cost = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let rps = |log| {
                hello
                    .iter()
                    .find(|r| r.log == log)
                    .and_then(|r| r.median(i, |s| s.run.requests_per_sec))
            };
            let ratio = rps(true).zip(rps(false)).map(|(on, off)| on / off);
            if i == DRUPE {
                format!("{name} **{}**", cell(ratio, 2))
            } else {
                format!("{name} {}", cell(ratio, 2))
            }
        })
        .collect::<Vec<_>>();
    report.line(format!(
        "GET /hello, 50 keep-alive connections, req/s with the access log on (a file) over off: {}.",
        cost.join(", ")
    ));
    report.line("");
    let lines = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let ratios: Vec<f64> = rows
                .iter()
                .filter(|r| r.log)
                .flat_map(|r| r.samples[i].iter().map(|s| s.log_lines))
                .collect();
            let low = ratios.iter().copied().reduce(f64::min);
            format!("{name} {}", cell(low, 2))
        })
        .collect::<Vec<_>>();
    report.line(format!(
        "Access log lines per request served, lowest of the runs with the log on (1.00: every request logged): {}.",
        lines.join(", ")
    ));
    report.line("");
}
