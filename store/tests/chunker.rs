//! Pins the chunker: a change in cut points would silently break dedupe across versions.

use hero_store::{ObjectId, chunk_boundaries};

use crate::common::pseudo_random;

#[test]
fn chunk_cut_points_are_pinned() {
    let data = pseudo_random(42, 3 << 20);
    let chunks: Vec<(usize, String)> = chunk_boundaries(&data)
        .into_iter()
        .map(|(off, len)| (len, ObjectId::of(&data[off..off + len]).short()))
        .collect();
    let expected: &[(usize, &str)] = &PINNED;
    let got: Vec<(usize, &str)> = chunks.iter().map(|(l, h)| (*l, h.as_str())).collect();
    assert_eq!(got, expected, "the FastCDC cut points changed");
}

/// Recorded from hero-store's chunker (FastCDC 2020, 32/128/512 KiB) on `pseudo_random(42, 3 MiB)`.
const PINNED: [(usize, &str); 21] = [
    (89029, "69f8fc75b653"),
    (146499, "53077ab25a15"),
    (165213, "97726cc645a2"),
    (261131, "0faabce5db9c"),
    (222367, "cf1dfc2c13df"),
    (43249, "f5ad6b4d49ef"),
    (155322, "9883bc17999e"),
    (135150, "d5ded62c4fb9"),
    (38048, "3cb34a3a4ef4"),
    (229038, "eb9e46098ef9"),
    (290402, "6f2d1d978ef3"),
    (85949, "26cc1e4c4872"),
    (92804, "ae248a56bf50"),
    (79659, "5b4455dae958"),
    (217630, "90e5ecea67e0"),
    (115175, "65b2b969c66c"),
    (123238, "2497e1997620"),
    (165371, "16fd126a6f46"),
    (158573, "4d211444bfac"),
    (152525, "6969b2563087"),
    (179356, "5d4e113d15f3"),
];
