//! Session durations: parsing `90s`, `15m`, `2h`, `1h30m` and printing them back.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    #[error(
        "{0:?} is not a duration: use digits followed by h, m or s in that order, such as 90s, 15m, 2h or 1h30m"
    )]
    Malformed(String),
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Parses `[<n>h][<n>m][<n>s]` (at least one part, units in that order, each at most once).
pub fn parse(input: &str) -> Result<Duration, TtlError> {
    let malformed = || TtlError::Malformed(input.to_string());
    let mut rest = input;
    let mut total: u64 = 0;
    let mut last_rank = 0u8;
    if rest.is_empty() {
        return Err(malformed());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(malformed());
        }
        let (number, tail) = rest.split_at(digits);
        let mut chars = tail.chars();
        let (rank, unit) = match chars.next() {
            Some('h') => (1, 3600),
            Some('m') => (2, 60),
            Some('s') => (3, 1),
            _ => return Err(malformed()),
        };
        if rank <= last_rank {
            return Err(malformed());
        }
        last_rank = rank;
        let n: u64 = number
            .parse()
            .map_err(|_| TtlError::Overflow(input.to_string()))?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| TtlError::Overflow(input.to_string()))?;
        rest = chars.as_str();
    }
    Ok(Duration::from_secs(total))
}

/// Prints a duration the way [`parse`] reads it, in the largest units: `1h30m`, `90s` -> `1m30s`.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_forms() {
        for (s, secs) in [
            ("90s", 90),
            ("15m", 900),
            ("2h", 7200),
            ("1h30m", 5400),
            ("1h0m5s", 3605),
            ("0s", 0),
        ] {
            assert_eq!(parse(s), Ok(Duration::from_secs(secs)), "{s}");
        }
    }

    #[test]
    fn refuses_malformed_input() {
        for s in [
            "", "h", "15", "1m1h", "1h1h", "1d", "-5m", " 5m", "5m ", "1.5h", "5M", "m5",
        ] {
            assert!(
                matches!(parse(s), Err(TtlError::Malformed(_))),
                "{s:?} should be malformed"
            );
        }
        assert!(matches!(
            parse("99999999999999999999h"),
            Err(TtlError::Overflow(_))
        ));
        assert!(matches!(
            parse("9999999999999999h"),
            Err(TtlError::Overflow(_))
        ));
    }

    #[test]
    fn error_message_names_the_input_and_the_format() {
        let msg = parse("ten minutes").unwrap_err().to_string();
        assert!(
            msg.contains("\"ten minutes\"") && msg.contains("1h30m"),
            "{msg}"
        );
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in 0u64..10_000_000) {
            let d = Duration::from_secs(secs);
            prop_assert_eq!(parse(&format(d)), Ok(d));
        }

        #[test]
        fn parse_agrees_with_components(h in proptest::option::of(0u64..1000), m in proptest::option::of(0u64..1000), s in proptest::option::of(0u64..100_000)) {
            prop_assume!(h.is_some() || m.is_some() || s.is_some());
            let mut text = String::new();
            if let Some(h) = h { text.push_str(&format!("{h}h")); }
            if let Some(m) = m { text.push_str(&format!("{m}m")); }
            if let Some(s) = s { text.push_str(&format!("{s}s")); }
            let want = h.unwrap_or(0) * 3600 + m.unwrap_or(0) * 60 + s.unwrap_or(0);
            prop_assert_eq!(parse(&text), Ok(Duration::from_secs(want)));
        }

        #[test]
        fn never_panics(text in ".{0,24}") {
            let _ = parse(&text);
        }
    }
}
