//! Go templates (rule annotations, notification texts): parse and render arbitrary text
//! with alert-like data; errors are fine, panics and hangs are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_template::{render, Env, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let labels = Value::string_map([("alertname", "X"), ("instance", "a:1")]);
    let dot = Value::map([
        ("Labels", labels.clone()),
        ("Value", Value::Float(1.5)),
        ("Alerts", Value::List(vec![Value::map([("Status", Value::str("firing")), ("Labels", labels)])])),
    ]);
    let _ = render("fuzz", text, &dot, &Env::default());
    let _ = render("fuzz", text, &dot, &Env { html: true, ..Default::default() });
});
