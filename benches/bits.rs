//! Bitmap and HyperLogLog benchmarks: the hot operations on the storage functions
//! directly (PFADD into sparse and dense sketches, PFCOUNT's estimate, the PFMERGE
//! union, BITCOUNT's popcount, BITPOS's scan and BITFIELD's field access).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use libellule::commands::bitmaps::{count_bits, find_bit, get_unsigned, set_field};
use libellule::storage::hyperloglog as hll;

fn elements(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("element:{i}").into_bytes())
        .collect()
}

fn bench_hll(c: &mut Criterion) {
    let els = elements(100_000);
    c.bench_function("pfadd_sparse_200", |b| {
        b.iter(|| {
            let mut s = hll::new_sparse();
            for e in &els[..200] {
                let _ = hll::add(&mut s, e, 3000, &mut 0);
            }
            black_box(s.len())
        })
    });
    let mut dense = hll::new_sparse();
    hll::to_dense(&mut dense).unwrap();
    let mut i = 0;
    c.bench_function("pfadd_dense_one", |b| {
        b.iter(|| {
            i = (i + 1) % els.len();
            black_box(hll::add(&mut dense, &els[i], 3000, &mut 0).unwrap())
        })
    });
    c.bench_function("murmur64a_16b", |b| {
        b.iter(|| black_box(hll::murmur64a(black_box(b"0123456789abcdef"), 0xadc83b19)))
    });
    c.bench_function("pfcount_dense", |b| {
        b.iter(|| black_box(hll::count(&dense).unwrap()))
    });
    let mut sparse = hll::new_sparse();
    for e in &els[..500] {
        let _ = hll::add(&mut sparse, e, 3000, &mut 0);
    }
    c.bench_function("pfcount_sparse_500", |b| {
        b.iter(|| black_box(hll::count(&sparse).unwrap()))
    });
    c.bench_function("pfmerge_dense_into_union", |b| {
        b.iter(|| {
            let mut max = vec![0u8; hll::REGISTERS];
            hll::merge_into(&mut max, &dense).unwrap();
            hll::merge_into(&mut max, &sparse).unwrap();
            black_box(hll::estimate(&hll::histogram_raw(&max)))
        })
    });
}

fn bench_bitmaps(c: &mut Criterion) {
    let buf: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    c.bench_function("bitcount_1mb", |b| {
        b.iter(|| black_box(count_bits(&buf, 3, (buf.len() as u64) * 8 - 5)))
    });
    let mut ones = vec![0xffu8; 1 << 20];
    *ones.last_mut().unwrap() = 0xfe;
    c.bench_function("bitpos_zero_1mb", |b| {
        b.iter(|| black_box(find_bit(&ones, false, 0, (ones.len() as u64) * 8 - 1)))
    });
    let mut field = vec![0u8; 4096];
    let mut off = 0u64;
    c.bench_function("bitfield_set_get_u13", |b| {
        b.iter(|| {
            off = (off + 13) % 32000;
            set_field(&mut field, off, 13, off);
            black_box(get_unsigned(&field, off, 13))
        })
    });
}

criterion_group!(benches, bench_hll, bench_bitmaps);
criterion_main!(benches);
