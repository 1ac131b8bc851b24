use super::*;

fn err(text: &str) -> (String, String) {
    match Manifest::from_json(text) {
        Err(Error::Manifest { path, message }) => (path, message),
        Err(other) => panic!("expected a manifest error, got {other}"),
        Ok(_) => panic!("expected a manifest error for {text}"),
    }
}

const OK: &str = r#"{"version":"1","metadata":{"name":"demo"},
  "nodes":[{"id":"a","node_type":"Gain","params":{"gain_db":6}},{"id":"b","node_type":"PassThrough","runtime_hint":"native"}],
  "connections":[{"from":"a","to":"b"}]}"#;

#[test]
fn valid_manifest_parses_and_round_trips() {
    let m = Manifest::from_json(OK).unwrap();
    assert_eq!(m.nodes.len(), 2);
    assert_eq!(m.nodes[1].runtime_hint, RuntimeHint::Native);
    assert_eq!(m.nodes[0].runtime_hint, RuntimeHint::Auto);
    let again = Manifest::from_json(&m.to_json()).unwrap();
    assert_eq!(again.to_json(), m.to_json());
}

#[test]
fn unknown_field_is_named_with_its_path() {
    let (path, msg) = err(r#"{"version":"1","nodes":[{"id":"a","node_type":"Gain","colour":1}]}"#);
    assert_eq!(path, "nodes[0].colour");
    assert!(msg.contains("unknown field `colour`"), "{msg}");
    let (path, _) = err(r#"{"version":"1","nodes":[],"extra":true}"#);
    assert_eq!(path, "extra");
}

#[test]
fn wrong_type_is_named_with_its_path() {
    let (path, _) = err(r#"{"version":"1","nodes":[{"id":"a","node_type":"Gain","params":[1]}]}"#);
    assert_eq!(path, "nodes[0].params");
    let (path, msg) = err(r#"{"version":"1","nodes":[{"id":"a","node_type":"Gain","runtime_hint":"gpu"}]}"#);
    assert_eq!(path, "nodes[0].runtime_hint");
    assert!(msg.contains("gpu"), "{msg}");
}

#[test]
fn unsupported_version() {
    let (path, msg) = err(r#"{"version":"2","nodes":[{"id":"a","node_type":"Gain"}]}"#);
    assert_eq!(path, "version");
    assert!(msg.contains("'2'"));
}

#[test]
fn duplicate_id_names_both_places() {
    let (path, msg) = err(r#"{"version":"1","nodes":[{"id":"a","node_type":"X"},{"id":"a","node_type":"Y"}]}"#);
    assert_eq!(path, "nodes[1].id");
    assert!(msg.contains("duplicate node id 'a'") && msg.contains("nodes[0]"), "{msg}");
}

#[test]
fn bad_ids_and_empty_types() {
    assert_eq!(err(r#"{"version":"1","nodes":[{"id":"","node_type":"X"}]}"#).0, "nodes[0].id");
    assert_eq!(err(r#"{"version":"1","nodes":[{"id":"a b","node_type":"X"}]}"#).0, "nodes[0].id");
    assert_eq!(err(r#"{"version":"1","nodes":[{"id":"a.b","node_type":"X"}]}"#).0, "nodes[0].id");
    assert_eq!(err(r#"{"version":"1","nodes":[{"id":"a","node_type":""}]}"#).0, "nodes[0].node_type");
}

#[test]
fn connection_to_missing_node() {
    let base = r#"{"version":"1","nodes":[{"id":"a","node_type":"X"}],"connections":[CONN]}"#;
    let (path, msg) = err(&base.replace("CONN", r#"{"from":"a","to":"zz"}"#));
    assert_eq!(path, "connections[0].to");
    assert!(msg.contains("'zz'"));
    let (path, _) = err(&base.replace("CONN", r#"{"from":"q.out","to":"a"}"#));
    assert_eq!(path, "connections[0].from");
}

#[test]
fn duplicate_connection() {
    let (path, _) = err(r#"{"version":"1","nodes":[{"id":"a","node_type":"X"},{"id":"b","node_type":"X"}],
            "connections":[{"from":"a","to":"b"},{"from":"a","to":"b"}]}"#);
    assert_eq!(path, "connections[1]");
}

#[test]
fn empty_and_oversized_manifests() {
    assert_eq!(err(r#"{"version":"1","nodes":[]}"#).0, "nodes");
    let big = format!(r#"{{"version":"1","metadata":{{"pad":"{}"}},"nodes":[]}}"#, "x".repeat(MAX_MANIFEST_BYTES));
    assert!(err(&big).1.contains("limit"));
    let nodes: Vec<String> = (0..=MAX_NODES).map(|i| format!(r#"{{"id":"n{i}","node_type":"X"}}"#)).collect();
    let many = format!(r#"{{"version":"1","nodes":[{}]}}"#, nodes.join(","));
    assert_eq!(err(&many).0, "nodes");
}

#[test]
fn not_json_at_all() {
    assert_eq!(err("{nope").0, "$");
    assert_eq!(err(r#"{"version":"1","nodes":[{"id":"a","node_type":"X"}]} trailing"#).0, "$");
}

#[test]
fn ports_are_split_from_node_ids() {
    let c = Connection { from: "vad.segments".into(), to: "x".into() };
    assert_eq!(c.source(), ("vad", Some("segments")));
}
