//! The committed C header must equal what cbindgen generates from the source.
//! Set REMOTEMEDIA_BLESS=1 to rewrite it after an intended ABI change.

use std::path::Path;

#[test]
fn header_matches_source() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../include/remotemedia.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    if std::env::var_os("REMOTEMEDIA_BLESS").is_some() {
        std::fs::write(&header, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "include/remotemedia.h is out of date with native/src/capi; \
         run `REMOTEMEDIA_BLESS=1 cargo test -p remotemedia --test header` and commit it"
    );
}
