//! `FileReader`: chunks decoded one after another into reused buffers.

use std::io::Read;

use hero_store::Repo;

use crate::common::pseudo_random;

/// Compressible lines and random runs, so a file has chunks stored plain and compressed.
fn mixed(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 4096);
    let mut i = 0u64;
    while out.len() < len {
        if i.is_multiple_of(3) {
            out.extend_from_slice(&pseudo_random(seed + i, 300_000));
        } else {
            for k in 0..4000 {
                out.extend_from_slice(format!("line {i} {k} of a compressible text\n").as_bytes());
            }
        }
        i += 1;
    }
    out.truncate(len);
    out
}

fn read_all(repo: &Repo, id: &hero_store::ObjectId) -> Vec<u8> {
    let mut back = Vec::new();
    repo.open_file(id).unwrap().read_to_end(&mut back).unwrap();
    back
}

/// Plain, compressed and delta chunks read back right, in order (each chunk decoded into the
/// buffer of the one before) and at scattered offsets.
#[test]
fn a_reader_reads_plain_compressed_and_delta_chunks_back() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path().join("r.hero")).unwrap();
    let first = mixed(6 << 20, 1);
    let mut second = first.clone();
    for at in [100_000usize, 2_000_000, 4_500_000] {
        second[at..at + 64].copy_from_slice(&[b'x'; 64]);
    }
    let a = repo.write_file(&first[..], None).unwrap();
    // The first version's chunks that changed are re-stored as deltas against the second's.
    let b = repo.write_file(&second[..], Some(a.id)).unwrap();
    let stats = repo.stats().unwrap();
    assert!(stats.delta_objects > 0, "some chunks are deltas");
    assert!(
        stats.stored_bytes < stats.chunk_bytes,
        "some chunks are compressed: {} stored of {}",
        stats.stored_bytes,
        stats.chunk_bytes
    );
    assert!(read_all(&repo, &a.id) == first, "first version differs");
    assert!(read_all(&repo, &b.id) == second, "second version differs");
    let mut r = repo.open_file(&a.id).unwrap();
    for (pos, len) in [
        (5_000_000u64, 70_000usize),
        (0, 10),
        (2_000_010, 300_000),
        (99_990, 100),
        (first.len() as u64 - 5, 5),
    ] {
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = r.read_at(pos + done as u64, &mut buf[done..]).unwrap();
            assert!(n > 0);
            done += n;
        }
        let p = pos as usize;
        assert!(buf == first[p..p + len], "read_at({pos}, {len}) differs");
    }
    assert!(repo.verify(None).unwrap().is_ok());
}
