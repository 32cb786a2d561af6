#!/usr/bin/env python3
"""Web UI benchmark: bytes shipped, time to first chart, chart redraw time.

Runs everything on loopback with Debian's packages and a release build of Telltale:

  node_exporter (real host data) <- scraped every 1 s by Prometheus 2.42, which remote-writes
  to Telltale; so both hold the same series. Then headless Chromium (over chromedriver) loads

  * Telltale's Overview (/?from=now-5m) and Prometheus's own graph page (/classic/graph, the UI
    Debian ships) with a CPU-rate graph: time from navigation start to the first chart drawn
    with data, and the bytes of every HTML/JS/CSS response the page needed (Resource Timing's
    decodedBodySize). Both times are taken the same way: a probe injected before any page script
    (DevTools' Page.addScriptToEvaluateOnNewDocument) checks at every animation frame from the
    start whether a chart with data is in the page (Telltale: its chart module has set its
    `telltale:first-chart` mark; Prometheus: its graph has an SVG path with a line) and keeps the
    timestamp of the first frame where it is, on the page's own clock;
  * a redraw benchmark: Telltale's chart module with 100 series x 1,000 points in a
    1,200 x 400 canvas, the median of 50 full redraws (and of 200 hover updates).

Loads alternate between the two servers, RUNS times each (default 10); the first load of each
is cold (fresh browser profile), the rest warm (cache revalidated). Usage:

  cargo build --release && python3 bench/ui.py [--runs 10] [--wait-quiet 120] [--out DIR]

Standard library only. Results are printed as markdown (and written to OUT/ui-bench.md).
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "crates", "ui", "assets")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--window-size=1400,1000"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(method, url, body=None, timeout=60):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_http(url, proc, what):
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{what} exited early")
        try:
            if http("GET", url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not come up")


def busy_seconds():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v) - v[3] - v[4]) / hz


def other_cores(window=2.0):
    b0 = busy_seconds()
    time.sleep(window)
    return (busy_seconds() - b0) / window


def wait_quiet(max_wait, threshold=0.3):
    """Waits up to max_wait s until the whole machine uses < threshold cores (3 windows)."""
    t0, good, load = time.time(), 0, float("nan")
    while time.time() - t0 < max_wait:
        load = other_cores()
        good = good + 1 if load < threshold else 0
        if good >= 3:
            break
    return time.time() - t0, load


class Browser:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["chromedriver", f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{self.port}/status", self.proc, "chromedriver")
        self.profile = tempfile.mkdtemp(prefix="ui-bench-chromium-")
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium",
                "args": CHROME_ARGS + [f"--user-data-dir={self.profile}"]}, "timeouts": {"script": 60000}}}}
        v = self.cmd("POST", "/session", caps, root=True)
        self.sid = v["sessionId"]
        self.cmd("POST", "/goog/cdp/execute", {"cmd": "Page.addScriptToEvaluateOnNewDocument",
                                                "params": {"source": FIRST_CHART_PROBE}})

    def cmd(self, method, path, body=None, root=False):
        base = f"http://127.0.0.1:{self.port}" + ("" if root else f"/session/{self.sid}")
        status, data = http(method, base + path, body if body is not None else ({} if method == "POST" else None))
        v = json.loads(data)["value"]
        if isinstance(v, dict) and v.get("error"):
            raise RuntimeError(f"{path}: {v['error']}: {v.get('message')}")
        return v

    def goto(self, url):
        self.cmd("POST", "/url", {"url": url})

    def run_async(self, script):
        return self.cmd("POST", "/execute/async", {"script": script, "args": []})

    def close(self):
        try:
            self.cmd("DELETE", "")
        finally:
            self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


# In-page: wait for `cond` (a JS expression giving a time in ms since navigation start, or
# null), then report it with the page's HTML/JS/CSS bytes.
MEASURE = """
const done = arguments[arguments.length - 1];
const until = performance.now() + 30000;
const bytes = () => {
  const nav = performance.getEntriesByType('navigation')[0];
  let total = nav ? nav.decodedBodySize : 0, count = 1, byType = {};
  for (const r of performance.getEntriesByType('resource')) {
    const m = /\\.(js|css|html)(\\?|$)/.exec(new URL(r.name).pathname) || (r.initiatorType === 'script' ? [0, 'js'] : null);
    if (!m) continue;
    total += r.decodedBodySize; count++;
    byType[m[1]] = (byType[m[1]] || 0) + r.decodedBodySize;
  }
  return { total, count, byType };
};
const tick = () => {
  let t = null;
  try { t = (%s); } catch (e) {}
  if (t != null) return done({ t, ...bytes() });
  if (performance.now() > until) return done({ timeout: true });
  setTimeout(tick, 5);
};
tick();
"""

# Runs in every page before its own scripts and checks at each animation frame whether a chart
# with data is in the page; the frame's timestamp (performance.now()'s clock, from navigation
# start) of the first such frame is the page's first-chart time. One probe for both pages, so
# both are measured the same way, with the same frame granularity.
FIRST_CHART_PROBE = """
(() => {
  const drawn = () =>
    performance.getEntriesByName('telltale:first-chart').length > 0 ||  // Telltale's chart module
    !!document.querySelector('.graph svg path[d*="L"]');                 // Prometheus: Rickshaw's line
  const frame = (t) => {
    if (drawn()) { window.__firstChartFrame = t; return; }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})();
"""
FIRST_CHART = "window.__firstChartFrame ?? null"

REDRAW = """
const done = arguments[arguments.length - 1];
(async () => {
const { Chart } = await import('/ui/lib/chart.js');
const box = document.createElement('div');
box.style.width = '1200px';
document.body.prepend(box);
const now = Date.now(), step = 15000, n = 1000, start = now - step * (n - 1);
const series = [];
let seed = 1;
const rnd = () => (seed = (seed * 16807) %% 2147483647) / 2147483647;
for (let s = 0; s < 100; s++) {
  const ts = new Float64Array(n), vs = new Float64Array(n);
  let v = 50 + rnd() * 50;
  for (let i = 0; i < n; i++) { ts[i] = start + i * step; v += (rnd() - 0.5) * 4; vs[i] = v; }
  series.push({ name: 'series ' + s, ts, vs });
}
const chart = new Chart(box, { height: 400, unit: 'percent' });
chart.setData(series, start, now, step);
const draws = [];
for (let i = 0; i < %d; i++) draws.push(chart.draw());
const stacked = [];
chart.setOptions({ stacked: true });
for (let i = 0; i < 20; i++) stacked.push(chart.draw());
const canvas = box.querySelector('canvas.overlay');
const r = canvas.getBoundingClientRect();
const hovers = [];
for (let i = 0; i < 200; i++) {
  const x = 80 + (i * 5) %% 1000;
  const t0 = performance.now();
  chart.hover(x, { clientX: r.left + x, clientY: r.top + 100 });
  hovers.push(performance.now() - t0);
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const p95 = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length * 0.95)]; };
done({ redraw_median: med(draws), redraw_p95: p95(draws), redraw_max: Math.max(...draws), stacked_median: med(stacked),
       hover_median: med(hovers), hover_p95: p95(hovers), points: 100 * n });
})().catch((e) => done({ error: String(e) }));
"""


def shipped_bytes():
    out = {}
    for dirpath, _, files in os.walk(ASSETS):
        for f in files:
            ext = f.rsplit(".", 1)[-1]
            out[ext] = out.get(ext, 0) + os.path.getsize(os.path.join(dirpath, f))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--redraws", type=int, default=50)
    ap.add_argument("--feed-seconds", type=int, default=45, help="how long Prometheus scrapes node_exporter first")
    ap.add_argument("--wait-quiet", type=float, default=0, help="wait up to this long for a quiet machine first")
    ap.add_argument("--out", default=None)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "telltale"))
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="ui-bench-")
    os.makedirs(out, exist_ok=True)
    procs = []
    try:
        ne_port, prom_port, tt_port = free_port(), free_port(), free_port()
        procs.append(subprocess.Popen(["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{ne_port}"],
                                      stdout=subprocess.DEVNULL, stderr=open(f"{out}/node_exporter.log", "w")))
        procs.append(subprocess.Popen([a.bin, "serve", "--listen", f"127.0.0.1:{tt_port}", "--data-dir", f"{out}/telltale-data"],
                                      stdout=subprocess.DEVNULL, stderr=open(f"{out}/telltale.log", "w")))
        tt = f"http://127.0.0.1:{tt_port}"
        wait_http(f"{tt}/-/ready", procs[-1], "telltale")
        with open(f"{out}/prometheus.yml", "w") as f:
            f.write(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{ne_port}']\nremote_write:\n  - url: {tt}/api/v1/write\n")
        procs.append(subprocess.Popen(["prometheus", f"--config.file={out}/prometheus.yml", f"--storage.tsdb.path={out}/prom-data",
                                       f"--web.listen-address=127.0.0.1:{prom_port}"],
                                      stdout=subprocess.DEVNULL, stderr=open(f"{out}/prometheus.log", "w")))
        prom = f"http://127.0.0.1:{prom_port}"
        wait_http(f"{prom}/-/ready", procs[-1], "prometheus")
        print(f"feeding {a.feed_seconds}s of node_exporter scrapes (1 s interval) into both ...", flush=True)
        time.sleep(a.feed_seconds)
        if a.wait_quiet:
            waited, load = wait_quiet(a.wait_quiet)
            print(f"waited {waited:.0f}s for a quiet machine; the machine now uses {load:.2f} cores", flush=True)
        load_before = other_cores()
        b = Browser()
        res = {"telltale": [], "prometheus": []}
        tt_url = f"{tt}/?from=now-5m"
        prom_url = (f"{prom}/classic/graph?g0.expr=" + urllib.request.quote("sum by (mode) (rate(node_cpu_seconds_total[1m]))")
                    + "&g0.tab=0&g0.range_input=5m")
        try:
            for i in range(a.runs):
                for name, url in (("telltale", tt_url), ("prometheus", prom_url)):
                    b.goto(url)
                    r = b.run_async(MEASURE % FIRST_CHART)
                    if r.get("timeout"):
                        raise RuntimeError(f"{name}: no chart within 30 s")
                    res[name].append(r)
            b.goto(f"{tt}/explore")
            redraw = b.run_async(REDRAW % a.redraws)
        finally:
            b.close()
        load_after = other_cores()
        ship = shipped_bytes()
        lines = ["| | Telltale | Prometheus 2.42 (classic UI) | ratio |", "|---|---|---|---|"]
        t_cold, p_cold = res["telltale"][0]["t"], res["prometheus"][0]["t"]
        t_warm = statistics.median(r["t"] for r in res["telltale"][1:]) if a.runs > 1 else t_cold
        p_warm = statistics.median(r["t"] for r in res["prometheus"][1:]) if a.runs > 1 else p_cold
        tb, pb = res["telltale"][0]["total"], res["prometheus"][0]["total"]
        lines.append(f"| first chart, cold load (ms) | {t_cold:.0f} | {p_cold:.0f} | {t_cold / p_cold:.2f} |")
        lines.append(f"| first chart, warm loads, median of {a.runs - 1} (ms) | {t_warm:.0f} | {p_warm:.0f} | {t_warm / p_warm:.2f} |")
        lines.append(f"| HTML+JS+CSS the page loaded (KB) | {tb / 1024:.1f} ({res['telltale'][0]['count']} files) | "
                     f"{pb / 1024:.1f} ({res['prometheus'][0]['count']} files) | {tb / pb:.2f} |")
        lines.append("")
        total = sum(v for k, v in ship.items() if k in ("js", "css", "html"))
        lines.append(f"Everything the UI ships (all pages, uncompressed): **{total / 1024:.1f} KB** "
                     f"(JS {ship.get('js', 0) / 1024:.1f} KB, CSS {ship.get('css', 0) / 1024:.1f} KB, HTML {ship.get('html', 0) / 1024:.1f} KB; "
                     f"plus {ship.get('json', 0) / 1024:.1f} KB of built-in dashboard JSON and {ship.get('svg', 0)} B of icon).")
        lines.append("")
        lines.append(f"Redraw, 100 series x 1,000 points, 1,200 x 400 px: median **{redraw['redraw_median']:.1f} ms**, "
                     f"p95 {redraw['redraw_p95']:.1f} ms, max {redraw['redraw_max']:.1f} ms over {a.redraws} redraws; "
                     f"stacked median {redraw['stacked_median']:.1f} ms; hover (tooltip with every series) median "
                     f"{redraw['hover_median']:.2f} ms, p95 {redraw['hover_p95']:.2f} ms.")
        lines.append("")
        with open("/proc/loadavg") as f:
            loadavg = " ".join(f.read().split()[:3])
        lines.append(f"Machine: {os.cpu_count()} cores; whole-machine CPU use {load_before:.2f} cores just before the browser runs, "
                     f"{load_after:.2f} just after; load average {loadavg}.")
        text = "\n".join(lines)
        print(text)
        with open(f"{out}/ui-bench.md", "w") as f:
            f.write(text + "\n")
        with open(f"{out}/ui-bench.json", "w") as f:
            json.dump({"loads": res, "redraw": redraw, "shipped": ship}, f, indent=1)
        print(f"\n(results in {out})")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
