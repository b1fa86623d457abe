//! `pollkit::http`: `Retry-After` against the real clock, through the public
//! API and with reqwest's header map (the same `http` type). The exhaustive
//! table of forms, junk and overflow is in the module's unit tests.
#![cfg(feature = "http")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, StatusCode};
use pollkit::http::{is_transient, retry_after};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `t` as an IMF-fixdate (an independent formatter: civil-from-days).
fn imf_fixdate(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn with(name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(name, HeaderValue::from_str(value).unwrap());
    headers
}

#[test]
fn a_date_ahead_is_the_time_until_it() {
    let at = SystemTime::now() + Duration::from_secs(90);
    let wait = retry_after(&with("retry-after", &imf_fixdate(at))).unwrap();
    // Whole seconds on the wire, and the clock moves while the test runs.
    assert!(
        wait > Duration::from_secs(85) && wait <= Duration::from_secs(90),
        "{wait:?}"
    );
}

#[test]
fn a_date_behind_is_zero() {
    let at = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(
        retry_after(&with("retry-after", &imf_fixdate(at))),
        Some(Duration::ZERO)
    );
}

#[test]
fn far_future_and_overflow_do_not_panic() {
    let far = retry_after(&with("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")).unwrap();
    assert!(far > Duration::from_secs(7_000 * 365 * 86_400));
    let huge = "1".repeat(200);
    assert_eq!(
        retry_after(&with("retry-after", &huge)),
        Some(Duration::from_secs(u64::MAX))
    );
    assert_eq!(
        retry_after(&with("x-ms-retry-after-ms", &huge)),
        Some(Duration::from_millis(u64::MAX))
    );
}

#[test]
fn junk_is_none() {
    for junk in ["soon", "-1", "1e3", "Sun, 06 Nov 1994 08:49:37 PST", "\t"] {
        assert_eq!(retry_after(&with("retry-after", junk)), None, "{junk:?}");
    }
}

#[test]
fn every_form_through_the_public_api() {
    assert_eq!(
        retry_after(&with("retry-after", "12")),
        Some(Duration::from_secs(12))
    );
    assert_eq!(
        retry_after(&with("retry-after-ms", "1200")),
        Some(Duration::from_millis(1200))
    );
    assert_eq!(
        retry_after(&with("x-ms-retry-after-ms", "30")),
        Some(Duration::from_millis(30))
    );
    for past in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        assert_eq!(
            retry_after(&with("retry-after", past)),
            Some(Duration::ZERO)
        );
    }
}

#[test]
fn reqwest_uses_the_same_header_map() {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("3"));
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
}

#[test]
fn the_status_table() {
    let transient = [408, 425, 429, 500, 502, 503, 504, 507, 511];
    let permanent = [200, 204, 304, 400, 401, 403, 404, 409, 410, 422, 501, 505];
    for code in transient {
        assert!(is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
    }
    for code in permanent {
        assert!(!is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
    }
}
