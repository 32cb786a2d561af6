// The shell: picks the page from the URL, keeps the URL the single source of page state
// (so links can be shared and the back button works), and switches the theme.
import { h, clear } from './lib/dom.js';
import { resetCompletionCache } from './lib/promql.js';
import { auth } from './lib/api.js';

const PAGES = [
  [/^\/$/, 'overview', () => import('./pages/overview.js')],
  [/^\/explore$/, 'explore', () => import('./pages/explore.js')],
  [/^\/dashboards(\/.*)?$/, 'dashboards', () => import('./pages/dashboards.js')],
  [/^\/logs$/, 'logs', () => import('./pages/logs.js')],
  [/^\/traces(\/[0-9a-fA-F]+)?$/, 'traces', () => import('./pages/traces.js')],
  [/^\/services$/, 'services', () => import('./pages/services.js')],
  [/^\/alerts$/, 'alerts', () => import('./pages/alerts.js')],
  [/^\/status$/, 'status', () => import('./pages/status.js')],
  [/^\/login$/, 'login', () => import('./pages/login.js')],
  [/^\/admin$/, 'admin', () => import('./pages/admin.js')],
  [/^\/audit$/, 'audit', () => import('./pages/audit.js')],
];

const root = document.getElementById('app');
let current = null;
let seq = 0;

// Goes to `url`. `replace`: no new history entry. `silent`: the page already shows the new
// state (e.g. it changed the time range itself); only the URL changes.
export function nav(url, replace = false, silent = false) {
  const same = url === location.pathname + location.search;
  if (replace || same) history.replaceState(null, '', url); else history.pushState(null, '', url);
  if (!silent) render();
}

async function render() {
  const my = ++seq;
  if (current && current.unmount) current.unmount();
  current = null;
  resetCompletionCache();
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const page = PAGES.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll('.tabs a')) {
    if (page && a.dataset.page === page[1]) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (!page) {
    clear(root, h('div', { class: 'card empty' }, h('b', null, 'No page here'), h('a', { href: '/', 'data-nav': '' }, 'Go to the Overview')));
    return;
  }
  const mod = await page[2]();
  if (my !== seq) return;
  const ctx = { path, params: new URLSearchParams(location.search), nav, reload: () => render() };
  clear(root);
  document.title = `${mod.title || page[1]} · Telltale`;
  current = (await mod.mount(root, ctx)) || null;
  if (my !== seq && current && current.unmount) current.unmount();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/ui/')) return;
  e.preventDefault();
  nav(url.pathname + url.search);
});
window.addEventListener('popstate', () => render());

function setTheme(t) {
  document.documentElement.dataset.theme = t;
  localStorage.setItem('telltale.theme', t);
}
const saved = localStorage.getItem('telltale.theme');
setTheme(saved || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
document.getElementById('theme').addEventListener('click', () => setTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark'));

// Who is logged in: their name and a logout button, and the Admin and Audit tabs for admins. Nothing
// when authentication is off.
async function whoami() {
  const box = document.getElementById('user');
  if (location.pathname === '/login') return;
  try {
    const me = await auth.whoami();
    if (!me.auth_required) return;
    for (const tab of ['admin', 'audit']) document.querySelector(`.tabs a[data-page="${tab}"]`).hidden = !(me.scopes || []).includes('admin');
    clear(box, h('span', { class: 'sub', title: me.kind }, me.name || me.kind), ' ',
      me.kind === 'user' ? h('button', { class: 'small', type: 'button', onclick: async () => {
        await auth.logout().catch(() => {});
        location.assign('/login');
      } }, 'Log out') : null);
  } catch { /* 401: the API client sends the browser to the login page */ }
}

render();
whoami();
