//! The committer: one thread that turns write operations into commits on the branch.
//!
//! The first operation opens a batch. The batch is committed as soon as no upload is still
//! arriving, or when the commit window has passed since it opened, whichever comes first: a
//! burst of concurrent writes lands as one commit, a lone write is not delayed. Every caller
//! waits for the commit of its batch, so a response is only sent once its change is durable.
//! When a batch fails as a whole (another writer moved the branch in a way that conflicts),
//! its operations are retried one commit each, so one bad operation never sinks the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use hero_store::{Author, ChangeSet, CommitMeta, EntryKind, Expect, ObjectId, Repo, RepoPath};
use tokio::sync::oneshot;

use crate::meta::{Event, Meta};

/// One change to the branch.
#[derive(Debug)]
pub(crate) enum Op {
    /// A small file, content given.
    Put {
        path: RepoPath,
        kind: EntryKind,
        data: Vec<u8>,
    },
    /// A file whose content is already stored.
    PutEntry {
        path: RepoPath,
        kind: EntryKind,
        id: ObjectId,
        size: u64,
        copied_from: Option<RepoPath>,
    },
    Delete(RepoPath),
    Mkdir(RepoPath),
    Rename(RepoPath, RepoPath),
    /// The changes of one request, committed together (`label` names the request).
    Group {
        label: String,
        ops: Vec<Op>,
    },
}

impl Op {
    fn describe(&self) -> String {
        match self {
            Op::Put { path, .. } => format!("put {path}"),
            Op::PutEntry {
                path,
                copied_from: Some(from),
                ..
            } => format!("copy {from} to {path}"),
            Op::PutEntry { path, .. } => format!("put {path}"),
            Op::Delete(p) => format!("delete {p}"),
            Op::Mkdir(p) => format!("mkdir {p}"),
            Op::Rename(a, b) => format!("move {a} to {b}"),
            Op::Group { label, ops } => format!("{label} ({} changes)", ops.len()),
        }
    }

    /// Records the operation in a change set; adds what the metadata should learn to
    /// `events`. A group that fails part way leaves its first changes in the change set (and
    /// their events in `events`).
    fn apply(&self, cs: &mut ChangeSet<'_>, events: &mut Vec<Event>) -> hero_store::Result<()> {
        let ev = match self {
            Op::Put { path, kind, data } => {
                let stored = cs.put_bytes(path, *kind, data)?;
                Event::Written {
                    path: path.clone(),
                    id: Some(stored.id),
                    copied_from: None,
                }
            }
            Op::PutEntry {
                path,
                kind,
                id,
                size,
                copied_from,
            } => {
                cs.put_entry(path, *kind, *id, *size)?;
                Event::Written {
                    path: path.clone(),
                    id: Some(*id),
                    copied_from: copied_from.clone(),
                }
            }
            Op::Delete(p) => {
                cs.delete(p)?;
                Event::Removed(p.clone())
            }
            Op::Mkdir(p) => {
                cs.mkdir(p)?;
                Event::Written {
                    path: p.clone(),
                    id: None,
                    copied_from: None,
                }
            }
            Op::Rename(a, b) => {
                cs.rename(a, b)?;
                Event::Moved(a.clone(), b.clone())
            }
            Op::Group { ops, .. } => {
                for op in ops {
                    op.apply(cs, events)?;
                }
                return Ok(());
            }
        };
        events.push(ev);
        Ok(())
    }
}

/// What a committed operation produced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    /// The branch head that holds the change.
    pub commit: ObjectId,
    /// The content id of a written file.
    pub id: Option<ObjectId>,
    /// When it was committed.
    pub time: SystemTime,
}

type Reply = oneshot::Sender<hero_store::Result<Done>>;

struct Job {
    op: Op,
    reply: Reply,
}

/// The handle requests use to submit operations.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
    /// Uploads whose bodies are still arriving.
    pub in_flight: Arc<AtomicUsize>,
}

impl Writer {
    /// Starts the committer thread.
    pub(crate) fn start(
        repo: Arc<Repo>,
        branch: String,
        meta: Arc<Meta>,
        window: Duration,
        author: Author,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let state = Committer {
            repo,
            branch,
            meta,
            window,
            author,
            in_flight: in_flight.clone(),
        };
        std::thread::Builder::new()
            .name("hero-dav-commit".into())
            .spawn(move || state.run(rx))?;
        Ok(Writer { tx, in_flight })
    }

    /// Submits an operation and waits until it is committed.
    pub(crate) async fn submit(&self, op: Op) -> hero_store::Result<Done> {
        let (reply, rx) = oneshot::channel();
        let gone = || hero_store::Error::InvalidOperation("/".into(), "the committer has stopped");
        self.tx.send(Job { op, reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

struct Committer {
    repo: Arc<Repo>,
    branch: String,
    meta: Arc<Meta>,
    window: Duration,
    author: Author,
    in_flight: Arc<AtomicUsize>,
}

impl Committer {
    fn run(self, rx: mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let opened = Instant::now();
            let mut jobs = vec![first];
            loop {
                while let Ok(j) = rx.try_recv() {
                    jobs.push(j);
                }
                let elapsed = opened.elapsed();
                if self.in_flight.load(Ordering::SeqCst) == 0 || elapsed >= self.window {
                    break;
                }
                let wait = (self.window - elapsed).min(Duration::from_millis(5));
                match rx.recv_timeout(wait) {
                    Ok(j) => jobs.push(j),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            self.commit_batch(jobs);
        }
        tracing::debug!("committer stopped");
    }

    fn meta(&self, ops: &[&Op]) -> CommitMeta {
        let mut message = match ops {
            [one] => format!("dav: {}", one.describe()),
            _ => format!("dav: {} changes", ops.len()),
        };
        if ops.len() > 1 {
            message.push('\n');
            for op in ops.iter().take(50) {
                message.push('\n');
                message.push_str(&op.describe());
            }
            if ops.len() > 50 {
                message.push_str(&format!("\n... and {} more", ops.len() - 50));
            }
        }
        message.push('\n');
        self.author.commit_meta(message)
    }

    fn commit_batch(&self, jobs: Vec<Job>) {
        let mut cs = match self.repo.change_set(&self.branch) {
            Ok(cs) => cs,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a change set");
                for j in jobs {
                    let _ = j.reply.send(Err(clone_err(&e)));
                }
                return;
            }
        };
        let mut accepted: Vec<(Job, Vec<Event>)> = Vec::new();
        let mut jobs = jobs.into_iter();
        while let Some(j) = jobs.next() {
            let mut events = Vec::new();
            match j.op.apply(&mut cs, &mut events) {
                Ok(()) => accepted.push((j, events)),
                Err(e) => {
                    let _ = j.reply.send(Err(e));
                    if !events.is_empty() {
                        // A group failed half way: start over without it.
                        drop(cs);
                        let rest: Vec<Job> =
                            accepted.into_iter().map(|(j, _)| j).chain(jobs).collect();
                        if !rest.is_empty() {
                            self.commit_batch(rest);
                        }
                        return;
                    }
                }
            }
        }
        if accepted.is_empty() {
            return;
        }
        let ops: Vec<&Op> = accepted.iter().map(|(j, _)| &j.op).collect();
        let meta = self.meta(&ops);
        match cs.commit(meta, Expect::Latest) {
            Ok(c) => {
                let now = SystemTime::now();
                let events: Vec<Event> = accepted
                    .iter()
                    .flat_map(|(_, ev)| ev.iter().cloned())
                    .collect();
                if let Err(e) = self.meta.committed(&events, now) {
                    tracing::warn!(error = %e, "recording file times failed");
                }
                tracing::debug!(commit = %c.id.short(), ops = accepted.len(), "committed");
                for (j, ev) in accepted {
                    let id = match ev.as_slice() {
                        [Event::Written { id, .. }] if !matches!(j.op, Op::Group { .. }) => *id,
                        _ => None,
                    };
                    let _ = j.reply.send(Ok(Done {
                        commit: c.id,
                        id,
                        time: now,
                    }));
                }
            }
            Err(e) if accepted.len() > 1 => {
                tracing::warn!(error = %e, "batch commit failed; committing one by one");
                for (j, _) in accepted {
                    self.commit_batch(vec![j]);
                }
            }
            Err(e) => {
                for (j, _) in accepted {
                    let _ = j.reply.send(Err(clone_err(&e)));
                }
            }
        }
    }
}

/// The store's error is not `Clone`; keep the variants callers map to statuses.
fn clone_err(e: &hero_store::Error) -> hero_store::Error {
    use hero_store::Error as E;
    match e {
        E::NoSuchPath(p) => E::NoSuchPath(p.clone()),
        E::NotADirectory(p) => E::NotADirectory(p.clone()),
        E::IsADirectory(p) => E::IsADirectory(p.clone()),
        E::PathExists(p) => E::PathExists(p.clone()),
        E::NotEmpty(p) => E::NotEmpty(p.clone()),
        E::InvalidOperation(p, why) => E::InvalidOperation(p.clone(), why),
        E::FileTooLarge => E::FileTooLarge,
        other => E::Input(std::io::Error::other(other.to_string())),
    }
}
