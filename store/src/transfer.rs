//! Moving objects between repositories: what an object links to, its canonical bytes, and a
//! store that verifies everything offered to it.
//!
//! An object is accepted only when its bytes match its id, decode as the type claimed, and
//! every object it links to is already present. Receivers that store objects children first
//! therefore keep one invariant: an object present means everything it reaches is present,
//! which is what lets an interrupted transfer resume by asking only for what is missing.

use redb::ReadableTable;

use crate::db::RecordSource;

use crate::changes::Batch;
use crate::error::{DbResultExt as _, Error, Result};
use crate::id::{IdMap, ObjectId};
use crate::object::{Commit, EntryKind, ManifestNode, Tag, Tree};
use crate::record::{self, Encoding, ObjType, Record};
use crate::repo::View;

/// The objects an object's raw bytes link to, each with the type it must have: a commit's
/// tree and parents, a tree's entries (gitlinks point outside the store and are left out), a
/// tag's target, a chunk tree's children. A blob links to nothing.
pub fn object_links(ty: ObjType, raw: &[u8]) -> Result<Vec<(ObjType, ObjectId)>> {
    let bad = |e: crate::codec::DecodeError| Error::corrupt(ObjectId::of(raw), e.to_string());
    Ok(match ty {
        ObjType::Blob => Vec::new(),
        ObjType::Commit => {
            let c = Commit::decode(raw).map_err(bad)?;
            let mut v = vec![(ObjType::Tree, c.tree)];
            v.extend(c.parents.iter().map(|p| (ObjType::Commit, *p)));
            v
        }
        ObjType::Tree => tree_links(&Tree::decode(raw).map_err(bad)?),
        ObjType::Tag => {
            let t = Tag::decode(raw).map_err(bad)?;
            let ty = match t.target_kind {
                crate::object::TargetKind::Commit => ObjType::Commit,
                crate::object::TargetKind::Tree => ObjType::Tree,
                crate::object::TargetKind::Tag => ObjType::Tag,
                crate::object::TargetKind::Blob => content_type(u64::MAX),
            };
            vec![(ty, t.target)]
        }
        ObjType::Manifest | ObjType::ManifestNode => {
            let n = ManifestNode::decode(raw).map_err(bad)?;
            let child = if n.level == 0 {
                ObjType::Blob
            } else {
                ObjType::ManifestNode
            };
            n.stored_children().map(|(id, _)| (child, id)).collect()
        }
    })
}

/// A tree's links: its entries but gitlinks (which point outside the store).
fn tree_links(t: &Tree) -> Vec<(ObjType, ObjectId)> {
    t.entries
        .iter()
        .filter_map(|e| Some((entry_link_type(e.kind, e.size)?, e.id)))
        .collect()
}

/// The type of the object a tree entry of `kind` and `size` links to: a tree for a directory,
/// a blob for a small file (or symlink), a manifest for a large one; `None` for a gitlink
/// (a commit of another repository, not stored) and a special file (no content).
pub fn entry_link_type(kind: EntryKind, size: u64) -> Option<ObjType> {
    match kind {
        EntryKind::Gitlink
        | EntryKind::Fifo
        | EntryKind::Socket
        | EntryKind::CharDevice
        | EntryKind::BlockDevice => None,
        EntryKind::Dir => Some(ObjType::Tree),
        EntryKind::File | EntryKind::Executable | EntryKind::Symlink => Some(content_type(size)),
    }
}

/// The type of a file's content object given its size: small files are one blob.
fn content_type(size: u64) -> ObjType {
    if size <= crate::file::SMALL_FILE_MAX as u64 {
        ObjType::Blob
    } else {
        ObjType::Manifest
    }
}

/// How an object is kept in the store, so that a sender can pass its stored bytes on as they
/// are (as git reuses the deltas in its packs) instead of decoding and compressing again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredForm {
    /// Whole and uncompressed: the raw bytes.
    Plain(Vec<u8>),
    /// Whole, as one zstd frame (decode with [`decode_zstd_frame`]).
    Zstd(Vec<u8>),
    /// A delta against `base`: a zstd frame without its magic number that decodes with the
    /// base's raw bytes as dictionary ([`apply_delta_frame`]).
    Delta {
        /// The object the delta is against.
        base: ObjectId,
        /// The frame.
        frame: Vec<u8>,
    },
    /// Some other way (a large file's manifest, a delta whose base is ambiguous): read the
    /// object with [`View::raw_object`].
    Other,
}

/// An object's type, raw length and stored form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The type.
    pub ty: ObjType,
    /// Length of the raw bytes.
    pub raw_len: u64,
    /// How it is kept.
    pub form: StoredForm,
}

pub use record::{apply_delta_frame, decode_zstd_frame, delta_frame};

impl View {
    /// How an object is stored, without decoding it; `None` if it is not stored.
    pub fn stored(&self, id: &ObjectId) -> Result<Option<Stored>> {
        let src = self.source();
        let Some(g) = src.record(id)? else {
            return Ok(None);
        };
        let rec = Record::parse(&g).map_err(|e| Error::corrupt(*id, e))?;
        let form = match rec.enc {
            _ if rec.ty == ObjType::Manifest => StoredForm::Other,
            // A record packed in a segment is kept plain because its segment compresses it:
            // it goes as raw bytes, for the receiver to compress.
            Encoding::Plain if rec.data.len() >= 64 && self.is_packed(id)? => StoredForm::Other,
            Encoding::Plain => StoredForm::Plain(rec.data.to_vec()),
            Encoding::Zstd => StoredForm::Zstd(rec.data.to_vec()),
            Encoding::Delta(base) => match record::strip_magic(rec.data) {
                Some(f) => StoredForm::Delta {
                    base,
                    frame: f.to_vec(),
                },
                None => StoredForm::Other,
            },
            Encoding::DeltaShort(prefix) => {
                match crate::db::with_prefix(&self.objects, &prefix, id)?.as_slice() {
                    [base] => StoredForm::Delta {
                        base: *base,
                        frame: rec.data.to_vec(),
                    },
                    _ => StoredForm::Other,
                }
            }
        };
        Ok(Some(Stored {
            ty: rec.ty,
            raw_len: rec.raw_len,
            form,
        }))
    }

    /// Whether an object's record is packed in a segment.
    fn is_packed(&self, id: &ObjectId) -> Result<bool> {
        Ok(self
            .objects
            .get(&id.0)
            .db_err()?
            .is_some_and(|g| g.value().first() == Some(&crate::segment::PACKED)))
    }

    /// An object's type and, when it is stored as a delta, the object its delta is against
    /// (`None` when it is stored whole or its base is ambiguous); `None` if it is not stored.
    /// Reads the record's header only.
    pub fn stored_base(&self, id: &ObjectId) -> Result<Option<(ObjType, Option<ObjectId>)>> {
        let src = self.source();
        let Some(g) = src.record_head(id)? else {
            return Ok(None);
        };
        let rec = Record::parse(&g).map_err(|e| Error::corrupt(*id, e))?;
        let base = match rec.enc {
            Encoding::Delta(base) => Some(base),
            Encoding::DeltaShort(prefix) => {
                match crate::db::with_prefix(&self.objects, &prefix, id)?.as_slice() {
                    [base] => Some(*base),
                    _ => None,
                }
            }
            Encoding::Plain | Encoding::Zstd => None,
        };
        Ok(Some((rec.ty, base)))
    }

    /// An object's type and canonical bytes (what its id is computed over; for a large file's
    /// manifest, the top node of its chunk tree), or `None` if it is not stored.
    pub fn raw_object(&self, id: &ObjectId) -> Result<Option<(ObjType, Vec<u8>)>> {
        match self.raw(id) {
            Ok(v) => Ok(Some(v)),
            Err(Error::Missing(m)) if m == *id => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An object arriving from elsewhere, in the form it travelled in.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    /// Raw bytes. `plain`: keep them uncompressed (the sender found them incompressible).
    /// `previous`: a delta base hint, as in [`Batch::put_blob`].
    Raw {
        /// The bytes.
        raw: &'a [u8],
        /// Keep uncompressed.
        plain: bool,
        /// The previous version, to re-store as a delta against this one.
        previous: Option<ObjectId>,
    },
    /// A whole zstd frame (as [`StoredForm::Zstd`]), kept as it is.
    Zstd {
        /// The frame.
        frame: &'a [u8],
        /// Length of the raw bytes.
        raw_len: u64,
    },
    /// A delta frame (as [`StoredForm::Delta`]), kept as it is when the chain stays short.
    Delta {
        /// The object it is against.
        base: ObjectId,
        /// The base's raw bytes, as read from this store or checked against `base` by the
        /// caller: the record names `base`, so other bytes would make a record that no
        /// longer decodes (reads would report it corrupt).
        base_raw: &'a [u8],
        /// The frame.
        frame: &'a [u8],
        /// Length of the raw bytes.
        raw_len: u64,
        /// When the base is itself kept as a delta (stored in this transfer): the whole object
        /// its chain ends at and the base's depth (see [`Received::chain`]). `None` when the
        /// base is whole or its chain is not known (then the object is kept whole).
        chain: Option<(ObjectId, u32)>,
        /// The caller knows the base is kept whole (it came whole earlier in the transfer and
        /// may not be written yet); otherwise the store looks.
        base_whole: bool,
    },
}

/// What [`Batch::put_received`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The object's id.
    pub id: ObjectId,
    /// Whether it was new.
    pub new: bool,
    /// When kept as a delta: the whole object its chain ends at and its depth, to pass with
    /// objects that arrive as deltas against it.
    pub chain: Option<(ObjectId, u32)>,
    /// The raw bytes, when they had to be decoded (frames and deltas).
    pub decoded: Option<Vec<u8>>,
    /// The objects it links to (empty when it was there already).
    pub links: Vec<ObjectId>,
}

/// Looks up objects a transfer has already stored or checked, before the database is asked.
pub type Known<'a> = &'a dyn Fn(&ObjectId) -> Option<ObjType>;

impl Batch<'_, '_> {
    /// Stores an object received from elsewhere after the checks of [`Batch::put_raw`], in the
    /// form it arrived in when that form can be kept: a whole zstd frame as it is, a delta as
    /// it is unless its chain would grow too long. `id` is needed only for manifests (whose id
    /// is their content's hash, not their bytes'); other ids are computed. `known` answers for
    /// objects stored earlier in the same transfer, sparing database lookups of links.
    /// [`View::prepare_received`] and [`Batch::put_prepared`] do the same in two steps.
    pub fn put_received(
        &mut self,
        ty: ObjType,
        id: Option<ObjectId>,
        incoming: Incoming<'_>,
        known: Known<'_>,
    ) -> Result<Received> {
        let mut p = prepare(&*self, ty, id, incoming, known)?;
        let mut out = Received {
            id: p.id,
            new: false,
            chain: p.chain,
            decoded: p.decoded.take(),
            links: std::mem::take(&mut p.links),
        };
        out.new = self.put_prepared(p)?;
        Ok(out)
    }

    /// Writes an object checked by [`View::prepare_received`] (objects it links to that the
    /// view did not have must have been written before, in this transaction or earlier);
    /// returns whether it was new. A manifest's chunks are hashed here, once they are stored.
    pub fn put_prepared(&mut self, p: Prepared) -> Result<bool> {
        Ok(self.put_prepared_sorted(std::iter::once(p))? == 1)
    }

    /// Stores prepared objects given in increasing id order (a receiver sorts what it checked):
    /// B-tree pages filled in key order end up full (in arrival order, ids being random, about
    /// two thirds full); chain depths, manifests' chunk checks and new reverse deltas follow
    /// once all are in. Returns how many were new. Objects out of order
    /// are an error (nothing is stored: the caller drops the transaction).
    pub fn put_prepared_sorted(
        &mut self,
        prepared: impl IntoIterator<Item = Prepared>,
    ) -> Result<u64> {
        let mut new = 0u64;
        let mut last: Option<ObjectId> = None;
        let mut chains: IdMap<u32> = IdMap::default();
        let mut manifests: Vec<(ObjectId, Vec<u8>)> = Vec::new();
        let mut deltify: Vec<(ObjectId, ObjectId)> = Vec::new();
        for p in prepared {
            if last.is_some_and(|l| l >= p.id) {
                return Err(Error::corrupt(p.id, "prepared objects out of order"));
            }
            last = Some(p.id);
            if p.present || self.w.has(&p.id)? {
                continue;
            }
            self.w.insert_record(&p.id, &p.record)?;
            new += 1;
            if let Some((head, d)) = p.chain {
                let e = chains.entry(head).or_insert(0);
                *e = (*e).max(d);
            }
            if let Some(raw) = p.manifest {
                manifests.push((p.id, raw));
            }
            if let Some(prev) = p.previous {
                deltify.push((prev, p.id));
            }
        }
        let mut chains: Vec<(ObjectId, u32)> = chains.into_iter().collect();
        chains.sort_unstable();
        for (head, d) in chains {
            let cur = self
                .w
                .chains
                .get(crate::db::chain_key(&head))
                .db_err()?
                .map(|g| g.value())
                .unwrap_or(0);
            if d > cur {
                self.w
                    .chains
                    .insert(crate::db::chain_key(&head), d)
                    .db_err()?;
            }
        }
        for (id, raw) in manifests {
            self.verify_manifest(&id, &raw)?;
        }
        for (old, new) in deltify {
            self.w.deltify(&old, &new)?;
        }
        Ok(new)
    }

    /// Stores an object received from elsewhere after checking it: its bytes hash to `id`
    /// (for a manifest: its chunks are present and together hash to `id`), decode as `ty`,
    /// and every object it links to is already stored. `previous` is a delta base hint, as in
    /// [`Batch::put_blob`]. Returns whether the object was new. Nothing is stored on error.
    pub fn put_raw(
        &mut self,
        ty: ObjType,
        id: &ObjectId,
        raw: &[u8],
        previous: Option<ObjectId>,
    ) -> Result<bool> {
        let refuse = |reason: String| Error::Refused { id: *id, reason };
        if raw.len() as u64 > crate::record::MAX_RAW {
            return Err(refuse(format!(
                "{} bytes is over the object size limit",
                raw.len()
            )));
        }
        let payload = ObjectId::of(raw);
        if ty != ObjType::Manifest && payload != *id {
            return Err(refuse("content does not match its id".to_owned()));
        }
        if self.has(id)? {
            return Ok(false);
        }
        check_links(&*self, ty, id, raw, &|_| None)?;
        if ty == ObjType::Manifest {
            self.verify_manifest(id, raw)?;
            self.w.put(ty, id, raw, Some(&payload))?;
        } else {
            self.w.put(ty, id, raw, None)?;
        }
        if let Some(p) = previous {
            self.w.deltify(&p, id)?;
        }
        Ok(true)
    }

    /// Checks that a manifest's chunks are stored and together hash to its id.
    fn verify_manifest(&self, id: &ObjectId, raw: &[u8]) -> Result<()> {
        let refuse = |reason: String| Error::Refused { id: *id, reason };
        let node = ManifestNode::decode(raw).map_err(|e| refuse(e.to_string()))?;
        let (hash, _len) = self.hash_chunks(&node, raw, id)?;
        if hash != *id {
            return Err(refuse("its chunks do not hash to its id".to_owned()));
        }
        Ok(())
    }

    /// Streams a chunk tree's content through BLAKE3, checking the recorded sizes; for a
    /// file with holes (whose bytes are not hashed) the id is derived from its top node
    /// `root_raw` instead.
    fn hash_chunks(
        &self,
        root: &ManifestNode,
        root_raw: &[u8],
        id: &ObjectId,
    ) -> Result<(ObjectId, u64)> {
        let mut hasher = blake3::Hasher::new();
        let mut any_hole = false;
        let mut total = 0u64;
        let mut stack: Vec<(ManifestNode, usize)> = vec![(root.clone(), 0)];
        while let Some((node, i)) = stack.pop() {
            let Some(&(child, len)) = node.children.get(i) else {
                continue;
            };
            let level = node.level;
            stack.push((node, i + 1));
            let Some(child) = child else {
                any_hole = true;
                total = total.saturating_add(len);
                continue;
            };
            let (ty, bytes) = self.w.get_raw(&child)?;
            if level == 0 {
                if ty != ObjType::Blob || bytes.len() as u64 != len {
                    return Err(Error::Refused {
                        id: *id,
                        reason: format!("chunk {} has the wrong type or size", child.short()),
                    });
                }
                hasher.update(&bytes);
                total = total.saturating_add(len);
            } else {
                let n = ManifestNode::decode(&bytes).map_err(|e| Error::decode(child, e))?;
                if ty != ObjType::ManifestNode || n.level + 1 != level || n.total() != len {
                    return Err(Error::Refused {
                        id: *id,
                        reason: format!("chunk node {} does not fit its parent", child.short()),
                    });
                }
                stack.push((n, 0));
            }
        }
        let hash = if any_hole {
            crate::file::sparse_id(root_raw)
        } else {
            ObjectId(*hasher.finalize().as_bytes())
        };
        Ok((hash, total))
    }
}

/// Where the checks of a received object look objects up: a read view, or a write batch
/// (which sees what it holds back too).
trait Lookup {
    fn type_of(&self, id: &ObjectId) -> Result<Option<ObjType>>;
    fn is_whole(&self, id: &ObjectId) -> Result<Option<bool>>;
}

impl Lookup for View {
    fn type_of(&self, id: &ObjectId) -> Result<Option<ObjType>> {
        crate::db::object_type(&self.source(), id)
    }
    fn is_whole(&self, id: &ObjectId) -> Result<Option<bool>> {
        crate::db::record_is_whole(&self.source(), id)
    }
}

impl Lookup for Batch<'_, '_> {
    fn type_of(&self, id: &ObjectId) -> Result<Option<ObjType>> {
        crate::db::object_type(&self.w.source(), id)
    }
    fn is_whole(&self, id: &ObjectId) -> Result<Option<bool>> {
        crate::db::record_is_whole(&self.w.source(), id)
    }
}

/// A received object, checked and encoded, ready for [`Batch::put_prepared`].
#[derive(Debug)]
pub struct Prepared {
    /// Its id.
    pub id: ObjectId,
    /// Stored already when it was checked: nothing to write.
    pub present: bool,
    record: Vec<u8>,
    /// When kept as a delta: the whole object its chain ends at and its depth.
    pub chain: Option<(ObjectId, u32)>,
    previous: Option<ObjectId>,
    /// A manifest's raw bytes: its chunks are hashed when it is written.
    manifest: Option<Vec<u8>>,
    /// The objects it links to (empty when present).
    pub links: Vec<ObjectId>,
    /// The raw bytes, when they had to be decoded (frames and deltas).
    pub decoded: Option<Vec<u8>>,
}

impl View {
    /// Decodes, hashes and checks a received object against this view, and encodes its record
    /// (see [`Batch::put_received`]) without a write transaction, so a receiver can do this
    /// work while the rest of a transfer arrives. Links found neither in `known` nor in the
    /// view are refused.
    pub fn prepare_received(
        &self,
        ty: ObjType,
        id: Option<ObjectId>,
        incoming: Incoming<'_>,
        known: Known<'_>,
    ) -> Result<Prepared> {
        prepare(self, ty, id, incoming, known)
    }
}

fn prepare(
    lookup: &impl Lookup,
    ty: ObjType,
    id: Option<ObjectId>,
    incoming: Incoming<'_>,
    known: Known<'_>,
) -> Result<Prepared> {
    let decoded = match incoming {
        Incoming::Raw { .. } => None,
        Incoming::Zstd { frame, raw_len } => Some(decode_zstd_frame(frame, raw_len)?),
        Incoming::Delta {
            base_raw,
            frame,
            raw_len,
            ..
        } => {
            if ty == ObjType::Manifest {
                return Err(Error::Undecodable(
                    "a manifest cannot travel as a delta".to_owned(),
                ));
            }
            Some(apply_delta_frame(frame, raw_len, base_raw)?)
        }
    };
    let raw: &[u8] = match (&decoded, incoming) {
        (Some(d), _) => d,
        (None, Incoming::Raw { raw, .. }) => raw,
        (None, _) => &[],
    };
    let id = match (ty, id) {
        (ObjType::Manifest, Some(id)) => id,
        (ObjType::Manifest, None) => {
            return Err(Error::Undecodable(
                "a manifest came without its id".to_owned(),
            ));
        }
        _ => ObjectId::of(raw),
    };
    let mut out = Prepared {
        id,
        present: false,
        record: Vec::new(),
        chain: None,
        previous: None,
        manifest: None,
        links: Vec::new(),
        decoded: None,
    };
    if lookup.type_of(&id)?.is_some() {
        out.present = true;
        out.decoded = decoded;
        return Ok(out);
    }
    out.links = check_links(lookup, ty, &id, raw, known)?;
    match incoming {
        Incoming::Raw {
            plain, previous, ..
        } => {
            out.record = if ty == ObjType::Manifest {
                out.manifest = Some(raw.to_vec());
                crate::db::whole_record(ty, raw, Some(&ObjectId::of(raw)))?
            } else if plain {
                record::encode_with(ty, Encoding::Plain, raw.len() as u64, raw)
            } else {
                crate::db::whole_record(ty, raw, None)?
            };
            out.previous = previous;
        }
        Incoming::Zstd { frame, raw_len } => {
            out.record = record::encode_with(ty, Encoding::Zstd, raw_len, frame);
        }
        Incoming::Delta {
            base,
            frame,
            raw_len,
            chain,
            base_whole,
            ..
        } => {
            let depth = match chain {
                Some((head, d)) => Some((head, d.saturating_add(1))),
                None if base_whole => Some((base, 1)),
                None => match lookup.is_whole(&base)? {
                    Some(true) => Some((base, 1)),
                    _ => None,
                },
            };
            match depth {
                // The compact form names the base by a prefix of its id. Uniqueness is not
                // checked: a reader that finds several objects with the prefix tells them
                // apart by decoding (ids are hashes: 64 bits rarely clash).
                Some((head, d)) if d <= crate::db::max_depth(raw_len) => {
                    out.record = record::encode_with(
                        ty,
                        Encoding::DeltaShort(record::short_base(&base)),
                        raw_len,
                        frame,
                    );
                    out.chain = Some((head, d));
                }
                // The chain would be too long or cannot be followed: keep it whole.
                _ => out.record = crate::db::whole_record(ty, raw, None)?,
            }
        }
    }
    out.decoded = decoded;
    Ok(out)
}

/// The checks every object offered from elsewhere passes: it decodes as `ty`, a tree is valid,
/// every link is present with the right type. Returns the links.
fn check_links(
    lookup: &impl Lookup,
    ty: ObjType,
    id: &ObjectId,
    raw: &[u8],
    known: Known<'_>,
) -> Result<Vec<ObjectId>> {
    let refuse = |reason: String| Error::Refused { id: *id, reason };
    let links = if ty == ObjType::Tree {
        let t = Tree::decode(raw).map_err(|e| refuse(format!("not a valid tree: {e}")))?;
        t.check()
            .map_err(|e| refuse(format!("invalid tree: {e}")))?;
        tree_links(&t)
    } else {
        object_links(ty, raw).map_err(|e| refuse(format!("not a valid {}: {e}", ty.as_str())))?
    };
    for (want, link) in &links {
        let found = match known(link) {
            Some(t) => Some(t),
            None => lookup.type_of(link)?,
        };
        match found {
            None => {
                return Err(refuse(format!(
                    "it links to {} {}, which is not stored yet",
                    want.as_str(),
                    link.short()
                )));
            }
            Some(found) => {
                let ok = found == *want || (is_content(*want) && is_content(found));
                if !ok {
                    return Err(refuse(format!(
                        "it links to {} as a {}, but that is a {}",
                        link.short(),
                        want.as_str(),
                        found.as_str()
                    )));
                }
            }
        }
    }
    Ok(links.into_iter().map(|(_, l)| l).collect())
}

fn is_content(t: ObjType) -> bool {
    matches!(t, ObjType::Blob | ObjType::Manifest)
}
