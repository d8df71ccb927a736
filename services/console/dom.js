// Small DOM helpers: every text goes in as text (textContent), never as HTML.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

// "3 h 12 min left", or "closed".
export function remaining(untilIso, now = Date.now()) {
  if (!untilIso) return 'closed';
  const ms = new Date(untilIso).getTime() - now;
  if (!(ms > 0)) return 'closed';
  const min = Math.floor(ms / 60000);
  return `${Math.floor(min / 60)} h ${min % 60} min left`;
}

// Runs fn every `ms` while the tab is visible, never two at once; returns the stop function.
export function poller(fn, ms = 2000) {
  let busy = false;
  const id = setInterval(async () => {
    if (busy || document.hidden) return;
    busy = true;
    try { await fn(); } finally { busy = false; }
  }, ms);
  return () => clearInterval(id);
}
