// Log in (/login?next=...): a user name and password for a session; back to `next` after.
import { h } from '../lib/dom.js';
import { auth } from '../lib/api.js';

export const title = 'Log in';

export async function mount(root, ctx) {
  const user = h('input', { name: 'user', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('div', { class: 'panel-msg error', role: 'alert', hidden: true });
  const next = ctx.params.get('next');
  const form = h('form', { class: 'form-grid', onsubmit: async (e) => {
    e.preventDefault();
    msg.hidden = true;
    try {
      await auth.login(user.value, password.value);
      // Only a path on this server: `next` comes from the URL.
      location.assign(next && next.startsWith('/') && !next.startsWith('//') ? next : '/');
    } catch (err) {
      msg.textContent = err.status === 401 ? 'Wrong user name or password.' : err.message;
      msg.hidden = false;
      password.select();
    }
  } },
  h('label', null, 'User', user),
  h('label', null, 'Password', password),
  h('button', { class: 'primary', type: 'submit' }, 'Log in'));
  // A failed single sign-on comes back here saying why.
  if (ctx.params.get('error')) {
    msg.textContent = 'Single sign-on failed: ' + ctx.params.get('error');
    msg.hidden = false;
  }
  const providers = await auth.providers().catch(() => ({}));
  const sso = providers.oidc ? h('a', { class: 'btn sso', href: '/api/v1/auth/oidc/login?next=' + encodeURIComponent(next || '/') }, providers.oidc.label) : null;
  root.append(h('section', { class: 'card card-body login' }, h('h2', null, 'Log in to Telltale'), msg, sso, form,
    h('p', { class: 'sub' }, 'Machines use API tokens instead (docs/security.md).')));
}
