//! RDB serialization benchmarks: DUMP-style encoding and RESTORE-style decoding of the
//! common value shapes, CRC64 and LZF throughput.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use libellule::storage::list::End;
use libellule::storage::rdb::{self, crc64, lzf, LoadLimits};
use libellule::storage::{hash, zset, Hash, List, Set, Value, ZSet};

fn values() -> Vec<(&'static str, Value)> {
    let mut l = List::new();
    for i in 0..10_000 {
        l.push(End::Right, format!("element:{i}").as_bytes(), -2);
    }
    let mut small_hash = Hash::new();
    for i in 0..50 {
        small_hash.set(
            format!("f{i}").as_bytes(),
            format!("{i}").as_bytes(),
            hash::Limits::default(),
        );
    }
    let mut big_hash = small_hash.clone();
    for i in 0..5000 {
        big_hash.set(
            format!("field:{i}").as_bytes(),
            b"value",
            hash::Limits::default(),
        );
    }
    let mut ints = Set::new_ints();
    for i in 0..500 {
        ints.add(format!("{}", i * 3).as_bytes(), 512);
    }
    let pairs: Vec<(Vec<u8>, f64)> = (0..5000)
        .map(|i| (format!("m{i}").into_bytes(), i as f64 * 0.5))
        .collect();
    vec![
        ("string_1k", Value::from_bytes(&vec![b'x'; 1024])),
        ("list_10k", Value::List(Box::new(l))),
        ("hash_listpack_50", Value::from_hash(small_hash)),
        ("hash_table_5k", Value::from_hash(big_hash)),
        ("intset_500", Value::Set(Box::new(ints))),
        (
            "zset_skiplist_5k",
            Value::ZSet(Box::new(ZSet::from_pairs(pairs, zset::Limits::default()))),
        ),
    ]
}

fn bench_dump_restore(c: &mut Criterion) {
    let lim = LoadLimits::default();
    let mut g = c.benchmark_group("rdb");
    for (name, v) in values() {
        g.bench_function(format!("dump/{name}"), |b| {
            b.iter(|| black_box(rdb::dump_payload(&v, false)))
        });
        let p = rdb::dump_payload(&v, false);
        g.bench_function(format!("restore/{name}"), |b| {
            b.iter(|| {
                let body = rdb::verify_payload(&p, false).unwrap();
                black_box(rdb::load_payload(body, &lim).unwrap())
            })
        });
    }
    g.finish();
}

fn bench_crc_lzf(c: &mut Criterion) {
    let data: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8 & 0x3f)
        .collect();
    let mut g = c.benchmark_group("rdb_bytes");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("crc64_1MiB", |b| {
        b.iter(|| black_box(crc64::crc64(0, &data)))
    });
    let text = "the quick brown fox jumps over the lazy dog ".repeat(24_000);
    let text = text.as_bytes();
    g.bench_function("lzf_compress_1MiB_text", |b| {
        b.iter(|| black_box(lzf::compress(text, text.len())))
    });
    let z = lzf::compress(text, text.len()).unwrap();
    g.bench_function("lzf_decompress_1MiB_text", |b| {
        b.iter(|| black_box(lzf::decompress(&z, text.len()).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench_dump_restore, bench_crc_lzf);
criterion_main!(benches);
