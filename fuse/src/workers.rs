//! Requests that may wait, answered off the thread that reads the kernel's requests.
//!
//! The mount reads the kernel's requests on one thread and answers most of them there: a
//! lookup, a `getattr`, a create or an unlink takes the state lock for microseconds, and
//! what such a request costs is the round trip through the kernel, not the work. One
//! reader is the fastest way through that round trip: the kernel hands each request to the
//! reader that has waited longest, so with several readers every request woke a thread
//! that had been idle, on a busy machine the one the scheduler let wait longest (with one
//! reader instead of four, cold `stat`s ran 2-3 times as fast with the machine loaded).
//!
//! A request that may wait is handed to a worker and answered from there, so that the reader
//! never waits on it. Two sets of [`WORKERS`] threads each: one for `read` (the store's
//! decoding, the disk), one for what waits on commits — an `fsync` (a commit, or the group
//! commit's window) and a change to the content of a file that a commit is reading (it waits
//! until the commit has read the file, see `Shared::lock_writable`). Reads are not held up
//! behind commits, and several `fsync`s from different processes wait together, which is what
//! lets them share one commit.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

/// The threads of each set of workers.
pub(crate) const WORKERS: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads running jobs in the order they were handed over. The threads end
/// when the pool is dropped (with the session's file system) and their queue is empty.
pub(crate) struct Workers {
    tx: Sender<Job>,
}

impl Workers {
    /// Starts `n` threads named `name`-N. A thread that cannot be started is logged and left
    /// out; with none, jobs run on the caller's thread.
    pub fn new(name: &str, n: usize) -> Workers {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            let started = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&rx));
            if let Err(e) = started {
                tracing::warn!(error = %e, "starting a request worker");
            }
        }
        Workers { tx }
    }

    /// Runs `job` on a worker (on this thread if no worker runs).
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        if let Err(e) = self.tx.send(Box::new(job)) {
            (e.0)();
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held while waiting: one idle worker waits for the next job, the others
        // for the lock.
        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            // A job that panics loses its reply (the kernel gets EIO), not the worker.
            Ok(job) => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    tracing::error!("a request panicked on a worker");
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_the_workers_and_the_threads_end_with_the_pool() {
        let workers = Workers::new("test", 2);
        let (tx, rx) = channel();
        let caller = std::thread::current().id();
        for i in 0..10 {
            let tx = tx.clone();
            workers.run(move || {
                let _ = tx.send((i, std::thread::current().id()));
            });
        }
        drop(tx);
        let mut seen: Vec<_> = rx.iter().collect();
        seen.sort_by_key(|(i, _)| *i);
        assert_eq!(
            seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert!(seen.iter().all(|(_, t)| *t != caller));
        drop(workers);
    }

    #[test]
    fn without_workers_a_job_runs_on_the_caller() {
        let workers = Workers::new("test", 0);
        let (tx, rx) = channel();
        workers.run(move || {
            let _ = tx.send(std::thread::current().id());
        });
        assert_eq!(rx.recv().ok(), Some(std::thread::current().id()));
    }
}
