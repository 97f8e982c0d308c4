//! Where a clone's bytes go: `HERO_ANALYZE_REPO=path cargo test --release -p hero-sync
//! --lib analyze -- --ignored --nocapture`.
use super::pack::*;
use super::plan::*;
use super::*;
use std::collections::BTreeMap;

fn zlen(data: &[u8], level: i32, wlog: u32) -> usize {
    zlen_ldm(data, level, wlog, false)
}

fn zlen_ldm(data: &[u8], level: i32, wlog: u32, ldm: bool) -> usize {
    let mut raw = zstd::stream::raw::Encoder::new(level).expect("encoder");
    raw.set_parameter(zstd::zstd_safe::CParameter::WindowLog(wlog))
        .expect("window");
    raw.set_parameter(zstd::zstd_safe::CParameter::EnableLongDistanceMatching(ldm))
        .expect("ldm");
    let mut z = zstd::stream::write::Encoder::with_encoder(Vec::new(), raw);
    z.write_all(data).expect("write");
    z.finish().expect("finish").len()
}

#[test]
#[ignore]
fn clone_bytes() {
    let path = std::env::var("HERO_ANALYZE_REPO")
        .expect("HERO_ANALYZE_REPO names the repository to analyse (a diagnostic, run by hand)");
    let repo = Repo::open(&path).expect("open");
    let view = repo.view().expect("view");
    let mut wants: Vec<ObjectId> = view.branches().expect("b").iter().map(|b| b.1).collect();
    wants.extend(view.tags().expect("t").iter().map(|t| t.1.id()));
    let t = Instant::now();
    let (mut plan, mut lister) = plan(&view, &wants, &[], &[]).expect("plan");
    let mut queue = VecDeque::new();
    lister
        .fill(&view, &mut plan, &mut queue, SMALL_TRANSFER + 1)
        .expect("fill");
    let mut sent = Sent::default();
    let level = std::env::var("HERO_ANALYZE_LEVEL")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(3);
    let mut packer = Packer::new(level).expect("packer");
    let mut msgs = Vec::new();
    // (type, form) -> (count, entry bytes, stream of entries)
    let mut cat: BTreeMap<(&str, u8), (u64, u64, Vec<u8>)> = BTreeMap::new();
    let mut bulk = 0u64;
    let mut whole = Vec::new();
    let mut next = Vec::new();
    loop {
        next.clear();
        next_objects(&view, &mut plan, &mut lister, &mut queue, &sent, &mut next).expect("next");
        if next.is_empty() {
            break;
        }
        for &(ty, id) in &next {
            let e = encode_entry(&view, ty, &id, &plan, &sent).expect("encode");
            sent.at.insert(id, sent.next);
            sent.next += 1;
            if e.bytes[1] == form::ZSTD && ty == ObjType::Blob {
                let (_, raw) = view.raw_object(&id).expect("raw").expect("present");
                whole.extend_from_slice(&raw);
            }
            let c = cat.entry((ty.as_str(), e.bytes[1])).or_default();
            c.0 += 1;
            c.1 += e.bytes.len() as u64;
            if e.bulk {
                bulk += e.bytes.len() as u64;
            } else {
                c.2.extend_from_slice(&e.bytes);
            }
            packer.add(e, &mut msgs).expect("add");
        }
    }
    packer.cut(&mut msgs).expect("cut");
    let total: usize = msgs.iter().map(|m| m.0.len() + 4).sum();
    println!(
        "objects {} pack {} bytes (level {level}) in {:?}; bulk entries {bulk}",
        sent.next,
        total,
        t.elapsed()
    );
    println!("type      form  count  entry-bytes  alone-z3");
    for ((ty, f), (n, b, st)) in &cat {
        println!("{ty:9} {f:4} {n:6} {b:12} {:9}", zlen(st, 3, 23));
    }
    println!("whole blobs raw {}", whole.len());
    for (l, w, ldm) in [
        (3, 23, false),
        (3, 27, true),
        (5, 27, true),
        (9, 27, true),
        (3, 25, true),
        (19, 27, true),
    ] {
        let t = Instant::now();
        let n = zlen_ldm(&whole, l, w, ldm);
        println!("  level {l} window {w} ldm {ldm}: {n} in {:?}", t.elapsed());
    }
}
