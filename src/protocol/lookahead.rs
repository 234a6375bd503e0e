//! A look-ahead over the complete request frames waiting in a connection's input, for
//! prefetching: it reads the second argument of each multibulk frame (the first key
//! of most keyed commands) without parsing the frames for real.
//!
//! A pipeline of GETs or SETs over millions of keys spends most of its time waiting on
//! three dependent cache misses per key (index group, block pointer, block). Knowing
//! the next keys ahead lets the table start those misses for a whole batch at once
//! ([`crate::storage::Table::prefetch`]), so that they overlap instead of adding up.
//!
//! The scan stops at the first frame that is incomplete or not a plain multibulk
//! (inline command, malformed header): the real parser decides what those are. A key
//! it returns may belong to a command that has no key there (`CONFIG GET x`); the only
//! cost of such a guess is a wasted prefetch.

/// Reads up to `out.len()` complete multibulk frames at the start of `input` and stores
/// the second argument of each frame that has one in `out`. Returns (frames read, keys
/// stored).
pub fn second_args<'a>(input: &'a [u8], out: &mut [&'a [u8]]) -> (usize, usize) {
    let mut pos = 0;
    let mut frames = 0;
    let mut keys = 0;
    while frames < out.len() {
        let Some((end, key)) = frame(input, pos) else {
            break;
        };
        if let Some(key) = key {
            out[keys] = key;
            keys += 1;
        }
        frames += 1;
        pos = end;
    }
    (frames, keys)
}

/// The end of the complete multibulk frame at `pos` and its second argument, or `None`
/// when there is no such frame there.
#[inline]
fn frame(input: &[u8], pos: usize) -> Option<(usize, Option<&[u8]>)> {
    let (count, mut pos) = header(input, pos, b'*')?;
    let mut second = None;
    for i in 0..count {
        let (len, start) = header(input, pos, b'$')?;
        let end = start.checked_add(len)?;
        if input.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        if i == 1 {
            second = Some(&input[start..end]);
        }
        pos = end + 2;
    }
    Some((pos, second))
}

/// Reads a `<kind><digits>\r\n` line at `pos`: (the number, the position after the line).
#[inline]
fn header(input: &[u8], pos: usize, kind: u8) -> Option<(usize, usize)> {
    if *input.get(pos)? != kind {
        return None;
    }
    let mut n: usize = 0;
    let mut i = pos + 1;
    // Lengths past 10 digits are not worth a guess; the parser will judge them.
    while i < input.len() && i - pos <= 10 {
        let b = input[i];
        if b == b'\r' {
            return (i > pos + 1 && input.get(i + 1) == Some(&b'\n')).then_some((n, i + 2));
        }
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as usize;
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_second_argument_of_complete_frames_only() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n\
                      *3\r\n$3\r\nSET\r\n$2\r\nbb\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$5\r\nab";
        let mut out: [&[u8]; 8] = [&[]; 8];
        let (frames, keys) = second_args(input, &mut out);
        assert_eq!((frames, keys), (3, 2));
        assert_eq!(out[0], b"a");
        assert_eq!(out[1], b"bb");
    }

    #[test]
    fn stops_at_inline_or_malformed_input_and_at_the_limit() {
        let mut out: [&[u8]; 2] = [&[]; 2];
        assert_eq!(second_args(b"GET a\r\n", &mut out), (0, 0));
        assert_eq!(second_args(b"*2\r\n$x\r\n", &mut out), (0, 0));
        assert_eq!(second_args(b"*2\r\n$1\r\na\r\n$1\r\nbXY", &mut out), (0, 0));
        assert_eq!(second_args(b"*99999999999999\r\n", &mut out), (0, 0));
        assert_eq!(second_args(b"*\r\n", &mut out), (0, 0));
        let three = b"*2\r\n$1\r\nx\r\n$1\r\na\r\n".repeat(3);
        assert_eq!(second_args(&three, &mut out), (2, 2));
    }
}
