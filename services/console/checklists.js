// Checklists (managers): define a checklist (each save of a changed one is a new version), assign
// it to an operator, watch the assignments' progress ("Question 3 of 8"), and open one to see each
// answer with its note and photo, cancel or retry it, or export a completed one as CSV or PDF. Viewers and
// agents see the lists and progress; the API refuses them every write. Refreshed every 2 s.
//   #/checklists            assignments, the checklists, and the forms
//   #/checklists/<id>       one assignment
import { api, query, token, ApiError } from './api.js';
import { el, when, poller } from './dom.js';

const FINAL = new Set(['completed', 'cancelled', 'expired']);

const writes = (me) => me.role === 'manager' || me.role === 'admin';
const field = (id, label, input, hint) => el('div', { class: 'field' }, el('label', { for: id }, label), input,
  hint ? el('span', { class: 'note', id: `${id}-hint` }, hint) : null);
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

// "Question 3 of 8", or what the assignment is waiting for.
export function progress(a) {
  const n = a.questions ?? a.checklist?.questions ?? 0;
  const done = a.answered ?? 0;
  switch (a.status) {
    case 'active': return done < n ? `Question ${done + 1} of ${n}` : `All ${n} answered: waiting for CONFIRM`;
    case 'pending': return `Not started (${n} questions)`;
    case 'completed': return `Completed: ${done} of ${n} answered`;
    case 'undeliverable': return 'Not delivered to the operator';
    default: return `${a.status[0].toUpperCase()}${a.status.slice(1)} after ${done} of ${n}`;
  }
}

export function checklists(root, ctx) {
  return ctx.args[0] ? assignment(root, ctx, decodeURIComponent(ctx.args[0])) : overview(root, ctx);
}

function failed(ctx, status, what) {
  return (e) => {
    if (e instanceof ApiError && e.status === 401) return ctx.onAuthLost();
    status.textContent = `${what}: ${e.message}`;
  };
}

function overview(root, ctx) {
  const manager = writes(ctx.me);
  const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  // Assignments.
  const filter = el('select', { id: 'a-status', name: 'status' },
    ['', 'pending', 'active', 'completed', 'undeliverable', 'cancelled', 'expired'].map((v) => el('option', { value: v }, v || 'any')));
  const rows = el('tbody');
  const assignments = el('section', { 'aria-labelledby': 'assignments-title' },
    el('h2', { id: 'assignments-title' }, 'Assignments'),
    el('div', { class: 'filters' }, field('a-status', 'Status', filter)),
    el('table', { class: 'list', id: 'assignment-list' },
      el('caption', { class: 'sr-only' }, 'Assignments, newest first'),
      el('thead', {}, el('tr', {}, ['Checklist', 'Operator', 'Reference', 'Status', 'Progress', 'Assigned'].map((h) => el('th', { scope: 'col' }, h)))),
      rows));
  // Checklists.
  const defined = el('tbody');
  const catalogue = el('section', { 'aria-labelledby': 'checklists-title' },
    el('h2', { id: 'checklists-title' }, 'Checklists'),
    el('table', { class: 'list', id: 'checklist-list' },
      el('caption', { class: 'sr-only' }, 'Checklists, latest versions'),
      el('thead', {}, el('tr', {}, ['Checklist', 'Title', 'Version', 'Questions', 'Owner'].map((h) => el('th', { scope: 'col' }, h)),
        el('th', { scope: 'col' }, el('span', { class: 'sr-only' }, 'Actions')))),
      defined));
  root.append(el('h1', {}, 'Checklists'), status, assignments);

  // Assign a checklist (managers).
  const pick = el('select', { id: 'as-checklist', name: 'checklist', required: true });
  const number = el('select', { id: 'as-number', name: 'phone_number_id', required: true });
  const operator = el('input', { id: 'as-operator', name: 'operator', required: true, inputmode: 'tel', autocomplete: 'off', size: 18, 'aria-describedby': 'as-operator-hint' });
  const opName = el('input', { id: 'as-name', name: 'operator_name', maxlength: 100, autocomplete: 'off', size: 18 });
  const reference = el('input', { id: 'as-reference', name: 'reference', required: true, maxlength: 200, size: 18, 'aria-describedby': 'as-reference-hint' });
  const newReference = () => { reference.value = `console-${new Date().toISOString().slice(0, 10)}-${crypto.randomUUID().slice(0, 8)}`; };
  newReference();
  const assignForm = el('form', { class: 'panel', 'aria-labelledby': 'assign-title' },
    el('h2', { id: 'assign-title' }, 'Assign a checklist'),
    el('div', { class: 'grid' },
      field('as-checklist', 'Checklist', pick), field('as-number', 'From business number', number),
      field('as-operator', 'Operator (phone or BSUID)', operator, 'Digits with the country code, e.g. 16505550123.'),
      field('as-name', 'Operator name (optional)', opName),
      field('as-reference', 'Reference', reference, 'Your id for this job; the same reference again is the same assignment.')),
    el('button', { type: 'submit' }, 'Assign'));
  assignForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { checklist: pick.value, phone_number_id: number.value, operator: operator.value.trim().replace(/^\+/, ''), reference: reference.value.trim() };
    if (opName.value.trim()) body.operator_name = opName.value.trim();
    if (!body.checklist || !body.phone_number_id || !body.operator || !body.reference) { status.textContent = 'Choose a checklist and a number, and give the operator and a reference.'; return; }
    status.textContent = 'Assigning…';
    try {
      const a = await api('POST', '/v1/assignments', body, { 'Idempotency-Key': crypto.randomUUID() });
      status.textContent = `Assigned: ${a.status}.`;
      location.hash = `#/checklists/${encodeURIComponent(a.id)}`;
    } catch (e) { failed(ctx, status, 'Could not assign')(e); }
  });

  // Define a checklist, or a new version of one (managers).
  const cid = el('input', { id: 'cl-id', name: 'id', required: true, maxlength: 64, pattern: '[a-z0-9][a-z0-9_\\-]{0,63}', size: 20, 'aria-describedby': 'cl-id-hint' });
  const title = el('input', { id: 'cl-title', name: 'title', required: true, maxlength: 200, size: 30 });
  const questions = el('ol', { class: 'questions', id: 'cl-questions' });
  let qn = 0;
  function addQuestion(q = {}) {
    const k = ++qn;
    const text = el('textarea', { id: `q${k}-text`, required: true, maxlength: 900, rows: 2 }, q.text || '');
    const photo = el('select', { id: `q${k}-photo` }, ['optional', 'required', 'none'].map((v) => el('option', { value: v, selected: (q.photo || 'optional') === v }, v)));
    const answers = el('input', { id: `q${k}-answers`, size: 24, value: (q.answers || []).join(', ') });
    const notes = el('input', { id: `q${k}-notes`, size: 24, value: (q.note_required || []).join(', ') });
    const item = el('li', { class: 'question' });
    const remove = el('button', { type: 'button', class: 'secondary', onclick: () => { item.remove(); renumber(); } }, 'Remove');
    item.append(field(`q${k}-text`, 'Question', text), el('div', { class: 'grid' },
      field(`q${k}-photo`, 'Photo', photo), field(`q${k}-answers`, 'Answers (comma-separated; empty: free text)', answers),
      field(`q${k}-notes`, 'Answers that need a note', notes)), remove);
    item.read = () => {
      const out = { text: text.value.trim(), photo: photo.value };
      if (list(answers.value).length) out.answers = list(answers.value);
      if (list(notes.value).length) out.note_required = list(notes.value);
      return out;
    };
    questions.append(item);
    renumber();
    return text;
  }
  function renumber() {
    [...questions.children].forEach((li, i) => {
      li.querySelector('label').textContent = `Question ${i + 1}`;
      li.querySelector('button').setAttribute('aria-label', `Remove question ${i + 1}`);
    });
  }
  const defineForm = el('form', { class: 'panel', 'aria-labelledby': 'define-title' },
    el('h2', { id: 'define-title' }, 'Define a checklist'),
    el('p', { class: 'note' }, 'Saving a changed checklist makes a new version; assignments keep the version they were given.'),
    el('div', { class: 'grid' }, field('cl-id', 'Checklist id', cid, 'a-z, 0-9, _ and -.'), field('cl-title', 'Title', title)),
    questions,
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'secondary', onclick: () => addQuestion().focus() }, 'Add question'),
      el('button', { type: 'submit' }, 'Save checklist')));
  defineForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const id = cid.value.trim();
    const body = { title: title.value.trim(), questions: [...questions.children].map((li) => li.read()) };
    if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(id)) { status.textContent = 'The checklist id is 1-64 of a-z, 0-9, _ and -.'; cid.focus(); return; }
    if (!body.title || !body.questions.length || body.questions.some((q) => !q.text)) { status.textContent = 'Give a title and the text of every question.'; return; }
    status.textContent = 'Saving…';
    try {
      const v = await api('PUT', `/v1/checklists/${encodeURIComponent(id)}`, body);
      status.textContent = v.created ? `Saved ${id} as version ${v.version}.` : `No change: ${id} stays at version ${v.version}.`;
      await loadChecklists(id);
    } catch (e) { failed(ctx, status, 'Could not save the checklist')(e); }
  });
  async function edit(id) {
    try {
      const c = await api('GET', `/v1/checklists/${encodeURIComponent(id)}`);
      cid.value = c.id;
      title.value = c.definition.title;
      questions.replaceChildren();
      c.definition.questions.forEach((q) => addQuestion(q));
      status.textContent = `Editing ${c.id} (version ${c.version}): saving makes version ${c.versions[0].version + 1}.`;
      title.focus();
    } catch (e) { failed(ctx, status, 'Could not load the checklist')(e); }
  }
  if (manager) {
    addQuestion();
    root.append(assignForm);
  }
  root.append(catalogue);
  if (manager) root.append(defineForm);

  async function loadChecklists(select) {
    const { checklists: all } = await api('GET', '/v1/checklists');
    defined.replaceChildren(...all.map((c) => el('tr', {},
      el('td', { 'data-label': 'Checklist' }, c.id),
      el('td', { 'data-label': 'Title' }, c.title),
      el('td', { 'data-label': 'Version' }, String(c.version)),
      el('td', { 'data-label': 'Questions' }, String(c.questions)),
      el('td', { 'data-label': 'Owner' }, c.shared ? 'shared' : c.tenant),
      el('td', {}, manager && !(c.shared && ctx.me.tenant !== '*')
        ? el('button', { type: 'button', class: 'secondary', 'aria-label': `New version of ${c.id}`, onclick: () => edit(c.id) }, 'New version') : ''))));
    const keep = select || pick.value;
    pick.replaceChildren(...all.map((c) => el('option', { value: c.id, selected: c.id === keep }, `${c.title} (${c.id} v${c.version})`)));
  }
  async function loadNumbers() {
    const { numbers } = await api('GET', '/v1/numbers');
    number.replaceChildren(...numbers.filter((n) => n.status === 'active').map((n) =>
      el('option', { value: n.phone_number_id }, `${n.display_phone_number || n.phone_number_id} (${n.tenant})`)));
  }
  async function loadAssignments() {
    const { assignments: all } = await api('GET', `/v1/assignments${query({ status: filter.value, limit: 100 })}`);
    rows.replaceChildren(...all.map((a) => el('tr', {},
      el('td', { 'data-label': 'Checklist' }, el('a', { href: `#/checklists/${encodeURIComponent(a.id)}` }, `${a.title} (v${a.version})`)),
      el('td', { 'data-label': 'Operator' }, a.operator),
      el('td', { 'data-label': 'Reference' }, a.reference),
      el('td', { 'data-label': 'Status' }, el('span', { class: `badge st-${a.status}` }, a.status)),
      el('td', { 'data-label': 'Progress' }, progress(a)),
      el('td', { 'data-label': 'Assigned' }, when(a.created_at)))));
    if (!all.length) rows.append(el('tr', {}, el('td', { colspan: 6 }, 'No assignments.')));
    root.dataset.loaded = 'true';
  }
  filter.addEventListener('change', () => loadAssignments().catch(failed(ctx, status, 'Could not load assignments')));
  Promise.all([loadChecklists(), manager ? loadNumbers() : null, loadAssignments()])
    .catch(failed(ctx, status, 'Could not load the checklists'));
  return poller(() => loadAssignments().catch(failed(ctx, status, 'Could not load assignments')));
}

// A completed assignment's export (CSV or PDF), fetched with the bearer token (never in a URL; none
// behind an OIDC proxy, which signed the person in) and saved.
async function download(id, format) {
  const r = await fetch(`/v1/assignments/${encodeURIComponent(id)}/export.${format}`,
    { headers: token() ? { Authorization: `Bearer ${token()}` } : {}, cache: 'no-store' });
  if (!r.ok) {
    let message = r.statusText;
    try { message = (await r.json()).error.message; } catch { /* not JSON */ }
    throw new ApiError(r.status, String(r.status), message);
  }
  const url = URL.createObjectURL(await r.blob());
  const a = el('a', { href: url, download: `${id}.${format}`, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function assignment(root, ctx, id) {
  const manager = writes(ctx.me);
  const heading = el('h1', { tabindex: '-1' }, 'Assignment');
  const progressLine = el('p', { class: 'progress', id: 'progress' });
  const facts = el('dl', { class: 'facts' });
  const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const actions = el('div', { class: 'actions' });
  const answers = el('ol', { class: 'answers', id: 'answers', 'aria-label': 'Answers' });
  const history = el('ol', { class: 'history' });
  root.append(el('p', {}, el('a', { href: '#/checklists' }, '← All checklists')), heading, progressLine, status,
    manager ? actions : null, facts, el('h2', {}, 'Answers'), answers, el('h2', {}, 'History'), history);
  let definition = null;  // the assignment's version of its checklist
  let shown = '';
  let current = null;
  const act = (label, path) => el('button', {
    type: 'button', class: 'secondary',
    onclick: async () => {
      status.textContent = `${label}…`;
      try {
        await api('POST', `/v1/assignments/${encodeURIComponent(id)}/${path}`, {});
        status.textContent = `${label}: done.`;
        await load();
      } catch (e) { failed(ctx, status, `${label} failed`)(e); }
    },
  }, label);
  function photoOf(p, q) {
    if (p.url && p.mime_type && !p.mime_type.startsWith('image/')) {
      return el('a', { href: p.url, target: '_blank', rel: 'noopener' }, `Evidence for question ${q} (${p.filename || p.mime_type})`);
    }
    if (p.url) return el('a', { href: p.url, target: '_blank', rel: 'noopener' }, el('img', { src: p.url, alt: `Photo for question ${q}`, loading: 'lazy', class: 'photo' }));
    if (p.stored_name) return el('span', { class: 'note' }, `Photo ${p.stored_name} (links to media are not set up: --media_public_url)`);
    return el('span', { class: 'note' }, 'Photo on its way…');
  }
  function render(a) {
    current = a;
    heading.textContent = `${a.checklist.title} for ${a.operator_name ? `${a.operator_name} (${a.operator})` : a.operator}`;
    progressLine.textContent = progress(a);
    const row = (k, v) => [el('dt', {}, k), el('dd', {}, v || '—')];
    facts.replaceChildren(...row('Status', a.status), ...row('Checklist', `${a.checklist.id} version ${a.checklist.version}`),
      ...row('Business number', a.phone_number_id), ...row('Reference', a.reference), ...row('Assigned', when(a.created_at)),
      ...row('Started', when(a.started_at)), ...row('Ended', when(a.ended_at)), ...row('Expires', when(a.expires_at)));
    actions.replaceChildren(...[
      a.status === 'pending' || a.status === 'active' ? act('Cancel assignment', 'cancel') : null,
      a.status === 'undeliverable' ? act('Retry delivery', 'retry') : null,
      ...(a.status === 'completed' ? [['csv', 'CSV'], ['pdf', 'PDF']].map(([format, name]) => el('button', {
        type: 'button', onclick: async () => {
          status.textContent = 'Exporting…';
          try { await download(id, format); status.textContent = `Exported as ${name}.`; } catch (e) { failed(ctx, status, 'Export failed')(e); }
        },
      }, `Export ${name}`)) : [])].filter(Boolean));
    history.replaceChildren(...a.changes.map((c) => el('li', {}, `${when(c.at)}: ${c.from ? `${c.from} → ` : ''}${c.to} (${c.reason})`)));
    // The answers: redrawn only when they change, so a photo is not loaded again every 2 s (its link
    // changes only when a new one is signed: compare without it).
    const sig = JSON.stringify([a.answers && Object.entries(a.answers).map(([k, v]) => [k, v.answer, v.note, (v.photos || []).map((p) => p.stored_name || p.media_id)]), definition !== null]);
    if (sig === shown) return;
    shown = sig;
    if (a.answers === null) {
      answers.replaceChildren(el('li', { class: 'note' }, 'Answers are not shown to viewers.'));
      return;
    }
    const qs = definition ? definition.questions : Object.keys(a.answers).map((k) => ({ text: k }));
    answers.replaceChildren(...qs.map((q, i) => {
      const got = a.answers[`q${i + 1}`];
      return el('li', { class: `answer${got ? '' : ' pending'}` },
        el('p', { class: 'q' }, q.text),
        got ? el('p', {}, el('strong', {}, got.answer || '(photo only)'), got.note ? ` — ${got.note}` : '') : el('p', { class: 'note' }, 'Not answered yet.'),
        got && got.photos && got.photos.length ? el('div', { class: 'photos' }, got.photos.map((p) => photoOf(p, i + 1))) : null);
    }));
  }
  async function load() {
    try {
      const a = await api('GET', `/v1/assignments/${encodeURIComponent(id)}`);
      if (!definition) {
        const c = await api('GET', `/v1/checklists/${encodeURIComponent(a.checklist.id)}${query({ version: a.checklist.version })}`);
        definition = c.definition;
      }
      render(a);
      root.dataset.loaded = 'true';
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) { status.textContent = 'No such assignment.'; return; }
      failed(ctx, status, 'Could not load')(e);
    }
  }
  load().then(() => heading.focus());
  return poller(async () => { if (!current || !FINAL.has(current.status)) await load(); });
}
