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
  const reply = el('textarea', { id: 'reply', name: 'text', maxlength: 4096, 'aria-describedby': 'reply-note' });
  const photo = el('input', { id: 'reply-photo', name: 'photo', type: 'file', accept: 'image/jpeg,image/png' });
  const send = el('button', { type: 'submit' }, 'Send reply');
  const windowNote = el('p', { class: 'note', id: 'window-note' });
  // Free text and photos while the 24-hour window is open; an approved template once it closed.
  const freeForm = el('div', {}, el('label', { for: 'reply' }, 'Reply'),
    el('p', { class: 'note', id: 'reply-note' }, 'With a photo, this is its caption.'), reply,
    el('label', { for: 'reply-photo' }, 'Photo (JPEG or PNG, optional)'), photo);
  const template = el('select', { id: 'reply-template', name: 'template' });
  const params = el('textarea', { id: 'reply-params', name: 'parameters', 'aria-describedby': 'reply-params-note' });
  const templateForm = el('div', { hidden: true }, el('label', { for: 'reply-template' }, 'Approved template'), template,
    el('label', { for: 'reply-params' }, 'Template parameters'),
    el('p', { class: 'note', id: 'reply-params-note' }, 'One a line, in the template\'s order ({{1}}, {{2}}, …).'), params);
  const replyForm = el('form', { 'aria-label': 'Answer the customer' }, windowNote, freeForm, templateForm, send);
  let templatesShown = '';
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
  const messagesPath = `/v1/conversations/${encodeURIComponent(id)}/messages`;
  // The photo first (convoy-media stores it for the conversation's number, through this origin:
  // POST /v1/media), then the message naming it. One Idempotency-Key per reply sent.
  async function sendReply() {
    if (current && !current.window_open) {
      const [name, language] = JSON.parse(template.value || '[]');
      if (!name) return 'Choose an approved template first.';
      const parameters = params.value.split('\n').map((p) => p.trim()).filter(Boolean);
      await api('POST', messagesPath, { template: { name, language, parameters } }, { 'Idempotency-Key': crypto.randomUUID() });
      params.value = '';
      return 'Template queued.';
    }
    const text = reply.value.trim();
    const file = photo.files[0];
    if (!text && !file) return 'Write a reply or choose a photo first.';
    if (file) {
      if (file.type !== 'image/jpeg' && file.type !== 'image/png') return 'A photo is a JPEG or PNG file.';
      status.textContent = 'Uploading the photo…';
      const stored = await api('POST', `/v1/media${query({ phone_number_id: current.phone_number_id })}`, file);
      await api('POST', messagesPath, { image: text ? { media: stored.media, caption: text } : { media: stored.media } },
        { 'Idempotency-Key': crypto.randomUUID() });
      photo.value = '';
    } else {
      await api('POST', messagesPath, { text }, { 'Idempotency-Key': crypto.randomUUID() });
    }
    reply.value = '';
    return file ? 'Photo queued.' : 'Reply queued.';
  }
  replyForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    send.disabled = true;
    status.textContent = 'Sending…';
    try {
      status.textContent = await sendReply();
      await load();
    } catch (e) {
      status.textContent = e.code === 'window_closed'
        ? 'The 24-hour window is closed: only an approved template can reopen it.'
        : `Reply failed: ${e.message}`;
    } finally { send.disabled = false; }
  });
  // A photo in the transcript: shown through its signed, expiring link when there is one; named
  // when media links are not set up; a viewer's transcript carries neither.
  function photoOf(m) {
    const what = m.direction === 'in' ? 'Photo from the customer' : 'Photo sent';
    if (m.photo_url) {
      return el('a', { href: m.photo_url, target: '_blank', rel: 'noopener' },
        el('img', { src: m.photo_url, alt: m.body ? `${what}: ${m.body}` : what, loading: 'lazy', class: 'photo' }));
    }
    if (m.photo) return el('span', { class: 'note' }, `${what} ${m.photo} (cannot be shown here: media links are not set up, --media_public_url)`);
    return el('span', { class: 'note' }, ctx.me.sees_personal_data ? `${what} (not stored yet)` : '[photo] ');
  }
  function offerTemplates(c) {
    const sig = JSON.stringify(c.templates || []);
    if (sig === templatesShown) return;
    templatesShown = sig;
    const list = c.templates || [];
    template.replaceChildren(...(list.length
      ? list.map((t) => el('option', { value: JSON.stringify([t.name, t.language]) }, `${t.name} (${t.language}${t.category ? `, ${t.category}` : ''})`))
      : [el('option', { value: '' }, 'No approved template for this number')]));
  }
  function render(c) {
    heading.textContent = `Conversation with ${customer(c)}`;
    const row = (k, v) => [el('dt', {}, k), el('dd', {}, v)];
    facts.replaceChildren(...row('Owner', `${c.owner}${c.owner_agent ? ` (${c.owner_agent})` : ''}`),
      ...row('Business number', c.phone_number_id), ...row('Flow / step', c.flow ? `${c.flow} / ${c.step || '—'}` : '—'),
      ...row('Window', remaining(c.window_open_until)), ...row('Last customer message', when(c.last_inbound_at) || '—'));
    windowNote.textContent = c.window_open ? `Window: ${remaining(c.window_open_until)}.`
      : 'The 24-hour window is closed: only an approved template can reopen the conversation.';
    freeForm.hidden = !c.window_open;
    templateForm.hidden = c.window_open;
    send.textContent = c.window_open ? 'Send reply' : 'Send template';
    offerTemplates(c);
    // Redrawn only when something changed, so a photo is not fetched again every 2 s (its link's
    // signature changes with every answer).
    const sig = JSON.stringify(c.messages.map((m) => [m.seq, m.status, m.photo]));
    if (sig === shown) return;
    shown = sig;
    messages.replaceChildren(...c.messages.map((m) => el('li', { class: `msg ${m.direction}` },
      el('span', { class: 'meta' }, `${m.author} · ${when(m.at)}${m.status ? ` · ${m.status}` : ''}`),
      m.kind === 'image' ? photoOf(m) : (m.media_id ? el('span', {}, `[${m.kind}] `) : null),
      m.kind === 'image' && m.body ? el('span', { class: 'caption' }, m.body) : null,
      m.kind === 'image' ? null : (m.body || (m.media_id ? '' : `[${m.kind}]`)))));
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
