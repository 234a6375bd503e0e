//! List benchmarks: the quicklist's hot operations (push and pop at both ends, access by
//! index, range iteration, LREM-style removal) at the default node size (8 KiB) and with
//! a small count-capped node size.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use libellule::storage::list::{End, List};

fn filled(n: usize, fill: i64) -> List {
    let mut l = List::new();
    for i in 0..n {
        l.push(End::Right, format!("element:{i:08}").as_bytes(), fill);
    }
    l
}

fn bench_push_pop(c: &mut Criterion) {
    let mut group = c.benchmark_group("list_push_pop");
    for fill in [-2i64, 16] {
        for end in [End::Left, End::Right] {
            let name = format!("{end:?} fill={fill}");
            let mut l = filled(10_000, fill);
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    l.push(end, b"element:xxxxxxxx", fill);
                    black_box(l.pop(end))
                })
            });
        }
    }
    group.finish();
}

fn bench_fill_drain(c: &mut Criterion) {
    c.bench_function("list_rpush_lpop_1000", |b| {
        b.iter(|| {
            let mut l = List::new();
            for _ in 0..1000 {
                l.push(End::Right, b"a-queue-element", -2);
            }
            while let Some(v) = l.pop(End::Left) {
                black_box(v);
            }
        })
    });
}

fn bench_index(c: &mut Criterion) {
    let mut group = c.benchmark_group("list_lindex");
    for n in [1_000usize, 100_000] {
        let l = filled(n, -2);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(l.get(i))
            })
        });
    }
    group.finish();
}

fn bench_range(c: &mut Criterion) {
    let l = filled(100_000, -2);
    c.bench_function("list_lrange_100_at_50000", |b| {
        b.iter(|| {
            let mut total = 0;
            for e in l.iter_from(50_000).take(100) {
                total += e.len();
            }
            black_box(total)
        })
    });
}

fn bench_remove(c: &mut Criterion) {
    c.bench_function("list_lrem_1_of_10000", |b| {
        let base = filled(10_000, -2);
        b.iter_batched(
            || base.clone(),
            |mut l| black_box(l.remove_matching(b"element:00005000", 1, false)),
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group!(
    benches,
    bench_push_pop,
    bench_fill_drain,
    bench_index,
    bench_range,
    bench_remove
);
criterion_main!(benches);
