//! HTTPS: drupe's `[tls]` (rustls) against nginx `ssl` (OpenSSL) on the
//! same P-256 certificate, 2 workers each, interleaved: keep-alive (the
//! record layer) and `Connection: close` (one full handshake per request),
//! and the RSS of an idle worker with TLS on.

use crate::servers::{self, Certificate, Drupe, Server};
use crate::wrk::{self, Load};
use crate::{median, probe, Report};
use std::path::Path;
use std::time::Duration;

/// (label, connections, close)
const LOADS: [(&str, usize, bool); 2] = [
    ("keep-alive, 50 connections, GET /hello", 50, false),
    ("Connection: close, 50 connections, GET /hello", 50, true),
];

pub fn run(report: &mut Report, release: &Path, rounds: usize, duration: Duration) {
    let certificate = Certificate::new();
    let drupe = Drupe {
        release,
        plugins: &["hello"],
        processes: 2,
        threads: None,
        store: None,
        access_log: false,
        files: None,
        tls: Some(&certificate),
    }
    .start();
    let nginx = servers::nginx_with(2, false, None, Some(&certificate));
    let servers: [&Server; 2] = [&drupe, &nginx];
    let idle: Vec<u64> = drupe.workers().iter().map(|&p| probe::rss_kib(p)).collect();

    report.line("## HTTPS: drupe (rustls) against nginx ssl (OpenSSL), same certificate");
    report.line("");
    report.line(
        "| load | drupe req/s | nginx req/s | drupe/nginx | drupe p99 ms | nginx p99 ms | errors |",
    );
    report.line("|---|---|---|---|---|---|---|");
    for (label, connections, close) in LOADS {
        let mut rps = [Vec::new(), Vec::new()];
        let mut p99 = [Vec::new(), Vec::new()];
        let mut errors = 0;
        for _ in 0..rounds {
            for (i, server) in servers.iter().enumerate() {
                let run = wrk::run(&Load {
                    url: server.url("/hello"),
                    connections,
                    duration,
                    close,
                    script: None,
                });
                errors += run.errors;
                rps[i].push(run.requests_per_sec);
                p99[i].push(run.p99_ms);
            }
        }
        let [d, n] = rps.map(|mut v| median(&mut v));
        let [dp, np] = p99.map(|mut v| median(&mut v));
        report.line(format!(
            "| {label} | {d:.0} | {n:.0} | **{:.2}** | {dp:.2} | {np:.2} | {errors} |",
            d / n
        ));
    }
    report.line("");
    report.line(format!(
        "RSS per idle drupe worker with TLS on (just started): {} KiB.",
        idle.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    report.line("");
}
