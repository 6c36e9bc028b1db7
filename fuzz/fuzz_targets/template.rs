//! `inject`'s templates (files users write): parsed without a panic; rendered with
//! every reference answered (empty), the text outside references is kept byte for
//! byte.
#![no_main]

use blockyard::template::{self, Piece};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pieces) = template::parse(text) else {
        return;
    };
    let plain: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.len(),
            // An empty value written `| json` is `""`.
            Piece::Ref(r) => 2 * usize::from(r.json),
        })
        .sum();
    let rendered = template::render(&pieces, |_| Ok(Some(String::new()))).expect("all answered");
    assert_eq!(rendered.len(), plain);
});
