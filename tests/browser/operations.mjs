// The console's Operations screen in a real browser: Debian's chromium (/usr/bin/chromium) driven by
// playwright-core, axe-core on each state. Run by tests/browser/operations_test.cpp, which parks four
// customers' messages in conversation.inbound.dlq and passes in the environment:
//   CONSOLE_URL       http://127.0.0.1:<port>/console/
//   OPERATOR_TOKEN, VIEWER_TOKEN   a global operator's and a global viewer's tokens
//   CONTENT           what the wanted messages' content holds (and the other's does not)
//   WANTED            the three customers whose parked messages the operator replays (comma-separated)
//   OTHER             the customer whose parked message stays
//   SCREENSHOT_DIR    where each state's picture goes
// Prints one line per check; exits non-zero on any failure.
import { join } from 'node:path';
import { accessible, check, launch, run, signIn as signInAt, watchedPage } from './support.mjs';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const url = env('CONSOLE_URL');
const shots = env('SCREENSHOT_DIR');
const content = env('CONTENT');
const wanted = env('WANTED').split(',');
const other = env('OTHER');

async function signIn(page, token) {
  await signInAt(page, url, token);
  await page.getByRole('link', { name: 'Operations' }).click();
  await page.getByRole('heading', { name: 'Operations' }).waitFor();
}

const browser = await launch({ viewport: { width: 1280, height: 900 } });
const { context } = browser;
await run(browser.close, async () => {
  const { page, errors } = await watchedPage(context, 15000);

  // The operator: health, queues and the links.
  await signIn(page, env('OPERATOR_TOKEN'));
  const sendRow = page.locator('#queues tbody tr', { hasText: 'conversation.inbound' }).first();
  await sendRow.waitFor();
  check((await sendRow.locator('td').nth(4).textContent()) === '4', 'conversation.inbound shows 4 parked');
  check(!/—/.test(await sendRow.locator('td').nth(5).textContent()), "the oldest parked message's age is shown");
  check((await sendRow.locator('td').nth(2).textContent()) === '—', 'nothing waits in conversation.inbound: no oldest waiting age');
  await page.locator('#health tbody tr', { hasText: 'parked messages' }).waitFor();
  check(/Overall: (ok|warning|critical)/.test(await page.locator('#health-status').textContent()), 'health has an overall level');
  check(await page.getByRole('link', { name: 'Grafana' }).getAttribute('href') === 'https://grafana.example.net/d/convoy', 'a Grafana link');
  check(await page.getByRole('link', { name: 'RabbitMQ management' }).count() === 1, 'a RabbitMQ management link');
  await page.getByText('4 parked message(s) match.').waitFor();
  await accessible(page, 'operations');
  await page.screenshot({ path: join(shots, 'operations.png'), fullPage: true });

  // Filter by content, error code and queue: the three wanted, not the other.
  await page.getByLabel('Queue', { exact: true }).selectOption('conversation.inbound');
  await page.getByLabel('Content', { exact: true }).fill(content);
  await page.getByLabel('Error code').fill('53300');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('3 parked message(s) match.').waitFor();
  const listed = await page.locator('#parked tbody').textContent();
  check(wanted.every((w) => listed.includes(w)) && !listed.includes(other), 'the filter finds the three wanted messages, not the other');

  // Dry run: the count and the first ids; the button waits for the count typed back.
  await page.getByRole('button', { name: 'Dry-run replay' }).click();
  await page.locator('#dry-run-result', { hasText: 'Dry run: 3 parked message(s) would be sent back' }).waitFor();
  const go = page.getByRole('button', { name: 'Replay 3 message(s)' });
  check(await go.isDisabled(), 'nothing is replayed before the count is typed');
  await page.getByLabel('Type 3 to confirm').fill('4');
  check(await go.isDisabled(), 'a wrong count does not confirm');
  await page.getByLabel('Type 3 to confirm').fill('3');
  check(await go.isEnabled(), 'the typed count confirms');
  await accessible(page, 'operations (confirmation)');
  await page.screenshot({ path: join(shots, 'operations-confirm.png'), fullPage: true });
  await go.click();
  await page.locator('#confirm-result', { hasText: 'Replayed 3 message(s).' }).waitFor();
  await page.getByText('0 parked message(s) match.').waitFor();

  // A phone-sized screen: nothing wider than it.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByLabel('Content', { exact: true }).fill('');
  await page.getByLabel('Error code').fill('');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('1 parked message(s) match.').waitFor();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, `usable at 390 px (page is ${width} px wide)`);
  await accessible(page, 'operations at 390 px');
  await page.screenshot({ path: join(shots, 'operations-390.png'), fullPage: true });
  check(errors.length === 0, `no script error or CSP violation in the page (${errors.join(' | ')})`);
  await page.close();

  // A viewer: the same screen, payloads masked, no content search and no actions offered (the API
  // refuses them anyway).
  const viewer = await context.newPage();
  viewer.setDefaultTimeout(15000);
  await signIn(viewer, env('VIEWER_TOKEN'));
  await viewer.getByText('1 parked message(s) match.').waitFor();
  const seen = await viewer.locator('#parked tbody').textContent();
  check(!seen.includes(other) && seen.includes(other.slice(-4)), "the viewer sees the parked message's number masked");
  check(await viewer.getByRole('button', { name: 'Dry-run replay' }).count() === 0, 'no replay for the viewer');
  check(await viewer.getByRole('button', { name: 'Dry-run purge' }).count() === 0, 'no purge for the viewer');
  check(await viewer.locator('#p-q').count() === 0, 'no content search for the viewer');
  await viewer.close();
});
