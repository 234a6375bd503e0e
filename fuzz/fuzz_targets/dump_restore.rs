//! RESTORE's path: `verify_payload` (footer, version, CRC64) then `load_payload`.
//! Byte 0 selects the loader limits; byte 1 bit 0 set means "the rest is a body:
//! append a valid footer" (so the decoder is reached past the checksum), clear means
//! "the rest is a whole payload". A value that loads must round-trip.
#![no_main]

use libellule::storage::rdb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let lim = libellule_fuzz::limits_from(data[0]);
    let payload = if data[1] & 1 == 1 {
        let mut p = data[2..].to_vec();
        p.extend_from_slice(&rdb::RDB_VERSION.to_le_bytes());
        let crc = rdb::crc64::crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    } else {
        data[2..].to_vec()
    };
    let Some(body) = rdb::verify_payload(&payload, data[1] & 2 == 2) else {
        return;
    };
    if let Ok(v) = rdb::load_payload(body, &lim) {
        libellule_fuzz::check_round_trip(&v, &lim);
    }
});
