//! Timestamps: the store keeps Unix milliseconds; people and JSON get RFC 3339.

use std::time::{Duration, UNIX_EPOCH};

/// Current time as Unix milliseconds, the store's timestamp format.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// RFC 3339 text (UTC, millisecond precision) of a Unix-milliseconds timestamp.
pub fn rfc3339(millis: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Serde for a Unix-milliseconds field written as RFC 3339 text (`#[serde(with =
/// "crate::time::rfc3339_millis")]`); reading refuses text that is not a time.
pub(crate) mod rfc3339_millis {
    pub fn serialize<S: serde::Serializer>(millis: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*millis))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        super::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

/// Parses `--since`: a duration ago (`1h`, `7days`) or an RFC 3339 time; Unix millis.
pub fn parse_since(text: &str) -> crate::error::Result<i64> {
    let now = now_millis();
    if let Ok(ago) = humantime::parse_duration(text.trim()) {
        return Ok(now - ago.as_millis().min(i64::MAX as u128) as i64);
    }
    parse_rfc3339(text.trim()).ok_or_else(|| {
        crate::error::Error::InvalidInput(format!(
            "since {text:?} is neither a duration (1h, 7days) nor a time (2026-11-21T10:00:00Z)"
        ))
    })
}

/// Unix milliseconds of RFC 3339 text (as the API sends), if it is one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

/// How far `time` is from `now`, in its largest whole unit.
pub fn relative(time: std::time::SystemTime, now: std::time::SystemTime) -> String {
    let (gap, past) = match now.duration_since(time) {
        Ok(gap) => (gap, true),
        Err(err) => (err.duration(), false),
    };
    let amount = describe_gap(gap);
    match (amount.as_str(), past) {
        ("now", _) => "just now".to_owned(),
        (_, true) => format!("{amount} ago"),
        (_, false) => format!("in {amount}"),
    }
}

fn describe_gap(gap: Duration) -> String {
    let secs = gap.as_secs();
    let units = [
        (365 * 86_400, "year"),
        (30 * 86_400, "month"),
        (86_400, "day"),
        (3_600, "hour"),
        (60, "min"),
        (1, "s"),
    ];
    if secs < 5 {
        return "now".to_owned();
    }
    let (size, name) = units
        .into_iter()
        .find(|(size, _)| secs >= *size)
        .unwrap_or((1, "s"));
    let count = secs / size;
    match (count, name) {
        (_, "s" | "min") => format!("{count} {name}"),
        (1, _) => format!("1 {name}"),
        _ => format!("{count} {name}s"),
    }
}

/// How long ago (or ahead) a Unix-milliseconds time is, as people say it.
pub fn relative_millis(millis: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64);
    relative(at, std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn relative_times_read_as_people_say_them() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let ago = |secs| relative(now - Duration::from_secs(secs), now);
        assert_eq!(ago(2), "just now");
        assert_eq!(ago(42), "42 s ago");
        assert_eq!(ago(300), "5 min ago");
        assert_eq!(ago(3_600), "1 hour ago");
        assert_eq!(ago(3 * 86_400), "3 days ago");
        assert_eq!(ago(400 * 86_400), "1 year ago");
        assert_eq!(
            relative(now + Duration::from_secs(7_300), now),
            "in 2 hours"
        );
    }
}
