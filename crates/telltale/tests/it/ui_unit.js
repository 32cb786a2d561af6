// Unit tests of the UI's pure functions, run inside headless Chromium by ui.rs
// (`ui_modules_unit_tests`): the modules are imported from the running server exactly as the
// pages import them. Resolves with {passed, failures}.
const done = arguments[arguments.length - 1];
(async () => {
  const fmt = await import('/ui/lib/format.js');
  const time = await import('/ui/lib/time.js');
  const promql = await import('/ui/lib/promql.js');
  const panel = await import('/ui/lib/panel.js');
  const dash = await import('/ui/lib/dashboard.js');
  const logs = await import('/ui/pages/logs.js');
  const chart = await import('/ui/lib/chart.js');
  let passed = 0;
  const failures = [];
  const eq = (got, want, what) => {
    const g = JSON.stringify(got), w = JSON.stringify(want);
    if (g === w) passed++; else failures.push(`${what}: got ${g}, want ${w}`);
  };

  // units
  eq(fmt.fmt(1536, 'bytes'), '1.5 KiB', 'bytes');
  eq(fmt.fmt(25.2 * 2 ** 30, 'bytes'), '25.2 GiB', 'GiB');
  eq(fmt.fmt(0, 'bytes'), '0 B', 'zero bytes');
  eq(fmt.fmt(12.5e6, 'bits/s'), '12.5 Mb/s', 'bits/s');
  eq(fmt.fmt(2048, 'bytes/s'), '2 KiB/s', 'bytes/s');
  eq(fmt.fmt(93.456, 'percent'), '93.5%', 'percent');
  eq(fmt.fmt(0.25, 'percentunit'), '25%', 'percentunit');
  eq(fmt.fmt(0.0042, 'seconds'), '4.2 ms', 'seconds as ms');
  eq(fmt.fmt(5400, 'seconds'), '1.5 h', 'seconds as hours');
  eq(fmt.fmt(250, 'ms'), '250 ms', 'ms');
  eq(fmt.fmt(1234567, 'short'), '1.23 M', 'short');
  eq(fmt.fmt(NaN), '–', 'NaN');
  eq(fmt.fmt(Infinity), '+Inf', 'Inf');
  eq(fmt.fmt(3.14159), '3.14', 'plain');
  eq(fmt.ticks(0, 100, 5, 'percent').map((t) => t.label), ['0%', '20%', '40%', '60%', '80%', '100%'], 'percent ticks');
  eq(fmt.ticks(0, 3 * 2 ** 30, 4, 'bytes').map((t) => t.label), ['0 GiB', '1 GiB', '2 GiB', '3 GiB'], 'GiB ticks');
  eq(fmt.ticks(0, 1, 4).map((t) => t.label), ['0', '0.25', '0.5', '0.75', '1'], 'quarter ticks');
  eq(fmt.legendOf({ __name__: 'up', job: 'a' }), 'up{job="a"}', 'legend default');
  eq(fmt.legendOf({ mode: 'user', cpu: '0' }, '{{mode}} on {{ cpu }}'), 'user on 0', 'legend template');
  eq(fmt.fmtDuration(3725), '1h 2m', 'duration');

  // time
  eq(time.parseDuration('1h30m'), 5400000, 'parse 1h30m');
  eq(time.parseDuration('15x'), null, 'bad duration');
  eq(time.resolve('now-15m', 1e12), 1e12 - 900000, 'now-15m');
  eq(time.resolve('1700000000000', 1e12), 1700000000000, 'ms');
  eq(time.stepFor(3600e3, 1000), 15000, '1h on 1000px: the 15 s floor');
  eq(time.stepFor(7 * 86400e3, 1200), 1800000, '7d on 1200px: 30 m');
  eq(time.stepFor(86400e3, 1000), 300000, '24h on 1000px: 5 m');
  eq(time.rangeLabel('now-6h', 'now'), 'Last 6 hours', 'quick label');
  const tt = time.timeTicks(Date.UTC(2024, 0, 1, 10, 0, 30), Date.UTC(2024, 0, 1, 11, 0, 0), 1100);
  eq(tt.length >= 6 && tt.length <= 12, true, 'about one tick per 110 px');
  eq(tt.every((t) => new Date(t.t).getSeconds() === 0 && new Date(t.t).getMinutes() % 5 === 0), true, 'ticks on round minutes');

  // completion contexts
  eq(promql.context('rate(node_cpu', 13).kind, 'metric', 'metric word');
  eq(promql.context('rate(node_cpu', 13).word, 'node_cpu', 'metric word text');
  const lc = promql.context('node_load1{ins', 14);
  eq([lc.kind, lc.word, lc.metric], ['label', 'ins', 'node_load1'], 'label name in braces');
  const vc = promql.context('node_load1{instance="ho', 23);
  eq([vc.kind, vc.label, vc.word, vc.metric], ['value', 'instance', 'ho', 'node_load1'], 'label value');
  eq(promql.context('sum by (jo', 10).kind, 'label', 'grouping labels');
  eq(promql.context('rate(x[5', 8).kind, 'duration', 'range duration');
  eq(promql.context('x{a="b", ', 9).kind, 'label', 'second matcher');
  eq(promql.context('{job="x"} |= "err', 17, 'logql').kind, 'none', 'inside a LogQL line filter');
  eq(promql.context('{jo', 3, 'logql').kind, 'label', 'LogQL stream label');

  // panels: one query per panel, variables
  eq(panel.combine(['a', 'b']), 'label_replace((a), "__tt_q", "0", "", "") or label_replace((b), "__tt_q", "1", "", "")', 'combine');
  eq(panel.combine(['a']), 'a', 'one target stays as is');
  eq(panel.interpolate('rate(x{i="$instance"}[$__rate_interval])', { instance: 'h:1' }, 15000, 3600e3), 'rate(x{i="h:1"}[1m])', 'interpolate');
  eq(panel.interpolate('rate(x[$__rate_interval]) ${__interval} $__range $nope', {}, 300000, 86400e3), 'rate(x[315s]) 5m 1d $nope', 'builtins');
  eq(dash.parseVariableQuery('label_values(node_uname_info, instance)'), { match: 'node_uname_info', label: 'instance' }, 'variable query');
  eq(dash.parseVariableQuery('label_values(job)'), { match: null, label: 'job' }, 'variable without metric');
  eq(dash.parseVariableQuery('query_result(up)'), null, 'unsupported variable query');
  eq(panel.thresholdColor(95, [{ value: 80, color: '#f00a' }, { value: 90, color: '#f00b' }], '#000'), '#f00b', 'highest threshold reached');
  eq(panel.thresholdColor(10, [{ value: 80, color: '#f00a' }], '#000'), '#000', 'below every threshold');

  // logs: parsed fields
  eq(logs.parseFields('{"level":"error","msg":"disk full","n":3}'), [['level', 'error'], ['msg', 'disk full'], ['n', '3']], 'JSON fields');
  eq(logs.parseFields('level=warn msg="slow request" took=1.2s'), [['level', 'warn'], ['msg', 'slow request'], ['took', '1.2s']], 'logfmt fields');
  eq(logs.parseFields('plain text line'), [], 'no fields');

  // chart: stacking on the step grid, matrix conversion
  const box = document.createElement('div');
  box.style.width = '800px';
  document.body.append(box);
  const c = new chart.Chart(box, { height: 200, stacked: true });
  const mk = (vals) => ({ name: 'x' + vals[0], ts: new Float64Array([0, 1000, 2000]), vs: new Float64Array(vals) });
  c.setData([mk([1, 2, NaN]), mk([10, 20, 30])], 0, 2000, 1000);
  const d = c.drawnValues(c.visible());
  eq(Array.from(d[1].top), [11, 22, 30], 'stacked sums (a gap adds nothing)');
  c.toggle(c.series[0].key, false);
  eq(Array.from(c.drawnValues(c.visible())[0].top), [10, 20, 30], 'a hidden series leaves the stack');
  eq(c.lastDrawMs >= 0, true, 'draw reports its time');
  c.destroy();
  box.remove();
  const m = chart.fromMatrix([{ metric: { a: '1' }, values: [[1, '2.5'], [2, 'NaN']] }], (x) => x.a);
  eq([Array.from(m[0].ts), Number.isNaN(m[0].vs[1]), m[0].name], [[1000, 2000], true, '1'], 'matrix to series');

  // traces and services
  const tr = await import('/ui/pages/traces.js');
  const sv = await import('/ui/pages/services.js');
  eq(tr.fmtNs(1500), '1.50 µs', 'ns as µs');
  eq(tr.fmtNs(25e6), '25.0 ms', 'ns as ms');
  eq(tr.buildQuery({ service: 'api', operation: 'GET /', minDuration: '100ms', errors: true }),
    '{ resource.service.name = "api" && name = "GET /" && duration >= 100ms && status = error }', 'form to TraceQL');
  eq(tr.buildQuery({}), '{}', 'empty form');
  eq(tr.completeAt('{ resource.se', 13, [{ name: 'resource', tags: ['service.name', 'host.name'] }]),
    { kind: 'name', items: ['service.name'], prefix: 'se' }, 'attribute name completion');
  eq(tr.completeAt('{ .http.route = "/a', 19, []), { kind: 'value', attr: '.http.route', prefix: '/a' }, 'value completion');
  eq(tr.completeAt('{ st', 4, []).items, ['status', 'statusMessage'], 'intrinsic completion');
  const spans = [
    { id: 'a', parent: '', start: 0n, end: 100n }, { id: 'b', parent: 'a', start: 10n, end: 40n },
    { id: 'c', parent: 'a', start: 20n, end: 90n }, { id: 'd', parent: 'c', start: 30n, end: 80n }, { id: 'e', parent: 'zz', start: 5n, end: 6n },
  ];
  const t = tr.treeOrder(spans);
  eq(t.order.map((r) => `${r.span.id}${r.depth}`), ['a0', 'b1', 'c1', 'd2', 'e0'], 'tree order, orphans as roots');
  eq([...tr.criticalPath(spans, t.kids)].sort(), ['a', 'c', 'd', 'e'], 'critical path follows the child that ends last');
  eq(tr.anyValue({ arrayValue: { values: [{ intValue: '3' }, { boolValue: true }] } }), '[3, true]', 'OTLP any value');
  const rows = sv.mergeRows('service', new Map([['a', 2]]), new Map([['a', 0.5]]), [{ service: 'a', p99: 0.2, count: 9 }, { service: 'b', p50: 0.1 }], new Map());
  eq(rows.map((r) => [r.key, r.rate, r.errPct, r.p99 ?? null]), [['a', 2, 25, 0.2], ['b', 0, 0, null]], 'service rows');
  const lay = sv.layout([{ client: 'web', server: 'api' }, { client: 'api', server: 'db' }]);
  eq(['web', 'api', 'db'].map((n) => lay.pos.get(n).x), [20, 220, 420], 'service map columns by call depth');

  done({ passed, failures });
})().catch((e) => done({ passed: 0, failures: ['threw: ' + e.stack] }));
