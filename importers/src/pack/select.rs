//! Choosing delta bases, the way git's packer does, plus the same path's other versions.
//!
//! Objects are visited sorted by type, then by [`name_hash`](super::name_hash) of their
//! path (so files of the same name, or ending alike, are neighbours), then largest first (a
//! delta that removes bytes is cheaper than one that adds them), then newest first. Each
//! object is tried against:
//!
//! - the previous and the next version of the same path (the objects seen just before and
//!   just after it at that path during the export's walk), when they were visited already;
//! - the last [`WINDOW`] objects visited of its type (git's sliding window; the base chosen
//!   last moves to the front of the window, as in git, and an object at the maximum depth
//!   never enters it).
//!
//! Only objects visited earlier can be bases, so delta chains never loop, and a base's own
//! depth is final when it is chosen: chains stay within [`MAX_DEPTH`]. Candidates that share
//! fewer than two 16-byte runs with the object at a 64-place probe are skipped before any encoding. As in
//! git, a delta is judged by its size per level of depth left below its base, `size /
//! (MAX_DEPTH - base depth)`, so chains branch out instead of running to the maximum depth
//! (a tie goes to the shallower base). The winner is kept only if its compressed size, with
//! its entry header, is smaller than the compressed object's; git instead wants a delta under
//! half the object's size. Objects under 50 bytes or over [`MAX_SIZE`] are neither tried nor
//! used as bases, as in git (git's limit for large objects is `core.bigFileThreshold`, also
//! 512 MiB by default). The window holds at most [`WINDOW_MEMORY`] of objects and their
//! indexes.

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

use gix::zlib::Decompress;
use gix::zlib::stream::deflate::Compress;

use super::delta::{self, Index};
use super::spool::{LEVEL, NONE, Record, Spool, deflate_to_vec, header_len, io_err, load};
use crate::error::ExportError;

/// Candidates from the sorted list, as git's `pack.window`.
const WINDOW: usize = 10;
/// Longest delta chain, as git's `pack.depth`.
const MAX_DEPTH: u16 = 50;
/// Smallest object tried, as git.
const MIN_SIZE: u64 = 50;
/// Largest object tried.
const MAX_SIZE: u64 = 512 << 20;
/// Bytes of objects (and their indexes) the window may hold; the newest object always stays.
const WINDOW_MEMORY: usize = 256 << 20;
/// Bytes assumed for the distance to a base when comparing sizes (its real length is known
/// only when the pack is written: one byte per seven bits of distance).
const OFFSET_GUESS: u64 = 3;

/// A delta chosen for an object.
#[derive(Debug, Clone)]
pub(super) struct Choice {
    /// The base (an index into the records).
    pub base: u32,
    /// Size of the delta.
    pub delta_len: u64,
    /// Where its compressed bytes are in the delta spool, and how many.
    pub at: u64,
    pub zlen: u64,
}

struct Slot {
    record: u32,
    data: Vec<u8>,
    index: Option<Index>,
}

impl Slot {
    fn memory(&self) -> usize {
        self.data.len() + self.index.as_ref().map_or(0, Index::memory)
    }
}

/// The best delta so far: base, its depth, the delta.
struct Best {
    base: u32,
    depth: u16,
    delta: Vec<u8>,
}

/// Tries `base` for `target`; keeps the delta in `best` if it beats it.
///
/// As git's packer, a delta is judged by its size per level of depth left below its base:
/// `size / (MAX_DEPTH - base depth)`. So a shallow base wins over a deep one unless the deep
/// one's delta is smaller in proportion, chains branch out instead of running to the maximum
/// depth, and a base near the maximum is used only for a tiny delta. The first delta must be
/// smaller than the object, scaled the same way.
fn try_base(
    best: &mut Option<Best>,
    base_record: u32,
    base_depth: u16,
    index: &Index,
    base: &[u8],
    target: &[u8],
) {
    let m = u64::from(MAX_DEPTH);
    let room = m.saturating_sub(u64::from(base_depth));
    // The largest delta that could win.
    let max = match best {
        None => (target.len() as u64).saturating_sub(1) * room / m,
        Some(b) => {
            let b_room = m.saturating_sub(u64::from(b.depth)).max(1);
            b.delta.len() as u64 * room / b_room
        }
    };
    if max == 0 || (target.len() as u64).saturating_sub(base.len() as u64) > max {
        return;
    }
    if !delta::shares_runs(index, base, target) {
        return;
    }
    let limit = usize::try_from(max + 1).unwrap_or(usize::MAX);
    let Some(d) = delta::encode(index, base, target, limit) else {
        return;
    };
    let better = match best {
        None => true,
        Some(b) => {
            let b_room = m.saturating_sub(u64::from(b.depth));
            let (new, old) = (d.len() as u64 * b_room, b.delta.len() as u64 * room);
            new < old || (new == old && base_depth < b.depth)
        }
    };
    if better {
        *best = Some(Best {
            base: base_record,
            depth: base_depth,
            delta: d,
        });
    }
}

/// Chooses a base (or none) for every record; writes the chosen deltas, compressed, to
/// `deltas`. `spool` holds the records' objects.
pub(super) fn choose(
    records: &[Record],
    spool: &File,
    deltas: &mut Spool,
    dir: &Path,
) -> Result<Vec<Option<Choice>>, ExportError> {
    let n = records.len();
    let mut order: Vec<u32> = (0..n)
        .filter(|&i| (MIN_SIZE..=MAX_SIZE).contains(&records[i].size))
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    order.sort_unstable_by(|&a, &b| {
        let (x, y) = (&records[a as usize], &records[b as usize]);
        y.ty.cmp(&x.ty)
            .then(y.name_hash.cmp(&x.name_hash))
            .then(y.size.cmp(&x.size))
            .then(b.cmp(&a))
    });
    let mut choices: Vec<Option<Choice>> = vec![None; n];
    let mut depth = vec![0u16; n];
    let mut visited = vec![false; n];
    let mut window: VecDeque<Slot> = VecDeque::new();
    let mut inflate = Decompress::new();
    let mut compress = Compress::new(LEVEL);
    let mut zdelta = Vec::new();

    for &t in &order {
        let r = &records[t as usize];
        let target = load(spool, r, &mut inflate, dir)?;
        window.retain(|s| records[s.record as usize].ty == r.ty);
        let mut best: Option<Best> = None;

        // The same path's other versions first: usually the best base, and a small `best`
        // early makes the window's poor candidates give up sooner.
        for other in [r.prev, r.next] {
            let Some(o) = usize::try_from(other).ok().filter(|_| other != NONE) else {
                continue;
            };
            let ok = visited.get(o).copied().unwrap_or(false)
                && depth[o] < MAX_DEPTH
                && records[o].ty == r.ty
                && !window.iter().any(|s| s.record == other);
            if ok {
                let base = load(spool, &records[o], &mut inflate, dir)?;
                let index = Index::new(&base);
                try_base(&mut best, other, depth[o], &index, &base, &target);
            }
        }
        for slot in window.iter_mut().rev() {
            let d = depth[slot.record as usize];
            if d >= MAX_DEPTH {
                continue;
            }
            let index = slot.index.get_or_insert_with(|| Index::new(&slot.data));
            try_base(&mut best, slot.record, d, index, &slot.data, &target);
        }

        let mut chosen = None;
        if let Some(b) = best {
            deflate_to_vec(&mut compress, &b.delta, &mut zdelta)?;
            let delta_len = b.delta.len() as u64;
            let as_delta = zdelta.len() as u64 + header_len(delta_len) + OFFSET_GUESS;
            let whole = r.zlen + header_len(r.size);
            if as_delta < whole {
                let at = deltas.len;
                deltas.write(&zdelta).map_err(io_err(dir))?;
                choices[t as usize] = Some(Choice {
                    base: b.base,
                    delta_len,
                    at,
                    zlen: zdelta.len() as u64,
                });
                depth[t as usize] = b.depth + 1;
                chosen = Some(b.base);
            }
        }
        visited[t as usize] = true;

        // git's window: the base just used moves to the front, to be tried first next.
        if let Some(pos) = chosen.and_then(|b| window.iter().position(|s| s.record == b))
            && let Some(slot) = window.remove(pos)
        {
            window.push_back(slot);
        }
        if depth[t as usize] < MAX_DEPTH {
            let slot = Slot {
                record: t,
                data: target,
                index: None,
            };
            // The base stays the newest; the target goes just before it.
            let at = if chosen.is_some() && window.back().map(|s| Some(s.record)) == Some(chosen) {
                window.len() - 1
            } else {
                window.len()
            };
            window.insert(at, slot);
        }
        while window.len() > WINDOW
            || (window.len() > 1 && window.iter().map(Slot::memory).sum::<usize>() > WINDOW_MEMORY)
        {
            window.pop_front();
        }
    }
    Ok(choices)
}
