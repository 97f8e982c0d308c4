//! Moving objects between repositories: what an object links to, its canonical bytes, and a
//! store that verifies everything offered to it.
//!
//! An object is accepted only when its bytes match its id, decode as the type claimed, and
//! every object it links to is already present. Receivers that store objects children first
//! therefore keep one invariant: an object present means everything it reaches is present,
//! which is what lets an interrupted transfer resume by asking only for what is missing.

use crate::changes::Batch;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::{Commit, EntryKind, ManifestNode, Tag, Tree};
use crate::record::ObjType;
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
        ObjType::Tree => {
            let t = Tree::decode(raw).map_err(bad)?;
            t.entries
                .iter()
                .filter_map(|e| match e.kind {
                    EntryKind::Gitlink => None,
                    EntryKind::Dir => Some((ObjType::Tree, e.id)),
                    // A file is a blob when small, a manifest when large: either is content.
                    EntryKind::File | EntryKind::Executable | EntryKind::Symlink => {
                        Some((content_type(e.size), e.id))
                    }
                })
                .collect()
        }
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
            n.children.iter().map(|(id, _)| (child, *id)).collect()
        }
    })
}

/// The type of a file's content object given its size: small files are one blob.
fn content_type(size: u64) -> ObjType {
    if size <= crate::file::SMALL_FILE_MAX as u64 {
        ObjType::Blob
    } else {
        ObjType::Manifest
    }
}

impl View {
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

impl Batch<'_, '_> {
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
        let links = object_links(ty, raw)
            .map_err(|e| refuse(format!("not a valid {}: {e}", ty.as_str())))?;
        if ty == ObjType::Tree {
            let t = Tree::decode(raw).map_err(|e| refuse(e.to_string()))?;
            t.check()
                .map_err(|e| refuse(format!("invalid tree: {e}")))?;
        }
        for (want, link) in &links {
            match crate::db::object_type(&self.w.objects, link)? {
                None => {
                    return Err(refuse(format!(
                        "it links to {} {}, which is not stored yet",
                        want.as_str(),
                        link.short()
                    )));
                }
                Some(found) => {
                    let ok = found == *want
                        || (matches!(want, ObjType::Blob | ObjType::Manifest)
                            && matches!(found, ObjType::Blob | ObjType::Manifest));
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
        if ty == ObjType::Manifest {
            let node = ManifestNode::decode(raw).map_err(|e| refuse(e.to_string()))?;
            let (hash, _len) = self.hash_chunks(&node, id)?;
            if hash != *id {
                return Err(refuse("its chunks do not hash to its id".to_owned()));
            }
            self.w.put(ty, id, raw, Some(&payload))?;
        } else {
            self.w.put(ty, id, raw, None)?;
        }
        if let Some(p) = previous {
            self.w.deltify(&p, id)?;
        }
        Ok(true)
    }

    /// Streams a chunk tree's content through BLAKE3, checking the recorded sizes.
    fn hash_chunks(&self, root: &ManifestNode, id: &ObjectId) -> Result<(ObjectId, u64)> {
        let mut hasher = blake3::Hasher::new();
        let mut total = 0u64;
        let mut stack: Vec<(ManifestNode, usize)> = vec![(root.clone(), 0)];
        while let Some((node, i)) = stack.pop() {
            let Some(&(child, len)) = node.children.get(i) else {
                continue;
            };
            let level = node.level;
            stack.push((node, i + 1));
            let (ty, bytes) = self.w.get_raw(&child)?;
            if level == 0 {
                if ty != ObjType::Blob || bytes.len() as u64 != len {
                    return Err(Error::Refused {
                        id: *id,
                        reason: format!("chunk {} has the wrong type or size", child.short()),
                    });
                }
                hasher.update(&bytes);
                total += len;
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
        Ok((ObjectId(*hasher.finalize().as_bytes()), total))
    }
}
