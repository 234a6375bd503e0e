//! The snapshot-file loader: byte 0 selects the loader limits and the read window, the
//! rest is an RDB file. The file is parsed as `persistence::loader` does it (header,
//! then items over a window of the file that grows when an item does not fit, errors
//! final only at the end of the file, the CRC64 of everything before the checksum) and
//! the whole file at once; both must give the same keys or the same error at the same
//! offset, never a panic. A file that loads is written again with the snapshot writer's
//! framing and must load to the same keys.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    libellule_fuzz::check_snapshot(&data[1..], data[0]);
});
