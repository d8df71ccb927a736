// Conversations (agents): the list, filtered by owner (people's first), number, status and search,
// and one conversation's transcript with reply, take, release and hand off. Both refresh every 2 s.
import { api, query, ApiError } from './api.js';
import { el, when, remaining, poller } from './dom.js';


function customer(c) { return c.wa_id ? `+${c.wa_id}` : (c.user_id || 'unknown'); }

export function conversations(root, ctx) {
  return ctx.args[0] ? transcript(root, ctx, decodeURIComponent(ctx.args[0])) : list(root, ctx);
}

function list(root, ctx) {
  const viewer = ctx.me.role === 'viewer';
  const saved = JSON.parse(sessionStorage.getItem('convoy.filters') || '{"owner":"human"}');
  const field = (id, label, input) => el('div', {}, el('label', { for: id }, label), input);
  const owner = el('select', { id: 'f-owner', name: 'owner' },
    ['human', 'bot', 'elsewhere', ''].map((v) => el('option', { value: v, selected: saved.owner === v }, v || 'any')));
  const number = el('input', { id: 'f-number', name: 'number', inputmode: 'numeric', pattern: '[0-9]*', size: 16, value: saved.number || '' });
  const state = el('select', { id: 'f-status', name: 'status' },
    [['', 'any'], ['open', 'window open'], ['closed', 'window closed']].map(([v, t]) => el('option', { value: v, selected: (saved.status || '') === v }, t)));
  const search = el('input', { id: 'f-q', name: 'q', type: 'search', size: 22, value: saved.q || '', minlength: 3 });
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter conversations' },
    field('f-owner', 'Owner', owner), field('f-number', 'Business number', number), field('f-status', 'Window', state),
    viewer ? null : field('f-q', 'Search (phone, BSUID, name, text)', search),
    el('div', {}, el('button', { type: 'submit' }, 'Apply')));
  const status = el('p', { class: 'status', role: 'status' });
  const body = el('tbody');
  const pager = el('div', { class: 'pager' });
  root.append(el('h1', {}, 'Conversations'), form, status,
    el('table', { class: 'list', id: 'conversation-list' },
      el('caption', { class: 'sr-only' }, 'Conversations, most recently updated first'),
      el('thead', {}, el('tr', {}, ['Customer', 'Owner', 'Flow / step', 'Window', 'Updated'].map((h) => el('th', { scope: 'col' }, h)))),
      body),
    pager);
  const stack = [];
  let cursor = '';
  let filters = saved;
  async function load() {
    try {
      const page = await api('GET', `/v1/conversations${query({ ...filters, limit: 50, cursor })}`);
      body.replaceChildren(...page.conversations.map((c) => el('tr', {},
        el('td', { 'data-label': 'Customer' }, el('a', { href: `#/conversations/${encodeURIComponent(c.id)}` }, customer(c))),
        el('td', { 'data-label': 'Owner' }, el('span', { class: `badge owner-${c.owner}` }, c.owner), c.owner_agent ? ` ${c.owner_agent}` : ''),
        el('td', { 'data-label': 'Flow / step' }, c.flow ? `${c.flow} / ${c.step || '—'}` : '—'),
        el('td', { 'data-label': 'Window' }, remaining(c.window_open_until)),
        el('td', { 'data-label': 'Updated' }, when(c.updated_at)))));
      status.textContent = page.conversations.length ? `${page.conversations.length} shown` : 'No conversations match.';
      pager.replaceChildren(
        el('button', { type: 'button', class: 'secondary', disabled: !stack.length, onclick: () => { cursor = stack.pop(); load(); } }, 'Newer'),
        el('button', { type: 'button', class: 'secondary', disabled: !page.next_cursor, onclick: () => { stack.push(cursor); cursor = page.next_cursor; load(); } }, 'Older'));
      root.dataset.loaded = 'true';
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return ctx.onAuthLost();
      status.textContent = `Could not load conversations: ${e.message}`;
    }
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    filters = { owner: owner.value, number: number.value.trim(), status: state.value, q: viewer ? '' : search.value.trim() };
    sessionStorage.setItem('convoy.filters', JSON.stringify(filters));
    stack.length = 0;
    cursor = '';
    load();
  });
  load();
  return poller(load);
}

function transcript(root, ctx, id) {
  const agent = ctx.me.role === 'agent' || ctx.me.role === 'admin';
  const heading = el('h1', { tabindex: '-1' }, 'Conversation');
  const facts = el('dl', { class: 'facts' });
  const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const messages = el('ol', { class: 'transcript', 'aria-label': 'Transcript' });
  const actions = el('div', { class: 'actions' });
  const reply = el('textarea', { id: 'reply', name: 'text', maxlength: 4096, required: true });
  const send = el('button', { type: 'submit' }, 'Send reply');
  const windowNote = el('p', { class: 'note', id: 'window-note' });
  const replyForm = el('form', {}, el('label', { for: 'reply' }, 'Reply'), reply, windowNote, send);
  const reason = el('input', { id: 'handoff-reason', name: 'reason', maxlength: 500, size: 24 });
  root.append(el('p', {}, el('a', { href: '#/conversations' }, '← All conversations')), heading, facts, status,
    agent ? actions : null, el('h2', {}, 'Transcript'), messages, agent ? replyForm : null);
  let shown = '';
  let current = null;
  const act = (label, path, body, extra = {}) => el('button', {
    type: 'button', class: 'secondary', ...extra,
    onclick: async () => {
      status.textContent = `${label}…`;
      try {
        await api('POST', `/v1/conversations/${encodeURIComponent(id)}/${path}`, body ? body() : {});
        status.textContent = `${label}: done.`;
        await load();
      } catch (e) { status.textContent = `${label} failed: ${e.message}`; }
    },
  }, label);
  actions.append(act('Take', 'take'), act('Release to the bot', 'release'),
    el('label', { for: 'handoff-reason', class: 'inline' }, 'Hand-off reason'), reason,
    act('Hand off', 'handoff', () => ({ reason: reason.value.trim() || 'from the console' })));
  replyForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = reply.value.trim();
    if (!text) { status.textContent = 'Write a reply first.'; reply.focus(); return; }
    send.disabled = true;
    status.textContent = 'Sending…';
    try {
      // One key per reply typed: a retry of this same submission is the same message.
      await api('POST', `/v1/conversations/${encodeURIComponent(id)}/messages`, { text }, { 'Idempotency-Key': crypto.randomUUID() });
      reply.value = '';
      status.textContent = 'Reply queued.';
      await load();
    } catch (e) {
      status.textContent = e.code === 'window_closed'
        ? 'The 24-hour window is closed: only an approved template can reopen it.'
        : `Reply failed: ${e.message}`;
    } finally { send.disabled = false; }
  });
  function render(c) {
    heading.textContent = `Conversation with ${customer(c)}`;
    const row = (k, v) => [el('dt', {}, k), el('dd', {}, v)];
    facts.replaceChildren(...row('Owner', `${c.owner}${c.owner_agent ? ` (${c.owner_agent})` : ''}`),
      ...row('Business number', c.phone_number_id), ...row('Flow / step', c.flow ? `${c.flow} / ${c.step || '—'}` : '—'),
      ...row('Window', remaining(c.window_open_until)), ...row('Last customer message', when(c.last_inbound_at) || '—'));
    windowNote.textContent = c.window_open ? `Window: ${remaining(c.window_open_until)}.` : 'The 24-hour window is closed: a text cannot be sent.';
    const sig = JSON.stringify(c.messages.map((m) => [m.seq, m.status]));
    if (sig === shown) return;
    shown = sig;
    messages.replaceChildren(...c.messages.map((m) => el('li', { class: `msg ${m.direction}` },
      el('span', { class: 'meta' }, `${m.author} · ${when(m.at)}${m.status ? ` · ${m.status}` : ''}`),
      m.media_id ? el('span', {}, `[${m.kind}] `) : null,
      m.body || (m.media_id ? '' : `[${m.kind}]`))));
  }
  async function load() {
    try {
      current = await api('GET', `/v1/conversations/${encodeURIComponent(id)}?messages=200`);
      render(current);
      root.dataset.loaded = 'true';
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return ctx.onAuthLost();
      status.textContent = e instanceof ApiError && e.status === 404 ? 'No such conversation.' : `Could not load: ${e.message}`;
    }
  }
  load().then(() => heading.focus());
  const timer = setInterval(() => { if (current) render(current); }, 30000);  // the window's minutes
  const stopPoll = poller(load);
  return () => { stopPoll(); clearInterval(timer); };
}
