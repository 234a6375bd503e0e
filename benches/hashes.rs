//! Hash benchmarks: the hot operations of both encodings on the storage type directly
//! (HSET of new fields, HGET hits and misses, HSET overwrite, HDEL + HSET churn, HGETALL's
//! walk), for small packed hashes and for tables up to a million fields.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use libellule::storage::hash::{Hash, Limits};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn field(i: u64) -> Vec<u8> {
    format!("field:{i}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    format!("value:{i}").into_bytes()
}

/// A hash of `n` fields under the default limits (packed up to 512 fields).
fn hash(n: u64) -> Hash {
    let mut h = Hash::new();
    for i in 0..n {
        h.set(&field(i), &value(i), Limits::default());
    }
    h
}

fn bench_set(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash_set");
    for n in [3u64, 128, 10_000] {
        let items: Vec<(Vec<u8>, Vec<u8>)> = (0..n).map(|i| (field(i), value(i))).collect();
        group.bench_with_input(BenchmarkId::new("new_fields", n), &n, |b, _| {
            b.iter(|| {
                let mut h = Hash::new();
                for (f, v) in &items {
                    h.set(f, v, Limits::default());
                }
                black_box(h.len())
            })
        });
    }
    for n in [128u64, 1_000_000] {
        let mut h = hash(n);
        let mut rng = SmallRng::seed_from_u64(4);
        group.bench_with_input(BenchmarkId::new("overwrite", n), &n, |b, _| {
            b.iter(|| {
                let i = rng.gen_range(0..n);
                black_box(h.set(&field(i), b"value:other", Limits::default()))
            })
        });
    }
    group.finish();
}

fn bench_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash_get");
    for n in [3u64, 128, 1_000_000] {
        let h = hash(n);
        let mut rng = SmallRng::seed_from_u64(1);
        let probes: Vec<Vec<u8>> = (0..4096).map(|_| field(rng.gen_range(0..2 * n))).collect();
        group.bench_with_input(BenchmarkId::new(h.encoding(), n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(h.get(&probes[i]).map(|v| v.len()))
            })
        });
    }
    group.finish();
}

fn bench_churn_and_walk(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash_churn");
    let n = 100_000u64;
    let mut h = hash(n);
    let mut rng = SmallRng::seed_from_u64(3);
    group.bench_function("hdel_hset_100000", |b| {
        b.iter(|| {
            let i = rng.gen_range(0..n);
            h.remove(&field(i));
            black_box(h.set(&field(i), &value(i), Limits::default()))
        })
    });
    group.bench_function("walk_100000", |b| {
        b.iter(|| black_box(h.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>()))
    });
    group.finish();
}

criterion_group!(benches, bench_set, bench_get, bench_churn_and_walk);
criterion_main!(benches);
