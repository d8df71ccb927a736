// Audit log screen: every write through the API, newest first (GET /v1/audit, paged by cursor).
import { api, query, ApiError } from './api.js';
import { el, when } from './dom.js';

export function audit(root, ctx) {
  const status = el('p', { class: 'status', role: 'status' });
  const body = el('tbody');
  const pager = el('div', { class: 'pager' });
  root.append(
    el('h1', {}, 'Audit log'),
    el('p', { class: 'note' }, 'Every write through the API: who, what, and how it ended. Newest first.'),
    status,
    el('table', { class: 'list' },
      el('caption', { class: 'sr-only' }, 'Audit entries'),
      el('thead', {}, el('tr', {}, ['When', 'Who', 'Action', 'Target', 'Reason', 'Result'].map((h) => el('th', { scope: 'col' }, h)))),
      body),
    pager);
  const stack = [];  // cursors of the pages before this one
  let cursor = '';
  async function load() {
    status.textContent = 'Loading…';
    try {
      const page = await api('GET', `/v1/audit${query({ limit: 50, cursor })}`);
      body.replaceChildren(...page.entries.map((e) => el('tr', {},
        el('td', { 'data-label': 'When' }, when(e.at)),
        el('td', { 'data-label': 'Who' }, `${e.actor} (${e.role}${e.caller_tenant === '*' ? '' : `, ${e.caller_tenant}`})`),
        el('td', { 'data-label': 'Action' }, `${e.method} ${e.route}`, e.filter ? ` ${JSON.stringify(e.filter)}` : ''),
        el('td', { 'data-label': 'Target' }, e.target || '—'),
        el('td', { 'data-label': 'Reason' }, e.reason || '—', e.count !== null ? ` (${e.count})` : ''),
        el('td', { 'data-label': 'Result' }, String(e.status)))));
      status.textContent = page.entries.length ? '' : 'No entries.';
      pager.replaceChildren(
        el('button', { type: 'button', class: 'secondary', disabled: !stack.length, onclick: () => { cursor = stack.pop(); load(); } }, 'Newer'),
        el('button', { type: 'button', class: 'secondary', disabled: !page.next_cursor, onclick: () => { stack.push(cursor); cursor = page.next_cursor; load(); } }, 'Older'));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return ctx.onAuthLost();
      status.textContent = `Could not load the audit log: ${e.message}`;
    }
  }
  load();
}
