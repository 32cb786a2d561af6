//! Dev-only helpers for end-to-end tests: [`TestServer`] runs the REAL `telltale` binary
//! on an ephemeral loopback port with a temporary data directory, and speaks HTTP to it
//! through a blocking client.
//!
//! Inputs: the binary's path (`env!("CARGO_BIN_EXE_telltale")`) and a YAML config.
//! Outputs: a running server, its URL, its logs, and control over its life (SIGTERM,
//! SIGKILL, SIGHUP, restart on the same data).
//!
//! The one design decision to know: nothing here sleeps or polls on a timer. Startup is
//! followed by reading the server's log from its stderr pipe (a reader thread forwards
//! each line), and the bound address comes from the `telltale.addr` file the server
//! writes into its data directory after binding port 0.
#![warn(missing_docs)]

pub mod browser;
pub mod pki;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long startup, shutdown and single requests may take before a test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// A running `telltale serve` with its own temporary directory.
pub struct TestServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Log lines as they come; behind a mutex so `&TestServer` can be shared with writer threads.
    lines: Option<Mutex<Receiver<String>>>,
    log: Arc<Mutex<String>>,
    url: String,
    agent: ureq::Agent,
    /// `--listen` for the next start: port 0 unless pinned with [`TestServer::pin_address`].
    listen: String,
}

impl TestServer {
    /// Writes `config_yaml` to a file and starts `binary serve` with it, listening on
    /// `127.0.0.1:0` with a data directory under a fresh temp dir; returns once `/-/ready`
    /// answers 200. Panics (failing the test) with the server's log if it does not start.
    pub fn start(binary: impl AsRef<Path>, config_yaml: &str) -> TestServer {
        Self::start_with(binary, config_yaml, |_| {})
    }

    /// Like [`TestServer::start`], calling `prepare` with the (created, empty) data directory
    /// first, e.g. to mount a small tmpfs there.
    pub fn start_with(binary: impl AsRef<Path>, config_yaml: &str, prepare: impl FnOnce(&Path)) -> TestServer {
        let dir = tempfile::Builder::new().prefix("telltale-test-").tempdir().expect("create temp dir");
        std::fs::write(dir.path().join("telltale.yml"), config_yaml).expect("write config");
        std::fs::create_dir_all(dir.path().join("data")).expect("create data dir");
        prepare(&dir.path().join("data"));
        let config = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(PATIENCE)).build();
        let mut server = TestServer {
            binary: binary.as_ref().to_path_buf(),
            dir,
            child: None,
            lines: None,
            log: Arc::new(Mutex::new(String::new())),
            url: String::new(),
            agent: config.into(),
            listen: "127.0.0.1:0".into(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let addr_file = self.data_dir().join("telltale.addr");
        let _ = std::fs::remove_file(&addr_file);
        let mut child = Command::new(&self.binary)
            .arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .args(["--listen", &self.listen, "--data-dir"])
            .arg(self.data_dir())
            .env("RUST_LOG", std::env::var("TELLTALE_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .env_remove("TELLTALE_LISTEN")
            .env_remove("TELLTALE_DATA_DIR")
            .env_remove("TELLTALE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap_or_else(|p| p.into_inner()).push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        self.lines = Some(Mutex::new(rx));
        self.wait_for_log(|l| l.contains(" listening addr="));
        let addr = std::fs::read_to_string(&addr_file).unwrap_or_else(|e| self.fail(&format!("no address file: {e}")));
        // Under TLS (a web config's tls_server_config) the URL is https; this client speaks
        // plain HTTP only, so TLS tests talk to the server with curl.
        let tls = self.log().contains("TLS is on");
        self.url = format!("{}://{}", if tls { "https" } else { "http" }, addr.trim());
        self.wait_for_log(|l| l.ends_with(" ready"));
        if !tls {
            // 401: authentication is on and the probe carries no credential; the server answered.
            let res = self.get("/-/ready");
            if res.status != 200 && res.status != 401 {
                self.fail(&format!("/-/ready answered {} {}", res.status, res.text()));
            }
        }
    }

    /// Waits until the server logs a line satisfying `pred` and returns it. Panics if the
    /// process ends first (its log is in the message).
    pub fn wait_for_log(&self, pred: impl Fn(&str) -> bool) -> String {
        let rx = self.lines.as_ref().unwrap_or_else(|| self.fail("the server is not running"));
        let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match rx.recv_timeout(PATIENCE) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(e) => self.fail(&format!("expected log line never came ({e})")),
            }
        }
    }

    fn fail(&self, why: &str) -> ! {
        panic!("telltale test server: {why}\n--- server log ---\n{}", self.log())
    }

    /// Everything the server logged so far (all runs of this server).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The data directory (kept across restarts).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The config file the server reads (rewrite it, then [`TestServer::reload`]).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("telltale.yml")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_else(|| self.fail("the server is not running"))
    }

    /// Sends a signal by name (`HUP`, `TERM`, `KILL`, ...) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Makes later restarts listen on the address bound now, so clients configured with the
    /// URL (an agent remote-writing here) reach the restarted server.
    pub fn pin_address(&mut self) {
        self.listen = self.url.trim_start_matches("http://").to_string();
    }

    /// Starts the server again after [`TestServer::terminate`] or [`TestServer::kill9`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn();
    }

    /// SIGKILL: the process dies at once, as in a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.lines = None;
    }

    /// SIGTERM, then waits for the process to exit and returns its status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().unwrap_or_else(|| self.fail("the server is not running"));
        // The reader thread ends when the process closes stderr; draining it first means the
        // log is complete when this returns.
        if let Some(rx) = self.lines.take() {
            let rx = rx.into_inner().unwrap_or_else(|p| p.into_inner());
            while rx.recv_timeout(PATIENCE).is_ok() {}
        }
        child.wait().expect("wait for telltale")
    }

    /// Stops the server (SIGTERM if it is running) and starts it again on the same data
    /// directory and config; the URL may change.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let status = self.terminate();
            assert!(status.success(), "server exited with {status} on SIGTERM\n{}", self.log());
        }
        self.spawn();
    }

    /// Rewrites the config file and sends SIGHUP; returns once the server logged the outcome.
    pub fn reload_with_signal(&self, config_yaml: &str) -> String {
        std::fs::write(self.config_path(), config_yaml).expect("write config");
        self.signal("HUP");
        self.wait_for_log(|l| l.contains("config reloaded") || l.contains("config not reloaded"))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], &[])
    }

    /// `POST path` with a body of `content_type`.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        self.request("POST", path, &[("content-type", content_type)], body)
    }

    /// Any request. Panics only on transport errors (connection refused, timeouts).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.try_request(method, path, headers, body).unwrap_or_else(|e| self.fail(&format!("{method} {path}: {e}")))
    }

    /// Any request; transport errors (the server is gone, the connection was reset) are
    /// returned instead of failing the test, for crash tests.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let uri = format!("{}{path}", self.url);
        let mut req = ureq::http::Request::builder().method(method).uri(&uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.to_vec()).map_err(|e| format!("bad request {method} {uri}: {e}"))?;
        let mut res = self.agent.run(req).map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let headers =
            res.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
        let mut body = Vec::new();
        res.body_mut().as_reader().read_to_end(&mut body).map_err(|e| e.to_string())?;
        Ok(Response { status, headers, body })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A port on loopback that was free a moment ago, for peers (Prometheus) that cannot report
/// the port they bound. The small race with other processes is accepted in tests.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// Retries `probe` until it returns `Some`, pausing `every` between tries, and panics with
/// `what` after [`PATIENCE`]. Only for waiting on outside processes (a real Prometheus
/// sending remote write) that give no event to wait on.
pub fn eventually<T>(what: &str, every: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + PATIENCE;
    let (_keep, pause) = mpsc::channel::<()>();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!("gave up after {PATIENCE:?} waiting for {what}");
        }
        let _ = pause.recv_timeout(every);
    }
}

/// An outside program (a real Prometheus, node_exporter) run for a test, killed on drop.
/// Its stderr is kept for failure messages.
pub struct Peer {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Peer {
    /// Starts `program` with `args`.
    pub fn start(program: &str, args: &[String]) -> Peer {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e} (is it installed? scripts/test.sh installs it)"));
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|p| p.into_inner()).push_str(&format!("{line}\n"));
            }
        });
        Peer { child, log }
    }

    /// What the program wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Peer {
    /// Sends SIGTERM and waits for the program to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().expect("wait for peer")
    }

    /// The program's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small tmpfs mounted over a directory, for disk-full tests; unmounted (lazily, so a
/// server still holding files cannot block it) when dropped. Mounting needs root: CI runs
/// as root, and a run without it fails here with that reason instead of skipping the test.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount`'s syntax: `1m`, `64m`) over `dir`.
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).status();
        assert!(
            ok.is_ok_and(|s| s.success()),
            "mount tmpfs on {} failed: the disk-full tests need root (scripts/test.sh says so)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }

    /// Gives the file system `size`: space returns (or runs out) without unmounting.
    pub fn resize(&self, size: &str) {
        let ok = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).status();
        assert!(ok.is_ok_and(|s| s.success()), "remount of {} failed", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
