//! Timestamps: the store keeps Unix milliseconds; people and JSON get RFC 3339.

use std::time::{Duration, UNIX_EPOCH};

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
