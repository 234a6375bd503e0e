//! Parser and reply-writer micro-benchmarks: a pipeline of 16 multibulk
//! requests (`SET key:NNNN <100-byte value>` / `GET key:NNNN`) and 16 bulk
//! replies.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use libellule::protocol::parse::{Limits, Parser};
use libellule::protocol::reply::ReplyWriter;

const VALUE: [u8; 100] = [b'v'; 100];

fn push_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// 16 requests; `set_every` = 1 gives all SETs, 2 alternates SET/GET, 0 all GETs.
fn pipeline(set_every: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..16 {
        let key = format!("key:{:04}", i);
        if set_every != 0 && i % set_every == 0 {
            out.extend_from_slice(b"*3\r\n");
            push_bulk(&mut out, b"SET");
            push_bulk(&mut out, key.as_bytes());
            push_bulk(&mut out, &VALUE);
        } else {
            out.extend_from_slice(b"*2\r\n");
            push_bulk(&mut out, b"GET");
            push_bulk(&mut out, key.as_bytes());
        }
    }
    out
}

fn parse_pipeline(p: &mut Parser, input: &[u8]) -> usize {
    let mut off = 0;
    let mut args = 0;
    while let Ok(Some(n)) = p.parse(&input[off..]) {
        args += p.args(&input[off..off + n]).len();
        off += n;
    }
    args
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_pipeline16");
    for (name, set_every) in [("set", 1), ("get", 0), ("mixed", 2)] {
        let input = pipeline(set_every);
        let mut p = Parser::new(Limits::default());
        assert_eq!(
            parse_pipeline(&mut p, &input),
            if set_every == 1 {
                48
            } else if set_every == 0 {
                32
            } else {
                40
            }
        );
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| parse_pipeline(&mut p, black_box(&input)))
        });
    }
    g.finish();
}

fn bench_reply(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    g.throughput(Throughput::Elements(16));
    let mut buf = Vec::with_capacity(4096);
    g.bench_function("bulk16", |b| {
        b.iter(|| {
            buf.clear();
            let mut w = ReplyWriter::new(&mut buf, false);
            for _ in 0..16 {
                w.bulk(black_box(&VALUE));
            }
            buf.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_parse, bench_reply);
criterion_main!(benches);
