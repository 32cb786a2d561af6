// A dashboard on screen: variables, time range and auto-refresh (all in the URL), rows of
// panels, and the editor (panels, rows, variables, settings) that saves the JSON back
// through /api/v1/dashboards. The Overview page is this view over the built-in dashboard.
import { h, clear, icon, toast, dialog, download } from './dom.js';
import { prom, dashboards as api } from './api.js';
import { Panel, TYPES } from './panel.js';
import { editor } from './promql.js';
import { picker, resolve, parseDuration } from './time.js';
import { UNITS } from './format.js';

// `label_values(metric, label)` or `label_values(label)`: one request for a variable's options.
export function parseVariableQuery(q) {
  const m = /^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(q || '');
  return m ? { match: m[1] || null, label: m[2] } : null;
}

function nextId(doc) {
  let max = 0;
  for (const r of doc.rows || []) for (const p of r.panels || []) max = Math.max(max, p.id || 0);
  return max + 1;
}

export function findPanel(doc, id) {
  for (const r of doc.rows || []) for (const p of r.panels || []) if (String(p.id) === String(id)) return { row: r, panel: p };
  return null;
}

// Reads the dashboard part of the URL: from, to, refresh, var-*, edit.
export function urlState(doc, params) {
  const vars = {};
  for (const [k, v] of params) if (k.startsWith('var-')) vars[k.slice(4)] = v;
  return {
    from: params.get('from') || (doc.time && doc.time.from) || 'now-1h',
    to: params.get('to') || (doc.time && doc.time.to) || 'now',
    refresh: params.has('refresh') ? params.get('refresh') : (doc.refresh || ''),
    vars,
  };
}

export class DashboardView {
  // opts: {nav(url, replace), path, params, banner(el)?, editing, onSaved(doc)}
  constructor(root, doc, opts) {
    this.root = root;
    this.doc = structuredClone(doc);
    this.opts = opts;
    this.state = urlState(this.doc, opts.params);
    this.panels = [];
    this.timer = 0;
    this.editing = !!opts.editing;
    this.dirty = false;
    this.varOptions = {};
  }

  url(patch = {}) {
    const s = { ...this.state, ...patch };
    const p = new URLSearchParams();
    const dflt = this.doc.time || {};
    if (s.from !== (dflt.from || 'now-1h')) p.set('from', s.from);
    if (s.to !== (dflt.to || 'now')) p.set('to', s.to);
    if ((s.refresh || '') !== (this.doc.refresh || '')) p.set('refresh', s.refresh || '');
    for (const [k, v] of Object.entries(s.vars || {})) p.set('var-' + k, v);
    if (patch.editPanel != null) p.set('editPanel', patch.editPanel);
    if (this.editing && patch.editing !== false) p.set('edit', '1');
    const q = p.toString();
    return this.opts.path + (q ? '?' + q : '');
  }

  range() {
    const now = Date.now();
    return [resolve(this.state.from, now), resolve(this.state.to, now)];
  }

  async mount() {
    await this.loadVariables();
    this.render();
    this.refreshAll();
    this.startTimer();
  }

  unmount() {
    clearInterval(this.timer);
    for (const p of this.panels) p.destroy();
    this.panels = [];
  }

  startTimer() {
    clearInterval(this.timer);
    const every = parseDuration(this.state.refresh);
    if (every && every >= 1000) {
      this.timer = setInterval(() => { if (!document.hidden) this.refreshAll(); }, every);
    }
  }

  async loadVariables() {
    const [start, end] = this.range();
    await Promise.all((this.doc.variables || []).map(async (v) => {
      const q = parseVariableQuery(v.query);
      let values = [];
      if (q) {
        try { values = await prom.labelValues(q.label, q.match ? [q.match] : undefined, start, end); } catch { values = []; }
      } else if (v.options) values = v.options;
      if (v.includeAll) values = ['$__all', ...values];
      this.varOptions[v.name] = values;
      const cur = this.state.vars[v.name];
      if (cur == null || (!values.includes(cur) && values.length)) {
        this.state.vars[v.name] = v.current && values.includes(v.current) ? v.current : (values[0] ?? '');
      }
    }));
  }

  // Variable values as queries see them ("All" becomes a match-everything regex).
  varValues() {
    const out = {};
    for (const [k, v] of Object.entries(this.state.vars)) out[k] = v === '$__all' ? '.*' : v;
    return out;
  }

  setState(patch, replace = false) {
    Object.assign(this.state, patch);
    this.opts.nav(this.url(), replace, true);
    this.startTimer();
    this.renderToolbar();
    this.refreshAll();
  }

  refreshAll() {
    const [start, end] = this.range();
    const vars = this.varValues();
    for (const p of this.panels) {
      const row = p.row;
      if (row && row.collapsed) continue;
      p.load(start, end, vars);
    }
  }

  render() {
    for (const p of this.panels) p.destroy();
    this.panels = [];
    this.toolbar = h('div', { class: 'toolbar' });
    this.head = h('div', { class: 'head' }, h('h1', null, this.doc.title || 'Untitled'), this.toolbar);
    this.banner = h('div', { class: 'banner' });
    this.grid = h('div', { class: 'grid' });
    clear(this.root, this.head, this.banner, this.grid);
    if (this.opts.banner) this.opts.banner(this.banner);
    this.renderToolbar();
    this.renderGrid();
  }

  renderToolbar() {
    const parts = [];
    for (const v of this.doc.variables || []) {
      const sel = h('select', { 'aria-label': v.label || v.name, onchange: () => this.setState({ vars: { ...this.state.vars, [v.name]: sel.value } }) },
        (this.varOptions[v.name] || []).map((o) => h('option', { value: o, selected: this.state.vars[v.name] === o }, o === '$__all' ? 'All' : o)));
      if (!(this.varOptions[v.name] || []).length) sel.append(h('option', { value: '' }, 'no values'));
      parts.push(h('label', { class: 'check', title: v.query }, h('span', { class: 'sub' }, v.label || v.name), sel));
    }
    parts.push(picker(this.state, (next) => this.setState(next)));
    const ro = this.doc.builtin;
    if (this.editing) {
      parts.push(h('button', { type: 'button', onclick: () => this.addRow() }, icon('plus'), 'Row'),
        h('button', { type: 'button', onclick: () => this.editPanel(null) }, icon('plus'), 'Panel'),
        h('button', { type: 'button', onclick: () => this.settings() }, 'Settings'),
        h('button', { type: 'button', onclick: () => this.stopEditing() }, 'Done'),
        h('button', { type: 'button', class: 'primary', onclick: () => this.save() }, ro ? 'Save as copy' : 'Save'));
    } else {
      parts.push(h('button', { type: 'button', title: ro ? 'Built-in: edit a copy' : 'Edit this dashboard', onclick: () => this.startEditing() }, icon('edit'), 'Edit'),
        h('button', { type: 'button', class: 'icon', title: 'Export JSON', 'aria-label': 'Export JSON', onclick: () => this.exportJson() }, icon('download')));
      if (ro) parts.push(h('button', { type: 'button', title: 'Save a copy you can change', onclick: () => this.saveCopy() }, icon('copy'), 'Copy'));
    }
    clear(this.toolbar, parts);
  }

  renderGrid() {
    for (const p of this.panels) p.destroy();
    this.panels = [];
    const kids = [];
    const rows = this.doc.rows || [];
    rows.forEach((row, ri) => {
      if (row.title || this.editing) {
        const title = h('div', { class: 'row-title' + (row.collapsed ? ' collapsed' : ''), role: 'button', tabindex: '0',
          onclick: (e) => { if (e.target.closest('button')) return; row.collapsed = !row.collapsed; this.renderGrid(); this.refreshAll(); } },
        h('span', null, row.title || '(row without title)'),
        this.editing && h('button', { type: 'button', class: 'small', onclick: () => this.renameRow(row) }, 'Rename'),
        this.editing && ri > 0 && h('button', { type: 'button', class: 'small', onclick: () => { rows.splice(ri - 1, 0, rows.splice(ri, 1)[0]); this.changed(); } }, '↑'),
        this.editing && h('button', { type: 'button', class: 'small danger', onclick: () => { rows.splice(ri, 1); this.changed(); } }, 'Remove row'));
        kids.push(title);
      }
      if (row.collapsed) return;
      (row.panels || []).forEach((def, pi) => {
        const p = new Panel(def, {
          onZoom: (a, b) => this.setState({ from: String(a), to: String(b) }),
          onExplore: (panel) => this.explore(panel),
          onEdit: this.editing ? () => this.editPanel(def.id) : null,
          onRemove: this.editing ? () => { row.panels.splice(pi, 1); this.changed(); } : null,
        });
        p.row = row;
        if (this.editing) {
          const move = (d) => { const j = pi + d; if (j < 0 || j >= row.panels.length) return; row.panels.splice(j, 0, row.panels.splice(pi, 1)[0]); this.changed(); };
          p.el.querySelector('.actions').prepend(
            h('button', { class: 'icon', type: 'button', title: 'Move earlier', 'aria-label': 'Move earlier', onclick: () => move(-1) }, '←'),
            h('button', { class: 'icon', type: 'button', title: 'Move later', 'aria-label': 'Move later', onclick: () => move(1) }, '→'));
        }
        this.panels.push(p);
        kids.push(p.el);
      });
    });
    if (!kids.length) {
      kids.push(h('div', { class: 'card empty', style: { gridColumn: '1 / -1' } }, h('b', null, 'This dashboard has no panels yet'),
        this.editing ? 'Add a panel with the button above.' : h('button', { type: 'button', class: 'primary', onclick: () => this.startEditing() }, 'Start editing')));
    }
    clear(this.grid, kids);
  }

  changed() {
    this.dirty = true;
    this.saveDraft();
    this.renderGrid();
    this.refreshAll();
  }

  // Unsaved edits live in sessionStorage until saved or discarded, so the back button, the
  // panel editor's Cancel or a reload never lose them.
  saveDraft() {
    if (this.doc.uid) sessionStorage.setItem(draftKey(this.doc.uid), JSON.stringify(this.doc));
  }

  dropDraft() {
    if (this.doc.uid) sessionStorage.removeItem(draftKey(this.doc.uid));
  }

  explore(panel) {
    const t = (panel.def.targets || [])[0];
    if (!t) return;
    const [start, end] = this.range();
    const step = 0;
    const expr = t.expr.replace(/\$\{?([a-zA-Z0-9_]+)\}?/g, (m, k) => (this.varValues()[k] ?? m));
    const p = new URLSearchParams({ q: expr, from: this.state.from, to: this.state.to });
    if (panel.def.unit) p.set('unit', panel.def.unit);
    if (panel.def.stacked) p.set('stacked', '1');
    void start; void end; void step;
    this.opts.nav(((t.lang === 'logql') ? '/logs?' : '/explore?') + p.toString());
  }

  startEditing() {
    if (this.doc.builtin) { this.saveCopy(); return; }
    this.editing = true;
    this.opts.nav(this.url(), false, true);
    this.renderToolbar();
    this.renderGrid();
    this.refreshAll();
  }

  stopEditing() {
    if (this.dirty && !confirm('Discard unsaved changes?')) return;
    this.editing = false;
    this.dirty = false;
    this.dropDraft();
    this.opts.nav(this.url({ editing: false }), false);
  }

  async addRow() {
    const title = await ask('New row', 'Row title', '');
    if (title == null) return;
    (this.doc.rows = this.doc.rows || []).push({ title, panels: [] });
    this.changed();
  }

  async renameRow(row) {
    const title = await ask('Rename row', 'Row title', row.title || '');
    if (title == null) return;
    row.title = title;
    this.changed();
  }

  editPanel(id) {
    this.opts.nav(this.url({ editPanel: id == null ? 'new' : id }), false, true);
    this.showPanelEditor(id);
  }

  // The panel editor: live preview on the left, fields on the right; Apply puts the panel
  // into the dashboard (saving is a separate step, as in every dashboard tool).
  showPanelEditor(id) {
    this.unmountPanelsOnly();
    const found = id == null || id === 'new' ? null : findPanel(this.doc, id);
    const def = found ? structuredClone(found.panel) : { id: nextId(this.doc), type: 'timeseries', title: 'New panel', width: 6, targets: [{ expr: '', legend: '' }] };
    let preview = null;
    const previewBox = h('div', { class: 'card preview' });
    const redraw = () => {
      if (preview) preview.destroy();
      preview = new Panel({ ...def, width: 12, height: 330 }, {});
      clear(previewBox, preview.el);
      const [s, e] = this.range();
      preview.load(s, e, this.varValues());
    };
    const field = (label, input) => h('label', { class: 'field' }, label, input);
    const inp = (key, attrs = {}) => {
      const el = h('input', { ...attrs, value: def[key] ?? '' });
      el.addEventListener('change', () => { const v = el.value; def[key] = attrs.type === 'number' ? (v === '' ? undefined : Number(v)) : v; redraw(); });
      return el;
    };
    const select = (key, options) => {
      const el = h('select', { onchange: () => { def[key] = el.value; redraw(); } }, options.map(([v, l]) => h('option', { value: v, selected: (def[key] || '') === v }, l)));
      return el;
    };
    const targetsBox = h('div', { class: 'list' });
    const renderTargets = () => {
      clear(targetsBox, def.targets.map((t, i) => {
        const lang = h('select', { 'aria-label': 'Query language', onchange: () => { t.lang = lang.value; renderTargets(); redraw(); } },
          [['promql', 'PromQL'], ['logql', 'LogQL']].map(([v, l]) => h('option', { value: v, selected: (t.lang || 'promql') === v }, l)));
        const ed = editor({ value: t.expr, lang: t.lang || 'promql', onInput: (v) => { t.expr = v; }, onRun: (v) => { t.expr = v; redraw(); }, range: () => this.range() });
        ed.textarea.addEventListener('blur', () => { if (t.expr !== ed.value) { t.expr = ed.value; } redraw(); });
        const legend = h('input', { class: 'legend', placeholder: 'Legend, e.g. {{mode}}', value: t.legend || '', 'aria-label': 'Legend',
          onchange: () => { t.legend = legend.value; redraw(); } });
        return h('div', { class: 'target' }, lang, ed.el, legend,
          def.targets.length > 1 && h('button', { class: 'icon', type: 'button', title: 'Remove query', 'aria-label': 'Remove query', onclick: () => { def.targets.splice(i, 1); renderTargets(); redraw(); } }, icon('trash')));
      }), h('div', null, h('button', { type: 'button', class: 'small', onclick: () => { def.targets.push({ expr: '', legend: '' }); renderTargets(); } }, icon('plus'), 'Query')));
    };
    renderTargets();
    const thr = h('input', { value: (def.thresholds || []).map((t) => `${t.value}:${t.color}`).join(', '), placeholder: '80:orange, 90:red' });
    thr.addEventListener('change', () => {
      def.thresholds = thr.value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        const [v, c] = s.split(':');
        return { value: Number(v), color: (c || 'red').trim() };
      }).filter((t) => Number.isFinite(t.value));
      redraw();
    });
    const stacked = h('input', { type: 'checkbox', checked: !!def.stacked, onchange: () => { def.stacked = stacked.checked; redraw(); } });
    const rows = this.doc.rows = this.doc.rows || [];
    if (!rows.length) rows.push({ title: '', panels: [] });
    const rowSel = h('select', null, rows.map((r, i) => h('option', { value: i, selected: found ? r === found.row : i === rows.length - 1 }, r.title || `Row ${i + 1}`)));
    const side = h('div', { class: 'card edit-side' },
      field('Title', inp('title')),
      h('div', { class: 'form-grid' }, field('Type', select('type', TYPES)), field('Unit', select('unit', UNITS)),
        field('Width (1-12)', inp('width', { type: 'number', min: 1, max: 12 })), field('Height (px)', inp('height', { type: 'number', min: 80, max: 1200, placeholder: 'auto' })),
        field('Min', inp('min', { type: 'number', placeholder: 'auto' })), field('Max', inp('max', { type: 'number', placeholder: 'auto' }))),
      field('Thresholds (value:color, …)', thr),
      h('label', { class: 'check' }, stacked, 'Stack series'),
      field('Row', rowSel),
      field('Description', inp('description')),
      h('div', { class: 'dlg-btns' },
        h('button', { type: 'button', onclick: () => { if (preview) preview.destroy(); history.back(); } }, 'Cancel'),
        h('button', { type: 'button', class: 'primary', onclick: () => {
          if (!def.width) delete def.width;
          const target = rows[Number(rowSel.value)];
          if (found) {
            const idx = found.row.panels.indexOf(found.panel);
            if (found.row === target) found.row.panels[idx] = def;
            else { found.row.panels.splice(idx, 1); (target.panels = target.panels || []).push(def); }
          } else (target.panels = target.panels || []).push(def);
          this.dirty = true;
          this.saveDraft();
          if (preview) preview.destroy();
          this.closePanelEditor();
        } }, 'Apply')));
    clear(this.root, h('div', { class: 'head' }, h('h1', null, (found ? 'Edit panel · ' : 'New panel · ') + (this.doc.title || '')), picker(this.state, (n) => { Object.assign(this.state, n); redraw(); }, { refresh: false })),
      h('div', { class: 'edit-layout' }, h('div', { class: 'list' }, previewBox, h('div', { class: 'card card-body' }, h('h2', null, 'Queries'), targetsBox)), side));
    redraw();
  }

  closePanelEditor() {
    this.opts.nav(this.url(), true, true);
    this.render();
    this.refreshAll();
  }

  unmountPanelsOnly() {
    for (const p of this.panels) p.destroy();
    this.panels = [];
  }

  async settings() {
    const d = this.doc;
    const res = await dialog('Dashboard settings', (done) => {
      const title = h('input', { value: d.title || '' });
      const tags = h('input', { value: (d.tags || []).join(', '), placeholder: 'comma, separated' });
      const from = h('input', { value: (d.time && d.time.from) || 'now-1h' });
      const refresh = h('input', { value: d.refresh || '', placeholder: 'e.g. 30s' });
      const vars = h('textarea', { rows: 4, class: 'mono', placeholder: 'instance = label_values(node_uname_info, instance)',
        value: (d.variables || []).map((v) => `${v.name} = ${v.query}`).join('\n') });
      return h('form', { method: 'dialog', onsubmit: (e) => { e.preventDefault(); done({ title: title.value, tags: tags.value, from: from.value, refresh: refresh.value, vars: vars.value }); } },
        h('label', { class: 'field' }, 'Title', title), h('label', { class: 'field' }, 'Tags', tags),
        h('div', { class: 'form-grid' }, h('label', { class: 'field' }, 'Default range start', from), h('label', { class: 'field' }, 'Default refresh', refresh)),
        h('label', { class: 'field' }, 'Variables, one per line: name = label_values(metric, label)', vars),
        h('div', { class: 'dlg-btns' }, h('button', { type: 'button', onclick: () => done(null) }, 'Cancel'), h('button', { class: 'primary' }, 'Apply')));
    });
    if (!res) return;
    d.title = res.title.trim() || d.title;
    d.tags = res.tags.split(',').map((s) => s.trim()).filter(Boolean);
    d.time = { from: res.from.trim() || 'now-1h', to: 'now' };
    d.refresh = res.refresh.trim();
    d.variables = res.vars.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
      const i = l.indexOf('=');
      const name = l.slice(0, i).trim(), query = l.slice(i + 1).trim();
      const old = (d.variables || []).find((v) => v.name === name);
      return { ...(old || {}), name, query };
    }).filter((v) => v.name && v.query);
    this.dirty = true;
    this.saveDraft();
    await this.loadVariables();
    this.render();
    this.refreshAll();
  }

  async save() {
    if (this.doc.builtin) return this.saveCopy();
    try {
      const saved = await api.update(this.doc);
      this.dropDraft();
      this.doc = saved;
      this.dirty = false;
      toast('Dashboard saved');
      this.editing = false;
      this.opts.nav(this.url({ editing: false }), true, true);
      this.render();
      this.refreshAll();
    } catch (e) {
      if (e.status === 409 && confirm(e.message + '\n\nOverwrite their changes with yours?')) {
        const saved = await api.update(this.doc, true);
        this.dropDraft();
        this.doc = saved; this.dirty = false; toast('Dashboard saved');
        this.editing = false; this.render(); this.refreshAll();
        return;
      }
      toast('Not saved: ' + e.message, true);
    }
  }

  async saveCopy() {
    const title = await ask('Save a copy', 'Title of the copy', this.doc.builtin ? `${this.doc.title} (copy)` : `Copy of ${this.doc.title}`);
    if (title == null) return;
    const copy = structuredClone(this.doc);
    delete copy.uid; delete copy.version; delete copy.builtin; delete copy.updated;
    copy.title = title;
    try {
      const saved = await api.create(copy);
      toast('Saved as ' + saved.title);
      this.opts.nav(`/dashboards/${encodeURIComponent(saved.uid)}?edit=1`);
    } catch (e) {
      toast('Not saved: ' + e.message, true);
    }
  }

  exportJson() {
    const d = structuredClone(this.doc);
    delete d.builtin;
    download(`${d.uid || 'dashboard'}.json`, JSON.stringify(d, null, 2));
  }
}

export const draftKey = (uid) => 'telltale.draft.' + uid;

// The unsaved copy of dashboard `doc` being edited, if it was made from this version.
export function draftOf(doc) {
  try {
    const d = JSON.parse(sessionStorage.getItem(draftKey(doc.uid)) || 'null');
    return d && d.version === doc.version ? d : null;
  } catch { return null; }
}

export function ask(title, label, value) {
  return dialog(title, (done) => {
    const input = h('input', { value, 'aria-label': label });
    setTimeout(() => { input.focus(); input.select(); }, 0);
    return h('form', { method: 'dialog', onsubmit: (e) => { e.preventDefault(); done(input.value); } },
      h('label', { class: 'field' }, label, input),
      h('div', { class: 'dlg-btns' }, h('button', { type: 'button', onclick: () => done(null) }, 'Cancel'), h('button', { class: 'primary' }, 'OK')));
  });
}
