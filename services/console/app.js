// The console's shell: sign-in (GET /v1/whoami decides whether a token is good, or, without one,
// whether an OIDC proxy in front signed the person in), who is signed in,
// and the screens, chosen by the URL's fragment (#/conversations, #/conversations/<id>, #/audit,
// #/operations).
import { api, ApiError, token, setToken, clearToken } from './api.js';
import { el } from './dom.js';
import { conversations } from './conversations.js';
import { audit } from './audit.js';
import { checklists } from './checklists.js';
import { operations } from './operations.js';

// Each screen: render(root, context) → a clean-up function (or nothing).
const screens = { conversations, audit, checklists, operations };
let me = null;
let stop = null;  // the running screen's clean-up (its polling)

const $ = (id) => document.getElementById(id);

function showSignIn(message = '') {
  me = null;
  if (stop) { stop(); stop = null; }
  $('nav').hidden = true;
  $('who').hidden = true;
  $('screen').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message;
  $('token').value = '';
  $('token').focus();
}

function signedIn() {
  const via = me.via === 'proxy' ? ' through your organisation\'s sign-in' : '';
  $('who-text').textContent = `Signed in as ${me.name}${via} (${me.role}, ${me.tenant === '*' ? 'all tenants' : `tenant ${me.tenant}`})`;
  // Signing out of the proxy is the proxy's; a token is forgotten here.
  $('sign-out').hidden = me.via === 'proxy';
  $('who').hidden = false;
  $('nav').hidden = false;
  $('sign-in').hidden = true;
  route();
}

async function signIn(t) {
  setToken(t);
  try {
    me = await api('GET', '/v1/whoami');
  } catch (e) {
    clearToken();
    const why = e instanceof ApiError && e.status === 401 ? 'That token is not known to convoy.' : `Sign-in failed: ${e.message}`;
    showSignIn(why);
    return;
  }
  signedIn();
}

// Behind an OIDC proxy the API knows the person without a token: no form then.
async function signInByProxy() {
  try {
    me = await api('GET', '/v1/whoami');
  } catch {
    showSignIn();
    return;
  }
  signedIn();
}

function route() {
  if (!me) return;
  if (stop) { stop(); stop = null; }
  const parts = (location.hash || '#/conversations').slice(2).split('/');
  const name = screens[parts[0]] ? parts[0] : 'conversations';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.screen === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const root = $('screen');
  root.replaceChildren();
  root.hidden = false;
  const render = screens[name];
  if (!render) {
    root.append(el('h1', {}, 'convoy console'), el('p', {}, 'Choose a screen above.'));
    return;
  }
  stop = render(root, { me, args: parts.slice(1), onAuthLost: () => { clearToken(); showSignIn('Your session ended: sign in again.'); } }) || null;
}

function start() {
  $('sign-in-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    if (!t) { $('sign-in-error').textContent = 'Enter a token.'; return; }
    signIn(t);
  });
  $('sign-out').addEventListener('click', () => { clearToken(); showSignIn(); });
  window.addEventListener('hashchange', route);
  if (token()) signIn(token()); else signInByProxy();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
