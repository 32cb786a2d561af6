// Alerts (/alerts): firing and pending alerts (Prometheus /api/v1/rules, with silenced state
// from Alertmanager's /api/v2/alerts), rules and their health, silences (create from an
// alert, edit, expire: /api/v2/silences), the notification log (/api/v1/notifications) and the
// alert history (the ALERTS series). Laid
// out as a list of cards, so it reads on a phone.
import { h, clear, labelChips, toast, dialog } from '../lib/dom.js';
import { prom, am } from '../lib/api.js';
import { ago, fmt, fmtTime, fmtDuration } from '../lib/format.js';

export const title = 'Alerts';
const TABS = [['alerts', 'Alerts'], ['rules', 'Rules'], ['silences', 'Silences'], ['history', 'History']];

const fp = (labels) => JSON.stringify(Object.entries(labels || {}).filter(([k]) => k !== 'alertstate').sort());

export async function mount(root, ctx) {
  const tab = TABS.some(([k]) => k === ctx.params.get('tab')) ? ctx.params.get('tab') : 'alerts';
  const q = ctx.params.get('q') || '';
  const filter = h('input', { type: 'search', placeholder: 'Filter by name or label', value: q, 'aria-label': 'Filter' });
  const body = h('div', { class: 'list' });
  clear(root, h('div', { class: 'head' }, h('h1', null, 'Alerts'), h('div', { class: 'toolbar' }, filter,
    h('button', { type: 'button', class: 'primary', onclick: () => editSilence(null, null, () => ctx.reload()) }, 'New silence'))),
  h('nav', { class: 'tabs2' }, TABS.map(([k, label]) => h('a', { href: `/alerts?tab=${k}${q ? '&q=' + encodeURIComponent(q) : ''}`, 'data-nav': '', 'aria-current': k === tab ? 'page' : null }, label))),
  body);
  const matches = (name, labels) => {
    const f = filter.value.toLowerCase();
    return !f || (name || '').toLowerCase().includes(f) || Object.entries(labels || {}).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(f));
  };
  let rules;
  try { rules = await prom.rules(); } catch (e) {
    clear(body, h('div', { class: 'card empty' }, h('b', null, e.missing ? 'Alerting is not available on this server yet' : 'Cannot load the rules'), e.missing ? 'No /api/v1/rules here.' : e.message));
    return null;
  }
  let draw;
  if (tab === 'alerts') {
    const [amAlerts, silences] = await Promise.allSettled([am.alerts(), am.silences()]);
    const status = new Map((amAlerts.value || []).map((a) => [fp(a.labels), a.status]));
    const sil = new Map((silences.value || []).map((s) => [s.id, s]));
    const list = [];
    for (const g of rules.groups || []) for (const r of g.rules || []) if (r.type === 'alerting') for (const a of r.alerts || []) list.push({ ...a, rule: r, group: g });
    list.sort((a, b) => (a.state === b.state ? Date.parse(a.activeAt) - Date.parse(b.activeAt) : a.state === 'firing' ? -1 : 1));
    draw = () => {
      const shown = list.filter((a) => matches(a.labels.alertname, a.labels));
      clear(body, shown.length ? shown.map((a) => alertCard(a, status.get(fp(a.labels)), sil, ctx)) :
        h('div', { class: 'card empty' }, h('b', null, list.length ? 'No alert matches the filter' : 'Nothing is firing'), list.length ? '' : 'All alerting rules are quiet.'));
    };
  } else if (tab === 'rules') {
    draw = () => clear(body, (rules.groups || []).map((g) => {
      const rs = (g.rules || []).filter((r) => matches(r.name, r.labels));
      if (!rs.length) return null;
      return h('section', { class: 'card' }, h('div', { class: 'card-body' }, h('div', { class: 'top-line item', style: { padding: 0 } },
        h('h2', { style: { margin: 0 } }, g.name), h('span', { class: 'sub' }, `${g.file || ''} · every ${g.interval}s · last run ${g.lastEvaluation ? ago(g.lastEvaluation) : '–'}`))),
      rs.map((r) => h('div', { class: 'item', style: { borderTop: '1px solid var(--border)' } },
        h('div', { class: 'top-line' }, h('span', { class: 'badge ' + (r.health === 'ok' ? 'ok' : r.health === 'err' ? 'err' : 'unknown') }, r.health || 'unknown'),
          r.type === 'alerting' ? h('span', { class: 'badge ' + (r.state || 'inactive') }, r.state || 'inactive') : h('span', { class: 'badge' }, 'recording'),
          h('span', { class: 'title' }, r.name), h('span', { class: 'btns' }, h('a', { class: 'btn small', href: '/explore?q=' + encodeURIComponent(r.query), 'data-nav': '' }, 'Graph'))),
        h('code', { class: 'mono', style: { whiteSpace: 'pre-wrap' } }, r.query),
        h('div', { class: 'meta' }, r.duration ? h('span', null, 'for ' + fmtDuration(r.duration)) : null, r.evaluationTime != null ? h('span', null, 'took ' + fmt(r.evaluationTime, 'seconds')) : null,
          r.lastEvaluation ? h('span', null, 'evaluated ' + ago(r.lastEvaluation)) : null),
        r.labels && Object.keys(r.labels).length ? labelChips(r.labels) : null,
        r.lastError ? h('div', { style: { color: 'var(--crit)' } }, r.lastError) : null)));
    }).filter(Boolean).concat((rules.groups || []).length ? [] : [h('div', { class: 'card empty' }, h('b', null, 'No rules'), 'Add rule files under rule_files in the config.')]));
  } else if (tab === 'silences') {
    let list = [];
    try { list = await am.silences(); } catch (e) { clear(body, h('div', { class: 'card empty' }, h('b', null, 'Cannot load silences'), e.message)); return null; }
    const order = { active: 0, pending: 1, expired: 2 };
    list.sort((a, b) => order[a.status.state] - order[b.status.state] || Date.parse(b.endsAt) - Date.parse(a.endsAt));
    draw = () => {
      const shown = list.filter((s) => matches('', Object.fromEntries(s.matchers.map((m) => [m.name, m.value]))));
      clear(body, shown.length ? shown.map((s) => silenceCard(s, ctx)) : h('div', { class: 'card empty' }, h('b', null, 'No silences'), 'Silence an alert from the Alerts tab, or with New silence.'));
    };
  } else {
    const end = Date.now(), start = end - 24 * 3600e3, step = 60e3;
    const [range, notes] = await Promise.allSettled([prom.queryRange('ALERTS', start, end, step), prom.notifications()]);
    if (range.status === 'rejected') { clear(body, h('div', { class: 'card empty' }, range.reason.message)); return null; }
    const events = [];
    for (const s of range.value.result) {
      let runStart = null, prev = null;
      for (const [t] of s.values) {
        const ms = t * 1000;
        if (prev == null || ms - prev > step * 1.5) { if (runStart != null) events.push({ m: s.metric, from: runStart, to: prev }); runStart = ms; }
        prev = ms;
      }
      if (runStart != null) events.push({ m: s.metric, from: runStart, to: prev, open: end - prev < step * 2 });
    }
    events.sort((a, b) => b.from - a.from);
    const sent = notes.status === 'fulfilled' ? notes.value || [] : null;
    const notifications = () => {
      if (sent == null) {
        return h('p', { class: 'sub' }, notes.reason.missing ? 'This server keeps no notification log yet (no /api/v1/notifications).' : notes.reason.message);
      }
      const shown = sent.filter((n) => matches(n.receiver, { group: n.groupKey, integration: n.integration }));
      if (!shown.length) return h('div', { class: 'card empty' }, h('b', null, 'No notification sent yet'));
      return shown.map((n) => h('div', { class: 'card item', dataset: { notification: n.integration } },
        h('div', { class: 'top-line' }, h('span', { class: 'badge ' + (n.error ? 'err' : 'ok') }, n.error ? 'failed' : 'sent'),
          h('span', { class: 'title' }, `${n.receiver} · ${n.integration}`),
          h('span', { class: 'sub' }, `${n.firing} firing, ${n.resolved} resolved`)),
        h('div', { class: 'meta' }, h('span', null, 'last notified ' + (n.lastNotified ? `${fmtTime(Date.parse(n.lastNotified))} (${ago(n.lastNotified)})` : 'never')),
          h('span', null, 'last attempt ' + ago(n.lastAttempt)), h('span', { class: 'mono' }, n.groupKey)),
        n.error ? h('div', { style: { color: 'var(--crit)' } }, n.error) : null));
    };
    draw = () => {
      const shown = events.filter((e) => matches(e.m.alertname, e.m));
      clear(body, h('h2', null, 'Notifications'), notifications(),
        h('h2', { style: { marginTop: '12px' } }, 'Alert history'),
        h('p', { class: 'sub', style: { margin: '0 0 4px' } }, 'When each alert was pending or firing over the last 24 hours (from the ALERTS series).'),
        shown.length ? shown.map((e) => h('div', { class: 'card item', dataset: { history: e.m.alertname } }, h('div', { class: 'top-line' }, h('span', { class: 'badge ' + e.m.alertstate }, e.m.alertstate),
          h('span', { class: 'title' }, e.m.alertname), h('span', { class: 'sub' }, `${fmtTime(e.from)} → ${e.open ? 'now' : fmtTime(e.to)} (${fmtDuration((e.to - e.from) / 1000)})`)),
        labelChips(e.m, ['__name__', 'alertname', 'alertstate']))) : h('div', { class: 'card empty' }, h('b', null, 'No alert in the last 24 hours')));
    };
  }
  filter.addEventListener('input', () => {
    draw();
    const u = new URLSearchParams(location.search);
    if (filter.value) u.set('q', filter.value); else u.delete('q');
    ctx.nav('/alerts?' + u.toString(), true, true);
  });
  draw();
  return null;
}

function alertCard(a, status, silences, ctx) {
  const silencedBy = (status && status.silencedBy) || [];
  const silenced = status && status.state === 'suppressed' && silencedBy.length;
  const name = a.labels.alertname;
  return h('article', { class: 'card item', dataset: { alert: name } },
    h('div', { class: 'top-line' }, h('span', { class: 'badge ' + a.state }, a.state), silenced ? h('span', { class: 'badge silenced' }, 'silenced') : null,
      h('span', { class: 'title' }, name), a.labels.severity ? h('span', { class: 'badge ' + (a.labels.severity === 'critical' ? 'crit' : 'warn') }, a.labels.severity) : null,
      h('span', { class: 'btns' },
        h('a', { class: 'btn small', href: '/explore?q=' + encodeURIComponent(a.rule.query) + '&from=now-6h', 'data-nav': '' }, 'Graph'),
        silenced ? h('button', { type: 'button', class: 'small', onclick: () => editSilence(silences.get(silencedBy[0]), null, () => ctx.reload()) }, 'Edit silence')
          : h('button', { type: 'button', class: 'small', onclick: () => editSilence(null, a.labels, () => ctx.reload()) }, 'Silence'))),
    h('div', { class: 'meta' }, h('span', { title: a.activeAt }, 'active since ' + fmtTime(Date.parse(a.activeAt)) + ` (${ago(a.activeAt)})`),
      a.value != null ? h('span', null, 'value ' + fmt(parseFloat(a.value))) : null, h('span', null, 'group ' + a.group.name)),
    labelChips(a.labels, ['alertname']),
    Object.entries(a.annotations || {}).map(([k, v]) => h('div', { class: 'ann' }, h('b', null, k + ': '), v)));
}

function silenceCard(s, ctx) {
  const st = s.status.state;
  return h('article', { class: 'card item', dataset: { silence: s.id } },
    h('div', { class: 'top-line' }, h('span', { class: 'badge ' + st }, st),
      h('span', { class: 'labels' }, s.matchers.map((m) => h('span', { class: 'lbl-chip' }, h('b', null, m.name), h('i', null, `${m.isEqual === false ? '!' : ''}${m.isRegex ? '~' : '='} ${m.value}`)))),
      h('span', { class: 'btns' }, st !== 'expired' ? [
        h('button', { type: 'button', class: 'small', onclick: () => editSilence(s, null, () => ctx.reload()) }, 'Edit'),
        h('button', { type: 'button', class: 'small danger', onclick: async () => {
          try { await am.expireSilence(s.id); toast('Silence expired'); ctx.reload(); } catch (e) { toast(e.message, true); }
        } }, 'Expire')] : h('button', { type: 'button', class: 'small', onclick: () => editSilence({ ...s, id: undefined }, null, () => ctx.reload()) }, 'Recreate'))),
    h('div', { class: 'meta' }, h('span', null, `${fmtTime(Date.parse(s.startsAt))} → ${fmtTime(Date.parse(s.endsAt))}`), st === 'active' ? h('span', null, 'ends ' + ago(s.endsAt)) : null,
      h('span', null, 'by ' + (s.createdBy || '–'))),
    s.comment ? h('div', { class: 'ann' }, s.comment) : null);
}

const toLocal = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16);

// The silence form: matchers (one per line, name=value, name=~regex, name!=value), start,
// duration or end, author, comment. Creating from an alert fills the matchers with its labels.
async function editSilence(existing, labels, after) {
  const now = Date.now();
  const matchers = existing ? existing.matchers : Object.entries(labels || {}).filter(([k]) => k !== 'alertstate').map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }));
  const res = await dialog(existing && existing.id ? 'Edit silence' : 'New silence', (done) => {
    const m = h('textarea', { rows: Math.max(3, matchers.length), class: 'mono', 'aria-label': 'Matchers', placeholder: 'alertname="HighLoad"\ninstance=~"web-.*"',
      value: matchers.map((x) => `${x.name}${x.isEqual === false ? '!' : ''}${x.isRegex ? '~' : '='}"${x.value}"`).join('\n') });
    const starts = h('input', { type: 'datetime-local', value: toLocal(existing ? Math.max(now, Date.parse(existing.startsAt)) : now), 'aria-label': 'Starts' });
    const ends = h('input', { type: 'datetime-local', value: toLocal(existing ? Date.parse(existing.endsAt) : now + 2 * 3600e3), 'aria-label': 'Ends' });
    const by = h('input', { value: (existing && existing.createdBy) || localStorage.getItem('telltale.user') || '', placeholder: 'your name', 'aria-label': 'Created by', required: true });
    const comment = h('textarea', { rows: 2, value: (existing && existing.comment) || '', placeholder: 'why, and a ticket link', 'aria-label': 'Comment', required: true });
    const quick = h('div', { class: 'toolbar' }, h('span', { class: 'sub' }, 'Duration:'), [['1h', 1], ['2h', 2], ['4h', 4], ['1d', 24], ['1w', 168]].map(([l, hrs]) =>
      h('button', { type: 'button', class: 'small', onclick: () => { ends.value = toLocal(new Date(starts.value).getTime() + hrs * 3600e3); } }, l)));
    return h('form', { method: 'dialog', onsubmit: (e) => { e.preventDefault(); done({ m: m.value, starts: starts.value, ends: ends.value, by: by.value, comment: comment.value }); } },
      h('label', { class: 'field' }, 'Matchers (one per line)', m), h('div', { class: 'form-grid' }, h('label', { class: 'field' }, 'Starts', starts), h('label', { class: 'field' }, 'Ends', ends)), quick,
      h('label', { class: 'field' }, 'Created by', by), h('label', { class: 'field' }, 'Comment', comment),
      h('div', { class: 'dlg-btns' }, h('button', { type: 'button', onclick: () => done(null) }, 'Cancel'), h('button', { class: 'primary' }, existing && existing.id ? 'Update silence' : 'Create silence')));
  });
  if (!res) return;
  const parsed = [];
  for (const line of res.m.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const mm = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?$/.exec(line);
    if (!mm) { toast(`Not a matcher: ${line}`, true); return; }
    parsed.push({ name: mm[1], value: mm[3], isRegex: mm[2].includes('~'), isEqual: !mm[2].startsWith('!') });
  }
  if (!parsed.length) { toast('A silence needs at least one matcher', true); return; }
  localStorage.setItem('telltale.user', res.by);
  const body = { matchers: parsed, startsAt: new Date(res.starts).toISOString(), endsAt: new Date(res.ends).toISOString(), createdBy: res.by, comment: res.comment };
  if (existing && existing.id) body.id = existing.id;
  try { await am.saveSilence(body); toast('Silence saved'); after(); } catch (e) { toast('Not saved: ' + e.message, true); }
}
