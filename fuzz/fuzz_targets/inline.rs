//! Inline requests (`sdssplitargs` quoting): the input never starts with `*`, so the
//! first request is inline (later ones may be either); whole and chunked parses agree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let small = data[0] & 1 == 1;
    let mut input = data[1..].to_vec();
    if input.first() == Some(&b'*') {
        input[0] = b' ';
    }
    libellule_fuzz::check_parser(&input, small);
});
