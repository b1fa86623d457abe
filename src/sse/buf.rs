//! Buffer growth that stays within the parser's memory bound.

/// The capacity to grow to so that `len + additional` bytes fit, or `None` when
/// `cap` already suffices.
///
/// Growth is geometric (amortised O(1) appends) like `Vec`'s, but never goes past
/// `limit` unless the request itself does: the parser refuses content beyond its
/// maximum before copying it, so this keeps a buffer's capacity at most `limit`
/// instead of up to twice that.
pub(crate) fn grow_target(
    len: usize,
    cap: usize,
    additional: usize,
    limit: usize,
) -> Option<usize> {
    let needed = len.saturating_add(additional);
    if needed <= cap {
        return None;
    }
    Some(cap.saturating_mul(2).max(64).min(limit).max(needed))
}

/// Makes room for `additional` more bytes in `v`, see [`grow_target`].
pub(crate) fn reserve_vec(v: &mut Vec<u8>, additional: usize, limit: usize) {
    if let Some(target) = grow_target(v.len(), v.capacity(), additional, limit) {
        v.reserve_exact(target - v.len());
    }
}

/// Makes room for `additional` more bytes in `s`, see [`grow_target`].
pub(crate) fn reserve_string(s: &mut String, additional: usize, limit: usize) {
    if let Some(target) = grow_target(s.len(), s.capacity(), additional, limit) {
        s.reserve_exact(target - s.len());
    }
}

#[cfg(test)]
mod tests {
    use super::grow_target;

    #[test]
    fn no_growth_when_it_fits() {
        assert_eq!(grow_target(10, 16, 6, 100), None);
    }

    #[test]
    fn grows_geometrically_below_the_limit() {
        assert_eq!(grow_target(0, 0, 1, 1000), Some(64));
        assert_eq!(grow_target(64, 64, 1, 1000), Some(128));
    }

    #[test]
    fn never_past_the_limit_unless_asked() {
        assert_eq!(grow_target(600, 600, 1, 1000), Some(1000));
        assert_eq!(grow_target(600, 600, 900, 1000), Some(1500));
        assert_eq!(grow_target(usize::MAX, 0, 1, 10), Some(usize::MAX));
    }
}
