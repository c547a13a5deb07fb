//! The runner: one task per job (N for a job with N workers), each running the job, waiting
//! for its interval or a wake-up, and stopping when the shutdown token is cancelled.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{AtShutdown, Job, Ran};

/// Runs the portal's jobs until shutdown.
pub struct Runner {
    shutdown: CancellationToken,
    jobs: Vec<(&'static str, JoinHandle<()>)>,
    once: Vec<(&'static str, JoinHandle<()>)>,
}

impl Runner {
    /// Jobs stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            shutdown,
            jobs: Vec::new(),
            once: Vec::new(),
        }
    }

    /// Runs `job` until shutdown.
    pub fn add<J: Job>(&mut self, job: J) {
        self.spawn(job, 0);
    }

    /// Runs `count` copies of a job, each made by `make`, side by side (zero: none).
    pub fn workers<J: Job>(&mut self, count: usize, mut make: impl FnMut() -> J) {
        for worker in 0..count {
            self.spawn(make(), worker);
        }
    }

    fn spawn<J: Job>(&mut self, job: J, worker: usize) {
        let task = tokio::spawn(run(job, worker, self.shutdown.clone()));
        self.jobs.push((J::NAME, task));
    }

    /// Runs `task` once, in the background. Shutdown waits for it (up to the grace period,
    /// then it is aborted) after the other jobs have stopped.
    pub fn once(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let span = tracing::info_span!("job", job = name);
        self.once.push((name, tokio::spawn(task.instrument(span))));
    }

    /// The names of the jobs running, one per worker.
    pub fn names(&self) -> Vec<&'static str> {
        self.jobs
            .iter()
            .chain(&self.once)
            .map(|(name, _)| *name)
            .collect()
    }

    /// Stops every job: cancels the shutdown token, waits for the jobs' loops (a run in
    /// flight finishes or is dropped, as its job says), then gives one-off tasks up to
    /// `grace` before aborting them. When this returns, no job writes any more.
    pub async fn stop(self, grace: Duration) {
        self.shutdown.cancel();
        for (name, task) in self.jobs {
            if let Err(e) = task.await
                && e.is_panic()
            {
                tracing::error!(job = name, "the job panicked");
            }
        }
        // (One-off tasks may wait for the org; an org that does not answer must not hold up
        // the stop.)
        for (name, mut task) in self.once {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                tracing::warn!(
                    job = name,
                    grace_seconds = grace.as_secs(),
                    "the job did not finish in time; stopping it"
                );
                task.abort();
                let _ = task.await;
            }
        }
    }
}

/// One worker of a job: run, wait for the interval (or a wake-up), until shutdown.
async fn run<J: Job>(job: J, worker: usize, shutdown: CancellationToken) {
    let wake = job.wake();
    let woken = || {
        let wake = wake.clone();
        async move {
            match wake {
                Some(wake) => wake.notified().await,
                None => std::future::pending().await,
            }
        }
    };
    let mut wait = job.first_run_after();
    loop {
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = woken() => {}
                () = shutdown.cancelled() => return,
            }
        }
        if shutdown.is_cancelled() {
            return;
        }
        let span = tracing::info_span!("job", job = J::NAME, worker);
        let run = job.run_once().instrument(span.clone());
        let ran = match job.at_shutdown() {
            AtShutdown::Finish => run.await,
            AtShutdown::Drop => tokio::select! {
                ran = run => ran,
                () = shutdown.cancelled() => return,
            },
        };
        wait = match ran {
            Ok(Ran::Idle) => job.interval(),
            Ok(Ran::Did(what)) => {
                tracing::debug!(parent: &span, %what, "job ran");
                job.interval()
            }
            Ok(Ran::More(what)) => {
                tracing::debug!(parent: &span, %what, "job ran; more may be waiting");
                Duration::ZERO
            }
            Err(e) => {
                tracing::warn!(parent: &span, error = %e.error, "{}", e.context);
                job.interval()
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;
    use crate::jobs::JobError;

    struct Counting {
        runs: Arc<AtomicUsize>,
        wake: Arc<Notify>,
        more_until: usize,
    }

    impl Job for Counting {
        const NAME: &'static str = "counting";
        fn interval(&self) -> Duration {
            Duration::from_secs(3600)
        }
        fn wake(&self) -> Option<Arc<Notify>> {
            Some(self.wake.clone())
        }
        async fn run_once(&self) -> Result<Ran, JobError> {
            let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(if n < self.more_until {
                Ran::More(format!("run {n}"))
            } else {
                Ran::Idle
            })
        }
    }

    async fn until(runs: &AtomicUsize, n: usize) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while runs.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the job runs");
    }

    #[tokio::test]
    async fn a_job_runs_at_once_again_while_there_is_more_and_when_woken() {
        let runs = Arc::new(AtomicUsize::new(0));
        let wake = Arc::new(Notify::new());
        let mut runner = Runner::new(CancellationToken::new());
        runner.add(Counting {
            runs: runs.clone(),
            wake: wake.clone(),
            more_until: 3,
        });
        until(&runs, 3).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "idle: it waits an hour");
        wake.notify_one();
        until(&runs, 4).await;
        tokio::time::timeout(Duration::from_secs(5), runner.stop(Duration::from_secs(1)))
            .await
            .expect("stops at once");
    }

    #[tokio::test]
    async fn workers_are_copies_and_one_off_tasks_are_stopped_after_the_grace() {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut runner = Runner::new(CancellationToken::new());
        runner.workers(3, || Counting {
            runs: runs.clone(),
            wake: Arc::new(Notify::new()),
            more_until: 0,
        });
        runner.once("forever", std::future::pending());
        assert_eq!(
            runner.names(),
            ["counting", "counting", "counting", "forever"]
        );
        until(&runs, 3).await;
        let started = std::time::Instant::now();
        runner.stop(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
