//! Change notification: a subscriber of a [`Repo`] is called after write transactions of this
//! process and of every other process that shares the repository file.
//!
//! - This process: [`Repo::write`](crate::Repo) calls the subscribers once its transaction has
//!   committed, on the committing thread.
//! - Other processes: the file is watched with inotify (`IN_MODIFY`). redb's last write of a
//!   commit is the header that publishes it, so a reader woken by the last event of a commit
//!   sees that commit. One thread per handle reads the events (started by the first
//!   subscriber) and calls the subscribers once per batch of events.
//!
//! Calls may be spurious (a write transaction that changed no branch, a page written before the
//! commit is published, this process's own commit heard twice): a subscriber compares what it
//! cares about (the [generation](crate::Repo::generation), a branch head) and goes back to
//! sleep. Callbacks run on the thread that commits or on the watch thread, so they must return
//! quickly — wake a thread, send on a channel — and must not write to the repository.
//!
//! Where inotify is unavailable (the limit of instances reached, a file system that does not
//! report changes) the subscription says so ([`Subscription::watched`]) and its owner looks
//! every [`UNWATCHED_FALLBACK`] instead; where it works, [`WATCHED_FALLBACK`] is a safety net
//! only (the file replaced by another, an event lost to a queue overflow).

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rustix::fs::inotify;

/// How often the owner of a subscription should look anyway while the file is watched.
pub const WATCHED_FALLBACK: Duration = Duration::from_secs(30);
/// How often the owner of a subscription should look when the file cannot be watched.
pub const UNWATCHED_FALLBACK: Duration = Duration::from_secs(1);

type Callback = Arc<dyn Fn() + Send + Sync>;

/// The subscribers of one repository handle and the watch of its file.
#[derive(Default)]
pub(crate) struct Hub {
    subs: Mutex<Vec<(u64, Callback)>>,
    next: AtomicU64,
    /// The inotify watch, set up with the first subscriber (`None`: unavailable).
    watch: OnceLock<Option<Watch>>,
    /// Cleared when the watch ended (the file was removed or replaced).
    watching: Arc<AtomicBool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("watching", &self.watching.load(Ordering::Relaxed))
            .finish()
    }
}

/// An inotify instance watching the repository file, read by a thread of its own.
struct Watch {
    fd: Arc<OwnedFd>,
    wd: i32,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Removing the watch queues IN_IGNORED, which wakes the reading thread; it then finds
        // the hub gone and ends (it holds the descriptor until then).
        let _ = inotify::remove_watch(&*self.fd, self.wd);
    }
}

impl Hub {
    /// Calls every subscriber.
    pub(crate) fn fire(&self) {
        let subs: Vec<Callback> = self
            .subs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(_, f)| f.clone())
            .collect();
        for f in subs {
            f();
        }
    }

    fn start_watch(self: &Arc<Self>, path: &Path) -> Option<Watch> {
        let fd = match inotify::init(inotify::CreateFlags::CLOEXEC) {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                tracing::info!(error = %e, "no inotify: looking for changes of other processes every {UNWATCHED_FALLBACK:?}");
                return None;
            }
        };
        let flags = inotify::WatchFlags::MODIFY
            | inotify::WatchFlags::DELETE_SELF
            | inotify::WatchFlags::MOVE_SELF;
        let wd = match inotify::add_watch(&*fd, path, flags) {
            Ok(wd) => wd,
            Err(e) => {
                tracing::info!(path = %path.display(), error = %e, "cannot watch the repository file: looking for changes of other processes every {UNWATCHED_FALLBACK:?}");
                return None;
            }
        };
        let hub = Arc::downgrade(self);
        let reader = fd.clone();
        let watching = self.watching.clone();
        watching.store(true, Ordering::Relaxed);
        let started = std::thread::Builder::new()
            .name("hero-store-watch".to_owned())
            .spawn(move || read_events(&reader, &hub, &watching));
        match started {
            Ok(_) => Some(Watch { fd, wd }),
            Err(e) => {
                self.watching.store(false, Ordering::Relaxed);
                tracing::info!(error = %e, "no thread for the repository watch");
                let _ = inotify::remove_watch(&*fd, wd);
                None
            }
        }
    }
}

/// The watch thread: one call of the subscribers per batch of events read; ends when the
/// hub is gone or the watch ended.
fn read_events(fd: &OwnedFd, hub: &Weak<Hub>, watching: &AtomicBool) {
    let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
    let mut events = inotify::Reader::new(fd, &mut buf);
    loop {
        let mut ended = false;
        match events.next() {
            Ok(ev) => {
                ended |= ev.events().intersects(
                    inotify::ReadFlags::IGNORED
                        | inotify::ReadFlags::DELETE_SELF
                        | inotify::ReadFlags::MOVE_SELF,
                );
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading repository file events; watch ended");
                ended = true;
            }
        }
        // The rest of what one read returned is the same news.
        while !ended && !events.is_buffer_empty() {
            match events.next() {
                Ok(ev) => {
                    ended |= ev.events().intersects(
                        inotify::ReadFlags::IGNORED
                            | inotify::ReadFlags::DELETE_SELF
                            | inotify::ReadFlags::MOVE_SELF,
                    )
                }
                Err(_) => break,
            }
        }
        let Some(hub) = hub.upgrade() else {
            return;
        };
        if ended {
            watching.store(false, Ordering::Relaxed);
            tracing::info!("the repository file is no longer watched (removed or replaced)");
        }
        hub.fire();
        if ended {
            return;
        }
    }
}

/// A registered callback; dropping it unregisters it.
#[must_use = "the callback is unregistered when the subscription is dropped"]
pub struct Subscription {
    hub: Weak<Hub>,
    id: u64,
    watching: Arc<AtomicBool>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("watched", &self.watched())
            .finish()
    }
}

impl Subscription {
    /// Whether other processes' writes are heard (the file is watched); when not, the owner
    /// must look for them itself every [`UNWATCHED_FALLBACK`].
    pub fn watched(&self) -> bool {
        self.watching.load(Ordering::Relaxed)
    }

    /// How long the owner may wait without a call before it looks for changes anyway.
    pub fn fallback(&self) -> Duration {
        if self.watched() {
            WATCHED_FALLBACK
        } else {
            UNWATCHED_FALLBACK
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.subs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|(id, _)| *id != self.id);
        }
    }
}

/// Registers `f` with `hub` (watching `path` from the first subscriber on).
pub(crate) fn subscribe(
    hub: &Arc<Hub>,
    path: &Path,
    f: impl Fn() + Send + Sync + 'static,
) -> Subscription {
    hub.watch.get_or_init(|| hub.start_watch(path));
    let id = hub.next.fetch_add(1, Ordering::Relaxed);
    hub.subs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((id, Arc::new(f)));
    Subscription {
        hub: Arc::downgrade(hub),
        id,
        watching: hub.watching.clone(),
    }
}
