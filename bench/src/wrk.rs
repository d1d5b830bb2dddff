//! Running wrk (one thread, as the issue prescribes: wrk itself takes one
//! of the two cores) and reading its report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One wrk run's figures.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub requests_per_sec: f64,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Socket errors plus non-2xx/3xx responses.
    pub errors: u64,
    /// Everything a Lua `done` printed (lines starting with `PID `).
    pub extra: Vec<String>,
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    pub url: String,
    pub connections: usize,
    pub duration: Duration,
    pub close: bool,
    /// A Lua script (method, body, response hook).
    pub script: Option<&'a Path>,
}

pub fn run(load: &Load<'_>) -> Run {
    let mut command = Command::new("wrk");
    command
        .args(["-t1", "--latency", "--timeout", "10s"])
        .arg(format!("-c{}", load.connections))
        // wrk takes whole seconds (s, m, h), not milliseconds.
        .arg(format!("-d{}s", load.duration.as_secs().max(1)));
    if load.close {
        command.args(["-H", "Connection: close"]);
    }
    if let Some(script) = load.script {
        command.arg("-s").arg(script);
    }
    command.arg(&load.url);
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run wrk: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&text)
}

/// Milliseconds from wrk's `12.34us` / `1.20ms` / `2.00s` / `1.00m`.
fn millis(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap_or(f64::NAN);
    number
        * match unit {
            "us" => 0.001,
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            _ => f64::NAN,
        }
}

pub fn parse(text: &str) -> Run {
    let mut run = Run::default();
    let mut in_distribution = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", value] => run.requests_per_sec = value.parse().unwrap_or(0.0),
            ["Latency", _avg, _stdev, max, ..] if !in_distribution => run.max_ms = millis(max),
            ["Latency", "Distribution", ..] => in_distribution = true,
            ["50%", value] if in_distribution => run.p50_ms = millis(value),
            ["99%", value] if in_distribution => run.p99_ms = millis(value),
            [count, "requests", "in", ..] => run.requests = count.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                run.errors += count.parse::<u64>().unwrap_or(0)
            }
            ["PID", ..] => run.extra.push(line.to_owned()),
            _ => {}
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_wrk_report() {
        let report = "Running 2s test @ http://127.0.0.1:1/hello\n  1 threads and 50 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   412.01us  120.30us   5.12ms   90.00%\n    Req/Sec   110.00k     2.00k  120.00k    80.00%\n  Latency Distribution\n     50%  400.00us\n     75%  450.00us\n     90%  500.00us\n     99%    1.20ms\n  220000 requests in 2.00s, 30.00MB read\n  Socket errors: connect 0, read 3, write 0, timeout 2\n  Non-2xx or 3xx responses: 7\nRequests/sec: 110000.50\nTransfer/sec:     15.00MB\nPID 42 100\n";
        let run = parse(report);
        assert_eq!(run.requests_per_sec, 110000.5);
        assert_eq!(run.requests, 220000);
        assert_eq!(run.p50_ms, 0.4);
        assert_eq!(run.p99_ms, 1.2);
        assert_eq!(run.max_ms, 5.12);
        assert_eq!(run.errors, 12);
        assert_eq!(run.extra, vec!["PID 42 100".to_owned()]);
    }
}
