//! From one line to one field: rules R9–R18, applied to raw bytes.
//!
//! Working on bytes is exact, not an approximation: `:`, space, NUL and the ASCII
//! field names never occur inside a multi-byte UTF-8 sequence, and replacement
//! (R1) never produces them, so splitting and matching the raw line gives the
//! same result as doing it on the decoded text. Only the values that are kept
//! (data, event type, id) are decoded, with [`push_lossy`].

/// Splits a field line into name and value (R10, R11, R12).
///
/// The name is everything before the first `:`; the value is everything after it,
/// minus one leading space. A line without a colon is a name with an empty value.
pub(crate) fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b':', line) {
        Some(colon) => {
            let value = &line[colon + 1..];
            // R11: at most one U+0020, nothing else is trimmed.
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &[]),
    }
}

/// Reads a `retry` value in milliseconds (R18).
///
/// Only one or more ASCII digits are accepted (leading zeros too). A value that
/// does not fit in a `u64` is ignored (`None`), as Chromium's `ToUInt64Strict`
/// does (decision 2): overflow never wraps or panics.
pub(crate) fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        // Decision 1: an empty value is not an integer.
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Appends `bytes` decoded as UTF-8 to `dst`, each maximal invalid sequence
/// replaced by one U+FFFD (R1).
///
/// Same result as `String::from_utf8_lossy`, without its temporary allocation on
/// invalid input. Decoding each line on its own equals decoding the whole stream
/// because CR and LF always end a pending sequence (see chunking.md, "shortcut").
pub(crate) fn push_lossy(dst: &mut String, bytes: &[u8]) {
    if let Ok(text) = super::utf8::validate(bytes) {
        // The common case; std then finds the invalid sequences.
        dst.push_str(text);
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => dst.push_str(text),
        Err(error) => {
            let (valid, rest) = bytes.split_at(error.valid_up_to());
            dst.push_str(std::str::from_utf8(valid).unwrap_or_default());
            for chunk in rest.utf8_chunks() {
                dst.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    dst.push(char::REPLACEMENT_CHARACTER);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_retry, push_lossy, split_field};

    #[test]
    fn split_at_first_colon_and_one_space() {
        assert_eq!(split_field(b"data: a:b"), (&b"data"[..], &b"a:b"[..]));
        assert_eq!(split_field(b"data:  x "), (&b"data"[..], &b" x "[..]));
        assert_eq!(split_field(b"data:\tx"), (&b"data"[..], &b"\tx"[..]));
        assert_eq!(split_field(b"data"), (&b"data"[..], &b""[..]));
        assert_eq!(split_field(b":c"), (&b""[..], &b"c"[..]));
    }

    #[test]
    fn retry_digits_only() {
        assert_eq!(parse_retry(b"007"), Some(7));
        assert_eq!(parse_retry(b"0"), Some(0));
        assert_eq!(parse_retry(b""), None);
        assert_eq!(parse_retry(b"+5"), None);
        assert_eq!(parse_retry(b" 5"), None);
        assert_eq!(parse_retry(b"1e3"), None);
        assert_eq!(parse_retry("١".as_bytes()), None);
        assert_eq!(parse_retry(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_retry(b"18446744073709551616"), None);
        assert_eq!(parse_retry(b"000000000000000000000000000042"), Some(42));
    }

    #[test]
    fn lossy_matches_std() {
        let cases: &[&[u8]] = &[
            b"plain",
            b"\xC0\xAF",
            b"\xED\xA0\x80",
            b"a\xE2\x82",
            b"\xF0\x9F\x98\x80\xFFz",
            "€".as_bytes(),
        ];
        for &bytes in cases {
            let mut out = String::from("pre");
            push_lossy(&mut out, bytes);
            assert_eq!(out, format!("pre{}", String::from_utf8_lossy(bytes)));
        }
    }
}
