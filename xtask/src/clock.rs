//! Wall-clock time as people read it, in UTC, without a time library: the date and time of a
//! count of seconds since 1970 (bench's run folders, the build record's start).

/// Seconds since 1970-01-01 00:00 UTC, now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `[year, month, day, hour, minute, second]` of `unix_s` (UTC).
pub fn civil(unix_s: u64) -> [i64; 6] {
    let (days, secs) = (unix_s / 86400, (unix_s % 86400) as i64);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted).
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    [year, month, day, secs / 3600, secs / 60 % 60, secs % 60]
}

/// `2023-11-14T22:13:20Z`: ISO 8601, UTC.
pub fn iso8601(unix_s: u64) -> String {
    let [y, mo, d, h, mi, s] = civil(unix_s);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_utcs() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        // date -u -d @1700000000: Tue Nov 14 22:13:20 UTC 2023
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
        // A leap day, and the last second of a year.
        assert_eq!(civil(951_782_400), [2000, 2, 29, 0, 0, 0]);
        assert_eq!(iso8601(1_735_689_599), "2024-12-31T23:59:59Z");
    }
}
