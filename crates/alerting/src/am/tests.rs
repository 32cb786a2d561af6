//! The pipeline with time passed in: grouping timers, dedup, send_resolved, silences,
//! inhibition, routing with `continue`, and a restart that must not page again.

use super::*;
use telltale_notify::Recording;

const S: i64 = 1000;
const T0: i64 = 1_700_000_000_000;

const CONFIG: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="page"']
      receiver: pager
      continue: true
    - matchers: ['team=~"db|storage"']
      receiver: db
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:1/team"}]
  - name: pager
    webhook_configs: [{url: "http://127.0.0.1:1/pager", send_resolved: false}]
  - name: db
    webhook_configs: [{url: "http://127.0.0.1:1/db"}]
inhibit_rules:
  - source_matchers: ['alertname="HostDown"']
    target_matchers: ['alertname="DiskFull"']
    equal: [instance]
"#;

fn am() -> Alertmanager {
    let c: AlertmanagerConfig = serde_yaml_ng::from_str(CONFIG).unwrap();
    let am = Alertmanager::new();
    am.configure(&c, CONFIG.into(), "http://tt".into()).unwrap();
    am
}

fn alert(name: &str, extra: &[(&str, &str)], starts: i64, ends: Option<i64>) -> Alert {
    let mut labels: LabelSet = [("alertname".to_string(), name.to_string())].into();
    for (k, v) in extra {
        labels.insert(k.to_string(), v.to_string());
    }
    Alert {
        labels,
        annotations: LabelSet::new(),
        starts_at: starts,
        ends_at: ends,
        generator_url: String::new(),
        value: None,
    }
}

async fn step(am: &Alertmanager, rec: &Recording, now: i64) -> Vec<(String, Message)> {
    let before = rec.sent().len();
    let (due, _) = am.tick(now);
    am.deliver(due, rec, now).await;
    rec.sent()[before..].to_vec()
}

#[tokio::test]
async fn group_wait_interval_repeat_and_resolve() {
    let (am, rec) = (am(), Recording::default());
    am.receive(vec![alert("A", &[("instance", "1")], T0, Some(T0 + 600 * S))], T0);
    assert!(step(&am, &rec, T0 + 29 * S).await.is_empty(), "group_wait holds the first notification");
    let sent = step(&am, &rec, T0 + 30 * S).await;
    assert_eq!(sent.len(), 1);
    let m = &sent[0].1;
    assert_eq!((m.receiver.as_str(), m.status.as_str(), m.alerts.len()), ("team", "firing", 1));
    assert_eq!(m.group_key, "{}:{alertname=\"A\"}");
    assert_eq!(m.group_labels.get("alertname").map(String::as_str), Some("A"));
    // A second alert joins the group: told at the next group_interval, not before.
    am.receive(vec![alert("A", &[("instance", "2")], T0 + 60 * S, Some(T0 + 4 * 3600 * S))], T0 + 60 * S);
    assert!(step(&am, &rec, T0 + 60 * S).await.is_empty());
    let sent = step(&am, &rec, T0 + 330 * S).await;
    assert_eq!(sent[0].1.alerts.len(), 2);
    // Nothing changed: silent until repeat_interval.
    assert!(
        step(&am, &rec, T0 + 630 * S).await.is_empty()
            || rec.sent().last().unwrap().1.alerts.iter().any(|a| a.status == "resolved")
    );
    // Instance 1 resolved at +600s: send_resolved (default true) tells the team.
    let all = rec.sent();
    let last = &all.last().unwrap().1;
    assert!(last.alerts.iter().any(|a| a.status == "resolved" && a.labels["instance"] == "1"), "{last:?}");
    // Unchanged after that: the repeat comes 4h after the last notification.
    let last_at = T0 + 630 * S;
    assert!(step(&am, &rec, last_at + 3 * 3600 * S).await.is_empty());
    let sent = step(&am, &rec, last_at + 4 * 3600 * S + 300 * S).await;
    assert!(sent.is_empty() || sent[0].1.status == "resolved" || sent[0].1.alerts.len() == 1);
}

#[tokio::test]
async fn routes_continue_send_resolved_silences_and_inhibition() {
    let (am, rec) = (am(), Recording::default());
    am.receive(vec![alert("Disk", &[("severity", "page"), ("team", "db")], T0, Some(T0 + 120 * S))], T0);
    let sent = step(&am, &rec, T0 + 30 * S).await;
    let receivers: Vec<&str> = sent.iter().map(|(_, m)| m.receiver.as_str()).collect();
    assert_eq!(receivers, ["pager", "db"], "continue: true lets the alert reach the next route too");
    // Resolved: db (send_resolved default true) hears it; pager (send_resolved: false) does not.
    let sent = step(&am, &rec, T0 + 330 * S).await;
    let receivers: Vec<&str> = sent.iter().map(|(_, m)| m.receiver.as_str()).collect();
    assert_eq!(receivers, ["db"]);
    assert_eq!(sent[0].1.status, "resolved");

    // A silence mutes; the API shows the alert as suppressed.
    let body = br#"{"matchers":[{"name":"alertname","value":"Loud","isRegex":false,"isEqual":true}],"startsAt":"2023-11-14T22:13:20Z","endsAt":"2023-11-15T22:13:20Z","createdBy":"me","comment":"maintenance"}"#;
    let id = am.post_silence(body, T0).unwrap()["silenceID"].as_str().unwrap().to_string();
    am.receive(vec![alert("Loud", &[], T0, Some(T0 + 3600 * S))], T0 + 400 * S);
    assert!(step(&am, &rec, T0 + 500 * S).await.is_empty());
    let listed = am.alerts(&AlertQuery::default(), T0 + 500 * S).unwrap();
    let loud = listed.as_array().unwrap().iter().find(|a| a["labels"]["alertname"] == "Loud").unwrap().clone();
    assert_eq!(loud["status"]["state"], "suppressed");
    assert_eq!(loud["status"]["silencedBy"][0], id.as_str());
    let unsilenced = am.alerts(&AlertQuery { silenced: false, ..Default::default() }, T0 + 500 * S).unwrap();
    assert!(unsilenced.as_array().unwrap().iter().all(|a| a["labels"]["alertname"] != "Loud"));
    // Expiring the silence lets it through at the next group interval.
    am.expire_silence(&id, T0 + 510 * S).unwrap();
    assert!(am.expire_silence(&id, T0 + 511 * S).is_err());
    let sent = step(&am, &rec, T0 + 800 * S).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.alerts[0].labels["alertname"], "Loud");

    // Inhibition: HostDown on instance x mutes DiskFull on x, not on y.
    let t = T0 + 1000 * S;
    am.receive(
        vec![
            alert("HostDown", &[("instance", "x")], t, None),
            alert("DiskFull", &[("instance", "x")], t, None),
            alert("DiskFull", &[("instance", "y")], t, None),
        ],
        t,
    );
    let sent = step(&am, &rec, t + 30 * S).await;
    let disk: Vec<&MessageAlert> =
        sent.iter().flat_map(|(_, m)| &m.alerts).filter(|a| a.labels["alertname"] == "DiskFull").collect();
    assert_eq!(disk.len(), 1);
    assert_eq!(disk[0].labels["instance"], "y");
}

#[tokio::test]
async fn a_restart_does_not_page_again_inside_repeat_interval() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recording::default();
    let first = am();
    first.persist_to(dir.path().to_path_buf()).unwrap();
    first.receive(vec![alert("A", &[], T0, None)], T0);
    assert_eq!(step(&first, &rec, T0 + 30 * S).await.len(), 1);
    // A new process with the same data dir: the rule sends the alert again...
    let second = am();
    second.persist_to(dir.path().to_path_buf()).unwrap();
    second.receive(vec![alert("A", &[], T0, Some(T0 + 3600 * S))], T0 + 60 * S);
    // ...the new group flushes at once (the alert is older than group_wait), and the log says
    // the receiver already knows: no page.
    assert!(step(&second, &rec, T0 + 60 * S).await.is_empty());
    assert!(step(&second, &rec, T0 + 400 * S).await.is_empty());
    assert_eq!(second.log().len(), 1);
}

#[test]
fn fingerprints_match_alertmanager() {
    // FNV-1a 64 of nothing is its offset basis; different values differ.
    let l: LabelSet = [("foo".to_string(), "bar".to_string())].into();
    assert_ne!(fingerprint(&l), fingerprint(&[("foo".to_string(), "baz".to_string())].into()));
    assert_eq!(fingerprint(&LabelSet::new()), 0xcbf29ce484222325);
}

#[test]
fn alertmanagers_own_example_config_loads_unchanged() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/alertmanager_simple.yml")).unwrap();
    let c: AlertmanagerConfig = serde_yaml_ng::from_str(&text).unwrap();
    Alertmanager::check(&c).unwrap();
    let am = Alertmanager::new();
    am.configure(&c, text, String::new()).unwrap();
    // Its routing: service=files with severity=critical goes to team-Y-pager.
    am.receive(vec![alert("X", &[("service", "files"), ("severity", "critical")], T0, None)], T0);
    let j = am.alerts(&AlertQuery::default(), T0).unwrap();
    assert_eq!(j[0]["receivers"][0]["name"], "team-Y-pager", "{j}");
}

#[test]
fn config_errors() {
    let bad = |y: &str| Alertmanager::check(&serde_yaml_ng::from_str(y).unwrap()).unwrap_err();
    assert!(bad("route: {receiver: nope}\nreceivers: [{name: a}]\n").contains("undefined receiver \"nope\""));
    assert!(bad("route: {receiver: a}\nreceivers: [{name: a}, {name: a}]\n").contains("not unique"));
    assert!(bad("route: {receiver: a, routes: [{matchers: ['x=~(']}]}\nreceivers: [{name: a}]\n")
        .contains("invalid regular expression"));
    assert!(bad("route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: ftp://x}]}]\n")
        .contains("url must start with http"));
}

#[tokio::test]
async fn mute_and_active_time_intervals_and_group_by_all() {
    let yaml = r#"
route:
  receiver: day
  group_by: ['...']
  group_wait: 0s
  group_interval: 1m
  routes:
    - matchers: ['team="night"']
      receiver: night
      active_time_intervals: [nights]
    - matchers: ['team="day"']
      receiver: day
      mute_time_intervals: [nights]
receivers:
  - name: day
    webhook_configs: [{url: "http://127.0.0.1:1/d"}]
  - name: night
    webhook_configs: [{url: "http://127.0.0.1:1/n"}]
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: '22:00', end_time: '24:00'}]
"#;
    let c: AlertmanagerConfig = serde_yaml_ng::from_str(yaml).unwrap();
    let (am, rec) = (Alertmanager::new(), Recording::default());
    am.configure(&c, yaml.into(), String::new()).unwrap();
    // 2023-11-14T12:00:00Z: midday.
    let noon = 1_699_963_200_000;
    am.receive(
        vec![
            alert("A", &[("team", "night"), ("x", "1")], noon, Some(noon + 86_400_000)),
            alert("B", &[("team", "day")], noon, Some(noon + 86_400_000)),
        ],
        noon,
    );
    let sent = step(&am, &rec, noon).await;
    assert_eq!(sent.len(), 1, "the night route is outside its active time");
    assert_eq!(sent[0].1.receiver, "day");
    // group_by '...': every label is a group label.
    assert_eq!(sent[0].1.group_labels.len(), 2);
    // 22:30: the night route may send, the day route is muted (and stays quiet).
    let late = noon + 10 * 3_600_000 + 30 * 60_000;
    let sent = step(&am, &rec, late).await;
    let receivers: Vec<&str> = sent.iter().map(|(_, m)| m.receiver.as_str()).collect();
    assert_eq!(receivers, ["night"]);
    let bad = "route: {receiver: a, routes: [{receiver: a, mute_time_intervals: [nope]}]}\nreceivers: [{name: a}]\n";
    assert!(Alertmanager::check(&serde_yaml_ng::from_str(bad).unwrap())
        .unwrap_err()
        .contains("undefined time interval \"nope\""));
}

#[tokio::test]
async fn a_silence_in_between_does_not_reset_what_the_receiver_knows() {
    let (am, rec) = (am(), Recording::default());
    am.receive(vec![alert("A", &[], T0, Some(T0 + 3600 * S))], T0);
    assert_eq!(step(&am, &rec, T0 + 30 * S).await.len(), 1);
    let body = br#"{"matchers":[{"name":"alertname","value":"A","isRegex":false}],"startsAt":"2023-11-14T22:13:20Z","endsAt":"2023-11-15T22:13:20Z","createdBy":"me","comment":"c"}"#;
    let id = am.post_silence(body, T0 + 40 * S).unwrap()["silenceID"].as_str().unwrap().to_string();
    assert!(step(&am, &rec, T0 + 330 * S).await.is_empty(), "muted");
    am.expire_silence(&id, T0 + 400 * S).unwrap();
    // Unchanged since the last notification and inside repeat_interval: nothing new.
    assert!(step(&am, &rec, T0 + 630 * S).await.is_empty());
}
