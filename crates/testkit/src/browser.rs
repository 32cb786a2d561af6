//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`),
//! for the web UI's end-to-end tests.
//!
//! The WebDriver protocol is JSON over HTTP (<https://www.w3.org/TR/webdriver2/>), so a few
//! calls through the same blocking client as [`crate::TestServer`] cover what the tests
//! need: open a page, run a script, find, click and type into elements, read the console,
//! take screenshots. Waiting happens inside the page ([`Browser::wait_for`] runs an async
//! script that resolves when a condition holds), never as a sleep in the test.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{eventually, free_port, Peer};

/// What Chromium needs here: no sandbox (tests run as root), no GPU, no network features
/// that would reach out (the network is closed), a fresh profile.
const ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session; closed (and chromedriver stopped) on drop.
pub struct Browser {
    _driver: Peer,
    _profile: tempfile::TempDir,
    base: String,
    agent: ureq::Agent,
}

/// A console message the page logged at level SEVERE (errors, failed requests).
#[derive(Debug, Clone)]
pub struct ConsoleError {
    /// The message, with the URL it came from.
    pub message: String,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session.
    pub fn start() -> Browser {
        let port = free_port();
        let driver = Peer::start("chromedriver", &[format!("--port={port}"), "--allowed-ips=127.0.0.1".into()]);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let root = format!("http://127.0.0.1:{port}");
        eventually("chromedriver to listen", Duration::from_millis(50), || {
            agent.get(&format!("{root}/status")).call().ok().filter(|r| r.status() == 200)
        });
        let profile = tempfile::Builder::new().prefix("telltale-chromium-").tempdir().expect("profile dir");
        let mut args: Vec<String> = ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"script": 30_000, "pageLoad": 30_000, "implicit": 0}
        }}});
        let mut b = Browser { _driver: driver, _profile: profile, base: String::new(), agent };
        let v = b.raw("POST", &format!("{root}/session"), Some(caps));
        let id = v["sessionId"].as_str().unwrap_or_else(|| panic!("no WebDriver session: {v}")).to_string();
        b.base = format!("{root}/session/{id}");
        b
    }

    fn raw(&self, method: &str, url: &str, body: Option<Value>) -> Value {
        self.try_raw(method, url, body)
            .unwrap_or_else(|(error, message)| panic!("webdriver {method} {url}: {error} ({message})"))
    }

    /// Like `raw`, with WebDriver's error (its `error` and `message`) returned.
    fn try_raw(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value, (Value, Value)> {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .expect("request");
        let mut res = self.agent.run(req).unwrap_or_else(|e| panic!("webdriver {method} {url}: {e}"));
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("webdriver answered non-JSON ({e}): {text}"));
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if value.get("error").is_some() {
            return Err((value["error"].clone(), value["message"].clone()));
        }
        Ok(value)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("{}{path}", self.base), body)
    }

    /// Opens `url` and waits for the page's load event.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Runs `script` asynchronously: it ends by calling its last argument with the result.
    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/async", Some(json!({ "script": script, "args": args })))
    }

    /// Waits (in the page, up to 30 s) until the JavaScript expression `condition` is
    /// truthy, and returns its value. Panics with `what` and the page's text otherwise.
    pub fn wait_for(&self, condition: &str, what: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1]; const until = Date.now() + 25000;
             const tick = () => {{ let v; try {{ v = ({condition}); }} catch (e) {{ v = null; }}
               if (v) return done({{ ok: v }}); if (Date.now() > until) return done({{ timeout: true }});
               setTimeout(tick, 50); }};
             tick();"
        );
        // A navigation while the script waits (a login redirect) ends the script, and
        // chromedriver answers "script timeout" at once: wait again in the new page.
        let url = format!("{}/execute/async", self.base);
        let v = crate::eventually(what, std::time::Duration::from_millis(50), || {
            match self.try_raw("POST", &url, Some(json!({ "script": script, "args": [] }))) {
                Ok(v) => Some(v),
                Err((e, _)) if e == "script timeout" => None,
                Err((e, m)) => panic!("webdriver POST {url} waiting for {what}: {e} ({m})"),
            }
        });
        if v.get("timeout").is_some() {
            let text = self.execute("return document.body.innerText.slice(0, 3000)", json!([]));
            panic!("timed out waiting for {what} ({condition})\n--- page text ---\n{}", text.as_str().unwrap_or(""));
        }
        v["ok"].clone()
    }

    /// The first element matching the CSS `selector`, waiting for it to appear.
    pub fn find(&self, selector: &str) -> String {
        let quoted = serde_json::to_string(selector).unwrap_or_default();
        self.wait_for(&format!("document.querySelector({quoted})"), &format!("an element {selector}"));
        let v = self.cmd("POST", "/element", Some(json!({ "using": "css selector", "value": selector })));
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {selector}: {v}")).to_string()
    }

    /// Clicks the element, as a user would (scrolled into view, real pointer events).
    pub fn click(&self, element: &str) {
        self.cmd("POST", &format!("/element/{element}/click"), Some(json!({})));
    }

    /// Types `text` into the element with real key events (WebDriver key codes such as
    /// `\u{E004}` for Tab and `\u{E007}` for Enter work too).
    pub fn type_into(&self, element: &str, text: &str) {
        self.cmd("POST", &format!("/element/{element}/value"), Some(json!({ "text": text })));
    }

    /// Empties an input or textarea.
    pub fn clear(&self, element: &str) {
        self.cmd("POST", &format!("/element/{element}/clear"), Some(json!({})));
    }

    /// Clicks the first element matching `selector` whose text contains `text`, waiting for
    /// one to appear.
    pub fn click_text(&self, selector: &str, text: &str) {
        let (sel, txt) =
            (serde_json::to_string(selector).unwrap_or_default(), serde_json::to_string(text).unwrap_or_default());
        self.wait_for(
            &format!("[...document.querySelectorAll({sel})].some((e) => e.textContent.includes({txt}))"),
            &format!("a {selector} with text {text:?}"),
        );
        let found = self.execute(
            "const [sel, text] = arguments; return [...document.querySelectorAll(sel)].find((e) => e.textContent.includes(text)) || null",
            json!([selector, text]),
        );
        let id = found[ELEMENT].as_str().unwrap_or_else(|| panic!("no {selector} with text {text:?}"));
        self.click(id);
    }

    /// Drags the mouse across `element` from `(x0, y)` to `(x1, y)` (offsets from its
    /// centre, CSS pixels) with real pointer events, as a user selecting a range.
    pub fn drag(&self, element: &str, x0: i64, x1: i64, y: i64) {
        let origin = json!({ ELEMENT: element });
        let actions = json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
            {"type": "pointerMove", "origin": origin, "x": x0, "y": y, "duration": 0},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerMove", "origin": origin, "x": (x0 + x1) / 2, "y": y, "duration": 50},
            {"type": "pointerMove", "origin": origin, "x": x1, "y": y, "duration": 50},
            {"type": "pointerUp", "button": 0}
        ]}]});
        self.cmd("POST", "/actions", Some(actions));
    }

    /// Moves the mouse to `(x, y)` from `element`'s centre (hover).
    pub fn hover(&self, element: &str, x: i64, y: i64) {
        let origin = json!({ ELEMENT: element });
        let actions = json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
            {"type": "pointerMove", "origin": origin, "x": x, "y": y, "duration": 0}
        ]}]});
        self.cmd("POST", "/actions", Some(actions));
    }

    /// Console messages at level SEVERE since the last call (errors, uncaught exceptions,
    /// failed requests).
    pub fn console_errors(&self) -> Vec<ConsoleError> {
        let v = self.cmd("POST", "/se/log", Some(json!({ "type": "browser" })));
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| ConsoleError { message: e["message"].as_str().unwrap_or("").to_string() })
            .collect()
    }

    /// Saves a PNG of the window to `path` (directories are created).
    pub fn screenshot(&self, path: &Path) {
        let v = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(v.as_str().unwrap_or(""));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Resizes the window (CSS pixels), e.g. to a phone's 390 x 844.
    pub fn set_size(&self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", Some(json!({ "width": width, "height": height })));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.base.is_empty() {
            let req = ureq::http::Request::builder().method("DELETE").uri(&self.base).body(String::new());
            if let Ok(req) = req {
                let _ = self.agent.run(req);
            }
        }
    }
}

/// Standard base64 (what WebDriver screenshots are), without a dependency for 20 lines.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(super::base64_decode("AAEC/w=="), [0, 1, 2, 255]);
    }
}
