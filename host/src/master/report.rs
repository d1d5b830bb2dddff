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
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
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

/// One live worker process; serialised as it appears in the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRow {
    pub pid: i32,
    pub generation: u64,
    /// `starting`, `ready` or `stopping`.
    pub state: &'static str,
    /// Requests it has answered.
    pub requests: u64,
    #[serde(rename = "uptime_s", serialize_with = "seconds")]
    pub uptime: Duration,
    /// Crashes at its pool position before it.
    pub restarts: u32,
}

/// The percentiles shown in the JSON report.
const PERCENTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// The JSON of `/_drupe/status`, field by field in the order shown.
#[derive(Serialize)]
struct StatusJson<'a> {
    version: &'static str,
    master: MasterJson,
    workers: &'a [WorkerRow],
    plugins: Vec<PluginJson<'a>>,
    unrouted: Counts<'a>,
}

#[derive(Serialize)]
struct MasterJson {
    pid: u32,
    #[serde(serialize_with = "seconds")]
    uptime_s: Duration,
    generation: u64,
    workers_wanted: usize,
}

#[derive(Serialize)]
struct PluginJson<'a> {
    name: &'a str,
    #[serde(flatten)]
    counts: Counts<'a>,
    latency_us: LatencyJson,
}

/// Handler time in microseconds: the mean and [`PERCENTILES`], one
/// decimal, `null` without data.
#[derive(Serialize)]
struct LatencyJson {
    mean: Option<Box<RawValue>>,
    p50: Option<Box<RawValue>>,
    p90: Option<Box<RawValue>>,
    p99: Option<Box<RawValue>>,
}

/// `"requests":N,"errors":N,"status":{"2xx":N,…}`
struct Counts<'a>(&'a Totals);

impl Serialize for Counts<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Classes<'a>(&'a Totals);
        impl Serialize for Classes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(CLASSES.iter().zip(&self.0.classes))
            }
        }
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("requests", &self.0.requests())?;
        map.serialize_entry("errors", &self.0.errors())?;
        map.serialize_entry("status", &Classes(self.0))?;
        map.end()
    }
}

/// A number written with a fixed count of decimals (`1.500`), as the
/// report always showed them; `None` for NaN or infinity.
fn decimal(value: f64, places: usize) -> Option<Box<RawValue>> {
    let text = format!("{value:.places$}");
    value
        .is_finite()
        .then(|| RawValue::from_string(text).ok())
        .flatten()
}

/// A duration in seconds with millisecond decimals.
fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    decimal(duration.as_secs_f64(), 3).serialize(serializer)
}

impl Report {
    /// `GET /_drupe/status`.
    pub fn to_json(&self) -> String {
        let micros = |value: Option<f64>| value.and_then(|v| decimal(v, 1));
        let plugins = self
            .plugins
            .iter()
            .map(|(name, t)| {
                let [p50, p90, p99] = PERCENTILES.map(|q| micros(t.quantile_us(q)));
                let mean = (t.timed() > 0).then(|| t.sum_us as f64 / t.timed() as f64);
                PluginJson {
                    name,
                    counts: Counts(t),
                    latency_us: LatencyJson {
                        mean: micros(mean),
                        p50,
                        p90,
                        p99,
                    },
                }
            })
            .collect();
        let status = StatusJson {
            version: env!("CARGO_PKG_VERSION"),
            master: MasterJson {
                pid: self.master_pid,
                uptime_s: self.uptime,
                generation: self.generation,
                workers_wanted: self.target,
            },
            workers: &self.workers,
            plugins,
            unrouted: Counts(&self.unrouted),
        };
        // Serialising plain structs and numbers cannot fail.
        let mut out = serde_json::to_string(&status).unwrap_or_default();
        out.push('\n');
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
        let json_string = |s: &str| serde_json::to_string(s).unwrap();
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
