//! Redis's intset byte format (`intset.c`): encoding (2, 4 or 8: bytes per member, u32
//! LE), length (u32 LE), then the members ascending, little-endian, all of that width.

/// Encodes ascending distinct integers with the smallest width that holds them all.
pub fn encode(members: &[i64]) -> Vec<u8> {
    let width = members
        .iter()
        .map(|&v| {
            if i16::try_from(v).is_ok() {
                2
            } else if i32::try_from(v).is_ok() {
                4
            } else {
                8
            }
        })
        .max()
        .unwrap_or(2);
    encode_width(members, width)
}

/// Encodes with the given width (2, 4 or 8), as an intset that was once widened keeps it.
pub fn encode_width(members: &[i64], width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + members.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for &v in members {
        match width {
            2 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            4 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            _ => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
    out
}

/// Parses and validates an intset: width, length, strictly ascending members.
pub fn parse(buf: &[u8]) -> Result<Vec<i64>, String> {
    if buf.len() < 8 {
        return Err("intset shorter than its header".into());
    }
    let width = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(format!("intset with invalid encoding {width}"));
    }
    let n = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if (buf.len() - 8) / width != n || !(buf.len() - 8).is_multiple_of(width) {
        return Err(format!("intset of {n} members does not match its size"));
    }
    let mut out = Vec::with_capacity(n);
    for c in buf[8..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        };
        if out.last().is_some_and(|&l| l >= v) {
            return Err("intset members not strictly ascending".into());
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_widths() {
        for (m, w) in [
            (vec![-3i64, 1, 2, 32767], 2u32),
            (vec![-70000, 5, 70000], 4),
            (vec![i64::MIN, 0, i64::MAX], 8),
            (vec![], 2),
        ] {
            let b = encode(&m);
            assert_eq!(u32::from_le_bytes([b[0], b[1], b[2], b[3]]), w);
            assert_eq!(parse(&b).unwrap(), m);
        }
        assert_eq!(encode(&[1, 2]), vec![2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2, 0]);
    }

    #[test]
    fn corrupt_is_rejected() {
        assert!(parse(&[2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0]).is_err());
        assert!(parse(&[3, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(parse(&[2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0]).is_err());
        assert!(parse(&[2, 0, 0]).is_err());
    }
}
