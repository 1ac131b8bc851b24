//! The committed C headers must equal what cbindgen generates from the source.
//! Set REMOTEMEDIA_BLESS=1 to rewrite them after an intended ABI change.

use std::path::Path;

fn check(header: &Path, config: &Path, builder: cbindgen::Builder, source: &str) {
    let config = cbindgen::Config::from_file(config).expect("cbindgen.toml parses");
    let mut generated = Vec::new();
    builder.with_config(config).generate().expect("cbindgen generates the header").write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    if std::env::var_os("REMOTEMEDIA_BLESS").is_some() {
        std::fs::write(header, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(header).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with {source}; run `REMOTEMEDIA_BLESS=1 cargo test -p remotemedia --test header` and commit it",
        header.display()
    );
}

#[test]
fn runtime_header_matches_source() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let builder = cbindgen::Builder::new().with_crate(crate_dir);
    check(&crate_dir.join("../include/remotemedia.h"), &crate_dir.join("cbindgen.toml"), builder, "native/src/capi");
}

#[test]
fn plugin_header_matches_source() {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/remotemedia-plugin");
    let builder = cbindgen::Builder::new().with_src(kit.join("src/abi.rs"));
    let header = kit.join("../../include/remotemedia_plugin.h");
    check(&header, &kit.join("cbindgen.toml"), builder, "plugins/remotemedia-plugin/src/abi.rs");
    // cbindgen cannot emit string constants; the header's trailer spells the symbol.
    let symbol = remotemedia_plugin::abi::RM_PLUGIN_ENTRY_SYMBOL.to_str().unwrap();
    let text = std::fs::read_to_string(&header).unwrap();
    assert!(text.contains(&format!("#define RM_PLUGIN_ENTRY_SYMBOL \"{symbol}\"")), "entry symbol in the header differs from abi.rs");
}
