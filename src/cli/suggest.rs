//! "Did you mean": a missing block or type answered with the known names closest to it
//! (`crdb-sag` → `crdb-sage`, `sqlalchemy` → `sqlalchemy-connector`), as git and cargo
//! answer a mistyped command.

use crate::error::Error;
use crate::registry::Registry;

/// At most this many names are suggested.
const MOST: usize = 3;

/// How alike two names must be (normalised Damerau-Levenshtein, 1 is equal).
const ALIKE: f64 = 0.7;

/// `err` with the names closest to the one it did not find, when it is a missing block
/// or type and some are close; as it was otherwise. Only names the caller may list are
/// read (through a server, the token's own view).
pub fn hint(registry: &Registry, err: Error) -> Error {
    let (wanted, known, what) = match &err {
        Error::BlockNotFound(name) => {
            let names = registry.list_blocks(&Default::default()).map(|blocks| {
                blocks
                    .into_iter()
                    .map(|b| b.name.to_string())
                    .collect::<Vec<_>>()
            });
            (name.clone(), names, "block")
        }
        Error::UnknownBlockType(slug) => {
            let slugs = registry
                .block_types()
                .map(|types| types.into_iter().map(|t| t.def.slug).collect::<Vec<_>>());
            (slug.clone(), slugs, "type")
        }
        _ => return err,
    };
    let close = closest(&wanted, known.unwrap_or_default());
    if close.is_empty() {
        return err;
    }
    let quoted: Vec<String> = close.iter().map(|n| format!("{n:?}")).collect();
    Error::Hinted {
        kind: err.kind(),
        message: format!(
            "{what} {wanted:?} not found; did you mean {}?",
            quoted.join(" or ")
        ),
    }
}

/// The known names most like `wanted`: one containing it or contained in it, or within
/// a few edits, best first.
fn closest(wanted: &str, known: Vec<String>) -> Vec<String> {
    let wanted = wanted.to_ascii_lowercase();
    let mut scored: Vec<(f64, String)> = known
        .into_iter()
        .filter_map(|name| {
            let score = strsim::normalized_damerau_levenshtein(&wanted, &name);
            let within = name.contains(&wanted) || wanted.contains(name.as_str());
            (score >= ALIKE || within).then_some((score + f64::from(u8::from(within)), name))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(MOST)
        .map(|(_, name)| name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_names_come_first() {
        let known = ["crdb-sage", "crdb-sales", "es-logs", "sqlalchemy-connector"]
            .map(String::from)
            .to_vec();
        assert_eq!(closest("crdb-sag", known.clone())[0], "crdb-sage");
        assert_eq!(
            closest("sqlalchemy", known.clone()),
            ["sqlalchemy-connector"]
        );
        assert_eq!(closest("CRDB-SAGE", known.clone())[0], "crdb-sage");
        assert!(closest("kafka", known).is_empty());
    }
}
