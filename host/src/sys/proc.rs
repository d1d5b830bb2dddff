//! What `/proc` says about this process's own threads.
//!
//! The worker's monitor thread asks whether the leader is computing or
//! asleep in a system call (a store round trip, a sleep) to decide whether
//! to hand leadership to a standby (`worker::pool`).

/// Whether thread `tid` of this process is on a CPU or ready to run (state
/// `R` in `/proc`), as opposed to asleep in a system call. `false` if the
/// thread is gone.
pub fn thread_running(tid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name
    // (which may itself contain spaces and parentheses, hence the last `)`).
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        == Some("R")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn this_thread_runs_and_a_sleeping_one_does_not() {
        // Reading its own stat, a thread is on a CPU.
        assert!(thread_running(nix::unistd::gettid().as_raw()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            std::thread::sleep(Duration::from_millis(500));
        });
        let tid = rx.recv().unwrap();
        // Between the send and the sleep the thread may still run briefly.
        let until = Instant::now() + Duration::from_millis(400);
        while thread_running(tid) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!thread_running(tid));
        sleeper.join().unwrap();
        assert!(!thread_running(tid), "a thread that has exited");
    }
}
