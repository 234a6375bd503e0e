//! Set benchmarks: the hot operations of both encodings (SADD, SISMEMBER, SREM + SADD
//! churn, SPOP/SRANDMEMBER's random member) and the set algebra that SINTER, SUNION and
//! SDIFF run, on the storage type directly.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use libellule::storage::Set;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn member(i: u64) -> Vec<u8> {
    format!("member:{i:08}").into_bytes()
}

/// A hashtable set of `n` string members.
fn table(n: u64) -> Set {
    let mut s = Set::new_for(b"x");
    for i in 0..n {
        s.add(&member(i), 512);
    }
    s
}

/// An intset of `n` integers (every third one, so that lookups also miss).
fn ints(n: u64) -> Set {
    let mut s = Set::new_ints();
    for i in 0..n {
        s.add((i * 3).to_string().as_bytes(), usize::MAX);
    }
    s
}

fn bench_add(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_add");
    group.bench_function("intset_512", |b| {
        let items: Vec<Vec<u8>> = (0..512)
            .map(|i: u64| (i * 7 % 512).to_string().into_bytes())
            .collect();
        b.iter(|| {
            let mut s = Set::new_ints();
            for m in &items {
                s.add(m, 512);
            }
            black_box(s.len())
        })
    });
    group.bench_function("hashtable_10000", |b| {
        let items: Vec<Vec<u8>> = (0..10_000).map(member).collect();
        b.iter(|| {
            let mut s = Set::new_for(b"x");
            for m in &items {
                s.add(m, 512);
            }
            black_box(s.len())
        })
    });
    group.finish();
}

fn bench_contains(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_contains");
    for n in [512u64, 1_000_000] {
        let s = table(n);
        let mut rng = SmallRng::seed_from_u64(1);
        let probes: Vec<Vec<u8>> = (0..4096).map(|_| member(rng.gen_range(0..2 * n))).collect();
        group.bench_with_input(BenchmarkId::new("hashtable", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(s.contains(&probes[i]))
            })
        });
    }
    for n in [512u64, 100_000] {
        let s = ints(n);
        let mut rng = SmallRng::seed_from_u64(2);
        let probes: Vec<Vec<u8>> = (0..4096)
            .map(|_| rng.gen_range(0..3 * n).to_string().into_bytes())
            .collect();
        group.bench_with_input(BenchmarkId::new("intset", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(s.contains(&probes[i]))
            })
        });
    }
    group.finish();
}

fn bench_churn_and_random(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_churn");
    let n = 100_000u64;
    let mut s = table(n);
    let mut rng = SmallRng::seed_from_u64(3);
    group.bench_function("srem_sadd_100000", |b| {
        b.iter(|| {
            let m = member(rng.gen_range(0..n));
            s.remove(&m);
            black_box(s.add(&m, 512))
        })
    });
    group.bench_function("random_100000", |b| {
        b.iter(|| black_box(s.random(&mut rng).with_bytes(|b| b.len())))
    });
    group.bench_function("pop_add_100000", |b| {
        b.iter(|| {
            let p = s.pop_random(&mut rng).as_member().to_vec();
            black_box(s.add(&p, 512))
        })
    });
    group.finish();
}

fn bench_algebra(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_algebra");
    let a = table(10_000);
    let mut b_set = Set::new_for(b"x");
    for i in 5_000..15_000 {
        b_set.add(&member(i), 512);
    }
    group.bench_function("intersect_10000", |bch| {
        bch.iter(|| black_box(a.iter().filter(|m| b_set.contains_member(*m)).count()))
    });
    group.bench_function("union_10000", |bch| {
        bch.iter(|| {
            let mut u = Set::new_ints();
            for m in a.iter().chain(b_set.iter()) {
                u.add_member(m, 512);
            }
            black_box(u.len())
        })
    });
    let x = ints(512);
    let y = ints(400);
    group.bench_function("intersect_intsets_512", |bch| {
        bch.iter(|| black_box(y.iter().filter(|m| x.contains_member(*m)).count()))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_add,
    bench_contains,
    bench_churn_and_random,
    bench_algebra
);
criterion_main!(benches);
