//! While requests keep coming, the request thread polls for the next one instead of sleeping.
//!
//! A metadata request is a round trip: the caller sleeps in the kernel while the mount's
//! request thread reads the request, answers it and wakes the caller. The scheduler puts the
//! two on different CPUs whenever one is idle, so each round trip wakes a CPU twice: the
//! request thread's, then the caller's. On a virtual machine an idle virtual CPU is halted and
//! woken by the host, which is the largest part of the round trip: on the 2-CPU virtual
//! machine this project is measured on, a cold `stat` through the mount, or through a
//! passthrough FUSE file system, took 50-75 µs this way, and 8 µs with the caller and the
//! file system on one CPU (docs/adr/0039).
//!
//! A request thread that polls is never asleep when the next request comes, which saves one
//! of the two wake-ups. It polls only while requests keep coming: the first request after a
//! quiet spell makes the FUSE device non-blocking (fuser's loop then retries its `read` at
//! once instead of sleeping in it), and a governor thread makes it blocking again once no
//! request came for [`MountOptions::spin`](crate::MountOptions::spin). An idle mount uses no
//! CPU; a mount answering a burst of requests uses one CPU for the burst and one window
//! after it. The descriptor's flag is shared by fuser's thread (reads) and the notifier
//! (writes, which do not block either way).
//!
//! Only on an otherwise idle machine: when other threads are ready to run on every CPU but
//! the caller's, no CPU halts, the scheduler puts the caller and the request thread on one
//! CPU where each wakes the other cheaply, and a polling thread would only take a CPU from
//! them (measured: 2-5 times slower under load). The governor reads the number of runnable
//! threads (`/proc/loadavg`) every window while polling; with more than the CPUs can run
//! beside the caller, the request thread sleeps again and does not poll for
//! [`BUSY_BACKOFF`].

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// How long the request thread does not poll once the machine was found busy.
pub(crate) const BUSY_BACKOFF: Duration = Duration::from_millis(100);

/// The polling state of one session's FUSE device.
#[derive(Debug)]
pub(crate) struct Spin {
    /// A duplicate of the session's descriptor: the same open file, so the same flags.
    fd: OwnedFd,
    window: Duration,
    started: Instant,
    /// When the last request came, in nanoseconds since `started`.
    last: AtomicU64,
    /// Whether the device is non-blocking (the request thread polls).
    hot: AtomicBool,
    /// No polling before this (nanoseconds since `started`): the machine was busy.
    busy_until: AtomicU64,
    /// The CPUs this process may run on.
    cpus: usize,
    /// The governor waits here while the device blocks; true once the session ended.
    cold: Mutex<bool>,
    wake: Condvar,
}

impl Spin {
    /// Polls `fd` while requests come less than `window` apart; starts the governor thread.
    /// `None` with fewer than two CPUs to run on (the caller would share the polling
    /// thread's) or when the thread cannot be started: the device then always blocks.
    pub fn start(fd: OwnedFd, window: Duration) -> Option<Arc<Spin>> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus < 2 {
            return None;
        }
        Self::start_on(fd, window, cpus)
    }

    /// [`Spin::start`] for a machine of `cpus` CPUs.
    fn start_on(fd: OwnedFd, window: Duration, cpus: usize) -> Option<Arc<Spin>> {
        let spin = Arc::new(Spin {
            fd,
            window,
            started: Instant::now(),
            last: AtomicU64::new(0),
            hot: AtomicBool::new(false),
            busy_until: AtomicU64::new(0),
            cpus,
            cold: Mutex::new(false),
            wake: Condvar::new(),
        });
        let governor = spin.clone();
        match std::thread::Builder::new()
            .name("hero-fuse-spin".to_owned())
            .spawn(move || governor.govern())
        {
            Ok(_) => Some(spin),
            Err(e) => {
                tracing::warn!(error = %e, "starting the request poller's governor");
                None
            }
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Called on the request thread for every request.
    pub fn request(&self) {
        let now = self.now();
        self.last.store(now, Ordering::Relaxed);
        if !self.hot.load(Ordering::Relaxed) && now >= self.busy_until.load(Ordering::Relaxed) {
            self.hot.store(true, Ordering::Relaxed);
            self.set_polling(true);
            let _ended = self.cold.lock().unwrap_or_else(PoisonError::into_inner);
            self.wake.notify_one();
        }
    }

    /// Whether the request thread polls now.
    #[cfg(test)]
    pub fn polling(&self) -> bool {
        self.hot.load(Ordering::Relaxed)
    }

    /// The session ended: the governor ends.
    pub fn end(&self) {
        let mut ended = self.cold.lock().unwrap_or_else(PoisonError::into_inner);
        *ended = true;
        self.wake.notify_one();
    }

    fn set_polling(&self, on: bool) {
        let flags = match fcntl(&self.fd, FcntlArg::F_GETFL) {
            Ok(f) => OFlag::from_bits_truncate(f),
            Err(e) => {
                tracing::debug!(error = %e, "reading the FUSE device's flags");
                return;
            }
        };
        let flags = if on {
            flags | OFlag::O_NONBLOCK
        } else {
            flags & !OFlag::O_NONBLOCK
        };
        if let Err(e) = fcntl(&self.fd, FcntlArg::F_SETFL(flags)) {
            tracing::debug!(error = %e, on, "setting the FUSE device's polling");
        }
    }

    /// The governor: while polling, looks every window whether a request came within it;
    /// if not, makes the device block again, then waits for the next request.
    fn govern(&self) {
        loop {
            {
                let mut ended = self.cold.lock().unwrap_or_else(PoisonError::into_inner);
                while !*ended && !self.hot.load(Ordering::Relaxed) {
                    ended = self
                        .wake
                        .wait(ended)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if *ended {
                    return;
                }
            }
            loop {
                std::thread::sleep(self.window);
                let now = self.now();
                let idle = now.saturating_sub(self.last.load(Ordering::Relaxed));
                if u128::from(idle) >= self.window.as_nanos() {
                    break;
                }
                if std::fs::read("/proc/loadavg")
                    .ok()
                    .and_then(|l| runnable(&l))
                    .is_some_and(|r| busy(r, self.cpus))
                {
                    let backoff = u64::try_from(BUSY_BACKOFF.as_nanos()).unwrap_or(u64::MAX);
                    self.busy_until
                        .store(now.saturating_add(backoff), Ordering::Relaxed);
                    break;
                }
            }
            // Blocking first: a request noted between the two sees `hot` still set and
            // does not poll; the next one after the store polls again.
            self.set_polling(false);
            self.hot.store(false, Ordering::Relaxed);
        }
    }
}

/// The threads ready to run now: the fourth field of `/proc/loadavg` is `RUNNABLE/TOTAL`.
fn runnable(loadavg: &[u8]) -> Option<usize> {
    let line = std::str::from_utf8(loadavg).ok()?;
    let field = line.split_ascii_whitespace().nth(3)?;
    field.split_once('/')?.0.parse().ok()
}

/// Whether `runnable` threads (counting the governor reading it and the polling request
/// thread) leave less than a CPU of `cpus` beside the request thread for the caller. With
/// one CPU the caller would always share it with the polling thread.
fn busy(runnable: usize, cpus: usize) -> bool {
    // Beside the governor and the request thread, the caller may be running.
    cpus < 2 || runnable.saturating_sub(2) > cpus - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocking(fd: &OwnedFd) -> bool {
        let f = fcntl(fd, FcntlArg::F_GETFL).expect("flags");
        !OFlag::from_bits_truncate(f).contains(OFlag::O_NONBLOCK)
    }

    /// Waits for `f` with a deadline.
    fn within(f: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }

    #[test]
    fn polling_only_while_a_cpu_is_left_for_the_caller() {
        assert_eq!(runnable(b"0.52 0.58 0.59 3/1234 5678\n"), Some(3));
        assert_eq!(runnable(b"0.52 0.58"), None);
        // Two CPUs: the governor, the request thread and the caller run; a fourth does not.
        assert!(!busy(3, 2));
        assert!(busy(4, 2));
        assert!(!busy(5, 4) && busy(6, 4));
        // One CPU: never.
        assert!(busy(0, 1) && busy(3, 1));
    }

    #[test]
    fn a_request_makes_the_device_poll_until_a_window_passes_without_one() {
        let (r, _w) = std::io::pipe().expect("pipe");
        let fd: OwnedFd = r.into();
        let probe = fd.try_clone().expect("dup");
        // As many CPUs as no test machine is loaded enough to count as busy.
        let spin = Spin::start_on(fd, Duration::from_millis(250), 1 << 20).expect("governor");
        assert!(blocking(&probe) && !spin.polling());
        spin.request();
        assert!(!blocking(&probe) && spin.polling());
        // Requests closer than the window keep it polling.
        let until = Instant::now() + Duration::from_millis(600);
        while Instant::now() < until {
            spin.request();
            assert!(
                !blocking(&probe),
                "stopped polling while requests kept coming"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(within(|| !spin.polling()), "still polling without requests");
        assert!(blocking(&probe));
        // And again after the quiet spell.
        spin.request();
        assert!(!blocking(&probe));
        assert!(within(|| !spin.polling()));
        spin.end();
    }
}
