//! The command clock: what `latency-tracking` reads around each command.
//!
//! `Instant::now()` is a vDSO `clock_gettime(CLOCK_MONOTONIC)` plus `Duration`
//! arithmetic: about 35 ns a read on this project's test machine, two reads per command.
//! `CLOCK_MONOTONIC_COARSE` is cheap but ticks once per jiffy (4 ms here), useless for
//! microsecond histograms. So on x86_64, when the kernel itself uses the TSC as its
//! clocksource (it does so only when the TSC is invariant and synchronised across CPUs),
//! [`now`] is a bare `rdtsc` (about 12 ns) and [`ns_between`] turns ticks into
//! nanoseconds with one multiply and a shift, calibrated once against the monotonic clock
//! at start ([`init`], a few milliseconds). Elsewhere (another clocksource, another
//! architecture, a calibration that looks wrong) the ticks are nanoseconds since a
//! process-wide origin read through `Instant`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How ticks become nanoseconds.
struct Calibration {
    /// Ticks come from the TSC (else from [`origin`], in nanoseconds).
    tsc: bool,
    /// Nanoseconds per tick, as a 32.32 fixed-point number.
    mult: u64,
}

static CALIBRATION: OnceLock<Calibration> = OnceLock::new();
static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// The fallback clock's origin.
fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

/// How long [`init`] compares the TSC with the monotonic clock.
const CALIBRATION_SPAN: Duration = Duration::from_millis(5);

#[inline]
fn calibration() -> &'static Calibration {
    CALIBRATION.get_or_init(calibrate)
}

/// Chooses the clock and calibrates it; called once at start, before the shards run
/// commands (otherwise the first timed command pays for it).
pub fn init() {
    calibration();
}

/// True when the clock reads the TSC (for the start-up log).
pub fn uses_tsc() -> bool {
    calibration().tsc
}

/// The current time in ticks.
#[inline]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if calibration().tsc {
        return rdtsc();
    }
    origin().elapsed().as_nanos() as u64
}

/// Nanoseconds from `start` to `end` (two [`now`] readings; 0 if `end` is earlier).
#[inline]
pub fn ns_between(start: u64, end: u64) -> u64 {
    let ticks = end.saturating_sub(start) as u128;
    ((ticks * calibration().mult as u128) >> 32) as u64
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn rdtsc() -> u64 {
    #[allow(unused_unsafe)]
    // SAFETY: RDTSC has no preconditions on x86_64 (it exists on every x86_64 CPU).
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

/// The fallback: nanosecond ticks.
fn nanoseconds() -> Calibration {
    Calibration {
        tsc: false,
        mult: 1 << 32,
    }
}

fn calibrate() -> Calibration {
    #[cfg(target_arch = "x86_64")]
    {
        let clocksource = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .unwrap_or_default();
        if clocksource.trim() == "tsc" {
            let (t0, i0) = (rdtsc(), Instant::now());
            std::thread::sleep(CALIBRATION_SPAN);
            let (t1, i1) = (rdtsc(), Instant::now());
            let ns = i1.duration_since(i0).as_nanos();
            let ticks = t1.saturating_sub(t0) as u128;
            // A TSC between 100 MHz and 20 GHz; anything else is not trusted.
            if ticks > 0 && ticks * 10 >= ns && ticks <= ns * 20 {
                return Calibration {
                    tsc: true,
                    mult: ((ns << 32) / ticks) as u64,
                };
            }
        }
    }
    nanoseconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_sleep() {
        init();
        let a = now();
        let i = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let b = now();
        let real = i.elapsed().as_nanos() as u64;
        let ns = ns_between(a, b);
        // Within 2% of the monotonic clock over the same span.
        assert!(ns.abs_diff(real) < real / 50, "{ns} vs {real}");
        assert_eq!(ns_between(b, a), 0);
    }

    #[test]
    fn fixed_point_conversion() {
        let c = nanoseconds();
        assert_eq!(((1_000u128 * c.mult as u128) >> 32) as u64, 1_000);
    }
}
