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

pub(crate) fn serialize_rfc3339<S: serde::Serializer>(
    millis: &i64,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*millis))
}

/// Parses `--since`: a duration ago (`1h`, `7days`) or an RFC 3339 time; Unix millis.
pub fn parse_since(text: &str) -> crate::error::Result<i64> {
    let now = now_millis();
    if let Ok(ago) = humantime::parse_duration(text.trim()) {
        return Ok(now - ago.as_millis().min(i64::MAX as u128) as i64);
    }
    humantime::parse_rfc3339_weak(text.trim())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| {
            crate::error::Error::InvalidInput(format!(
                "since {text:?} is neither a duration (1h, 7days) nor a time (2026-11-21T10:00:00Z)"
            ))
        })
}

/// Unix milliseconds of RFC 3339 text (as the API sends); 0 if it is not one.
pub fn parse_rfc3339(text: &str) -> i64 {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
