//! When snapshots happen on their own: `--save` points (Redis's rule: a save point
//! `<seconds> <changes>` fires when at least `changes` writes happened and `seconds`
//! passed since the last successful save; after a failure, retries wait 5 seconds),
//! `--snapshot_cron` (Dragonfly's flag: a five-field cron expression, evaluated in UTC,
//! checked once per minute), BGSAVE SCHEDULE (a save requested while one was running
//! starts when it ends), and the save SIGTERM asks for.
//!
//! [`tick`] runs from shard 0's timer (`hz` times a second) and only reads atomics and
//! the configuration unless a save is due.

use super::save;
use crate::shard::Shards;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Redis's `CONFIG_BGSAVE_RETRY_DELAY`: seconds between attempts after a failed save.
pub const RETRY_DELAY: u64 = 5;

static SCHEDULED: AtomicBool = AtomicBool::new(false);

/// State of a save asked for by a signal: 0 none, 1 asked, 2 done, 3 failed.
static SIGNAL_SAVE: AtomicU8 = AtomicU8::new(0);

/// Asks for a BGSAVE as soon as the running one ends (BGSAVE SCHEDULE).
pub fn schedule_bgsave() {
    SCHEDULED.store(true, Ordering::SeqCst);
}

/// True when a BGSAVE is scheduled.
pub fn scheduled() -> bool {
    SCHEDULED.load(Ordering::SeqCst)
}

/// From the signal thread: asks shard 0 to save, and waits for the outcome while
/// `keep_waiting` says so. Returns Some(true) saved, Some(false) failed, None when
/// `keep_waiting` gave up.
pub fn save_for_signal(mut keep_waiting: impl FnMut() -> bool) -> Option<bool> {
    SIGNAL_SAVE.store(1, Ordering::SeqCst);
    loop {
        match SIGNAL_SAVE.load(Ordering::SeqCst) {
            2 => return Some(true),
            3 => return Some(false),
            _ => {
                if !keep_waiting() {
                    return None;
                }
            }
        }
    }
}

thread_local! {
    static LAST_CRON_MINUTE: Cell<u64> = const { Cell::new(0) };
    static SIGNAL_RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// Called by shard 0's timer: starts a save when one is due.
pub fn tick(shards: &Rc<Shards>) {
    if SIGNAL_SAVE.load(Ordering::Relaxed) == 1 && !SIGNAL_RUNNING.with(Cell::get) {
        SIGNAL_RUNNING.with(|c| c.set(true));
        let s = shards.clone();
        glommio::spawn_local(async move {
            let ok = save_waiting(s).await;
            SIGNAL_SAVE.store(if ok { 2 } else { 3 }, Ordering::SeqCst);
            SIGNAL_RUNNING.with(|c| c.set(false));
        })
        .detach();
        return;
    }
    if super::in_progress() || super::loading() {
        return;
    }
    let now = super::unix_secs();
    let (due, cron) = {
        let d = shards.data.borrow();
        let dirty = super::dirty_published(shards.n);
        let since = now.saturating_sub(super::last_save());
        let may_retry = super::last_ok() || now.saturating_sub(super::last_try()) > RETRY_DELAY;
        let due = may_retry
            && d.config
                .save
                .iter()
                .any(|&(secs, changes)| dirty >= changes && since >= secs);
        (due, d.config.snapshot_cron.clone())
    };
    let mut start = due || SCHEDULED.swap(false, Ordering::SeqCst);
    if !cron.is_empty() {
        let minute = now / 60;
        if LAST_CRON_MINUTE.with(Cell::get) != minute {
            LAST_CRON_MINUTE.with(|c| c.set(minute));
            if let Ok(c) = Cron::parse(&cron) {
                if c.matches(now) {
                    start = true;
                }
            }
        }
    }
    if start {
        let s = shards.clone();
        glommio::spawn_local(async move {
            let _ = save::run(s, true).await;
        })
        .detach();
    }
}

/// Waits for a running save to end, then saves. True when the save succeeded.
pub async fn save_waiting(shards: Rc<Shards>) -> bool {
    loop {
        match save::run(shards.clone(), false).await {
            Ok(()) => return true,
            Err(save::SaveError::Failed(_)) => return false,
            Err(save::SaveError::InProgress) => {
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// A five-field cron expression: minute, hour, day of month, month, day of week
/// (0 or 7 = Sunday). Each field: `*`, a number, a range `a-b`, a list `a,b`, with an
/// optional step `/n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    fields: [u64; 5],
    dom_star: bool,
    dow_star: bool,
}

const RANGES: [(u64, u64); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];

fn parse_field(s: &str, (lo, hi): (u64, u64)) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (
                r,
                st.parse::<u64>()
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| format!("invalid step in '{part}'"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (num(a)?, num(b)?)
        } else {
            let a = num(range)?;
            (a, if step > 1 { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(format!("'{part}' is out of range {lo}-{hi}"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

fn num(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| format!("'{s}' is not a number"))
}

impl Cron {
    /// Parses an expression (`""` is not one: the caller treats it as "off").
    pub fn parse(s: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        if parts.len() != 5 {
            return Err("a cron expression has 5 fields: minute hour day month weekday".into());
        }
        let mut fields = [0u64; 5];
        for i in 0..5 {
            fields[i] = parse_field(parts[i], RANGES[i])?;
        }
        // Sunday is 0 or 7.
        if fields[4] & (1 << 7) != 0 {
            fields[4] |= 1;
        }
        Ok(Cron {
            fields,
            dom_star: parts[2] == "*",
            dow_star: parts[4] == "*",
        })
    }

    /// True when the minute holding Unix time `secs` (UTC) matches.
    pub fn matches(&self, secs: u64) -> bool {
        let days = secs / 86400;
        let rem = secs % 86400;
        let (minute, hour) = ((rem / 60) % 60, rem / 3600);
        let (_, month, day) = civil_from_days(days as i64);
        let weekday = (days + 4) % 7; // 1970-01-01 was a Thursday.
        let bit = |f: usize, v: u64| self.fields[f] & (1 << v) != 0;
        let dom = bit(2, day);
        let dow = bit(4, weekday);
        // Standard cron: when both day fields are restricted, either may match.
        let day_ok = match (self.dom_star, self.dow_star) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        };
        bit(0, minute) && bit(1, hour) && bit(3, month) && day_ok
    }
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions() {
        let c = Cron::parse("*/5 * * * *").unwrap();
        // 2026-11-26 09:10:00 UTC is 1795684200.
        assert!(c.matches(1_795_684_200));
        assert!(!c.matches(1_795_684_200 + 60));
        let c = Cron::parse("0 3 * * 0").unwrap();
        assert!(!c.matches(1_795_684_200));
        assert_eq!(civil_from_days(1_795_684_200 / 86400), (2026, 11, 26));
        // 2026-11-26 is a Thursday (4).
        let c = Cron::parse("10 9 * * 4").unwrap();
        assert!(c.matches(1_795_684_200));
        assert!(Cron::parse("* * *").is_err());
        assert!(Cron::parse("60 * * * *").is_err());
        assert!(Cron::parse("*/0 * * * *").is_err());
        assert!(Cron::parse("1-5,7 0-23/2 1 1-12 7").is_ok());
    }
}
