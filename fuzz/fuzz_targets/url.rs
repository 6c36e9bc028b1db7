//! Connection and store URLs from users (`--url`, `connection_info` as a URL,
//! `--database-url`): parsed, rebuilt and parsed again without a panic.
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
        if let Ok(url) = info.display_url(true) {
            let _ = ConnectionInfo::from_url("again", &url);
        }
    }
    if let Ok(store) = StoreUrl::parse(text) {
        let _ = store.to_string();
    }
    let _ = blockyard::document::parse_url_field("fuzz", text);
});
