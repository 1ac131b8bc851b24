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
    assert_eq!(c.source(), Source::Node("vad", Some("segments")));
    assert_eq!(c.target(), ("x", None));
    let c = Connection { from: "$mic".into(), to: "mix.in1".into() };
    assert_eq!(c.source(), Source::Input("mic"));
    assert_eq!(c.target(), ("mix", Some("in1")));
}

const NAMED: &str = r#"{"version":"1","inputs":[{"name":"mic","sample_rate":16000},{"name":"far"}],
  "nodes":[{"id":"g","node_type":"Gain"},{"id":"mix","node_type":"Mix","params":{"gains":[1,1]}}],
  "connections":[{"from":"$mic","to":"g"},{"from":"g","to":"mix.in0"},{"from":"$far","to":"mix.in1"}]}"#;

#[test]
fn named_inputs_feed_where_their_connections_go() {
    let m = Manifest::from_json(NAMED).unwrap();
    let caps = m.input_caps().unwrap();
    assert_eq!(caps.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["mic", "far"]);
    assert_eq!(caps[0].1.rate(), Some(16000));
    assert_eq!(
        m.feeds(),
        [
            Feed { input: 0, node: 0, port: None, connection: Some(0) },
            Feed { input: 1, node: 1, port: Some("in1".into()), connection: Some(2) }
        ]
    );
    let again = Manifest::from_json(&m.to_json()).unwrap();
    assert_eq!(again.to_json(), m.to_json());
    // without named inputs, the one input goes to every source
    let plain = Manifest::from_json(OK).unwrap();
    assert_eq!(plain.feeds(), [Feed { input: 0, node: 0, port: None, connection: None }]);
    assert_eq!(plain.input_caps().unwrap()[0].0, DEFAULT_INPUT);
}

#[test]
fn named_input_mistakes_are_named() {
    let bad = |from: &str, to: &str| NAMED.replace(from, to);
    let (path, msg) = err(&bad(r#""from":"$far""#, r#""from":"$fra""#));
    assert_eq!(path, "connections[2].from");
    assert!(msg.contains("no pipeline input '$fra'; did you mean 'far'?; inputs: mic, far"), "{msg}");
    let (path, msg) = err(&bad(r#"{"name":"far"}"#, r#"{"name":"mic"}"#));
    assert_eq!(path, "inputs[1].name");
    assert!(msg.contains("duplicate input name 'mic'"), "{msg}");
    let (path, msg) = err(&bad(r#"{"from":"$far","to":"mix.in1"}"#, r#"{"from":"g","to":"mix.in1"}"#));
    assert_eq!(path, "inputs[1]");
    assert!(msg.contains("input 'far' feeds no node"), "{msg}");
    let (path, _) = err(&bad(r#""inputs""#, r#""input":{},"inputs""#));
    assert_eq!(path, "inputs");
    let (path, msg) = err(&bad(r#"{"name":"far"}"#, r#"{"name":"far","sample_rate":0}"#));
    assert_eq!(path, "inputs[1].sample_rate", "{msg}");
    let (path, msg) = err(&bad(r#"{"name":"far"}"#, r#"{"name":"f.r"}"#));
    assert_eq!(path, "inputs[1].name", "{msg}");
    let (path, msg) = err(r#"{"version":"1","nodes":[{"id":"a","node_type":"Gain"}],"connections":[{"from":"$x","to":"a"}]}"#);
    assert_eq!(path, "connections[0].from");
    assert!(msg.contains("declare it in \"inputs\""), "{msg}");
    let (path, msg) =
        err(&bad(r#"{"from":"$mic","to":"g"}"#, r#"{"from":"$mic","to":"mix.in0"}"#).replace(r#"{"from":"g","to":"mix.in0"},"#, ""));
    assert_eq!(path, "nodes[0]");
    assert!(msg.contains("node 'g' gets nothing"), "{msg}");
    let (path, msg) = err(r#"{"version":"1","inputs":[{"name":"a"},{"name":"b"}],"nodes":[{"id":"a","node_type":"Gain"}]}"#);
    assert_eq!(path, "inputs");
    assert!(msg.contains("2 inputs are declared and no connection comes from one"), "{msg}");
}
