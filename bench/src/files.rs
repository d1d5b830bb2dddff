//! Large files: drupe's `[static]` folder (sent with `sendfile`) against
//! nginx's `sendfile on`, on the same 20 MiB file, interleaved; and the
//! worker memory while 16 clients download it at once.

use crate::servers::{self, Drupe, Server};
use crate::wrk::{self, Load};
use crate::{median, probe, Report};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const FILE_MIB: usize = 20;
const NAME: &str = "big.bin";

/// Writes the 20 MiB file (bytes that do not compress or repeat in a
/// page-sized pattern) into `folder`.
fn make_file(folder: &Path) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..FILE_MIB << 20)
        .map(|_| {
            // xorshift64: cheap, deterministic, and not all zeros.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(folder.join(NAME), bytes).expect("the 20 MiB file");
}

/// The highest summed RSS of `server`'s workers while `clients` download
/// the file for `duration`, in KiB, and the idle figure before.
fn rss_during_downloads(server: &Server, clients: usize, duration: Duration) -> (u64, u64) {
    let workers = server.workers();
    let total = || workers.iter().map(|&p| probe::rss_kib(p)).sum::<u64>();
    let idle = total();
    let done = AtomicBool::new(false);
    let mut peak = idle;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            wrk::run(&Load {
                url: server.url(&format!("/files/{NAME}")),
                connections: clients,
                duration,
                close: false,
                script: None,
            });
            done.store(true, Ordering::Relaxed);
        });
        while !done.load(Ordering::Relaxed) {
            peak = peak.max(total());
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    (idle, peak)
}

pub fn run(report: &mut Report, release: &Path, rounds: usize, duration: Duration) {
    let folder = tempfile::tempdir().expect("temp dir");
    make_file(folder.path());
    let drupe = Drupe {
        release,
        plugins: &["hello"],
        processes: 2,
        threads: None,
        store: None,
        access_log: false,
        files: Some(folder.path()),
        tls: None,
    }
    .start();
    let nginx = servers::nginx_with(2, false, Some(folder.path()), None);
    let servers = [("drupe", &drupe), ("nginx", &nginx)];

    let mut mib_s = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, (_, server)) in servers.iter().enumerate() {
            let run = wrk::run(&Load {
                url: server.url(&format!("/files/{NAME}")),
                connections: 4,
                duration,
                close: false,
                script: None,
            });
            assert_eq!(run.errors, 0, "errors downloading the file");
            mib_s[i].push(run.requests_per_sec * FILE_MIB as f64);
        }
    }
    let [drupe_mib, nginx_mib] = mib_s.map(|mut v| median(&mut v));
    report.line(format!(
        "## Large files: a {FILE_MIB} MiB file from drupe's [static] against nginx sendfile on"
    ));
    report.line("");
    report.line("| load | drupe MiB/s | nginx MiB/s | drupe/nginx |");
    report.line("|---|---|---|---|");
    report.line(format!(
        "| GET, 4 keep-alive connections | {drupe_mib:.0} | {nginx_mib:.0} | **{:.2}** |",
        drupe_mib / nginx_mib
    ));
    report.line("");
    report.line("Worker RSS (both workers summed) while 16 clients download the file:");
    report.line("");
    report.line("| server | idle KiB | peak KiB | peak above idle |");
    report.line("|---|---|---|---|");
    for (name, server) in servers {
        let (idle, peak) = rss_during_downloads(server, 16, Duration::from_secs(3));
        report.line(format!(
            "| {name} | {idle} | {peak} | {} KiB |",
            peak.saturating_sub(idle)
        ));
    }
    report.line("");
}
