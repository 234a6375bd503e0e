//! Per-command latency histograms (Redis 7's `latency-tracking`).
//!
//! Each shard keeps, per command, a log-linear histogram of how long the command ran on
//! that shard: four buckets per power of two of nanoseconds (so a bucket's bounds are
//! within 25% of each other), from 32 ns up to about 17 s. Recording is an index
//! computation and an increment in shard-local memory: no lock, no atomic, no
//! allocation once the command's histogram exists.
//!
//! The histograms feed three readers: INFO `commandstats` (`usec`, `usec_per_call`),
//! INFO `latencystats` (the percentiles of `latency-tracking-info-percentiles`, reported
//! as the upper bound of the bucket holding them, in microseconds) and the Prometheus
//! metric `libellule_command_latency_seconds` (cumulative buckets at every power of two,
//! see [`Histogram::prometheus_buckets`]). The clock is [`super::clock`];
//! `CONFIG SET latency-tracking no` turns its reads off.

/// Sub-buckets per power of two.
const SUB: usize = 4;
/// Durations below `2^MIN_EXP` ns share bucket 0.
const MIN_EXP: u32 = 5;
/// Durations of `2^MAX_EXP` ns or more share the last bucket.
const MAX_EXP: u32 = 34;
/// Number of buckets.
pub const BUCKETS: usize = 2 + (MAX_EXP - MIN_EXP) as usize * SUB;

/// One command's histogram on one shard.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    /// Sum of the recorded durations, in nanoseconds.
    pub total_ns: u64,
    /// Number of recorded durations.
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: [0; BUCKETS],
            total_ns: 0,
            count: 0,
        }
    }
}

/// The bucket of a duration of `ns` nanoseconds: no branch, no division (the exponent
/// from `leading_zeros`, the two bits after the leading one for the sub-bucket, and a
/// clamp into range, which compiles to conditional moves).
#[inline]
fn bucket_of(ns: u64) -> usize {
    // From 16 ns up the formula below is defined (exp >= 4, so exp - 2 >= 2); durations
    // under 32 ns give an index <= 0, clamped to bucket 0.
    let v = ns.max(1 << (MIN_EXP - 1));
    let exp = 63 - v.leading_zeros() as i64;
    let sub = ((v >> (exp - 2)) & (SUB as u64 - 1)) as i64;
    let i = 1 + (exp - MIN_EXP as i64) * SUB as i64 + sub;
    i.clamp(0, BUCKETS as i64 - 1) as usize
}

/// The exclusive upper bound, in nanoseconds, of bucket `i` (`u64::MAX` for the last).
fn upper_bound(i: usize) -> u64 {
    if i == 0 {
        return 1 << MIN_EXP;
    }
    if i == BUCKETS - 1 {
        return u64::MAX;
    }
    let exp = MIN_EXP + ((i - 1) / SUB) as u32;
    let sub = ((i - 1) % SUB) as u64;
    (SUB as u64 + sub + 1) << (exp - 2)
}

impl Histogram {
    /// Records one duration.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        // bucket_of is below BUCKETS: the compiler drops the bounds check.
        self.counts[bucket_of(ns)] += 1;
        self.total_ns = self.total_ns.saturating_add(ns);
        self.count += 1;
    }

    /// Adds `other`'s counts into this one (summing shards).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total_ns = self.total_ns.saturating_add(other.total_ns);
        self.count += other.count;
    }

    /// The duration, in nanoseconds, below which `pct` percent of the recorded ones fall,
    /// rounded up to its bucket's bound (0 when nothing was recorded).
    pub fn percentile_ns(&self, pct: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((pct / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_bound(i).min(1 << MAX_EXP);
            }
        }
        1 << MAX_EXP
    }

    /// Cumulative counts at the Prometheus bucket bounds: for each power of two of
    /// nanoseconds from `2^(MIN_EXP+1)` to `2^MAX_EXP`, (bound in seconds, count of
    /// durations below it). The `+Inf` bucket is [`Histogram::count`].
    pub fn prometheus_buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut cumulative = self.counts[0];
        let mut next = 1usize;
        (MIN_EXP + 1..=MAX_EXP).map(move |exp| {
            // Buckets whose upper bound is at most 2^exp.
            let last = (exp - MIN_EXP) as usize * SUB;
            while next <= last {
                cumulative += self.counts[next];
                next += 1;
            }
            ((1u64 << exp) as f64 / 1e9, cumulative)
        })
    }
}

/// The Prometheus `le` label of a bound in seconds, in plain decimal notation.
pub fn le_label(seconds: f64) -> String {
    let s = format!("{seconds:.9}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_bounded() {
        let mut last = 0;
        for ns in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            33,
            127,
            128,
            129,
            159,
            160,
            255,
            256,
            1000,
            1 << 20,
            1 << 33,
        ] {
            let b = bucket_of(ns);
            assert!(b >= last, "{ns}");
            last = b;
            assert!(ns < upper_bound(b), "{ns} < bound of {b}");
            if b > 0 {
                assert!(ns >= upper_bound(b - 1), "{ns} >= bound of {}", b - 1);
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        for i in 1..BUCKETS - 1 {
            assert_eq!(bucket_of(upper_bound(i) - 1), i);
            assert_eq!(bucket_of(upper_bound(i)), i + 1);
        }
    }

    #[test]
    fn percentiles_and_prometheus_buckets() {
        let mut h = Histogram::default();
        for _ in 0..99 {
            h.record(1_000); // 1 us
        }
        h.record(1_000_000); // 1 ms
        assert_eq!(h.count, 100);
        assert_eq!(h.total_ns, 99_000 + 1_000_000);
        let p50 = h.percentile_ns(50.0);
        assert!((1_000..=1_280).contains(&p50), "{p50}");
        assert_eq!(h.percentile_ns(99.0), p50);
        let p100 = h.percentile_ns(100.0);
        assert!((1_000_000..=1_250_000).contains(&p100), "{p100}");
        let b: Vec<(f64, u64)> = h.prometheus_buckets().collect();
        assert_eq!(b.len(), (MAX_EXP - MIN_EXP) as usize);
        // 2^10 ns = 1.024 us holds the 99 fast ones; 2^20 ns = 1.05 ms holds all.
        let at = |secs: f64| b.iter().find(|(s, _)| (*s - secs).abs() < 1e-12).unwrap().1;
        assert_eq!(at(512e-9), 0);
        assert_eq!(at(1024e-9), 99);
        assert_eq!(at(524288e-9), 99);
        assert_eq!(at(1048576e-9), 100);
        assert!(b.windows(2).all(|w| w[0].1 <= w[1].1));
        let mut sum = Histogram::default();
        sum.merge(&h);
        sum.merge(&h);
        assert_eq!(sum.count, 200);
        assert_eq!(sum.percentile_ns(50.0), p50);
    }

    #[test]
    fn labels() {
        assert_eq!(le_label(256e-9), "0.000000256");
        assert_eq!(le_label(1.0), "1");
        assert_eq!(le_label(0.5), "0.5");
    }
}
