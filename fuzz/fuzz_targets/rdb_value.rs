//! `decode::load_object` for one RDB value: byte 0 selects the loader limits, byte 1
//! is the type byte (any of 0..=21 and beyond), the rest the body. Never panics; a value
//! that loads must round-trip through `save_object`.
#![no_main]

use libellule::storage::rdb::{decode, Reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let lim = libellule_fuzz::limits_from(data[0]);
    let mut r = Reader::new(&data[2..]);
    if let Ok(v) = decode::load_object(data[1], &mut r, &lim) {
        assert!(r.remaining() <= data.len() - 2);
        libellule_fuzz::check_round_trip(&v, &lim);
    }
});
