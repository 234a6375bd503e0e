//! Keyspace benchmarks: lookups and inserts in one shard's database, at sizes where the
//! table no longer fits in cache (the case the network benchmarks exercise).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use libellule::storage::{Db, Value};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

fn filled(n: u64) -> Db {
    let mut db = Db::new();
    for i in 0..n {
        db.set(
            &key(i),
            Value::from_bytes(b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            0,
        );
    }
    db
}

fn bench_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("db_lookup");
    for n in [10_000u64, 1_000_000] {
        let mut db = filled(n);
        let mut rng = SmallRng::seed_from_u64(1);
        let keys: Vec<Vec<u8>> = (0..4096).map(|_| key(rng.gen_range(0..n))).collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(db.lookup(&keys[i], 0).is_some())
            })
        });
    }
    group.finish();
}

/// Sixteen lookups as a pipeline of GETs makes them, with and without the table's
/// prefetch of the whole batch first (what the connection loop does for pipelines).
/// Reported per batch of 16.
fn bench_lookup_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("db_lookup_batch16");
    let n = 1_000_000u64;
    let mut db = filled(n);
    let mut rng = SmallRng::seed_from_u64(3);
    let keys: Vec<Vec<u8>> = (0..1 << 16).map(|_| key(rng.gen_range(0..n))).collect();
    for prefetch in [false, true] {
        let name = if prefetch { "prefetched" } else { "plain" };
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 16) & 0xFFFF;
                let batch: Vec<&[u8]> = keys[i..i + 16].iter().map(|k| &k[..]).collect();
                if prefetch {
                    db.prefetch(&batch);
                }
                let mut found = 0;
                for k in batch {
                    found += db.lookup(k, 0).is_some() as u32;
                }
                black_box(found)
            })
        });
    }
    group.finish();
}

fn bench_set(c: &mut Criterion) {
    let mut group = c.benchmark_group("db_set_overwrite");
    let n = 1_000_000u64;
    let mut db = filled(n);
    let mut rng = SmallRng::seed_from_u64(2);
    let keys: Vec<Vec<u8>> = (0..4096).map(|_| key(rng.gen_range(0..n))).collect();
    group.bench_function("1000000", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 4095;
            db.set(&keys[i], Value::from_bytes(b"yyyyyyyyyyyyyyyy"), 0);
        })
    });
    group.finish();
}

fn bench_expire(c: &mut Criterion) {
    c.bench_function("active_expire_round_100k_volatile", |b| {
        let mut db = Db::new();
        for i in 0..100_000u64 {
            db.set(&key(i), Value::Int(i as i64), u64::MAX - 1);
        }
        b.iter(|| black_box(db.active_expire_round(1, 20)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_lookup, bench_lookup_batch, bench_set, bench_expire
}
criterion_main!(benches);
