//! A pool of child processes for sweeps of long runs.
//!
//! On these 2-core machines two one-threaded runs side by side train faster than one run
//! on both cores: candle's parallel element-wise kernels wait at a barrier after every op,
//! and spin there when the cores are shared. So each child gets `RAYON_NUM_THREADS=1`
//! when more than one runs at once. Each child also gets `MIMALLOC_PURGE_DELAY=-1`:
//! mimalloc then keeps freed pages for the next step's tensors instead of returning them
//! to the kernel, which would zero them again on the next touch (a combiner image step:
//! 34,605 page faults in 6 steps, 910 with it, measured with `perf stat -e page-faults`).
//!
//! The caller decides what to run next (its plan may grow as results come in); the pool
//! only starts, watches and stops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{Context, bail};

/// Children keyed by `K`, at most `workers` at once.
pub struct JobPool<K> {
    workers: usize,
    running: Vec<(K, Child, PathBuf)>,
}

impl<K: Clone + PartialEq + std::fmt::Debug> JobPool<K> {
    pub fn new(workers: usize) -> Self {
        Self {
            workers: workers.max(1),
            running: Vec::new(),
        }
    }

    pub fn is_full(&self) -> bool {
        self.running.len() >= self.workers
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    pub fn is_running(&self, key: &K) -> bool {
        self.running.iter().any(|(k, _, _)| k == key)
    }

    /// The keys of the running children.
    pub fn running(&self) -> impl Iterator<Item = &K> {
        self.running.iter().map(|(k, _, _)| k)
    }

    /// Starts `command` for `key`, its output going to `log` (its folder is made).
    pub fn start(&mut self, key: K, mut command: Command, log: &Path) -> anyhow::Result<()> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::File::create(log)
            .with_context(|| format!("creating the log {}", log.display()))?;
        if self.workers > 1 {
            command.env("RAYON_NUM_THREADS", "1");
        }
        command
            .env("MIMALLOC_PURGE_DELAY", "-1")
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = command
            .spawn()
            .with_context(|| format!("starting {key:?}"))?;
        self.running.push((key, child, log.to_path_buf()));
        Ok(())
    }

    /// Waits up to `wait` for children to end; returns the keys of those that ended
    /// well. A child that failed stops every other one, and the error names its log.
    pub fn poll(&mut self, wait: std::time::Duration) -> anyhow::Result<Vec<K>> {
        std::thread::sleep(wait);
        let mut ended = Vec::new();
        let mut failed = None;
        self.running
            .retain_mut(|(key, child, log)| match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) if status.success() => {
                    ended.push(key.clone());
                    false
                }
                Ok(Some(status)) => {
                    failed = Some(format!(
                        "{key:?} ended with {status}; see {}",
                        log.display()
                    ));
                    false
                }
                Err(e) => {
                    failed = Some(format!("{key:?}: {e}"));
                    false
                }
            });
        if let Some(why) = failed {
            self.stop();
            bail!("{why}");
        }
        Ok(ended)
    }

    /// Kills every running child.
    pub fn stop(&mut self) {
        for (_, child, _) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.running.clear();
    }
}

impl<K> Drop for JobPool<K> {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn shell(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    fn logs() -> PathBuf {
        std::env::temp_dir().join(format!("job-pool-test-{}", std::process::id()))
    }

    #[test]
    fn runs_at_most_workers_at_once_and_reports_each_end() {
        let dir = logs().join("ok");
        let mut pool = JobPool::new(2);
        pool.start(
            1,
            shell("echo one; echo $RAYON_NUM_THREADS $MIMALLOC_PURGE_DELAY"),
            &dir.join("1.log"),
        )
        .unwrap();
        pool.start(2, shell("sleep 0.2"), &dir.join("2.log"))
            .unwrap();
        assert!(pool.is_full() && pool.is_running(&1) && !pool.is_running(&3));
        let mut ended = Vec::new();
        while !pool.is_empty() {
            ended.extend(pool.poll(Duration::from_millis(50)).unwrap());
        }
        ended.sort();
        assert_eq!(ended, [1, 2]);
        let log = std::fs::read_to_string(dir.join("1.log")).unwrap();
        assert_eq!(log, "one\n1 -1\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_child_stops_the_others_and_names_its_log() {
        let dir = logs().join("fail");
        let mut pool = JobPool::new(2);
        pool.start("slow", shell("sleep 30"), &dir.join("slow.log"))
            .unwrap();
        pool.start(
            "bad",
            shell("echo broken >&2; exit 3"),
            &dir.join("bad.log"),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = loop {
            match pool.poll(Duration::from_millis(50)) {
                Ok(_) => assert!(started.elapsed() < Duration::from_secs(10)),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("bad") && err.contains("bad.log"), "{err}");
        assert!(pool.is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the slow child was not stopped"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("bad.log")).unwrap(),
            "broken\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
