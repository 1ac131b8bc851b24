//! The committed C headers must equal what cbindgen generates from the source.
//! Set REMOTEMEDIA_BLESS=1 to rewrite them after an intended ABI change.

use std::path::Path;

fn check(header: &Path, config: &Path, builder: cbindgen::Builder, source: &str) {
    let config = cbindgen::Config::from_file(config).expect("cbindgen.toml parses");
    let mut generated = Vec::new();
    builder.with_config(config).generate().expect("cbindgen generates the header").write(&mut generated);
    compare(header, &String::from_utf8(generated).expect("header is UTF-8"), source);
}

/// Fails unless `file` holds `generated`; with REMOTEMEDIA_BLESS set, writes it instead.
fn compare(file: &Path, generated: &str, source: &str) {
    if std::env::var_os("REMOTEMEDIA_BLESS").is_some() {
        std::fs::write(file, generated).expect("write generated file");
        return;
    }
    let committed = std::fs::read_to_string(file).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with {source}; run `REMOTEMEDIA_BLESS=1 cargo test -p remotemedia --test header` and commit it",
        file.display()
    );
}

#[test]
fn contract_file_matches_source() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../py/remotemedia/contract.json");
    let text = serde_json::to_string_pretty(&remotemedia::contract::contract()).expect("serializes") + "\n";
    compare(&file, &text, "native/src/contract.rs");
}

#[test]
fn contract_lists_every_status_of_the_header() {
    let header = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/remotemedia_plugin.h")).unwrap();
    let in_header = header.lines().filter(|l| l.trim_start().starts_with("RM_STATUS_")).count();
    let contract = remotemedia::contract::contract();
    let status = contract["status"].as_object().unwrap();
    assert_eq!(status.len(), in_header, "RmStatus::ALL misses a status of the header");
    for (name, code) in status {
        assert!(header.contains(&format!("RM_STATUS_{name} = {code},")), "{name} = {code} is not in the header");
    }
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
