//! Reading stored files: one `FileReader` per open handle for random access, and for
//! sequential reads of large files a read-ahead that decodes the next blocks on worker
//! threads while the kernel is still copying the current one.
//!
//! Decoded blocks of every file of a mount share one budget ([`MAX_BLOCKS`]): a file that
//! finds it spent reads directly (as a random reader does), so the mount's memory does not
//! grow with the number of files read at once.
//!
//! The kernel asks for at most 128 KiB to 1 MiB at a time and waits for each answer; decoding
//! a chunk (redb read, decompression, BLAKE3 check) on the request thread leaves the disk and
//! the second core idle in between. With read-ahead the request thread only copies bytes that
//! are already decoded. A sequentially read file holds at most `AHEAD + 1` blocks plus
//! `SPARE` reusable buffers, every file together at most [`MAX_BLOCKS`] blocks, and a file
//! read at random offsets never starts a read-ahead (it needs [`START_RUN`] bytes read in order
//! first).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuser::Errno;
use hero_store::{FileReader, ObjectId, Repo};

use crate::state::{R, store_errno};

/// Bytes decoded per read-ahead job.
pub(crate) const BLOCK: u64 = 4 << 20;
/// Blocks decoded ahead of the one being read.
pub(crate) const AHEAD: u64 = 5;
/// Decoded-block buffers kept for reuse per file.
const SPARE: usize = 2;
/// Longest wait for a block being decoded before reading it directly.
const WAIT_MAX: Duration = Duration::from_secs(20);
/// Bytes read in order from one handle before the read-ahead starts.
pub(crate) const START_RUN: u64 = 2 << 20;
/// Decoded blocks held at once by all the read-aheads of a mount (Pending or Ready): 40 MiB.
pub(crate) const MAX_BLOCKS: usize = 10;
/// Worker threads shared by every file of a mount (more than the cores: they mostly wait
/// for the disk, and several reads in flight keep it busy).
pub(crate) const WORKERS: usize = 4;

/// Bytes to hand to the kernel: owned, or a slice of a decoded block.
pub(crate) enum Data {
    Owned(Vec<u8>),
    Block(Arc<Vec<u8>>, usize, usize),
}

impl Data {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Data::Owned(v) => v,
            Data::Block(b, s, e) => b.get(*s..*e).unwrap_or(&[]),
        }
    }
}

struct Job {
    stream: Weak<Stream>,
    block: u64,
}

/// The worker threads of one mount.
pub(crate) struct Pool {
    tx: Mutex<Option<Sender<Job>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    budget: Arc<Budget>,
}

/// Block slots left for the mount's read-aheads.
struct Budget {
    free: AtomicUsize,
}

impl Budget {
    /// Takes one slot if any is left.
    fn take(&self) -> bool {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| f.checked_sub(1))
            .is_ok()
    }

    fn give(&self, n: usize) {
        self.free.fetch_add(n, Ordering::AcqRel);
    }
}

impl Pool {
    pub fn new() -> Pool {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::new();
        for i in 0..WORKERS {
            let rx = rx.clone();
            match std::thread::Builder::new()
                .name(format!("hero-fuse-ra{i}"))
                .spawn(move || worker(&rx))
            {
                Ok(h) => workers.push(h),
                Err(e) => tracing::warn!(error = %e, "read-ahead thread not started"),
            }
        }
        let tx = if workers.is_empty() { None } else { Some(tx) };
        Pool {
            tx: Mutex::new(tx),
            workers: Mutex::new(workers),
            budget: Arc::new(Budget {
                free: AtomicUsize::new(MAX_BLOCKS),
            }),
        }
    }

    fn send(&self, job: Job) -> bool {
        match lock(&self.tx).as_ref() {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        }
    }

    /// Stops the workers (pending jobs are dropped) and waits for them.
    pub fn close(&self) {
        drop(lock(&self.tx).take());
        let workers = std::mem::take(&mut *lock(&self.workers));
        for w in workers {
            let _ = w.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let rx = lock(rx);
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        if let Some(stream) = job.stream.upgrade() {
            stream.fill(job.block);
        }
    }
}

enum Slot {
    Pending,
    Ready(Arc<Vec<u8>>),
    Failed(Errno),
}

/// The read-ahead state of one open file.
struct Stream {
    len: u64,
    /// Readers for the workers (each job takes one and gives it back).
    readers: Mutex<Vec<FileReader>>,
    blocks: Mutex<BTreeMap<u64, Slot>>,
    ready: Condvar,
    /// Buffers of dropped blocks, reused (fresh 4 MiB buffers cost page faults and zeroing).
    spare: Mutex<Vec<Vec<u8>>>,
    /// The mount's budget, given back as blocks are dropped (and all at once with the stream).
    budget: Arc<Budget>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        let held = match self.blocks.get_mut() {
            Ok(b) => b.len(),
            Err(p) => p.into_inner().len(),
        };
        self.budget.give(held);
    }
}

impl Stream {
    fn fill(&self, block: u64) {
        if !matches!(lock(&self.blocks).get(&block), Some(Slot::Pending)) {
            return; // dropped meanwhile (the reader moved on)
        }
        let reader = lock(&self.readers).pop();
        let res = reader.map(|mut r| {
            let res = self.read_block(&mut r, block);
            lock(&self.readers).push(r);
            res
        });
        let mut blocks = lock(&self.blocks);
        match res {
            // No reader free (not expected): the request reads the block itself.
            None => {
                if blocks.remove(&block).is_some() {
                    self.budget.give(1);
                }
            }
            Some(res) => {
                if let Some(slot) = blocks.get_mut(&block) {
                    *slot = match res {
                        Ok(v) => Slot::Ready(Arc::new(v)),
                        Err(e) => Slot::Failed(e),
                    };
                }
            }
        }
        drop(blocks);
        self.ready.notify_all();
    }

    fn read_block(&self, r: &mut FileReader, block: u64) -> R<Vec<u8>> {
        let start = block * BLOCK;
        let end = (start + BLOCK).min(self.len);
        let len = usize::try_from(end.saturating_sub(start)).map_err(|_| Errno::EIO)?;
        let mut buf = lock(&self.spare).pop().unwrap_or_default();
        buf.resize(len, 0);
        let n = read_full(r, start, &mut buf)?;
        if n != len {
            return Err(Errno::EIO);
        }
        Ok(buf)
    }

    /// Waits for `block` to be decoded; `None` when it is not scheduled (or takes so long
    /// that something must have gone wrong: the request then reads it itself).
    fn wait(&self, block: u64) -> Option<R<Arc<Vec<u8>>>> {
        let give_up = Instant::now() + WAIT_MAX;
        let mut blocks = lock(&self.blocks);
        loop {
            match blocks.get(&block)? {
                Slot::Ready(b) => return Some(Ok(b.clone())),
                Slot::Failed(e) => return Some(Err(*e)),
                Slot::Pending => {}
            }
            let left = give_up.checked_duration_since(Instant::now())?;
            blocks = match self.ready.wait_timeout(blocks, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// Reads until `buf` is full or the file ends; returns bytes read.
fn read_full(r: &mut FileReader, pos: u64, buf: &mut [u8]) -> R<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read_at(pos + done as u64, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => return Err(store_errno(&e)),
        }
    }
    Ok(done)
}

/// An open stored file.
pub(crate) struct StoredSource {
    id: ObjectId,
    reader: FileReader,
    /// Where the next sequential read starts.
    next: u64,
    /// Bytes read sequentially so far (before the read-ahead starts).
    run: u64,
    /// The first block kept by the read-ahead.
    floor: u64,
    stream: Option<Arc<Stream>>,
}

impl StoredSource {
    pub fn new(id: ObjectId, reader: FileReader) -> StoredSource {
        StoredSource {
            id,
            reader,
            next: 0,
            floor: 0,
            run: 0,
            stream: None,
        }
    }

    /// Reads `size` bytes at `offset` (fewer at the end of the file).
    pub fn read(&mut self, repo: &Repo, pool: &Pool, offset: u64, size: u32) -> R<Data> {
        let len = self.reader.len();
        let end = offset.saturating_add(u64::from(size)).min(len);
        // The kernel may send read-ahead requests slightly out of order (several threads).
        let sequential = if self.stream.is_some() {
            offset + BLOCK >= self.next && offset < self.next + BLOCK
        } else {
            // Random readers see short runs too (the kernel reads ahead a little around
            // each miss): only a long run starts the read-ahead.
            if offset == self.next {
                self.run += end.saturating_sub(offset);
            } else {
                self.run = 0;
            }
            self.run >= START_RUN
        };
        self.next = end;
        if offset >= len {
            return Ok(Data::Owned(Vec::new()));
        }
        if !sequential || len <= BLOCK {
            if self.stream.take().is_some() {
                self.run = 0; // left the stream: count a new run from here
            }
            self.floor = 0;
            return self.direct(offset, end);
        }
        if self.stream.is_none() {
            self.stream = self.start_stream(repo, pool, len);
        }
        let Some(stream) = self.stream.clone() else {
            return self.direct(offset, end);
        };
        let first = offset / BLOCK;
        // A request from behind (the kernel's read-ahead requests can arrive out of order)
        // uses what is still there and never re-schedules blocks already passed.
        if first >= self.floor {
            self.floor = first;
            self.schedule(&stream, pool, first);
        }
        let last = (end - 1) / BLOCK;
        let mut parts = Vec::new();
        for b in first..=last {
            match stream.wait(b) {
                Some(Ok(block)) => parts.push(block),
                Some(Err(e)) => return Err(e),
                None => return self.direct(offset, end),
            }
        }
        let s = usize::try_from(offset - first * BLOCK).map_err(|_| Errno::EIO)?;
        if let [block] = parts.as_slice() {
            let e = usize::try_from(end - first * BLOCK).map_err(|_| Errno::EIO)?;
            if e > block.len() {
                return Err(Errno::EIO);
            }
            return Ok(Data::Block(block.clone(), s, e));
        }
        let mut out = Vec::with_capacity(usize::try_from(end - offset).unwrap_or(0));
        for (i, block) in parts.iter().enumerate() {
            let from = if i == 0 { s } else { 0 };
            out.extend_from_slice(block.get(from..).ok_or(Errno::EIO)?);
        }
        out.truncate(usize::try_from(end - offset).map_err(|_| Errno::EIO)?);
        Ok(Data::Owned(out))
    }

    fn direct(&mut self, offset: u64, end: u64) -> R<Data> {
        let mut buf = vec![0u8; usize::try_from(end - offset).map_err(|_| Errno::EIO)?];
        let n = read_full(&mut self.reader, offset, &mut buf)?;
        buf.truncate(n);
        Ok(Data::Owned(buf))
    }

    fn start_stream(&self, repo: &Repo, pool: &Pool, len: u64) -> Option<Arc<Stream>> {
        let mut readers = Vec::new();
        for _ in 0..WORKERS {
            match repo.view().and_then(|v| v.open_file(&self.id)) {
                Ok(r) => readers.push(r),
                Err(e) => {
                    tracing::debug!(error = %e, "no read-ahead");
                    return None;
                }
            }
        }
        Some(Arc::new(Stream {
            len,
            readers: Mutex::new(readers),
            blocks: Mutex::new(BTreeMap::new()),
            ready: Condvar::new(),
            spare: Mutex::new(Vec::new()),
            budget: pool.budget.clone(),
        }))
    }

    /// Keeps blocks `first..=first + AHEAD` scheduled and drops the ones before `first`.
    fn schedule(&self, stream: &Arc<Stream>, pool: &Pool, first: u64) {
        let nblocks = self.reader.len().div_ceil(BLOCK);
        let mut jobs = Vec::new();
        {
            let mut blocks = lock(&stream.blocks);
            let mut spare = lock(&stream.spare);
            let before = blocks.len();
            blocks.retain(|&b, slot| {
                let keep = b >= first && b <= first + AHEAD;
                if !keep
                    && let Slot::Ready(buf) = std::mem::replace(slot, Slot::Failed(Errno::EIO))
                    && let Ok(v) = Arc::try_unwrap(buf)
                    && spare.len() < SPARE
                {
                    spare.push(v);
                }
                keep
            });
            stream.budget.give(before - blocks.len());
            drop(spare);
            for b in first..=(first + AHEAD).min(nblocks.saturating_sub(1)) {
                if let std::collections::btree_map::Entry::Vacant(v) = blocks.entry(b) {
                    // Out of budget: this block and the ones after are read directly.
                    if !stream.budget.take() {
                        break;
                    }
                    v.insert(Slot::Pending);
                    jobs.push(b);
                }
            }
        }
        for b in jobs {
            let job = Job {
                stream: Arc::downgrade(stream),
                block: b,
            };
            if !pool.send(job) && lock(&stream.blocks).remove(&b).is_some() {
                stream.budget.give(1);
            }
        }
    }
}
