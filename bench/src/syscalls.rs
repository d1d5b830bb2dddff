//! System calls per request: `perf stat -e raw_syscalls:sys_enter` attached
//! to every thread of a server's processes for one short wrk run of its
//! own, apart from the measured rounds (the tracepoint puts every system
//! call on the kernel's slow path, so it would distort their figures).

use crate::wrk::{self, Load, Run};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::{Command, Stdio};
use std::time::Duration;

const EVENT: &str = "raw_syscalls:sys_enter";

/// `Ok` when perf can count system calls here, else why not (perf missing,
/// `perf_event_paranoid`, no tracefs in a container, …).
pub fn available() -> Result<(), String> {
    let output = Command::new("perf")
        .args(["stat", "-x,", "-e", EVENT, "--", "true"])
        .output()
        .map_err(|e| format!("cannot run perf: {e}"))?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    match parse(&text) {
        Some(_) if output.status.success() => Ok(()),
        _ => Err(format!(
            "perf stat -e {EVENT} does not count here: {}",
            text.lines().next().unwrap_or("").trim()
        )),
    }
}

/// Runs `load` while perf counts the system calls of `pids` (and all their
/// threads); the calls per request and the run.
pub fn per_request(pids: &[i32], load: &Load<'_>) -> Result<(f64, Run), String> {
    let list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let perf = Command::new("perf")
        .args(["stat", "-x,", "-e", EVENT, "-p", &list])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run perf: {e}"))?;
    // perf attaches to each thread before it counts; the idle calls of this
    // pause are a few hundred against hundreds of thousands of requests.
    std::thread::sleep(Duration::from_millis(300));
    let run = wrk::run(load);
    let _ = kill(Pid::from_raw(perf.id() as i32), Signal::SIGINT);
    let output = perf.wait_with_output().map_err(|e| format!("perf: {e}"))?;
    let text = String::from_utf8_lossy(&output.stderr);
    let calls = parse(&text).ok_or_else(|| format!("perf printed no count: {text}"))?;
    Ok((calls as f64 / run.requests.max(1) as f64, run))
}

/// The count from perf's CSV line `12345,,raw_syscalls:sys_enter,…`.
fn parse(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.contains(EVENT))?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_perfs_csv_line() {
        let text = "109,,raw_syscalls:sys_enter,1382925,100.00,,\n";
        assert_eq!(parse(text), Some(109));
        assert_eq!(
            parse("<not counted>,,raw_syscalls:sys_enter,0,0.00,,\n"),
            None
        );
    }
}
