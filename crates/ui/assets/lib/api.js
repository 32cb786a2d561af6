// The public HTTP APIs the UI talks to, and nothing else: Prometheus's query API, the
// dashboards API, Alertmanager's v2 API and Loki's. Every call is one request.

export class ApiError extends Error {
  constructor(status, message, type) {
    super(message);
    this.status = status;
    this.type = type;
  }
  get missing() { return this.status === 404; }
}

// A logged-in session's changes carry its CSRF token, which the server set as a cookie.
const csrf = () => (document.cookie.match(/(?:^|;\s*)telltale_csrf=([^;]*)/) || [])[1];

async function call(url, opts = {}) {
  let res;
  const method = (opts.method || 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'HEAD' && csrf()) opts = { ...opts, headers: { ...(opts.headers || {}), 'X-CSRF-Token': csrf() } };
  try {
    res = await fetch(url, opts);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'cannot reach the server: ' + e.message);
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* plain text */ }
  // Not logged in (or the session ended): to the login page, back here afterwards.
  if (res.status === 401 && !url.startsWith('/api/v1/auth/login') && location.pathname !== '/login') {
    location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
  }
  if (!res.ok) {
    const msg = (body && (body.error || body.message)) || text.trim() || res.statusText;
    throw new ApiError(res.status, msg, body && body.errorType);
  }
  return body ?? text;
}

const form = (params) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v == null) continue;
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x)); else p.append(k, v);
  }
  return p;
};
const get = (path, params = {}, signal, headers) => call(`${path}?${form(params)}`, { signal, headers });
const post = (path, params, signal) => call(path, { method: 'POST', body: form(params), signal,
  headers: { 'content-type': 'application/x-www-form-urlencoded' } });
const json = (method, path, doc) => call(path, { method, body: doc == null ? undefined : JSON.stringify(doc),
  headers: { 'content-type': 'application/json' } });
const sec = (ms) => (ms / 1000).toFixed(3);

export const prom = {
  query: (query, time, signal) => post('/api/v1/query', { query, time: time && sec(time) }, signal).then((r) => r.data),
  queryRange: (query, start, end, step, signal) =>
    post('/api/v1/query_range', { query, start: sec(start), end: sec(end), step: sec(step) }, signal).then((r) => r.data),
  labels: (match, start, end) => get('/api/v1/labels', { 'match[]': match, start: start && sec(start), end: end && sec(end) }).then((r) => r.data),
  labelValues: (name, match, start, end, signal) => get(`/api/v1/label/${encodeURIComponent(name)}/values`,
    { 'match[]': match, start: start && sec(start), end: end && sec(end) }, signal).then((r) => r.data),
  series: (match, start, end, limit) => get('/api/v1/series', { 'match[]': match, start: start && sec(start), end: end && sec(end), limit }).then((r) => r.data),
  metadata: () => get('/api/v1/metadata').then((r) => r.data),
  formatQuery: (query, signal) => post('/api/v1/format_query', { query }, signal).then((r) => r.data),
  buildinfo: () => get('/api/v1/status/buildinfo').then((r) => r.data),
  runtimeinfo: () => get('/api/v1/status/runtimeinfo').then((r) => r.data),
  config: () => get('/api/v1/status/config').then((r) => r.data),
  tsdb: () => get('/api/v1/status/tsdb').then((r) => r.data),
  targets: () => get('/api/v1/targets').then((r) => r.data),
  rules: () => get('/api/v1/rules').then((r) => r.data),
  alerts: () => get('/api/v1/alerts').then((r) => r.data),
  // Telltale's notification log: per group, receiver and integration.
  notifications: () => get('/api/v1/notifications').then((r) => r.data),
};

export const am = {
  alerts: (params = {}) => get('/api/v2/alerts', params),
  silences: () => get('/api/v2/silences'),
  saveSilence: (s) => json('POST', '/api/v2/silences', s),
  expireSilence: (id) => call(`/api/v2/silence/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  status: () => get('/api/v2/status'),
};

const ns = (ms) => String(Math.round(ms)) + '000000';
export const loki = {
  // `categorize`: ask for parsed labels and structured metadata apart from the stream's labels
  // (Loki 3's categorize-labels encoding; each value then has a third element).
  queryRange: (query, start, end, { limit = 500, step, direction = 'backward', signal, categorize = false } = {}) =>
    get('/loki/api/v1/query_range', { query, start: ns(start), end: ns(end), limit, step: step && sec(step), direction }, signal,
      categorize ? { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' } : undefined)
      .then((r) => r.data),
  labels: (start, end) => get('/loki/api/v1/labels', { start: start && ns(start), end: end && ns(end) }).then((r) => r.data || []),
  labelValues: (name, start, end) => get(`/loki/api/v1/label/${encodeURIComponent(name)}/values`,
    { start: start && ns(start), end: end && ns(end) }).then((r) => r.data || []),
  tailUrl: (query, start) => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/loki/api/v1/tail?${form({ query, start: ns(start), limit: 100 })}`;
  },
};

// Traces: Tempo's search and trace by id, Jaeger's service list, Telltale's latency percentiles.
export const traces = {
  services: () => get('/api/services').then((r) => r.data || []),
  operations: (service) => get('/api/operations', { service }).then((r) => r.data || []),
  search: (q, start, end, limit, signal) => get('/api/search', { q, start: Math.floor(start / 1000), end: Math.ceil(end / 1000), limit }, signal),
  trace: (id) => get(`/api/v2/traces/${encodeURIComponent(id)}`),
  tagValues: (tag) => get(`/api/v2/search/tag/${encodeURIComponent(tag)}/values`).then((r) => (r.tagValues || []).map((v) => v.value)),
  tags: () => get('/api/v2/search/tags').then((r) => r.scopes || []),
  latency: (group, service) => get('/api/v1/services/latency', { group, service }).then((r) => r.data),
};

export const dashboards = {
  list: () => get('/api/v1/dashboards').then((r) => r.data),
  get: (uid) => get(`/api/v1/dashboards/${encodeURIComponent(uid)}`).then((r) => r.data),
  create: (doc) => json('POST', '/api/v1/dashboards', doc).then((r) => r.data),
  update: (doc, overwrite = false) =>
    json('PUT', `/api/v1/dashboards/${encodeURIComponent(doc.uid)}${overwrite ? '?overwrite=true' : ''}`, doc).then((r) => r.data),
  remove: (uid) => call(`/api/v1/dashboards/${encodeURIComponent(uid)}`, { method: 'DELETE' }),
};

// Login, the current user, and (admin) users, service accounts and tokens: docs/security.md.
export const auth = {
  login: (user, password) => json('POST', '/api/v1/auth/login', { user, password }),
  providers: () => get('/api/v1/auth/providers'),
  logout: () => call('/api/v1/auth/logout', { method: 'POST' }),
  whoami: () => get('/api/v1/auth/whoami'),
  users: () => get('/api/v1/auth/users').then((r) => r.users),
  addUser: (u) => json('POST', '/api/v1/auth/users', u),
  updateUser: (name, change) => json('PUT', `/api/v1/auth/users/${encodeURIComponent(name)}`, change),
  deleteUser: (name) => call(`/api/v1/auth/users/${encodeURIComponent(name)}`, { method: 'DELETE' }),
  serviceAccounts: () => get('/api/v1/auth/service_accounts').then((r) => r.service_accounts),
  addServiceAccount: (sa) => json('POST', '/api/v1/auth/service_accounts', sa),
  deleteServiceAccount: (name) => call(`/api/v1/auth/service_accounts/${encodeURIComponent(name)}`, { method: 'DELETE' }),
  tokens: () => get('/api/v1/auth/tokens').then((r) => r.tokens),
  createToken: (t) => json('POST', '/api/v1/auth/tokens', t),
  revokeToken: (id) => call(`/api/v1/auth/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  // Notification receivers: the config file's and those stored (sealed) through the API.
  // A receiver is sent as Alertmanager's YAML or JSON; "<secret>" keeps a stored value.
  receivers: () => get('/api/v1/receivers').then((r) => r.data),
  saveReceiver: (name, text) => call(`/api/v1/receivers/${encodeURIComponent(name)}`, { method: 'PUT', body: text,
    headers: { 'content-type': 'application/yaml' } }),
  deleteReceiver: (name) => call(`/api/v1/receivers/${encodeURIComponent(name)}`, { method: 'DELETE' }),
  // The audit log: the newest `limit` events of the last `range` ms, from the reserved tenant _audit.
  audit: (limit = 200, range = 86400e3) => get('/loki/api/v1/query_range', { query: '{kind="audit"}', start: ns(Date.now() - range), end: ns(Date.now()), limit, direction: 'backward' },
    undefined, { 'X-Scope-OrgID': '_audit' }).then((r) => r.data.result.flatMap((st) => st.values.map(([t, line]) => ({ t: Number(t) / 1e6, ...JSON.parse(line) })))
    .sort((a, b) => b.t - a.t)),
};
