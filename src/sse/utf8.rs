//! Decoding a `data` value that arrives in parts split anywhere, even inside a
//! UTF-8 sequence (R1, R26), straight into the event's data.

/// The start of a UTF-8 sequence that a part of a value ended in (1 to 3
/// bytes), waiting for the next part to complete it.
#[derive(Debug, Clone)]
pub(crate) struct Utf8Tail {
    bytes: [u8; 4],
    len: usize,
}

impl Utf8Tail {
    /// No sequence pending.
    pub(crate) const fn new() -> Self {
        Self {
            bytes: [0; 4],
            len: 0,
        }
    }

    /// Appends `part` to `dst`, decoded as UTF-8 with every maximal invalid
    /// sequence replaced by U+FFFD, continuing the sequence the previous part
    /// ended in. Parts decoded one after the other and then
    /// [`finish`](Self::finish)ed give what `String::from_utf8_lossy` gives for
    /// all of them at once.
    pub(crate) fn push(&mut self, dst: &mut String, mut part: &[u8]) {
        while self.len > 0 {
            let Some((&byte, rest)) = part.split_first() else {
                return;
            };
            self.bytes[self.len] = byte;
            self.len += 1;
            match std::str::from_utf8(&self.bytes[..self.len]) {
                Ok(text) => {
                    dst.push_str(text);
                    self.len = 0;
                    part = rest;
                }
                // Still not complete (4 bytes always are, valid or not).
                Err(error) if error.error_len().is_none() && self.len < 4 => part = rest,
                Err(_) => {
                    // `byte` cannot continue the sequence: what came before it
                    // is one maximal invalid sequence, and `byte` starts afresh.
                    dst.push(char::REPLACEMENT_CHARACTER);
                    self.len = 0;
                }
            }
        }
        if let Ok(text) = validate(part) {
            // The common case: valid text.
            dst.push_str(text);
            return;
        }
        let mut rest = part;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    dst.push_str(text);
                    return;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    dst.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        Some(invalid) => {
                            dst.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[invalid..];
                        }
                        None => {
                            // The part ends inside a sequence (at most 3 bytes).
                            let kept = after.len().min(3);
                            self.bytes[..kept].copy_from_slice(&after[..kept]);
                            self.len = kept;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Ends the value: a sequence left unfinished becomes one U+FFFD.
    pub(crate) fn finish(&mut self, dst: &mut String) {
        if self.len > 0 {
            dst.push(char::REPLACEMENT_CHARACTER);
            self.len = 0;
        }
    }

    /// Forgets a sequence left unfinished, for a value that is dropped.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

/// The bytes from which SIMD validation pays: below, `simdutf8` itself
/// falls back to std after a dispatch of its own.
const SIMD_FROM: usize = 64;

/// `bytes` as text if they are valid UTF-8: SIMD for long runs, std for short
/// ones (a value split into tiny chunks).
pub(crate) fn validate(bytes: &[u8]) -> Result<&str, ()> {
    if bytes.len() < SIMD_FROM {
        std::str::from_utf8(bytes).map_err(drop)
    } else {
        simdutf8::basic::from_utf8(bytes).map_err(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Tail;

    /// Decodes `bytes` cut at every pair of positions, against std.
    #[test]
    fn any_split_decodes_like_std() {
        let cases: &[&[u8]] = &[
            "plain €uro 😀".as_bytes(),
            b"\xE2\x82",
            b"a\xE2\x82b\xF0\x9F\x98",
            b"\xC0\xAF\xFF\xED\xA0\x80z",
            b"\xF0\x9F\x98\x80\xE2\x82\xAC\xF4\x90\x80\x80",
            b"\xE0\x80\xE0\xA0",
        ];
        for &bytes in cases {
            let expected = String::from_utf8_lossy(bytes);
            for i in 0..=bytes.len() {
                for j in i..=bytes.len() {
                    let mut tail = Utf8Tail::new();
                    let mut out = String::new();
                    for part in [&bytes[..i], &bytes[i..j], &bytes[j..]] {
                        tail.push(&mut out, part);
                    }
                    tail.finish(&mut out);
                    assert_eq!(out, expected, "{bytes:?} cut at {i} and {j}");
                }
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let bytes = b"x\xF0\x9F\x98\x80\xF0\x9F\xE2\x82\xACy\xE2";
        let mut tail = Utf8Tail::new();
        let mut out = String::new();
        for byte in bytes {
            tail.push(&mut out, std::slice::from_ref(byte));
        }
        tail.finish(&mut out);
        assert_eq!(out, String::from_utf8_lossy(bytes));
    }
}
