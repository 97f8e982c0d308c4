//! `MemoryBudget`: what a repository handle may keep in memory.

use hero_store::{MemoryBudget, Repo};

use crate::common::pseudo_random;

#[test]
fn a_large_file_is_written_in_transactions_no_larger_than_the_write_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.hero");
    drop(Repo::init(&path).unwrap());
    let data = pseudo_random(7, 6 << 20);

    let roomy = Repo::open(&path).unwrap();
    assert_eq!(roomy.budget(), MemoryBudget::DEFAULT);
    let before = roomy.generation().unwrap();
    let first = roomy.write_file(&data[..], None).unwrap();
    assert_eq!(
        roomy.generation().unwrap() - before,
        1,
        "6 MiB fit one default batch"
    );
    drop(roomy);

    let budget = MemoryBudget {
        write_batch: 1 << 20,
        ..MemoryBudget::RESIDENT
    };
    let tight = Repo::open_with_budget(&path, budget).unwrap();
    assert_eq!(tight.budget(), budget);
    let changed: Vec<u8> = data.iter().map(|b| b.wrapping_add(1)).collect();
    let before = tight.generation().unwrap();
    let second = tight.write_file(&changed[..], Some(first.id)).unwrap();
    let transactions = tight.generation().unwrap() - before;
    assert!(
        transactions >= 5,
        "6 MiB in 1 MiB batches took {transactions} transactions"
    );
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut tight.open_file(&second.id).unwrap(), &mut back).unwrap();
    assert_eq!(back, changed);
    assert!(tight.verify(None).unwrap().is_ok());
}
