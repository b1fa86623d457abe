//! HTTP knowledge without an HTTP client (feature `http`): the server's
//! `Retry-After` hint and which statuses are worth retrying.
//!
//! Both work on the types of the [`http` crate](::http), which reqwest, hyper, axum
//! and tonic share, so a hand-written fetch closure over any of them can use
//! them:
//!
//! ```
//! use std::time::Duration;
//! use http::{HeaderMap, HeaderValue, StatusCode};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("120"));
//! assert_eq!(pollkit::http::retry_after(&headers), Some(Duration::from_secs(120)));
//! assert!(pollkit::http::is_transient(StatusCode::SERVICE_UNAVAILABLE));
//! assert!(!pollkit::http::is_transient(StatusCode::NOT_FOUND));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::http::{HeaderMap, StatusCode, header::RETRY_AFTER};

/// The millisecond headers, in the order they are read (before `Retry-After`).
const MILLIS_HEADERS: [&str; 2] = ["retry-after-ms", "x-ms-retry-after-ms"];

/// How long the server asked the client to wait before its next request, from
/// the response's headers; `None` when it did not say (or said it in a form
/// that cannot be read).
///
/// Read, in this order, the first one present that parses winning:
/// 1. `retry-after-ms`: milliseconds (Azure, OpenAI and others send it next to
///    `Retry-After` because it is more precise);
/// 2. `x-ms-retry-after-ms`: milliseconds (older Azure services);
/// 3. `Retry-After` (RFC 9110 §10.2.3): delta-seconds (`120`) or an HTTP-date,
///    in the preferred IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`) or
///    the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
///    (`Sun Nov  6 08:49:37 1994`) forms. A date is compared with
///    [`SystemTime::now`]: a date in the past gives zero.
///
/// A header whose value cannot be read is skipped, so a junk
/// `retry-after-ms` does not hide a good `Retry-After`. Numbers too large for
/// a [`Duration`] saturate rather than fail; the pollers clamp every hint into
/// their `hint_bounds` (1 s ..= 10 min by default) anyway. Nothing here
/// panics, whatever the server sends.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, HeaderValue};
/// use pollkit::http::retry_after;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(retry_after(&headers), None);
///
/// headers.insert("retry-after", HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
/// assert_eq!(retry_after(&headers), Some(Duration::ZERO)); // long past
///
/// headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
/// assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
///
/// headers.insert("retry-after-ms", HeaderValue::from_static("soon"));
/// headers.insert("retry-after", HeaderValue::from_static("3"));
/// assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] with the current time given, for tests.
pub(crate) fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let millis = MILLIS_HEADERS
        .iter()
        .find_map(|name| delta(headers.get(*name)?.as_bytes()));
    if let Some(ms) = millis {
        return Some(Duration::from_millis(ms));
    }
    let value = trim(headers.get(RETRY_AFTER)?.as_bytes());
    if let Some(secs) = delta(value) {
        return Some(Duration::from_secs(secs));
    }
    let date = http_date(std::str::from_utf8(value).ok()?, now)?;
    // Before the epoch is long past; after `now`, the time left.
    let date = u64::try_from(date)
        .ok()
        .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)));
    Some(date.map_or(Duration::ZERO, |date| {
        date.duration_since(now).unwrap_or(Duration::ZERO)
    }))
}

/// Whether an answer with this status is worth asking again for (transient),
/// rather than an answer that asking again will not change (permanent).
///
/// | status | transient | why |
/// |---|---|---|
/// | 408 Request Timeout | yes | the server gave up waiting for the request |
/// | 425 Too Early | yes | replay it after the TLS handshake completes |
/// | 429 Too Many Requests | yes | rate limited: wait (its `Retry-After`) and ask again |
/// | other 4xx | no | the request itself is wrong (400), not allowed (401, 403), or asks for nothing (404, 410) |
/// | 500, 502, 503, 504 and other 5xx | yes | the server or a proxy in front of it failed, is restarting or overloaded |
/// | 501 Not Implemented | no | the server does not support the method: it never will |
/// | 505 HTTP Version Not Supported | no | nor the protocol version |
/// | 1xx, 2xx, 3xx, and anything past 599 | no | not a failure to retry |
///
/// # Examples
/// ```
/// use http::StatusCode;
/// use pollkit::http::is_transient;
///
/// assert!(is_transient(StatusCode::TOO_MANY_REQUESTS));
/// assert!(is_transient(StatusCode::BAD_GATEWAY));
/// assert!(!is_transient(StatusCode::NOT_IMPLEMENTED));
/// assert!(!is_transient(StatusCode::UNAUTHORIZED));
/// ```
pub fn is_transient(status: StatusCode) -> bool {
    match status.as_u16() {
        408 | 425 | 429 => true,
        501 | 505 => false,
        code => (500..=599).contains(&code),
    }
}

/// Optional whitespace around a header value (RFC 9110 §5.5).
fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// A run of ASCII digits (whitespace around allowed), saturating at `u64::MAX`.
fn delta(value: &[u8]) -> Option<u64> {
    let value = trim(value);
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, digit| {
        n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
    }))
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP-date (RFC 9110 §5.6.7) as seconds since the Unix epoch. The day
/// name must be one, but need not match the date (as most parsers).
fn http_date(text: &str, now: SystemTime) -> Option<i64> {
    let (year, month, day, time) = if let Some((day_name, rest)) = text.split_once(", ") {
        if DAYS.contains(&day_name) {
            // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
            let mut parts = rest.split(' ');
            let (day, month, year, time, zone) = (
                parts.next()?,
                parts.next()?,
                parts.next()?,
                parts.next()?,
                parts.next()?,
            );
            if parts.next().is_some() || zone != "GMT" || day.len() != 2 || year.len() != 4 {
                return None;
            }
            (number(year)?, month_number(month)?, number(day)?, time)
        } else if LONG_DAYS.contains(&day_name) {
            // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
            let mut parts = rest.split(' ');
            let (date, time, zone) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || zone != "GMT" {
                return None;
            }
            let mut date = date.split('-');
            let (day, month, year) = (date.next()?, date.next()?, date.next()?);
            if date.next().is_some() || day.len() != 2 || year.len() != 2 {
                return None;
            }
            let year = two_digit_year(number(year)?, now);
            (year, month_number(month)?, number(day)?, time)
        } else {
            return None;
        }
    } else {
        // asctime: `Sun Nov  6 08:49:37 1994` (the day padded with a space)
        let mut parts = text.split_ascii_whitespace();
        let (day_name, month, day, time, year) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if parts.next().is_some() || !DAYS.contains(&day_name) || day.len() > 2 || year.len() != 4 {
            return None;
        }
        (number(year)?, month_number(month)?, number(day)?, time)
    };
    let mut hms = time.split(':');
    let (hour, minute, second) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || hour.len() != 2 || minute.len() != 2 || second.len() != 2 {
        return None;
    }
    let (hour, minute, second) = (number(hour)?, number(minute)?, number(second)?);
    // A leap second (60) is allowed by the grammar.
    if day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// A short run of ASCII digits (at most 4, so no overflow is possible).
fn number(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn month_number(name: &str) -> Option<i64> {
    let index = MONTHS.iter().position(|m| *m == name)?;
    i64::try_from(index).ok().map(|i| i + 1)
}

/// RFC 9110: a two-digit year that would be more than 50 years in the future
/// is the most recent past year with the same last two digits.
fn two_digit_year(yy: i64, now: SystemTime) -> i64 {
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (this_year, _, _) = civil_from_days(now_secs.div_euclid(86_400));
    let year = this_year - this_year.rem_euclid(100) + yy;
    if year > this_year + 50 {
        year - 100
    } else {
        year
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days.saturating_add(719_468);
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::HeaderValue;

    /// 1994-11-06 08:49:37 UTC, the RFCs' example date.
    const EXAMPLE: u64 = 784_111_777;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn read(value: &'static str, now: SystemTime) -> Option<Duration> {
        retry_after_at(&headers(&[("retry-after", value)]), now)
    }

    #[test]
    fn delta_seconds() {
        let now = at(EXAMPLE);
        assert_eq!(read("0", now), Some(Duration::ZERO));
        assert_eq!(read("120", now), Some(Duration::from_secs(120)));
        assert_eq!(read(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(read("007", now), Some(Duration::from_secs(7)));
    }

    #[test]
    fn overflow_saturates() {
        let now = at(EXAMPLE);
        let huge = "99999999999999999999999999999999999999999999";
        assert_eq!(read(huge, now), Some(Duration::from_secs(u64::MAX)));
        let ms = retry_after_at(&headers(&[("retry-after-ms", huge)]), now);
        assert_eq!(ms, Some(Duration::from_millis(u64::MAX)));
    }

    #[test]
    fn the_three_date_forms_agree() {
        let now = at(EXAMPLE - 100);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(read(form, now), Some(Duration::from_secs(100)), "{form}");
        }
    }

    #[test]
    fn dates_in_the_past_are_zero() {
        let now = at(EXAMPLE + 1);
        assert_eq!(
            read("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            read("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        // Before the epoch: still a valid date, long past.
        assert_eq!(
            read("Mon, 01 Jan 1900 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(read("Mon Jan  1 00:00:00 0001", now), Some(Duration::ZERO));
    }

    #[test]
    fn far_future_dates_do_not_panic() {
        let now = at(EXAMPLE);
        let far = read("Fri, 31 Dec 9999 23:59:59 GMT", now);
        assert_eq!(far, Some(Duration::from_secs(253_402_300_799 - EXAMPLE)));
        let now = UNIX_EPOCH;
        assert!(read("Fri, 31 Dec 9999 23:59:60 GMT", now).is_some());
    }

    #[test]
    fn calendar_edges() {
        let now = UNIX_EPOCH;
        // 2000 is a leap year, 1900 and 2100 are not.
        assert!(read("Tue, 29 Feb 2000 00:00:00 GMT", now).is_some());
        assert_eq!(read("Wed, 29 Feb 2100 00:00:00 GMT", now), None);
        assert_eq!(read("Sat, 31 Apr 2000 00:00:00 GMT", now), None);
        assert_eq!(
            read("Sat, 01 Jan 2000 00:00:00 GMT", now),
            Some(Duration::from_secs(946_684_800))
        );
        assert_eq!(
            read("Thu, 01 Mar 2024 12:30:00 GMT", now),
            Some(Duration::from_secs(1_709_296_200))
        );
    }

    #[test]
    fn rfc850_years_are_within_fifty_years_of_now() {
        // In 2025, "94" is 1994 and "30" is 2030; "76" would be 2076 (51
        // years ahead), so it is 1976.
        let now = at(1_750_000_000);
        assert_eq!(
            read("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        let in_2030 = read("Friday, 01-Feb-30 00:00:00 GMT", now);
        assert_eq!(
            in_2030,
            Some(Duration::from_secs(1_896_134_400 - 1_750_000_000))
        );
        assert_eq!(
            read("Monday, 01-Jan-76 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        let in_2075 = read("Tuesday, 01-Jan-75 00:00:00 GMT", now);
        assert!(in_2075.is_some_and(|d| d > Duration::from_secs(40 * 365 * 86_400)));
    }

    #[test]
    fn junk_is_none() {
        let now = at(EXAMPLE);
        for junk in [
            "",
            " ",
            "-1",
            "+5",
            "1.5",
            "12 s",
            "soon",
            "0x10",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Noo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37 94",
            "Sun Nov 106 08:49:37 1994",
            "Sun Nov  6 08:49:37 1994 GMT",
            "Funday, 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            ", , ,",
            "::",
        ] {
            assert_eq!(read(junk, now), None, "{junk:?}");
        }
        // Bytes that are not UTF-8.
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_bytes(b"\xff\xfe 1").unwrap());
        assert_eq!(retry_after_at(&map, now), None);
    }

    #[test]
    fn precedence_millis_first_and_junk_skipped() {
        let now = at(EXAMPLE);
        let both = headers(&[
            ("retry-after", "9"),
            ("x-ms-retry-after-ms", "700"),
            ("retry-after-ms", "250"),
        ]);
        assert_eq!(retry_after_at(&both, now), Some(Duration::from_millis(250)));
        let ms = headers(&[("retry-after", "9"), ("x-ms-retry-after-ms", "700")]);
        assert_eq!(retry_after_at(&ms, now), Some(Duration::from_millis(700)));
        let junk = headers(&[
            ("retry-after", "9"),
            ("retry-after-ms", "later"),
            ("x-ms-retry-after-ms", "-1"),
        ]);
        assert_eq!(retry_after_at(&junk, now), Some(Duration::from_secs(9)));
        assert_eq!(retry_after_at(&HeaderMap::new(), now), None);
        let all_junk = headers(&[("retry-after", "x"), ("retry-after-ms", "y")]);
        assert_eq!(retry_after_at(&all_junk, now), None);
    }

    #[test]
    fn civil_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn status_table() {
        let transient = [
            408, 425, 429, 500, 502, 503, 504, 506, 507, 508, 510, 511, 599,
        ];
        let permanent = [
            100, 101, 200, 201, 204, 206, 301, 302, 304, 307, 400, 401, 403, 404, 405, 406, 409,
            410, 411, 412, 413, 414, 415, 416, 418, 422, 426, 428, 431, 451, 499, 501, 505, 600,
            999,
        ];
        for code in transient {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(is_transient(status), "{code}");
        }
        for code in permanent {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(!is_transient(status), "{code}");
        }
    }
}
