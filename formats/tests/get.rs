//! `get` paths: syntax, lookups, errors and suggestions.

use hero_formats::{GetError, Path, Step, get};
use serde_json::json;

#[test]
fn path_syntax() {
    let p = Path::parse(r#"servers[0]."a.b"[-1][name = 'x y'].port"#).unwrap();
    assert_eq!(
        p.steps,
        [
            Step::Key("servers".into()),
            Step::Index(0),
            Step::Key("a.b".into()),
            Step::Index(-1),
            Step::Select {
                key: "name".into(),
                value: "x y".into()
            },
            Step::Key("port".into()),
        ]
    );
    assert_eq!(p.to_string(), r#"servers[0]."a.b"[-1][name=x y].port"#);
    assert_eq!(Path::parse(&p.to_string()).unwrap(), p);
    for (bad, column) in [
        ("", 1),
        (".a", 1),
        ("a[", 3),
        ("a[0", 4),
        ("a..b", 3),
        ("a[*]", 3),
        ("a\"b", 2),
        ("\"open", 1),
    ] {
        match Path::parse(bad) {
            Err(GetError::Syntax { column: c, .. }) => assert_eq!(c, column, "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn missing_keys_suggest_the_nearest() {
    let v = json!({"servers": [{"port": 80, "host": "a"}], "service": {}, "zone": 1});
    let err = get(&v, "server[0].port").unwrap_err();
    assert_eq!(
        err,
        GetError::Missing {
            path: "server".into(),
            suggestions: vec!["servers".into()]
        }
    );
    let err = get(&v, "servers[0].prot").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`servers[0].prot` not found; nearest: servers[0].port"
    );
    let err = get(&v, "servers[3]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`servers[3]` not found; nearest: servers[0]"
    );
    let err = get(&v, "servers.port").unwrap_err();
    assert_eq!(err.to_string(), "`servers` is an array of 1, not an object");
    let err = get(&v, "zone.x").unwrap_err();
    assert_eq!(err.to_string(), "`zone` is a number, not an object");
    // Nothing near: the first keys are listed.
    let err = get(&v, "qqqqqqqq").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`qqqqqqqq` not found; nearest: servers, service, zone"
    );
}

#[test]
fn selecting_by_name_needs_exactly_one_match() {
    let v = json!({"n": [{"name": "a", "ip": 1}, {"name": "b"}, {"name": "b"}, {"id": 7}]});
    assert_eq!(get(&v, "n[name=a].ip").unwrap(), 1);
    assert_eq!(get(&v, "n[id=7]").unwrap(), &json!({"id": 7}));
    assert_eq!(
        get(&v, "n[name=b]").unwrap_err(),
        GetError::Ambiguous {
            path: "n[name=b]".into(),
            indices: vec![1, 2]
        }
    );
    assert_eq!(
        get(&v, "n[name=aa]").unwrap_err().to_string(),
        "`n[name=aa]` not found; nearest: n[name=a], n[name=b]"
    );
}

#[test]
fn find_reads_a_missing_key_as_none_for_key_history() {
    let old = hero_formats::parse_toml(b"[server]\nport = 80\n").unwrap();
    let new = hero_formats::parse_toml(b"server = \"gone\"\n").unwrap();
    assert_eq!(old.find("server.port").unwrap(), Some(&json!(80)));
    assert_eq!(new.find("server.port").unwrap(), None);
    assert_eq!(new.find("missing").unwrap(), None);
    assert!(new.find("a[").is_err());
}
