//! Stream benchmarks on the storage type directly: appends (XADD's work), range reads
//! from the start and the end (XRANGE / XREVRANGE / XREAD), point lookups (XCLAIM's
//! existence checks), XDEL tombstones, and trimming by length (XTRIM / XADD MAXLEN).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use libellule::storage::stream::{NodeLimits, Stream, StreamId, Trim};

const FIELDS: [&[u8]; 4] = [b"sensor", b"temperature-21.5", b"unit", b"celsius"];

/// A stream of `n` entries with IDs `1-0 ..= n-0`.
fn filled(n: u64) -> Stream {
    let mut s = Stream::new();
    for i in 1..=n {
        s.append(
            &FIELDS,
            Some((StreamId::new(i, 0), true)),
            0,
            NodeLimits::default(),
        )
        .expect("increasing");
    }
    s
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_append");
    g.bench_function("auto_id_10000", |b| {
        b.iter(|| {
            let mut s = Stream::new();
            for i in 0..10_000u64 {
                s.append(
                    &FIELDS,
                    None,
                    1_700_000_000_000 + i / 10,
                    NodeLimits::default(),
                )
                .expect("auto");
            }
            black_box(s.length)
        })
    });
    g.finish();
}

fn bench_range(c: &mut Criterion) {
    let s = filled(100_000);
    let mut g = c.benchmark_group("stream_range");
    g.bench_function("first_10_of_100000", |b| {
        b.iter(|| {
            let mut n = 0;
            s.range(StreamId::MIN, StreamId::MAX, false, 10, |e| n += e.len());
            black_box(n)
        })
    });
    g.bench_function("middle_100_of_100000", |b| {
        b.iter(|| {
            let mut n = 0;
            s.range(StreamId::new(50_000, 0), StreamId::MAX, false, 100, |e| {
                n += e.items().map(|x| x.len()).sum::<usize>()
            });
            black_box(n)
        })
    });
    g.bench_function("last_10_rev_of_100000", |b| {
        b.iter(|| {
            let mut n = 0;
            s.range(StreamId::MIN, StreamId::MAX, true, 10, |e| n += e.len());
            black_box(n)
        })
    });
    g.bench_function("point_lookup", |b| {
        let mut i = 1u64;
        b.iter(|| {
            i = i * 7919 % 100_000 + 1;
            black_box(s.contains(StreamId::new(i, 0)))
        })
    });
    g.finish();
}

fn bench_delete_trim(c: &mut Criterion) {
    let base = filled(10_000);
    let mut g = c.benchmark_group("stream_delete_trim");
    g.bench_function("xdel_every_other_of_10000", |b| {
        b.iter(|| {
            let mut s = base.clone();
            for i in (1..=10_000u64).step_by(2) {
                s.delete(StreamId::new(i, 0));
            }
            black_box(s.length)
        })
    });
    g.bench_function("trim_maxlen_exact_to_1000", |b| {
        b.iter(|| {
            let mut s = base.clone();
            black_box(s.trim(Trim::MaxLen(1000), false, 0))
        })
    });
    g.bench_function("trim_maxlen_approx_to_1000", |b| {
        b.iter(|| {
            let mut s = base.clone();
            black_box(s.trim(Trim::MaxLen(1000), true, 0))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_append, bench_range, bench_delete_trim);
criterion_main!(benches);
