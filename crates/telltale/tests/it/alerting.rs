//! Rules end to end: `check rules` and `test rules` against Prometheus's own promtool on
//! the same files, and rule evaluation in a running server (API shapes, ALERTS series,
//! reload, state kept across a restart).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use telltale_testkit::{eventually, TestServer};

use crate::{json, BIN};

fn testdata(name: &str) -> String {
    format!("{}/testdata/rules/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(program: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_rules_agrees_with_promtool() {
    for (file, ok) in [("alerts.yml", true), ("bad.yml", false), ("../../../alerting/rules/node.yml", true)] {
        let path = testdata(file);
        let (code, out) = run(BIN, &["check", "rules", &path]);
        let (pcode, pout) = run("promtool", &["check", "rules", &path]);
        assert_eq!(code == 0, ok, "{out}");
        assert_eq!(pcode == 0, ok, "promtool disagrees about {file}: {pout}");
        if ok {
            assert!(out.contains("  SUCCESS: "), "{out}");
        } else {
            assert!(out.contains("could not parse expression") && out.contains("invalid recording rule name"), "{out}");
        }
    }
}

#[test]
fn test_rules_agrees_with_promtool() {
    // The example of Prometheus's unit-testing docs, a failing variant, and the built-in pack's tests.
    for (file, ok) in [("alerts_test.yml", true), ("alerts_wrong_test.yml", false), ("node_test.yml", true)] {
        let path = testdata(file);
        let (code, out) = run(BIN, &["test", "rules", &path]);
        let (pcode, pout) = run("promtool", &["test", "rules", &path]);
        assert_eq!(code == 0, ok, "telltale on {file}: {out}");
        assert_eq!(pcode == 0, ok, "promtool on {file}: {pout}");
        if !ok {
            assert!(out.contains("alertname: InstanceDown, time: 3m") && out.contains("got:[]"), "{out}");
        }
    }
}

const RULES: &str = r#"
groups:
- name: t
  interval: 1s
  rules:
  - alert: AlwaysOn
    expr: vector(1)
    labels: {severity: page}
    annotations: {summary: "value is {{ $value }}"}
  - alert: Slow
    expr: vector(2)
    for: 1h
  - record: t:one
    expr: vector(1)
"#;

fn alert<'a>(alerts: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    alerts["data"]["alerts"].as_array()?.iter().find(|a| a["labels"]["alertname"] == name)
}

#[test]
fn rules_run_in_the_server_and_keep_state_across_restarts() {
    let write_rules = |d: &Path| std::fs::write(d.join("rules.yml"), RULES).unwrap();
    let mut s = TestServer::start_with(BIN, "rule_files: [data/rules.yml]\n", write_rules);
    let firing = eventually("AlwaysOn to fire", Duration::from_millis(100), || {
        let j = json(&s.get("/api/v1/alerts"));
        alert(&j, "AlwaysOn").filter(|a| a["state"] == "firing").cloned()
    });
    assert_eq!(firing["annotations"]["summary"], "value is 1");
    assert_eq!(firing["labels"]["severity"], "page");
    assert_eq!(firing["value"], "1e+00");
    let j = json(&s.get("/api/v1/alerts"));
    let slow = alert(&j, "Slow").cloned().expect("Slow is pending");
    // No receiver is configured: the firing alert is still in the Alertmanager API.
    let v2 = telltale_testkit::eventually("AlwaysOn in /api/v2/alerts", Duration::from_millis(100), || {
        json(&s.get("/api/v2/alerts")).as_array().filter(|a| !a.is_empty()).cloned()
    });
    assert_eq!(v2[0]["labels"]["alertname"], "AlwaysOn");
    assert_eq!(v2[0]["receivers"][0]["name"], "default");
    assert_eq!(slow["state"], "pending");

    let rules = json(&s.get("/api/v1/rules"));
    let groups: Vec<&str> =
        rules["data"]["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert!(
        groups.contains(&"t") && groups.contains(&"telltale-node"),
        "the built-in pack is on by default: {groups:?}"
    );
    let t = rules["data"]["groups"].as_array().unwrap().iter().find(|g| g["name"] == "t").unwrap();
    assert_eq!(t["rules"][2]["type"], "recording");
    assert_eq!(t["rules"][2]["health"], "ok");
    let r = s.get("/api/v1/rules?type=record&exclude_alerts=true");
    assert_eq!(json(&r)["data"]["groups"].as_array().unwrap().len(), 1, "{}", r.text());
    assert_eq!(s.get("/api/v1/rules?type=bogus").status, 400);

    // ALERTS and recorded series are written to the store and queryable.
    let q = eventually("ALERTS and t:one in the store", Duration::from_millis(100), || {
        let j = json(&s.get("/api/v1/query?query=count(ALERTS)%20and%20count(t%3Aone)"));
        (j["data"]["result"].as_array().is_some_and(|r| !r.is_empty())).then_some(j)
    });
    assert_eq!(q["data"]["result"][0]["value"][1], "2");

    // A restart keeps the pending alert's activeAt: it does not start its hour again.
    s.restart();
    let j = json(&s.get("/api/v1/alerts"));
    let again = alert(&j, "Slow").cloned().expect("Slow survives the restart");
    assert_eq!((again["state"].clone(), again["activeAt"].clone()), (slow["state"].clone(), slow["activeAt"].clone()));

    // Hot reload: the rule file changes, the server follows.
    std::fs::write(s.data_dir().join("rules.yml"), RULES.replace("Slow", "Renamed")).unwrap();
    let r = s.request("POST", "/-/reload", &[], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let rules = json(&s.get("/api/v1/rules?rule_name[]=Renamed"));
    assert_eq!(rules["data"]["groups"][0]["rules"][0]["name"], "Renamed");
    // A broken rule file fails the reload and keeps the rules in force.
    std::fs::write(s.data_dir().join("rules.yml"), "groups:\n- name: x\n  rules:\n  - alert: A\n    expr: sum(\n")
        .unwrap();
    let r = s.request("POST", "/-/reload", &[], &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("could not parse expression"), "{}", r.text());
    assert!(alert(&json(&s.get("/api/v1/alerts")), "AlwaysOn").is_some());
}
