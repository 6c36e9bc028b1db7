//! Connection and store URLs from users (`--url`, `connection_info` as a URL,
//! `--database-url`): parsed without a panic; a connection URL as printed reads back
//! as the same connection.
#![no_main]

use blockyard::connect::ConnectionInfo;
use blockyard::store::StoreUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(info) = ConnectionInfo::from_url("fuzz", text) {
        let _ = format!("{info:?}");
        let _ = info.to_components();
        // What Blockyard prints, Blockyard reads back as the same connection.
        if let Ok(url) = info.display_url(true) {
            let back = ConnectionInfo::from_url("again", &url).expect("a printed URL reads back");
            assert_eq!(back.display_url(true).ok(), Some(url));
            assert_eq!(back.libpq_params(), info.libpq_params());
        }
    }
    if let Ok(store) = StoreUrl::parse(text) {
        let _ = store.to_string();
    }
    let _ = blockyard::document::parse_url_field("fuzz", text);
});
