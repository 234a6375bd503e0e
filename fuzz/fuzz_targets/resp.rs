//! RESP2 multibulk requests: the input is a pipeline starting with `*`; parsing it
//! whole and in pieces must give the same requests and error, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let small = data[0] & 1 == 1;
    let mut input = data[1..].to_vec();
    if input.first() != Some(&b'*') {
        input.insert(0, b'*');
    }
    libellule_fuzz::check_parser(&input, small);
});
