//! What the status listener reports, and its two renderings: JSON for
//! `/_drupe/status` and the Prometheus text format (version 0.0.4) for
//! `/_drupe/metrics`.
//!
//! A [`Report`] is a plain snapshot, gathered by the master from its worker
//! table and the scoreboard (`status`), so rendering is pure and tested
//! here without processes. Latency percentiles are estimates from the
//! histogram buckets of `board::stats` (linear within a bucket), not exact
//! order statistics; the buckets themselves are exported to Prometheus.

use crate::board::stats::{Totals, BOUNDS_US, CLASSES};
use std::fmt::Write;
use std::time::Duration;

/// Everything the status routes show.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub master_pid: u32,
    pub uptime: Duration,
    /// The generation new workers load.
    pub generation: u64,
    /// Worker processes wanted.
    pub target: usize,
    pub workers: Vec<WorkerRow>,
    /// By plugin name, sorted; counts include workers that have exited.
    pub plugins: Vec<(String, Totals)>,
    /// Requests the host answered without a plugin (no route, 405, 400).
    pub unrouted: Totals,
}

/// One live worker process.
#[derive(Debug, Clone)]
pub struct WorkerRow {
    pub pid: i32,
    pub generation: u64,
    /// `starting`, `ready` or `stopping`.
    pub state: &'static str,
    /// Requests it has answered.
    pub requests: u64,
    pub uptime: Duration,
    /// Crashes at its pool position before it.
    pub restarts: u32,
}

/// The percentiles shown in the JSON report.
const PERCENTILES: [(&str, f64); 3] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)];

impl Report {
    /// `GET /_drupe/status`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(1024);
        let _ = write!(
            out,
            "{{\"version\":{},\"master\":{{\"pid\":{},\"uptime_s\":{:.3},\"generation\":{},\"workers_wanted\":{}}},\"workers\":[",
            json_string(env!("CARGO_PKG_VERSION")),
            self.master_pid,
            self.uptime.as_secs_f64(),
            self.generation,
            self.target
        );
        for (i, w) in self.workers.iter().enumerate() {
            let _ = write!(
                out,
                "{}{{\"pid\":{},\"generation\":{},\"state\":{},\"requests\":{},\"uptime_s\":{:.3},\"restarts\":{}}}",
                if i > 0 { "," } else { "" },
                w.pid,
                w.generation,
                json_string(w.state),
                w.requests,
                w.uptime.as_secs_f64(),
                w.restarts
            );
        }
        out.push_str("],\"plugins\":[");
        for (i, (name, t)) in self.plugins.iter().enumerate() {
            let _ = write!(
                out,
                "{}{{\"name\":{},",
                if i > 0 { "," } else { "" },
                json_string(name)
            );
            counts_json(&mut out, t);
            out.push_str(",\"latency_us\":{\"mean\":");
            let mean = (t.timed() > 0).then(|| t.sum_us as f64 / t.timed() as f64);
            json_number(&mut out, mean);
            for (label, q) in PERCENTILES {
                let _ = write!(out, ",\"{label}\":");
                json_number(&mut out, t.quantile_us(q));
            }
            out.push_str("}}");
        }
        out.push_str("],\"unrouted\":{");
        counts_json(&mut out, &self.unrouted);
        out.push_str("}}\n");
        out
    }

    /// `GET /_drupe/metrics`.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        metric(
            &mut out,
            "drupe_uptime_seconds",
            "gauge",
            "Seconds since the master started.",
        );
        let _ = writeln!(out, "drupe_uptime_seconds {:.3}", self.uptime.as_secs_f64());
        metric(
            &mut out,
            "drupe_generation",
            "gauge",
            "Generation (config and plugin snapshot) new workers load; a reload adds one.",
        );
        let _ = writeln!(out, "drupe_generation {}", self.generation);
        metric(
            &mut out,
            "drupe_workers",
            "gauge",
            "Worker processes by state.",
        );
        for state in ["starting", "ready", "stopping"] {
            let n = self.workers.iter().filter(|w| w.state == state).count();
            let _ = writeln!(out, "drupe_workers{{state=\"{state}\"}} {n}");
        }
        metric(
            &mut out,
            "drupe_worker_requests_total",
            "counter",
            "Requests answered by each live worker process.",
        );
        for w in &self.workers {
            let _ = writeln!(
                out,
                "drupe_worker_requests_total{{pid=\"{}\",generation=\"{}\"}} {}",
                w.pid, w.generation, w.requests
            );
        }
        metric(
            &mut out,
            "drupe_requests_total",
            "counter",
            "Requests a plugin answered, by plugin and status class.",
        );
        for (name, t) in &self.plugins {
            for (class, n) in CLASSES.iter().zip(&t.classes) {
                let _ = writeln!(
                    out,
                    "drupe_requests_total{{plugin=\"{}\",class=\"{class}\"}} {n}",
                    label(name)
                );
            }
        }
        metric(
            &mut out,
            "drupe_unrouted_requests_total",
            "counter",
            "Requests drupe answered without a plugin (no route, wrong method), by status class.",
        );
        for (class, n) in CLASSES.iter().zip(&self.unrouted.classes) {
            let _ = writeln!(
                out,
                "drupe_unrouted_requests_total{{class=\"{class}\"}} {n}"
            );
        }
        metric(
            &mut out,
            "drupe_handler_duration_seconds",
            "histogram",
            "Time spent in the plugin's handler.",
        );
        for (name, t) in &self.plugins {
            let name = label(name);
            let mut cumulative = 0;
            for (i, n) in t.buckets.iter().enumerate() {
                cumulative += n;
                let le = match BOUNDS_US.get(i) {
                    Some(&us) => format!("{}", us as f64 / 1e6),
                    None => "+Inf".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "drupe_handler_duration_seconds_bucket{{plugin=\"{name}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "drupe_handler_duration_seconds_sum{{plugin=\"{name}\"}} {}",
                t.sum_us as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "drupe_handler_duration_seconds_count{{plugin=\"{name}\"}} {cumulative}"
            );
        }
        out
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `"requests":N,"errors":N,"status":{"2xx":N,…}`
fn counts_json(out: &mut String, t: &Totals) {
    let _ = write!(
        out,
        "\"requests\":{},\"errors\":{},\"status\":{{",
        t.requests(),
        t.errors()
    );
    for (i, (class, n)) in CLASSES.iter().zip(&t.classes).enumerate() {
        let _ = write!(out, "{}\"{class}\":{n}", if i > 0 { "," } else { "" });
    }
    out.push('}');
}

fn json_number(out: &mut String, value: Option<f64>) {
    match value {
        Some(v) if v.is_finite() => {
            let _ = write!(out, "{v:.1}");
        }
        _ => out.push_str("null"),
    }
}

/// A JSON string literal (RFC 8259 §7).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::board::stats::BUCKETS;

    fn sample() -> Report {
        let mut hello = Totals {
            classes: [7, 0, 0, 0, 0],
            ..Totals::default()
        };
        hello.buckets[0] = 6;
        hello.buckets[2] = 1;
        hello.sum_us = 70;
        let odd = Totals {
            classes: [0, 0, 1, 2, 0],
            ..Totals::default()
        };
        let mut unrouted = Totals::default();
        unrouted.classes[2] = 3;
        Report {
            master_pid: 10,
            uptime: Duration::from_millis(1500),
            generation: 2,
            target: 1,
            workers: vec![WorkerRow {
                pid: 11,
                generation: 2,
                state: "ready",
                requests: 13,
                uptime: Duration::from_secs(1),
                restarts: 0,
            }],
            plugins: vec![("hello".into(), hello), ("we\"ird\\".into(), odd)],
            unrouted,
        }
    }

    #[test]
    fn json_has_workers_plugins_and_percentiles() {
        let json = sample().to_json();
        assert!(
            json.contains(
                "\"master\":{\"pid\":10,\"uptime_s\":1.500,\"generation\":2,\"workers_wanted\":1}"
            ),
            "{json}"
        );
        assert!(json.contains("\"workers\":[{\"pid\":11,\"generation\":2,\"state\":\"ready\",\"requests\":13,\"uptime_s\":1.000,\"restarts\":0}]"), "{json}");
        assert!(json.contains("{\"name\":\"hello\",\"requests\":7,\"errors\":0,\"status\":{\"2xx\":7,\"3xx\":0,\"4xx\":0,\"5xx\":0,\"other\":0},\"latency_us\":{\"mean\":10.0,\"p50\":5.8,"), "{json}");
        assert!(
            json.contains("{\"name\":\"we\\\"ird\\\\\",\"requests\":3,\"errors\":2,"),
            "{json}"
        );
        assert!(
            json.contains("\"latency_us\":{\"mean\":null,\"p50\":null,\"p90\":null,\"p99\":null}"),
            "{json}"
        );
        assert!(json.ends_with("\"unrouted\":{\"requests\":3,\"errors\":0,\"status\":{\"2xx\":0,\"3xx\":0,\"4xx\":3,\"5xx\":0,\"other\":0}}}\n"), "{json}");
    }

    #[test]
    fn prometheus_text_is_well_formed_and_cumulative() {
        let text = sample().to_prometheus();
        for line in text.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                assert!(
                    comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                    "{line}"
                );
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(series.starts_with("drupe_"), "{line}");
        }
        assert!(text.contains("drupe_workers{state=\"ready\"} 1\n"));
        assert!(text.contains("drupe_worker_requests_total{pid=\"11\",generation=\"2\"} 13\n"));
        assert!(text.contains("drupe_requests_total{plugin=\"hello\",class=\"2xx\"} 7\n"));
        assert!(text.contains("drupe_requests_total{plugin=\"we\\\"ird\\\\\",class=\"5xx\"} 2\n"));
        assert!(text.contains("drupe_unrouted_requests_total{class=\"4xx\"} 3\n"));
        assert!(text.contains(
            "drupe_handler_duration_seconds_bucket{plugin=\"hello\",le=\"0.00001\"} 6\n"
        ));
        assert!(text.contains(
            "drupe_handler_duration_seconds_bucket{plugin=\"hello\",le=\"0.000025\"} 6\n"
        ));
        assert!(text.contains(
            "drupe_handler_duration_seconds_bucket{plugin=\"hello\",le=\"0.00005\"} 7\n"
        ));
        assert!(text
            .contains("drupe_handler_duration_seconds_bucket{plugin=\"hello\",le=\"+Inf\"} 7\n"));
        assert!(text.contains("drupe_handler_duration_seconds_sum{plugin=\"hello\"} 0.00007\n"));
        assert!(text.contains("drupe_handler_duration_seconds_count{plugin=\"hello\"} 7\n"));
        assert_eq!(
            text.matches("drupe_handler_duration_seconds_bucket{plugin=\"hello\"")
                .count(),
            BUCKETS
        );
    }

    #[test]
    fn json_strings_escape_control_characters() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
