// Dashboards: the list (/dashboards), one dashboard (/dashboards/<uid>), create, import and
// delete. Editing happens in the dashboard view (lib/dashboard.js).
import { h, clear, icon, toast, dialog } from '../lib/dom.js';
import { dashboards as api } from '../lib/api.js';
import { DashboardView, draftOf } from '../lib/dashboard.js';
import { ago } from '../lib/format.js';

export const title = 'Dashboards';

export async function mount(root, ctx) {
  const uid = decodeURIComponent(ctx.path.replace(/^\/dashboards\/?/, ''));
  if (uid) return showOne(root, ctx, uid);
  return showList(root, ctx);
}

async function showOne(root, ctx, uid) {
  let doc;
  try { doc = await api.get(uid); } catch (e) {
    clear(root, h('div', { class: 'card empty' }, h('b', null, e.status === 404 ? `No dashboard "${uid}"` : 'Cannot load the dashboard'), e.message,
      h('p', null, h('a', { href: '/dashboards', 'data-nav': '' }, 'All dashboards'))));
    return null;
  }
  const editing = ctx.params.get('edit') === '1';
  const draft = editing ? draftOf(doc) : null;
  const view = new DashboardView(root, draft || doc, { ...ctx, path: ctx.path, editing });
  if (draft) view.dirty = true;
  const ep = ctx.params.get('editPanel');
  if (ep && view.editing) {
    await view.loadVariables();
    view.showPanelEditor(ep === 'new' ? null : ep);
  } else {
    await view.mount();
  }
  return { unmount: () => view.unmount() };
}

async function showList(root, ctx) {
  const filter = h('input', { type: 'search', placeholder: 'Filter by title or tag', value: ctx.params.get('q') || '', 'aria-label': 'Filter dashboards' });
  const tbody = h('tbody');
  const head = h('div', { class: 'head' }, h('h1', null, 'Dashboards'), h('div', { class: 'toolbar' }, filter,
    h('button', { type: 'button', onclick: () => importJson(ctx) }, icon('upload'), 'Import'),
    h('button', { type: 'button', class: 'primary', onclick: () => create(ctx) }, icon('plus'), 'New dashboard')));
  clear(root, head, h('div', { class: 'card' }, h('table', { class: 'tbl' },
    h('thead', null, h('tr', null, h('th', null, 'Title'), h('th', null, 'Tags'), h('th', { class: 'num' }, 'Version'), h('th', null, 'Saved'), h('th'))), tbody)));
  let list = [];
  const fill = () => {
    const q = filter.value.toLowerCase();
    const rows = list.filter((d) => !q || d.title.toLowerCase().includes(q) || d.tags.some((t) => t.toLowerCase().includes(q)));
    tbody.replaceChildren(...rows.map((d) => h('tr', null,
      h('td', null, h('a', { href: `/dashboards/${encodeURIComponent(d.uid)}`, 'data-nav': '' }, d.title), d.builtin ? h('span', { class: 'badge', style: { marginLeft: '8px' } }, 'built-in') : null),
      h('td', null, h('span', { class: 'labels' }, d.tags.map((t) => h('span', { class: 'badge' }, t)))),
      h('td', { class: 'num' }, d.version), h('td', { class: 'sub' }, d.updated ? ago(d.updated) : '–'),
      h('td', { class: 'num' }, d.builtin ? null : h('button', { type: 'button', class: 'small danger', onclick: async () => {
        if (!confirm(`Delete dashboard "${d.title}"?`)) return;
        try { await api.remove(d.uid); toast('Deleted'); load(); } catch (e) { toast(e.message, true); }
      } }, 'Delete')))));
    if (!rows.length) tbody.append(h('tr', null, h('td', { colspan: 5, class: 'empty' }, list.length ? 'No dashboard matches' : 'No dashboards yet')));
  };
  const load = async () => {
    try { list = await api.list(); } catch (e) { toast(e.message, true); list = []; }
    fill();
  };
  filter.addEventListener('input', () => { fill(); ctx.nav('/dashboards' + (filter.value ? '?q=' + encodeURIComponent(filter.value) : ''), true, true); });
  await load();
  return null;
}

async function create(ctx) {
  const title = await dialog('New dashboard', (done) => {
    const input = h('input', { placeholder: 'e.g. Web servers', 'aria-label': 'Title' });
    setTimeout(() => input.focus(), 0);
    return h('form', { method: 'dialog', onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) done(input.value.trim()); } },
      h('label', { class: 'field' }, 'Title', input),
      h('div', { class: 'dlg-btns' }, h('button', { type: 'button', onclick: () => done(null) }, 'Cancel'), h('button', { class: 'primary' }, 'Create')));
  });
  if (!title) return;
  try {
    const doc = await api.create({ title, time: { from: 'now-1h', to: 'now' }, rows: [{ title: '', panels: [] }] });
    ctx.nav(`/dashboards/${encodeURIComponent(doc.uid)}?edit=1`);
  } catch (e) { toast('Not created: ' + e.message, true); }
}

async function importJson(ctx) {
  const text = await dialog('Import a dashboard', (done) => {
    const ta = h('textarea', { rows: 14, class: 'mono', placeholder: 'Paste dashboard JSON (as exported), or pick a file', 'aria-label': 'Dashboard JSON' });
    const file = h('input', { type: 'file', accept: 'application/json,.json', onchange: async () => { if (file.files[0]) ta.value = await file.files[0].text(); } });
    return h('form', { method: 'dialog', onsubmit: (e) => { e.preventDefault(); done(ta.value); } }, file, ta,
      h('div', { class: 'dlg-btns' }, h('button', { type: 'button', onclick: () => done(null) }, 'Cancel'), h('button', { class: 'primary' }, 'Import')));
  });
  if (!text) return;
  let doc;
  try { doc = JSON.parse(text); } catch (e) { toast('Not JSON: ' + e.message, true); return; }
  delete doc.version; delete doc.builtin; delete doc.updated;
  try {
    const saved = await api.create(doc);
    toast('Imported ' + saved.title);
    ctx.nav(`/dashboards/${encodeURIComponent(saved.uid)}`);
  } catch (e) {
    if (e.status === 409 && doc.uid && confirm(`${e.message}\n\nImport as a new dashboard instead?`)) {
      delete doc.uid;
      const saved = await api.create(doc);
      ctx.nav(`/dashboards/${encodeURIComponent(saved.uid)}`);
      return;
    }
    toast('Not imported: ' + e.message, true);
  }
}
