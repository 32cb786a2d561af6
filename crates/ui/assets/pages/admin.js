// Admin (/admin): users, service accounts, API tokens and notification receivers (the audit
// log has its own page). A new token is shown once; a stored receiver's secrets are never
// shown, only kept.
import { h, clear, toast } from '../lib/dom.js';
import { auth } from '../lib/api.js';
import { fmtTime, ago } from '../lib/format.js';

export const title = 'Admin';

const ROLES = ['viewer', 'editor', 'admin'];
const SCOPES = ['ingest', 'read', 'edit', 'admin'];
const card = (title, ...body) => h('section', { class: 'card card-body' }, h('h2', null, title), ...body);
const table = (head, rows) => h('div', { class: 'tbl-wrap' }, h('table', { class: 'tbl' },
  h('thead', null, h('tr', null, head.map((x) => h('th', null, x)))), h('tbody', null, rows)));
const select = (options, value) => h('select', null, options.map((o) => h('option', { value: o, selected: o === value }, o)));
const tenants = (t) => (Array.isArray(t) ? t.join(', ') : 'any');
const when = (ms) => (ms ? h('span', { title: fmtTime(ms) }, ago(ms)) : '–');

async function act(what, done, f) {
  try {
    await f();
    toast(what);
    done();
  } catch (e) {
    toast(`${what} failed: ${e.message}`, true);
  }
}

export async function mount(root, ctx) {
  const [users, accounts, tokens, receivers] = await Promise.all([auth.users(), auth.serviceAccounts(), auth.tokens(),
    auth.receivers().catch((e) => e)]);
  const again = () => ctx.reload();

  const name = h('input', { placeholder: 'name', required: true });
  const pw = h('input', { type: 'password', placeholder: 'password (8+ characters)', required: true, autocomplete: 'new-password' });
  const role = select(ROLES, 'viewer');
  const userCard = card(`Users (${users.length})`,
    table(['Name', 'Role', 'Origin', 'Created', ''], users.map((u) => {
      const r = select(ROLES, u.role);
      r.addEventListener('change', () => act(`${u.name} is now ${r.value}`, again, () => auth.updateUser(u.name, { role: r.value })));
      return h('tr', null, h('td', { class: 'mono' }, u.name), h('td', null, r), h('td', null, u.origin), h('td', null, when(u.created_at)),
        h('td', null, h('button', { class: 'small danger', type: 'button', onclick: () => {
          if (confirm(`Delete ${u.name} with their tokens and sessions?`)) act(`${u.name} deleted`, again, () => auth.deleteUser(u.name));
        } }, 'Delete')));
    })),
    h('form', { class: 'toolbar', onsubmit: (e) => {
      e.preventDefault();
      act(`${name.value} added`, again, () => auth.addUser({ name: name.value, password: pw.value, role: role.value }));
    } }, name, pw, role, h('button', { class: 'primary', type: 'submit' }, 'Add user')));

  const saName = h('input', { placeholder: 'name, e.g. grafana', required: true });
  const boxes = SCOPES.map((s) => h('label', null, h('input', { type: 'checkbox', value: s, checked: s === 'read' }), ' ', s));
  const accountCard = card(`Service accounts (${accounts.length})`,
    table(['Name', 'Scopes', 'Tenants', 'Created', ''], accounts.map((a) => h('tr', null,
      h('td', { class: 'mono' }, a.name), h('td', null, a.scopes.join(', ')), h('td', null, tenants(a.tenants)), h('td', null, when(a.created_at)),
      h('td', null, h('button', { class: 'small danger', type: 'button', onclick: () => {
        if (confirm(`Delete ${a.name} and its tokens?`)) act(`${a.name} deleted`, again, () => auth.deleteServiceAccount(a.name));
      } }, 'Delete'))))),
    h('form', { class: 'toolbar', onsubmit: (e) => {
      e.preventDefault();
      const scopes = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
      act(`${saName.value} added`, again, () => auth.addServiceAccount({ name: saName.value, scopes }));
    } }, saName, ...boxes, h('button', { class: 'primary', type: 'submit' }, 'Add service account')));

  const owners = [...accounts.map((a) => `service_account:${a.name}`), ...users.map((u) => `user:${u.name}`)];
  const owner = select(owners, owners[0]);
  const tName = h('input', { placeholder: 'what it is for', required: true });
  const expires = h('input', { placeholder: 'expires in, e.g. 90d (empty: never)' });
  const shown = h('div');
  const ownerOf = (o) => (o.user ? `user:${o.user}` : `service_account:${o.service_account}`);
  const tokenCard = card(`API tokens (${tokens.length})`,
    shown,
    table(['Id', 'Name', 'Owner', 'Scopes', 'Tenants', 'Created', 'Expires', 'Last used', ''], tokens.map((t) => h('tr', null,
      h('td', { class: 'mono' }, t.id), h('td', null, t.name), h('td', { class: 'mono' }, ownerOf(t.owner)), h('td', null, t.scopes.join(', ')),
      h('td', null, tenants(t.tenants)), h('td', null, when(t.created_at)), h('td', null, t.expires_at ? fmtTime(t.expires_at) : 'never'),
      h('td', null, when(t.last_used_at)),
      h('td', null, h('button', { class: 'small danger', type: 'button', onclick: () => {
        if (confirm(`Revoke token ${t.id} (${t.name})?`)) act(`token ${t.id} revoked`, again, () => auth.revokeToken(t.id));
      } }, 'Revoke'))))),
    owners.length ? h('form', { class: 'toolbar', onsubmit: async (e) => {
      e.preventDefault();
      const [kind, n] = owner.value.split(/:(.*)/);
      try {
        const t = await auth.createToken({ name: tName.value, owner: { [kind]: n }, expires_in: expires.value || undefined });
        clear(shown, h('div', { class: 'banner' }, 'New token, shown this once: ', h('code', { class: 'mono token' }, t.token)));
      } catch (err) {
        toast('Token not created: ' + err.message, true);
      }
    } }, owner, tName, expires, h('button', { class: 'primary', type: 'submit' }, 'Create token'))
      : h('div', { class: 'sub' }, 'Add a service account or user first.'));

  const rName = h('input', { placeholder: 'name, e.g. pager', required: true, pattern: '[A-Za-z0-9._@\\-]{1,64}' });
  const rText = h('textarea', { rows: 8, class: 'mono', required: true,
    placeholder: 'webhook_configs:\n  - url: https://hooks.example.com/T0/B0/XXXX\n\n(Alertmanager\'s receiver YAML or JSON; <secret> keeps a stored value)' });
  const edit = (r) => {
    rName.value = r.name;
    const { name, ...config } = r.config;
    rText.value = JSON.stringify(config, null, 2);
    rText.focus();
  };
  const receiverCard = card('Notification receivers',
    receivers instanceof Error ? h('div', { class: 'panel-msg error' }, receivers.message)
      : table(['Name', 'Integrations', 'Defined in', ''], receivers.map((r) => h('tr', null,
        h('td', { class: 'mono' }, r.name), h('td', null, r.integrations.join(', ') || 'none'),
        h('td', null, r.source === 'api' ? 'here (stored sealed)' : 'config file'),
        h('td', null, r.source === 'api' ? [
          h('button', { class: 'small', type: 'button', onclick: () => edit(r) }, 'Edit'), ' ',
          h('button', { class: 'small danger', type: 'button', onclick: () => {
            if (confirm(`Delete receiver ${r.name}?`)) act(`receiver ${r.name} deleted`, again, () => auth.deleteReceiver(r.name));
          } }, 'Delete')] : '')))),
    h('div', { class: 'sub' }, 'Routes stay in the config file (alerting.route); name a receiver here from a route there.'),
    h('form', { class: 'stack', onsubmit: (e) => {
      e.preventDefault();
      act(`receiver ${rName.value} saved`, again, () => auth.saveReceiver(rName.value, rText.value));
    } }, rName, rText, h('div', null, h('button', { class: 'primary', type: 'submit' }, 'Save receiver'))));

  root.append(h('div', { class: 'grid' }, userCard, accountCard, tokenCard, receiverCard));
}
