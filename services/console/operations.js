// Operations screen (operators): health with `convoyctl health`'s thresholds, queue depths, parked
// messages found by queue, content, error code, reason and time, replayed or purged by that filter
// after a dry run and a typed confirmation, deliveries with their attempts, and links to Grafana
// and the RabbitMQ management UI. Everything through /v1/ops/ and /v1/deliveries: the API checks
// each call (a viewer's writes are 403 there whatever this page shows).
import { api, query, ApiError } from './api.js';
import { el, when } from './dom.js';

// An upper bound in the same units, rounded up so that it stays one ("≤ 4 h" for 3 h 59 min).
function ageAtMost(seconds) {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.ceil(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.ceil(seconds / 3600)} h`;
  return `${Math.ceil(seconds / 86400)} d`;
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

// A datetime-local field's value as RFC 3339 (UTC), or '' when empty.
function instant(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function field(id, label, input) {
  return el('div', {}, el('label', { for: id }, label), input);
}

export function operations(root, ctx) {
  const { me } = ctx;
  const acts = (me.role === 'operator' || me.role === 'admin') && me.tenant === '*';
  const searches = me.role !== 'viewer';
  const timers = [];
  const failed = (e, what, where) => {
    if (e instanceof ApiError && e.status === 401) { ctx.onAuthLost(); return; }
    where.textContent = e instanceof ApiError && e.status === 403
      ? `${what}: your token may not (${e.message})` : `${what}: ${e.message}`;
  };

  root.append(el('h1', {}, 'Operations'));
  if (me.tenant !== '*') {
    root.append(el('p', { class: 'note' }, 'Queues and parked messages hold every tenant\'s traffic: they need a token for all tenants.'));
  }
  const links = el('p', { class: 'links' });
  root.append(links);

  // Health.
  const healthStatus = el('p', { class: 'status', role: 'status', id: 'health-status' });
  const healthBody = el('tbody');
  root.append(el('section', { 'aria-labelledby': 'h-health' },
    el('h2', { id: 'h-health' }, 'Health'), healthStatus,
    el('table', { class: 'list', id: 'health' },
      el('caption', { class: 'sr-only' }, 'Health checks'),
      el('thead', {}, el('tr', {}, ['Check', 'Value', 'Threshold', 'Level'].map((h) => el('th', { scope: 'col' }, h)))),
      healthBody)));
  async function loadHealth() {
    try {
      const h = await api('GET', '/v1/ops/health');
      healthStatus.textContent = `Overall: ${h.status}`;
      healthBody.replaceChildren(...h.checks.map((c) => el('tr', {},
        el('td', { 'data-label': 'Check' }, c.name),
        el('td', { 'data-label': 'Value' }, c.error ? '?' : `${Number(c.value.toFixed(2))}${c.unit}`),
        el('td', { 'data-label': 'Threshold' }, `${c.threshold}${c.unit}`),
        el('td', { 'data-label': 'Level' }, el('span', { class: `badge level-${c.status}` }, c.status), c.error ? ` ${c.error}` : ''))));
    } catch (e) { failed(e, 'Could not check health', healthStatus); }
  }

  // Queues.
  const queueStatus = el('p', { class: 'status', role: 'status' });
  const queueBody = el('tbody');
  root.append(el('section', { 'aria-labelledby': 'h-queues' },
    el('h2', { id: 'h-queues' }, 'Queues'), queueStatus,
    el('table', { class: 'list', id: 'queues' },
      el('caption', { class: 'sr-only' }, 'Work queues and their parking queues'),
      el('thead', {}, el('tr', {}, ['Queue', 'Waiting', 'Oldest waiting', 'Consumers', 'Parked', 'Oldest parked'].map((h) => el('th', { scope: 'col' }, h)))),
      queueBody)));
  const queueSelect = el('select', { id: 'p-queue' }, el('option', { value: '' }, 'Every queue'));
  async function loadQueues() {
    try {
      const q = await api('GET', '/v1/ops/queues');
      queueStatus.textContent = '';
      queueBody.replaceChildren(...q.queues.map((x) => el('tr', {},
        el('td', { 'data-label': 'Queue' }, x.queue, x.partitions ? ` (${x.partitions} partitions)` : ''),
        el('td', { 'data-label': 'Waiting' }, String(x.ready)),
        // At most this old (from what the consumers last took: a quorum queue tells no head's age).
        el('td', { 'data-label': 'Oldest waiting', title: x.oldest_ready_unknown || 'at most' },
          x.oldest_ready_age_seconds === null ? 'unknown' : (x.ready ? `≤ ${ageAtMost(x.oldest_ready_age_seconds)}` : '—')),
        el('td', { 'data-label': 'Consumers' }, String(x.consumers)),
        el('td', { 'data-label': 'Parked' }, String(x.parked)),
        el('td', { 'data-label': 'Oldest parked' }, age(x.oldest_parked_age_seconds)))));
      if (queueSelect.options.length === 1) {
        for (const x of q.queues) queueSelect.append(el('option', { value: x.queue }, x.queue));
      }
      const l = [];
      if (q.links.grafana) l.push(el('a', { href: q.links.grafana, rel: 'noopener noreferrer', target: '_blank' }, 'Grafana'));
      if (q.links.rabbitmq_management) l.push(el('a', { href: q.links.rabbitmq_management, rel: 'noopener noreferrer', target: '_blank' }, 'RabbitMQ management'));
      links.replaceChildren(...l.flatMap((a, i) => (i ? [' · ', a] : [a])));
    } catch (e) { failed(e, 'Could not read the queues', queueStatus); }
  }

  // Parked messages: the filter, the list, the actions.
  const fq = el('input', { id: 'p-q', type: 'search', autocomplete: 'off', minlength: '3' });
  const fcode = el('input', { id: 'p-code', inputmode: 'numeric', autocomplete: 'off', size: '8' });
  const freason = el('input', { id: 'p-reason', autocomplete: 'off' });
  const fsince = el('input', { id: 'p-since', type: 'datetime-local' });
  const funtil = el('input', { id: 'p-until', type: 'datetime-local' });
  const filterForm = el('form', { class: 'filters', role: 'search', 'aria-label': 'Parked messages' },
    field('p-queue', 'Queue', queueSelect),
    searches ? field('p-q', 'Content', fq) : null,
    field('p-code', 'Error code', fcode),
    field('p-reason', 'Reason', freason),
    field('p-since', 'Parked after', fsince),
    field('p-until', 'Parked before', funtil),
    el('div', {}, el('button', { type: 'submit' }, 'Search')));
  const parkedStatus = el('p', { class: 'status', role: 'status', id: 'parked-status' });
  const parkedBody = el('tbody');
  const actions = el('div', { class: 'actions', id: 'parked-actions' });
  const confirmBox = el('div', { id: 'confirm', class: 'confirm', hidden: true });
  root.append(el('section', { 'aria-labelledby': 'h-parked' },
    el('h2', { id: 'h-parked' }, 'Parked messages'),
    filterForm, parkedStatus, actions, confirmBox,
    el('table', { class: 'list', id: 'parked' },
      el('caption', { class: 'sr-only' }, 'Parked messages matching the filter'),
      el('thead', {}, el('tr', {}, ['Message', 'Queue', 'Why', 'Attempts', 'Parked', 'Content'].map((h) => el('th', { scope: 'col' }, h)))),
      parkedBody)));

  function currentFilter() {
    const f = { queue: queueSelect.value, q: searches ? fq.value.trim() : '', code: fcode.value.trim(), reason: freason.value.trim(),
      since: instant(fsince.value), until: instant(funtil.value) };
    for (const k of Object.keys(f)) if (!f[k]) delete f[k];
    return f;
  }
  async function loadParked() {
    parkedStatus.textContent = 'Loading…';
    try {
      const p = await api('GET', `/v1/ops/parked${query({ ...currentFilter(), limit: 100 })}`);
      parkedBody.replaceChildren(...p.messages.map((m) => el('tr', {},
        el('td', { 'data-label': 'Message' }, el('code', {}, m.id)),
        el('td', { 'data-label': 'Queue' }, m.queue),
        el('td', { 'data-label': 'Why' }, m.last_reason, m.error_code ? ` (code ${m.error_code})` : ''),
        el('td', { 'data-label': 'Attempts' }, String(m.attempts), m.replays ? `, replayed ${m.replays}×` : ''),
        el('td', { 'data-label': 'Parked' }, m.parked_at ? `${when(m.parked_at)} (${age(m.age_seconds)} ago)` : 'by the broker'),
        el('td', { 'data-label': 'Content' },
          el('pre', { class: 'payload', tabindex: '0', role: 'region', 'aria-label': `Content of ${m.id}` }, m.body)))));
      parkedStatus.textContent = p.count === p.messages.length
        ? `${p.count} parked message(s) match.` : `${p.count} parked message(s) match; the first ${p.messages.length} are shown.`;
    } catch (e) { failed(e, 'Could not list parked messages', parkedStatus); }
  }
  filterForm.addEventListener('submit', (ev) => { ev.preventDefault(); clearConfirm(); loadParked(); });
  for (const input of [queueSelect, fq, fcode, freason, fsince, funtil]) input.addEventListener('input', clearConfirm);

  // A dry run, then the count typed back: the same filter goes with it, and the API refuses (409)
  // when the filter matches another count by then.
  function clearConfirm() { confirmBox.hidden = true; confirmBox.replaceChildren(); }
  async function dryRun(kind) {
    clearConfirm();
    const filter = currentFilter();
    const verb = kind === 'purge' ? 'purge' : 'replay';
    parkedStatus.textContent = `Counting what a ${verb} would touch…`;
    let dry;
    try {
      dry = await api('POST', `/v1/ops/parked/${verb}`, { filter, dry_run: true });
    } catch (e) { failed(e, `Dry run of the ${verb} failed`, parkedStatus); return; }
    parkedStatus.textContent = '';
    const typed = el('input', { id: 'confirm-count', inputmode: 'numeric', autocomplete: 'off', size: '8' });
    const reason = el('textarea', { id: 'confirm-reason' });
    const result = el('p', { class: 'status', role: 'status', id: 'confirm-result' });
    const go = el('button', { type: 'submit', class: kind === 'purge' ? 'danger' : '', disabled: true },
      kind === 'purge' ? `Purge ${dry.count} message(s)` : `Replay ${dry.count} message(s)`);
    const ready = () => { go.disabled = typed.value.trim() !== String(dry.count) || dry.count === 0 || (kind === 'purge' && reason.value.trim().length < 3); };
    typed.addEventListener('input', ready);
    reason.addEventListener('input', ready);
    const form = el('form', {},
      el('p', { id: 'dry-run-result' }, `Dry run: ${dry.count} parked message(s) would be ${kind === 'purge' ? 'deleted for good' : 'sent back to their queues'}.`,
        dry.ids.length ? ` First: ${dry.ids.join(', ')}${dry.count > dry.ids.length ? ', …' : ''}` : ''),
      dry.count ? [
        el('label', { for: 'confirm-count' }, `Type ${dry.count} to confirm`), typed,
        kind === 'purge' ? [el('label', { for: 'confirm-reason' }, 'Reason (kept in the audit log)'), reason] : null,
        el('div', { class: 'actions' }, go, el('button', { type: 'button', class: 'secondary', onclick: clearConfirm }, 'Cancel')),
      ] : null,
      result);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      go.disabled = true;
      try {
        const body = { filter, confirm: typed.value.trim() };
        if (kind === 'purge') body.reason = reason.value.trim();
        const done = await api('POST', `/v1/ops/parked/${verb}`, body);
        const n = kind === 'purge' ? done.purged : done.replayed;
        result.textContent = kind === 'purge' ? `Purged ${n} message(s).` : `Replayed ${n} message(s).`;
        typed.disabled = true;
        loadParked();
        loadQueues();
      } catch (e) {
        failed(e, e instanceof ApiError && e.status === 409 ? 'Nothing done' : `The ${verb} failed`, result);
      }
    });
    confirmBox.replaceChildren(form);
    confirmBox.hidden = false;
    if (dry.count) typed.focus();
  }
  if (acts) {
    actions.append(
      el('button', { type: 'button', onclick: () => dryRun('replay') }, 'Dry-run replay'),
      el('button', { type: 'button', class: 'secondary', onclick: () => dryRun('purge') }, 'Dry-run purge'));
  }

  // Deliveries to the business's sinks, with their attempts.
  const delStatus = el('p', { class: 'status', role: 'status' });
  const delBody = el('tbody');
  const delFilter = el('select', { id: 'd-status' },
    ['', 'parked', 'held', 'pending', 'delivered'].map((s) => el('option', { value: s }, s || 'Any status')));
  const delForm = el('form', { class: 'filters', 'aria-label': 'Deliveries' }, field('d-status', 'Status', delFilter),
    el('div', {}, el('button', { type: 'submit' }, 'Show')));
  root.append(el('section', { 'aria-labelledby': 'h-deliveries' },
    el('h2', { id: 'h-deliveries' }, 'Deliveries'), delForm, delStatus,
    el('table', { class: 'list', id: 'deliveries' },
      el('caption', { class: 'sr-only' }, 'Deliveries to sinks'),
      el('thead', {}, el('tr', {}, ['Delivery', 'Sink', 'Status', 'Attempts', 'Last error', ''].map((h, i) => el('th', { scope: 'col' }, h || el('span', { class: 'sr-only' }, i ? 'Action' : ''))))),
      delBody)));
  async function loadDeliveries() {
    try {
      const d = await api('GET', `/v1/deliveries${query({ status: delFilter.value, limit: 20 })}`);
      delStatus.textContent = d.deliveries.length ? '' : 'No deliveries.';
      delBody.replaceChildren(...d.deliveries.map((x) => el('tr', {},
        el('td', { 'data-label': 'Delivery' }, `${x.id} ${x.type}`, el('br'), when(x.created_at)),
        el('td', { 'data-label': 'Sink' }, x.sink),
        el('td', { 'data-label': 'Status' }, x.status),
        el('td', { 'data-label': 'Attempts' }, String(x.attempts)),
        el('td', { 'data-label': 'Last error' }, x.last_error || '—', x.last_status_code ? ` (HTTP ${x.last_status_code})` : ''),
        el('td', {}, acts && (x.status === 'parked' || x.status === 'held')
          ? el('button', { type: 'button', class: 'secondary', onclick: async () => {
            try {
              const r = await api('POST', '/v1/deliveries/replay', { id: x.id, status: x.status });
              delStatus.textContent = `Delivery ${x.id}: ${r.replayed} replayed.`;
              loadDeliveries();
            } catch (e) { failed(e, `Delivery ${x.id} was not replayed`, delStatus); }
          } }, `Replay ${x.id}`) : ''))));
    } catch (e) { failed(e, 'Could not list deliveries', delStatus); }
  }
  delForm.addEventListener('submit', (ev) => { ev.preventDefault(); loadDeliveries(); });

  // Health, queues and parked messages are every tenant's: a tenant's caller sees its deliveries
  // alone (the API would refuse the rest with 403 anyway).
  if (me.tenant === '*') {
    loadHealth();
    loadQueues();
    loadParked();
    timers.push(setInterval(() => { loadQueues(); loadHealth(); }, 15000));
  } else {
    for (const id of ['h-health', 'h-queues', 'h-parked']) root.querySelector(`#${id}`).parentElement.hidden = true;
  }
  loadDeliveries();
  return () => timers.forEach(clearInterval);
}
