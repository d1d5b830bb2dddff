//! What the benchmark reads about processes from `/proc`, and the machine.

use std::collections::BTreeMap;

/// Pids whose parent is `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if parent == Some(pid.to_string().as_str()) {
            pids.push(child);
        }
    }
    pids.sort_unstable();
    pids
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Number of sockets `pid` holds open (connections plus a few of its own).
pub fn sockets(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Voluntary plus involuntary context switches of every thread of `pid`.
pub fn context_switches(pid: i32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches:")
                || line.starts_with("nonvoluntary_ctxt_switches:")
            {
                total += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// CPU time `pid` has spent, user plus system, all threads, in clock ticks
/// (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces: state is the
    // 3rd field of the line, so utime (14th) and stime (15th) are the 12th
    // and 13th after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum()
}

/// Microseconds in one clock tick of [`cpu_ticks`] (`getconf CLK_TCK`;
/// USER_HZ is 100 on every Linux architecture that matters here).
pub fn micros_per_tick() -> f64 {
    let hz: f64 = run(&["getconf", "CLK_TCK"]).parse().unwrap_or(100.0);
    1e6 / hz
}

/// Number of lines in `path` (0 when it cannot be read).
pub fn count_lines(path: &std::path::Path) -> u64 {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return 0;
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0;
    while let Ok(n @ 1..) = file.read(&mut buf) {
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    lines
}

/// A description of this machine for RESULTS.md.
pub fn machine() -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    m.insert("cpu", model);
    m.insert(
        "cores",
        std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_default(),
    );
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    m.insert(
        "memory",
        meminfo
            .lines()
            .next()
            .unwrap_or_default()
            .replace("MemTotal:", "")
            .trim()
            .to_owned(),
    );
    m.insert("kernel", run(&["uname", "-r"]));
    m.insert("nginx", run(&["nginx", "-v"]));
    m.insert(
        "wrk",
        run(&["wrk", "--version"])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    );
    for peer in ["axum", "actix-web"] {
        m.insert(peer, locked_version(peer));
    }
    m.insert(
        "drupe commit",
        run(&["git", "rev-parse", "--short", "HEAD"]),
    );
    m
}

/// The version of `package` that `bench/peers/Cargo.lock` pins.
fn locked_version(package: &str) -> String {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/Cargo.lock");
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let name = format!("name = \"{package}\"");
    text.split("[[package]]")
        .find(|block| block.lines().any(|l| l.trim() == name))
        .and_then(|block| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix("version = "))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn run(argv: &[&str]) -> String {
    std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text.trim().to_owned()
        })
        .unwrap_or_default()
}
