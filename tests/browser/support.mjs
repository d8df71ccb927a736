// What the console's browser scripts share: checks that count failures, axe-core in the page,
// signing in, and Debian's chromium (/usr/bin/chromium, never a downloaded one) with a fresh
// profile: console.mjs, checklists.mjs and operations.mjs all use it.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';

let failed = 0;
export function check(ok, what) {
  console.log(`${ok ? 'ok' : 'FAIL'} ${what}`);
  if (!ok) failed += 1;
}
export const failures = () => failed;

// axe-core in the page: no serious or critical violation. Evaluated through the debugging protocol
// (the console's policy refuses any inline script, a <script> tag of axe's included: that is the point).
const axeSource = readFileSync(join(dirname(createRequire(import.meta.url).resolve('axe-core')), 'axe.min.js'), 'utf8');
export async function accessible(page, screen) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) console.log(`  axe ${screen}: ${v.impact} ${v.id} at ${v.nodes.join(', ')}`);
  check(bad.length === 0, `axe finds no serious or critical violation on ${screen} (${result.length} minor)`);
}

export async function signIn(page, url, token) {
  await page.goto(url);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-text').waitFor();
}

// The browser with a fresh profile; close() also removes the profile.
export async function launch(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'convoy-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    ...options,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// A page of `context` whose script errors and CSP violations land in `errors`.
export async function watchedPage(context, timeout = 15000) {
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Not the sign-in probe's 401: without a token the console asks GET /v1/whoami whether an OIDC
  // proxy in front signed the person in, and the browser logs the refusal as an error.
  const probe = (m) => / 401 /.test(m.text()) && (m.location().url || '').endsWith('/v1/whoami');
  page.on('console', (m) => { if (m.type() === 'error' && !probe(m)) errors.push(m.text()); });
  return { page, errors };
}

// The script's checks: an exception is a failed check; then `close`, the verdict, and the exit
// status (0 only when every check passed).
export async function run(close, body) {
  try {
    await body();
  } catch (e) {
    check(false, `the run ended early: ${e.stack || e}`);
  } finally {
    await close();
  }
  console.log(failed ? `${failed} check(s) failed` : 'all checks passed');
  process.exit(failed ? 1 : 0);
}
