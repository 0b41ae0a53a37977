//! Measures an upkeep pass at scale on a real redb file (ignored by default; run with
//! `cargo test --release --lib store_bounds::bench -- --ignored --nocapture`): the plan over
//! N stored resources, removing a tenth of them, and compacting after half are gone.

use std::time::Instant;

use super::plan::{self, Usage};
use crate::config::Ttls;
use crate::domain::{MatchId, Signature};
use crate::encoding::Encoded;
use crate::store::Store;

fn fill(store: &Store, n: u64, body: &[u8]) {
    let stored = Encoded::of(body).unwrap();
    for chunk in (1..=n).collect::<Vec<_>>().chunks(1_000) {
        store
            .write(|tx| {
                for id in chunk {
                    let sig = Signature::Match(MatchId::new(*id).unwrap());
                    tx.put_entry(&sig, &stored, None, 1_000 + *id as i64)?;
                }
                Ok(())
            })
            .unwrap();
    }
}

fn remove(store: &Store, sigs: &[Signature]) {
    for chunk in sigs.chunks(1_000) {
        store
            .write(|tx| {
                for sig in chunk {
                    tx.remove_entry(sig)?;
                }
                Ok(())
            })
            .unwrap();
    }
}

#[test]
#[ignore = "a measurement, not a check: run it by hand"]
fn an_upkeep_pass_at_scale() {
    for n in [10_000u64, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bench.redb"), Ttls::default()).unwrap();
        let body = vec![b'x'; 2_000];
        let started = Instant::now();
        fill(&store, n, &body);
        let filled = started.elapsed();
        let file = store.file_size();

        let started = Instant::now();
        let residents = store.residents().unwrap();
        let usage = Usage::from_access(store.access_times().unwrap());
        let plan = plan::plan(&residents, &usage, i64::MAX / 2, None);
        let planned = started.elapsed();

        let tenth = &plan.by_size[..(n / 10) as usize];
        let started = Instant::now();
        remove(&store, tenth);
        let removed = started.elapsed();

        remove(&store, &plan.by_size[(n / 10) as usize..(n / 2) as usize]);
        let before = store.file_size();
        let compacted = store.compact().unwrap();
        println!(
            "n={n}: fill {filled:?}, file {file} B; plan {planned:?}; remove {} in {removed:?}; \
             after removing half: file {before} B, compacted to {} B in {:?}",
            tenth.len(),
            compacted.after_bytes,
            compacted.took
        );
    }
}
