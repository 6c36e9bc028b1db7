//! Block names: validated once, then carried as a typed [`BlockName`].

use std::borrow::Cow;
use std::fmt;

use crate::error::{Error, Result};

/// Longest accepted block name, in bytes (all accepted characters are ASCII).
pub const MAX_NAME_LEN: usize = 128;

/// A valid block name: 1–128 of `a-z 0-9 - _ .`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockName(String);

/// Whether `c` may appear in a block name (or a type slug).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
}

impl BlockName {
    pub fn parse(raw: &str) -> Result<Self> {
        let invalid = |reason: &'static str| {
            Err(Error::InvalidBlockName {
                name: raw.chars().take(MAX_NAME_LEN + 8).collect(),
                reason: reason.into(),
            })
        };
        if raw.is_empty() {
            return invalid("a name cannot be empty");
        }
        if raw.len() > MAX_NAME_LEN {
            return invalid("a name has at most 128 characters");
        }
        let lower = raw.to_ascii_lowercase();
        if lower != raw && BlockName::parse(&lower).is_ok() {
            return Err(Error::InvalidBlockName {
                name: raw.to_owned(),
                reason: format!("names are lowercase; did you mean {lower:?}?").into(),
            });
        }
        if !raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return invalid("a name starts with a lowercase letter or a digit");
        }
        if !raw.chars().all(is_name_char) {
            return invalid("use only lowercase letters, digits, '-', '_' and '.'");
        }
        Ok(BlockName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name read back from the store, which checked it when it was written.
    pub(crate) fn stored(name: String) -> BlockName {
        BlockName(name)
    }
}

/// A block name as the registry takes it: a [`BlockName`], or text that is checked
/// once, at the registry's door (so a flow may write `registry.pool("crdb-sage")`).
pub trait ToBlockName {
    fn to_block_name(&self) -> Result<Cow<'_, BlockName>>;
}

impl ToBlockName for BlockName {
    fn to_block_name(&self) -> Result<Cow<'_, BlockName>> {
        Ok(Cow::Borrowed(self))
    }
}

impl ToBlockName for str {
    fn to_block_name(&self) -> Result<Cow<'_, BlockName>> {
        BlockName::parse(self).map(Cow::Owned)
    }
}

impl ToBlockName for String {
    fn to_block_name(&self) -> Result<Cow<'_, BlockName>> {
        self.as_str().to_block_name()
    }
}

impl PartialEq<str> for BlockName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for BlockName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for BlockName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl From<BlockName> for String {
    fn from(name: BlockName) -> String {
        name.0
    }
}

impl fmt::Display for BlockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name in a file (an apply file) is checked as it is read.
impl<'de> serde::Deserialize<'de> for BlockName {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        BlockName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A name reads as the text it is, so `&name` passes where a `&str` is wanted.
impl std::ops::Deref for BlockName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Parsing at the edges: clap (`name: BlockName` arguments) and `str::parse`.
impl std::str::FromStr for BlockName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BlockName::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        for ok in ["crdb-sage", "a", "0db", "x.y_z-1", &"a".repeat(128)] {
            assert!(BlockName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            ".x",
            "_x",
            "Crdb",
            "a b",
            "a/b",
            "é",
            &"a".repeat(129),
        ] {
            let err = BlockName::parse(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_BLOCK_NAME", "{bad}");
        }
    }
}
