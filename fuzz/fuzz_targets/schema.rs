//! `db apply`'s placeholders in untrusted SQL files: substitution (sqlparser's
//! tokenizer) never panics, and a file without placeholders comes back unchanged.
#![no_main]

use blockyard::provision::schema::{Values, substitute};
use blockyard::provision::sql::Dialect;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let values = Values {
        user: "fz_user",
        password: "PW'\\$$x\"`",
        database: "fz_db",
    };
    for dialect in [Dialect::Postgres, Dialect::Mysql, Dialect::Cockroach] {
        let Ok(out) = substitute(dialect, text, &values) else {
            continue;
        };
        if !text.contains("%%") {
            assert_eq!(out, text, "a file without placeholders changed");
        }
    }
});
