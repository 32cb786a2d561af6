// Status (/status): build and runtime facts, storage numbers, scrape targets and the
// configuration in force (secrets already redacted by the server).
import { h, clear, labelChips } from '../lib/dom.js';
import { prom } from '../lib/api.js';
import { fmt, fmtBytes, ago, fmtTime } from '../lib/format.js';

export const title = 'Status';

const kv = (rows) => h('table', { class: 'kvt' }, h('tbody', null, rows.filter(Boolean).map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v)))));
const card = (title, ...body) => h('section', { class: 'card card-body' }, h('h2', null, title), ...body);
const wide = (el) => { el.style.gridColumn = '1 / -1'; return el; };
const failed = (e) => h('div', { class: 'panel-msg error' }, e.message);

export async function mount(root) {
  const [build, runtime, tsdb, config, targets] = await Promise.allSettled([prom.buildinfo(), prom.runtimeinfo(), prom.tsdb(), prom.config(), prom.targets()]);
  const b = build.value || {}, r = runtime.value || {};
  const buildCard = build.status === 'fulfilled' ? card('Build and runtime', kv([
    ['Telltale version', b.telltaleVersion || '–'], ['Revision', b.revision || '–'], ['Prometheus API version', b.version],
    runtime.status === 'fulfilled' && ['Started', `${fmtTime(Date.parse(r.startTime))} (${ago(r.startTime)})`],
    runtime.status === 'fulfilled' && ['Working directory', h('code', null, r.CWD)],
    runtime.status === 'fulfilled' && ['CPUs used', String(r.GOMAXPROCS)],
    runtime.status === 'fulfilled' && ['Last config reload', h('span', null, h('span', { class: 'badge ' + (r.reloadConfigSuccess ? 'ok' : 'err') }, r.reloadConfigSuccess ? 'ok' : 'failed'), ' ', ago(r.lastConfigTime))],
  ])) : card('Build and runtime', failed(build.reason));

  let storageCard;
  if (tsdb.status === 'fulfilled') {
    const t = tsdb.value, stats = Object.fromEntries(((t.telltale && t.telltale.stats) || []).map((s) => [s.name, s.value]));
    const disk = (stats.telltale_storage_blocks_bytes || 0) + (stats.telltale_storage_wal_bytes || 0);
    const top = (list, label) => h('div', null, h('h3', { style: { margin: '12px 0 4px' } }, label), h('table', { class: 'tbl' }, h('tbody', null,
      list.map((x) => h('tr', null, h('td', { class: 'mono' }, x.name), h('td', { class: 'num' }, fmt(x.value, 'short')))))));
    storageCard = card('Storage', kv([
      ['Series', t.headStats.numSeries >= 1e4 ? `${fmt(t.headStats.numSeries, 'short')} (${t.headStats.numSeries})` : String(t.headStats.numSeries)],
      ['Label pairs', String(t.headStats.numLabelPairs)],
      ['Samples written since start', stats.telltale_storage_samples_appended_total != null ? fmt(stats.telltale_storage_samples_appended_total, 'short') : '–'],
      ['Disk use', `${fmtBytes(disk)} (blocks ${fmtBytes(stats.telltale_storage_blocks_bytes || 0)}, WAL ${fmtBytes(stats.telltale_storage_wal_bytes || 0)})`],
      ['In memory (head)', fmtBytes(stats.telltale_storage_head_bytes || 0) + ` · ${stats.telltale_storage_head_series ?? '–'} series`],
      ['Blocks', String(stats.telltale_storage_blocks ?? '–')],
      ['Retention', (t.telltale && t.telltale.retention) || r.storageRetention || '–'],
      ['Corrupt files quarantined', String(stats.telltale_storage_corrupt_files ?? 0)],
    ]), top(t.seriesCountByMetricName, 'Most series by metric name'), top(t.seriesCountByLabelValuePair, 'Most series by label pair'));
  } else storageCard = card('Storage', failed(tsdb.reason));

  let targetsCard;
  if (targets.status === 'fulfilled') {
    const list = targets.value.activeTargets || [];
    const pools = new Map();
    for (const t of list) { if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []); pools.get(t.scrapePool).push(t); }
    const row = (t) => h('tr', null, h('td', { class: 'mono' }, t.scrapeUrl), h('td', null, h('span', { class: 'badge ' + t.health }, t.health)),
      h('td', null, labelChips(t.labels)), h('td', { class: 'sub' }, t.lastScrape ? ago(t.lastScrape) : '–'),
      h('td', { class: 'num' }, t.lastScrapeDuration != null ? fmt(t.lastScrapeDuration, 'seconds') : '–'),
      h('td', { style: { color: 'var(--crit)' } }, t.lastError || ''));
    const pool = ([name, ts]) => h('div', null,
      h('h3', { style: { margin: '10px 0 4px' } }, `${name} · ${ts.filter((t) => t.health === 'up').length}/${ts.length} up`),
      h('div', { class: 'tbl-wrap' }, h('table', { class: 'tbl' },
        h('thead', null, h('tr', null, ['Endpoint', 'State', 'Labels', 'Last scrape', 'Took', 'Error'].map((x) => h('th', null, x)))),
        h('tbody', null, ts.map(row)))));
    targetsCard = card(`Scrape targets (${list.length})`, list.length ? [...pools].map(pool)
      : h('div', { class: 'sub' }, 'No scrape targets are configured (scrape_configs).'));
  } else {
    targetsCard = card('Scrape targets', h('div', { class: 'sub' }, targets.reason.missing ? 'This server does not scrape targets yet (no /api/v1/targets).' : targets.reason.message));
  }

  const configCard = config.status === 'fulfilled'
    ? card('Configuration', h('p', { class: 'sub', style: { marginTop: 0 } }, 'In force now; secrets are shown as <secret>.'), h('pre', { class: 'yaml mono' }, config.value.yaml || '(defaults)'))
    : card('Configuration', failed(config.reason));
  clear(root, h('div', { class: 'head' }, h('h1', null, 'Status')), h('div', { class: 'cols' }, buildCard, storageCard, wide(targetsCard), wide(configCard)));
  return null;
}
