//! Reading stored files: one `FileReader` per open handle for random access, and for
//! sequential reads of large files a read-ahead that decodes the next blocks on worker
//! threads while the kernel is still copying the current one.
//!
//! Decoded blocks of every file of a mount share one budget ([`MAX_BLOCKS`]): a file that
//! finds it spent reads directly (as a random reader does), so the mount's memory does not
//! grow with the number of files read at once. A block holds one slot of the budget for as
//! long as it exists, wherever it is: scheduled, being decoded, ready, or being copied to the
//! kernel after the file moved on. Its 4 MiB buffer then goes back to a pool of the mount and
//! is reused by the next block of any file: a buffer is allocated only when the pool is empty
//! and a block holds a slot, so the read-ahead of a mount never holds more than `MAX_BLOCKS`
//! buffers (24 MiB), and reading does not free and fault in again 4 MiB per block (heroctl's
//! allocator returns freed memory at once, ADR 0021). The pool is freed when the mount's last
//! read-ahead ends.
//!
//! The kernel asks for at most 128 KiB to 1 MiB at a time and waits for each answer; decoding
//! a chunk (redb read, decompression, BLAKE3 check) on the request thread leaves the disk and
//! the second core idle in between. With read-ahead the request thread only copies bytes that
//! are already decoded. A sequentially read file holds at most `AHEAD + 1` blocks, every
//! file together at most [`MAX_BLOCKS`], and a file read at random offsets never starts a read-ahead (it needs [`START_RUN`] bytes read in order
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
/// Blocks decoded ahead of the one being read (5 held 8 MiB more per file; cold reads were
/// not measurably faster on this machine, docs/benchmarks.md).
pub(crate) const AHEAD: u64 = 3;
/// Longest wait for a block being decoded before reading it directly.
const WAIT_MAX: Duration = Duration::from_secs(20);
/// Bytes read in order from one handle before the read-ahead starts.
pub(crate) const START_RUN: u64 = 2 << 20;
/// Blocks held at once by all the read-aheads of a mount (scheduled, being decoded, ready or
/// being copied to the kernel), and block buffers in use or pooled: 24 MiB. One file read in
/// order takes up to `AHEAD + 1` (16 MiB); two files at once share the rest.
pub(crate) const MAX_BLOCKS: usize = 6;
/// Worker threads shared by every file of a mount (more than the cores: they mostly wait
/// for the disk, and several reads in flight keep it busy).
pub(crate) const WORKERS: usize = 4;

/// Bytes to hand to the kernel: owned, or a slice of a decoded block.
pub(crate) enum Data {
    Owned(Vec<u8>),
    Block(Arc<Block>, usize, usize),
}

impl Data {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Data::Owned(v) => v,
            Data::Block(b, s, e) => b.buf.get(*s..*e).unwrap_or(&[]),
        }
    }
}

/// A block with the budget slot it holds (its buffer is empty until decoded into). Dropped,
/// it puts its buffer in the mount's pool and gives the slot back.
pub(crate) struct Block {
    buf: Vec<u8>,
    budget: Arc<Budget>,
}

impl Drop for Block {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // The buffer first: a slot taken meanwhile must find it.
        if buf.capacity() > 0 && self.budget.streams.load(Ordering::Acquire) > 0 {
            lock(&self.budget.pool).push(buf);
        }
        self.budget.free.fetch_add(1, Ordering::AcqRel);
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

/// Block slots left for the mount's read-aheads, and the buffers of blocks no longer held.
struct Budget {
    free: AtomicUsize,
    pool: Mutex<Vec<Vec<u8>>>,
    /// Read-aheads alive: the pool is freed when the last one ends.
    streams: AtomicUsize,
    /// Block buffers allocated so far.
    allocated: AtomicUsize,
}

impl Budget {
    /// Takes one slot if any is left: an empty block holding it.
    fn take(self: &Arc<Self>) -> Option<Block> {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| f.checked_sub(1))
            .ok()?;
        Some(Block {
            buf: Vec::new(),
            budget: self.clone(),
        })
    }

    /// A buffer for a block: from the pool, else a new one.
    fn buffer(&self) -> Vec<u8> {
        match lock(&self.pool).pop() {
            Some(b) => b,
            None => {
                self.allocated.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            }
        }
    }

    fn stream_started(&self) {
        self.streams.fetch_add(1, Ordering::AcqRel);
    }

    fn stream_ended(&self) {
        if self.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            let freed = std::mem::take(&mut *lock(&self.pool));
            drop(freed);
        }
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
                pool: Mutex::new(Vec::new()),
                streams: AtomicUsize::new(0),
                allocated: AtomicUsize::new(0),
            }),
        }
    }

    fn send(&self, job: Job) -> bool {
        match lock(&self.tx).as_ref() {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        }
    }

    /// Slots of the budget held now (by blocks in any state).
    #[cfg(test)]
    fn held(&self) -> usize {
        MAX_BLOCKS.saturating_sub(self.budget.free.load(Ordering::Acquire))
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
    /// Scheduled, with its slot.
    Pending(Block),
    /// A worker decodes it (the worker holds the block).
    Running,
    Ready(Arc<Block>),
    Failed(Errno),
}

/// The read-ahead state of one open file.
struct Stream {
    len: u64,
    /// Readers for the workers (each job takes one and gives it back).
    readers: Mutex<Vec<FileReader>>,
    blocks: Mutex<BTreeMap<u64, Slot>>,
    ready: Condvar,
    /// The mount's budget.
    budget: Arc<Budget>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        // The blocks go first (their buffers to the pool), then the pool if this was the last.
        match self.blocks.get_mut() {
            Ok(b) => b.clear(),
            Err(p) => p.into_inner().clear(),
        }
        self.budget.stream_ended();
    }
}

impl Stream {
    fn fill(&self, block: u64) {
        let taken = {
            let mut blocks = lock(&self.blocks);
            match blocks.get_mut(&block) {
                Some(slot @ Slot::Pending(_)) => match std::mem::replace(slot, Slot::Running) {
                    Slot::Pending(b) => Some(b),
                    _ => None,
                },
                _ => None,
            }
        };
        let Some(buf) = taken else {
            return; // dropped meanwhile (the reader moved on)
        };
        let reader = lock(&self.readers).pop();
        let res = reader.map(|mut r| {
            let res = self.read_block(&mut r, block, buf);
            lock(&self.readers).push(r);
            res
        });
        let mut blocks = lock(&self.blocks);
        match res {
            // No reader free (not expected): the request reads the block itself (the slot
            // goes back with the block).
            None => {
                blocks.remove(&block);
            }
            // Unless it was dropped while it was decoded (its buffer then goes back to the pool
            // here).
            Some(res) => {
                if let Some(slot) = blocks.get_mut(&block) {
                    *slot = match res {
                        Ok(b) => Slot::Ready(Arc::new(b)),
                        Err(e) => Slot::Failed(e),
                    };
                }
            }
        }
        drop(blocks);
        self.ready.notify_all();
    }

    fn read_block(&self, r: &mut FileReader, block: u64, mut b: Block) -> R<Block> {
        let start = block * BLOCK;
        let end = (start + BLOCK).min(self.len);
        let len = usize::try_from(end.saturating_sub(start)).map_err(|_| Errno::EIO)?;
        if b.buf.capacity() == 0 {
            b.buf = self.budget.buffer();
        }
        b.buf.resize(len, 0);
        let n = read_full(r, start, &mut b.buf)?;
        if n != len {
            return Err(Errno::EIO);
        }
        Ok(b)
    }

    /// Waits for `block` to be decoded; `None` when it is not scheduled (or takes so long
    /// that something must have gone wrong: the request then reads it itself).
    fn wait(&self, block: u64) -> Option<R<Arc<Block>>> {
        let give_up = Instant::now() + WAIT_MAX;
        let mut blocks = lock(&self.blocks);
        loop {
            match blocks.get(&block)? {
                Slot::Ready(b) => return Some(Ok(b.clone())),
                Slot::Failed(e) => return Some(Err(*e)),
                Slot::Pending(_) | Slot::Running => {}
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
            if e > block.buf.len() {
                return Err(Errno::EIO);
            }
            return Ok(Data::Block(block.clone(), s, e));
        }
        let mut out = Vec::with_capacity(usize::try_from(end - offset).unwrap_or(0));
        for (i, block) in parts.iter().enumerate() {
            let from = if i == 0 { s } else { 0 };
            out.extend_from_slice(block.buf.get(from..).ok_or(Errno::EIO)?);
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
        pool.budget.stream_started();
        Some(Arc::new(Stream {
            len,
            readers: Mutex::new(readers),
            blocks: Mutex::new(BTreeMap::new()),
            ready: Condvar::new(),
            budget: pool.budget.clone(),
        }))
    }

    /// Keeps blocks `first..=first + AHEAD` scheduled and drops the ones before `first`.
    fn schedule(&self, stream: &Arc<Stream>, pool: &Pool, first: u64) {
        let nblocks = self.reader.len().div_ceil(BLOCK);
        let mut jobs = Vec::new();
        {
            let mut blocks = lock(&stream.blocks);
            let passed: Vec<u64> = blocks.range(..first).map(|(&b, _)| b).collect();
            let beyond: Vec<u64> = blocks
                .range(first.saturating_add(AHEAD + 1)..)
                .map(|(&b, _)| b)
                .collect();
            // A block still being copied to the kernel, or being decoded, gives its slot back
            // when that is done.
            for b in passed.into_iter().chain(beyond) {
                blocks.remove(&b);
            }
            for b in first..=(first + AHEAD).min(nblocks.saturating_sub(1)) {
                if let std::collections::btree_map::Entry::Vacant(v) = blocks.entry(b) {
                    // Out of budget: this block and the ones after are read directly.
                    let Some(blk) = stream.budget.take() else {
                        break;
                    };
                    v.insert(Slot::Pending(blk));
                    jobs.push(b);
                }
            }
        }
        for b in jobs {
            let job = Job {
                stream: Arc::downgrade(stream),
                block: b,
            };
            if !pool.send(job) {
                lock(&stream.blocks).remove(&b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes that do not compress.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0u8; len];
        fastrand::Rng::with_seed(seed).fill(&mut out);
        out
    }

    /// Polls `cond` until it holds; false after 20 s.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        cond()
    }

    fn stored(repo: &Repo, data: &[u8]) -> ObjectId {
        repo.write_file(data, None).unwrap().id
    }

    /// Reads `len` bytes at `off` through the source.
    fn read(src: &mut StoredSource, repo: &Repo, pool: &Pool, off: u64, len: u32) -> Vec<u8> {
        src.read(repo, pool, off, len).unwrap().as_slice().to_vec()
    }

    /// Block buffers go back to the mount's pool and are reused: reading a file of more
    /// blocks than the budget, twice, allocates no more buffers than the budget; every slot
    /// comes back when the file is closed, and the pool is freed with the last read-ahead.
    #[test]
    fn block_buffers_are_reused_and_freed_with_the_last_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path().join("r.hero")).unwrap();
        let data = noise((60 << 20) + 4321, 7);
        let nblocks = data.len().div_ceil(BLOCK as usize);
        assert!(nblocks > MAX_BLOCKS);
        let id = stored(&repo, &data);
        let pool = Pool::new();
        for _ in 0..2 {
            let mut src = StoredSource::new(id, repo.open_file(&id).unwrap());
            let mut got = Vec::new();
            let step = 1 << 20;
            while got.len() < data.len() {
                let part = read(&mut src, &repo, &pool, got.len() as u64, step);
                assert!(!part.is_empty());
                got.extend_from_slice(&part);
                assert!(pool.held() <= MAX_BLOCKS);
            }
            assert!(got == data, "the file read back differs");
            assert!(
                src.stream.is_some(),
                "a file read in order has a read-ahead"
            );
            let allocated = pool.budget.allocated.load(Ordering::Relaxed);
            assert!(
                (1..=MAX_BLOCKS).contains(&allocated),
                "{allocated} buffers for {nblocks} blocks"
            );
            drop(src);
            assert!(
                eventually(|| pool.held() == 0),
                "{} slots not given back",
                pool.held()
            );
            assert!(
                eventually(|| lock(&pool.budget.pool).is_empty()),
                "the pool is freed"
            );
            pool.budget.allocated.store(0, Ordering::Relaxed);
        }
        pool.close();
    }

    /// More files read at once than the budget holds: the mount's blocks never exceed it,
    /// every byte is right, and every slot comes back.
    #[test]
    fn many_files_read_at_once_stay_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path().join("r.hero")).unwrap();
        let files: Vec<Vec<u8>> = (0..4u64).map(|i| noise((9 << 20) + 99, i + 1)).collect();
        let ids: Vec<ObjectId> = files.iter().map(|d| stored(&repo, d)).collect();
        let pool = Pool::new();
        let mut srcs: Vec<(StoredSource, Vec<u8>)> = ids
            .iter()
            .map(|id| {
                (
                    StoredSource::new(*id, repo.open_file(id).unwrap()),
                    Vec::new(),
                )
            })
            .collect();
        let step = 512 << 10;
        let mut peak = 0;
        loop {
            let mut busy = false;
            for (i, (src, got)) in srcs.iter_mut().enumerate() {
                if got.len() < files[i].len() {
                    busy = true;
                    let part = read(src, &repo, &pool, got.len() as u64, step);
                    got.extend_from_slice(&part);
                    peak = peak.max(pool.held());
                }
            }
            if !busy {
                break;
            }
        }
        for (i, (_, got)) in srcs.iter().enumerate() {
            assert!(*got == files[i], "file {i} differs");
        }
        assert!(
            peak > AHEAD as usize,
            "the read-aheads used the budget ({peak})"
        );
        assert!(peak <= MAX_BLOCKS);
        drop(srcs);
        assert!(
            eventually(|| pool.held() == 0),
            "{} slots not given back",
            pool.held()
        );
        assert!(pool.budget.allocated.load(Ordering::Relaxed) <= MAX_BLOCKS);
        assert!(
            eventually(|| lock(&pool.budget.pool).is_empty()),
            "the pool is freed"
        );
        pool.close();
    }
}
