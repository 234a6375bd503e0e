//! Sorted set benchmarks: the hot operations of both encodings (ZADD of a new member,
//! ZSCORE, ZRANK, a ZRANGE window, a ZCOUNT-style score search, ZREM), at a listpack
//! size (128) and at skiplist sizes (10k, 200k). The skiplist's rank and range search
//! are O(log n), its member lookup O(1); compare the per-operation times across sizes.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use libellule::storage::zset::{Limits, ZSet};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn member(i: u64) -> Vec<u8> {
    format!("member:{i:010}").into_bytes()
}

/// A set of `n` members with pseudo-random scores, in the encoding Redis would pick.
fn filled(n: u64) -> ZSet {
    let mut z = ZSet::new();
    let lim = Limits::default();
    let mut rng = SmallRng::seed_from_u64(3);
    for i in 0..n {
        z.insert(&member(i), rng.gen_range(0..1_000_000) as f64 / 8.0, lim);
    }
    z
}

fn sizes() -> [u64; 3] {
    [128, 10_000, 200_000]
}

fn bench_reads(c: &mut Criterion) {
    let mut group = c.benchmark_group("zset_read");
    for n in sizes() {
        let z = filled(n);
        let mut rng = SmallRng::seed_from_u64(1);
        let probes: Vec<Vec<u8>> = (0..1024).map(|_| member(rng.gen_range(0..n))).collect();
        let mut i = 0;
        group.bench_with_input(
            BenchmarkId::new(format!("zscore/{}", z.encoding()), n),
            &n,
            |b, _| {
                b.iter(|| {
                    i = (i + 1) % probes.len();
                    black_box(z.score(&probes[i]))
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new(format!("zrank/{}", z.encoding()), n),
            &n,
            |b, _| {
                b.iter(|| {
                    i = (i + 1) % probes.len();
                    black_box(z.rank(&probes[i]))
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new(format!("zrange_10_at_middle/{}", z.encoding()), n),
            &n,
            |b, _| b.iter(|| black_box(z.iter_from(n as usize / 2, false).take(10).count())),
        );
        group.bench_with_input(
            BenchmarkId::new(format!("zcount_search/{}", z.encoding()), n),
            &n,
            |b, _| {
                b.iter(|| {
                    i = (i + 1) % 1000;
                    let x = (i * 100) as f64;
                    black_box(z.count_prefix(|s, _| s < x))
                })
            },
        );
    }
    group.finish();
}

fn bench_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("zset_write");
    let lim = Limits::default();
    for n in sizes() {
        let base = filled(n);
        let mut z = base.clone();
        let mut next = n;
        let mut rng = SmallRng::seed_from_u64(2);
        // Insert a new member then remove it, so the size stays n.
        group.bench_with_input(
            BenchmarkId::new(format!("zadd_new+zrem/{}", z.encoding()), n),
            &n,
            |b, _| {
                b.iter(|| {
                    next += 1;
                    let m = member(next);
                    z.insert(&m, rng.gen_range(0..1_000_000) as f64 / 8.0, lim);
                    black_box(z.remove(&m))
                })
            },
        );
        let mut z = base.clone();
        group.bench_with_input(
            BenchmarkId::new(format!("zincrby_existing/{}", z.encoding()), n),
            &n,
            |b, _| {
                b.iter(|| {
                    let m = member(rng.gen_range(0..n));
                    let s = z.score(&m).unwrap_or(0.0);
                    z.set_score(&m, s + 1.0);
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench_reads, bench_writes
}
criterion_main!(benches);
