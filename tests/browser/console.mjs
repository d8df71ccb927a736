// The console in a real browser: Debian's chromium (/usr/bin/chromium, never a downloaded one)
// driven by playwright-core; axe-core checks every screen. Run by tests/browser/console_test.cpp,
// which starts the stack, hands a lead to a person and passes what it knows in the environment:
//   CONSOLE_URL       http://127.0.0.1:<port>/console/
//   AGENT_TOKEN, VIEWER_TOKEN
//   LEAD_WA_ID        the handed-off lead's customer (digits); LEAD_ID its conversation, which
//                     holds a photo the customer sent
//   LATE_ID           a conversation whose 24-hour window closed (its number has an approved
//                     template follow_up)
//   PHOTO_FILE        a JPEG the agent sends
//   PROXY_PHOTO_FILE, DELIVERY_ID  the photo the proxy-signed-in agent sends; a delivery of theirs
//   PROXY_IDENTITY, PROXY_SECRET   what an OIDC proxy in front would send (X-Forwarded-Email and
//                     X-Convoy-Proxy-Secret): the identity is an agent's in the identities file
//   REPLY_TEXT        what the agent answers
//   SCREENSHOT_DIR    where each screen's picture goes (the build folder's console-screenshots;
//                     docs/console to refresh the README's)
// Prints one line per check and `first page rendered in <ms> ms`; exits non-zero on any failure.
import { join } from 'node:path';
import { accessible, check, launch, run, signIn as signInAt, watchedPage } from './support.mjs';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const url = env('CONSOLE_URL');
const shots = env('SCREENSHOT_DIR');
const lead = env('LEAD_WA_ID');
const replyText = env('REPLY_TEXT');
const signIn = (page, token) => signInAt(page, url, token);

const browser = await launch();
const { context } = browser;
await run(browser.close, async () => {
  const { page, errors } = await watchedPage(context, 10000);

  // Sign-in.
  await page.goto(url);
  await page.getByLabel('API token').waitFor();
  check(!(await page.getByRole('button', { name: 'Sign out' }).isVisible()) &&
        !(await page.getByRole('link', { name: 'Audit log' }).isVisible()), 'no navigation before sign-in');
  await accessible(page, 'sign-in');
  await page.screenshot({ path: join(shots, 'sign-in.png') });
  await page.getByLabel('API token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('That token is not known to convoy.').waitFor();
  check(await page.evaluate(() => sessionStorage.getItem('convoy.token')) === null, 'a refused token is not kept');
  errors.length = 0;  // the refused token's 401, logged by the browser, was the point

  // The agent: the list, the handed-off lead at the top of the people's queue.
  await signIn(page, env('AGENT_TOKEN'));
  check(!page.url().includes(env('AGENT_TOKEN')), 'the token is never in the URL');
  check(await page.evaluate(() => localStorage.length) === 0, 'nothing in localStorage');
  const row = page.locator('#conversation-list tbody tr', { hasText: `+${lead}` });
  await row.waitFor();
  await accessible(page, 'conversations');
  await page.screenshot({ path: join(shots, 'conversations.png') });

  // First render of the list with the seeded conversations in the database: a fresh load of the page.
  const t0 = Date.now();
  await page.reload();
  await page.locator('#conversation-list tbody tr').first().waitFor();
  const firstRender = Date.now() - t0;
  console.log(`first page rendered in ${firstRender} ms`);
  check(firstRender < 1000, 'the first page renders in under 1 s');

  // The transcript; the agent replies.
  await row.getByRole('link').click();
  await page.locator('.transcript li').first().waitFor();
  await page.getByText('Thank you for your patience').first().waitFor();
  check(/min left/.test(await page.locator('#window-note').textContent()), "the window's remaining time is shown");
  await accessible(page, 'transcript');
  await page.getByLabel('Reply', { exact: true }).fill(replyText);
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.getByText('Reply queued.').waitFor();
  await page.locator('.transcript li.out', { hasText: replyText }).waitFor();

  // The customer's photo, inline through its signed link to convoy-media (the page's policy allows
  // images from that origin alone), with its caption.
  const loaded = (selector) => page.waitForFunction((sel) => [...document.querySelectorAll(sel)]
    .some((i) => i.complete && i.naturalWidth > 0), selector);
  await loaded('.transcript li.in img.photo');
  check(await page.locator('.transcript li.in', { hasText: 'the broken part' }).locator('img.photo').count() === 1,
    "the customer's photo is shown with its caption");

  // A file that is not a photo, though it says it is: convoy-media refuses it, nothing is sent.
  await page.getByLabel('Photo (JPEG or PNG, optional)').setInputFiles({ name: 'invoice.jpg', mimeType: 'image/jpeg',
    buffer: Buffer.from('<html><script>alert(1)</script></html>') });
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.getByText(/Reply failed: the body is not a image\/jpeg file/).waitFor();
  check(await page.locator('.transcript li.out img.photo').count() === 0, 'a refused file is not in the transcript');
  errors.length = 0;  // the refused upload's 415, logged by the browser, was the point

  // The agent's own photo: uploaded through the console's origin, then sent with its caption.
  await page.getByLabel('Photo (JPEG or PNG, optional)').setInputFiles(env('PHOTO_FILE'));
  await page.getByLabel('Reply', { exact: true }).fill('Our workshop');
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.getByText('Photo queued.').waitFor();
  await loaded('.transcript li.out img.photo');
  check(await page.locator('.transcript li.out', { hasText: 'Our workshop' }).locator('img.photo').count() === 1,
    "the agent's photo is in the transcript with its caption");
  await accessible(page, 'transcript with photos');
  await page.screenshot({ path: join(shots, 'transcript.png'), fullPage: true });

  // A customer whose window closed: no free text, the number's approved templates instead.
  await page.goto(`${url}#/conversations/${env('LATE_ID')}`);
  await page.getByText('only an approved template can reopen the conversation').waitFor();
  check(await page.locator('#reply').isHidden() && await page.locator('#reply-photo').isHidden(), 'no free text or photo with the window closed');
  const options = await page.locator('#reply-template option').allTextContents();
  check(options.length === 1 && options[0].startsWith('follow_up (en_US'), `only approved templates are offered (${options.join(', ')})`);
  await page.getByLabel('Template parameters').fill('Lin');
  await accessible(page, 'template reply');
  await page.getByRole('button', { name: 'Send template' }).click();
  await page.getByText('Template queued.').waitFor();
  await page.locator('.transcript li.out', { hasText: 'follow_up' }).waitFor();
  await page.screenshot({ path: join(shots, 'template-reply.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
  check(narrow <= 390, `the template reply is usable at 390 px (page is ${narrow} px wide)`);
  await page.screenshot({ path: join(shots, 'template-reply-390.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // The audit log shows the reply.
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.locator('table.list tbody tr', { hasText: '/v1/conversations/{id}/messages' }).first().waitFor();
  await accessible(page, 'audit');
  await page.screenshot({ path: join(shots, 'audit.png') });

  // A phone-sized screen: nothing wider than it.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('link', { name: 'Conversations' }).click();
  await row.waitFor();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, `usable at 390 px (page is ${width} px wide)`);
  await page.screenshot({ path: join(shots, 'conversations-390.png') });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor();
  check(await page.evaluate(() => sessionStorage.getItem('convoy.token')) === null, 'signing out forgets the token');
  check(errors.length === 0, `no script error or CSP violation in the page (${errors.join(' | ')})`);
  await page.close();

  // A viewer, in a tab of its own (session storage is the tab's): the numbers masked, no actions
  // offered (the API refuses them anyway).
  const viewer = await context.newPage();
  viewer.setDefaultTimeout(10000);
  await signIn(viewer, env('VIEWER_TOKEN'));
  const masked = viewer.locator('#conversation-list tbody tr').first();
  await masked.waitFor();
  const text = await viewer.locator('#conversation-list').textContent();
  check(!text.includes(lead), "the viewer does not see the lead's number");
  check(text.includes(lead.slice(-4)), "the viewer sees the number's last 4 digits");
  check(await viewer.locator('#f-q').count() === 0, 'no search box for the viewer');
  await viewer.goto(`${url}#/conversations/${env('LEAD_ID')}`);
  await viewer.locator('.transcript li', { hasText: '[photo]' }).first().waitFor();
  check(await viewer.locator('.transcript img').count() === 0, 'the viewer sees no photo');
  check(await viewer.locator('#reply').count() === 0, 'no reply form for the viewer');
  check(!(await viewer.locator('.transcript').textContent()).includes(replyText), 'the viewer sees what was said masked');
  await viewer.close();

  // Behind an OIDC proxy: its identity header signs nobody in by itself (a client can send it)...
  const hostile = await context.newPage();
  hostile.setDefaultTimeout(10000);
  await hostile.setExtraHTTPHeaders({ 'X-Forwarded-Email': env('PROXY_IDENTITY') });
  await hostile.goto(url);
  await hostile.getByLabel('API token').waitFor();
  check(await hostile.locator('#who').isHidden(), "the identity header without the proxy's secret signs nobody in");
  await hostile.close();
  // ...with the proxy's secret it does: no token form, and actions go under the mapped name.
  const { page: proxied, errors: proxyErrors } = await watchedPage(context, 10000);
  await proxied.setExtraHTTPHeaders({ 'X-Forwarded-Email': env('PROXY_IDENTITY'), 'X-Convoy-Proxy-Secret': env('PROXY_SECRET') });
  await proxied.goto(url);
  await proxied.getByText("Signed in as sam-sso through your organisation's sign-in").waitFor();
  check(await proxied.locator('#sign-in').isHidden() && await proxied.locator('#sign-out').isHidden(), 'no token form and no sign-out behind the proxy');
  check(await proxied.evaluate(() => sessionStorage.length) === 0, 'no token kept behind the proxy');
  await proxied.locator('#conversation-list tbody tr').first().waitFor();
  await accessible(proxied, 'signed in by the proxy');
  await proxied.screenshot({ path: join(shots, 'proxy-sign-in.png') });
  await proxied.goto(`${url}#/conversations/${env('LEAD_ID')}`);
  await proxied.getByRole('button', { name: 'Take' }).click();
  await proxied.getByText('Take: done.').waitFor();
  // A photo from a person without a token: conversation vouches for them to convoy-media.
  await proxied.getByLabel('Photo (JPEG or PNG, optional)').setInputFiles(env('PROXY_PHOTO_FILE'));
  await proxied.getByLabel('Reply', { exact: true }).fill('From the proxy');
  await proxied.getByRole('button', { name: 'Send reply' }).click();
  await proxied.getByText('Photo queued.').waitFor();
  await proxied.locator('.transcript li.out', { hasText: 'From the proxy' }).locator('img.photo').waitFor();
  // Their tenant's deliveries, from outbound, which checks the vouch too.
  await proxied.getByRole('link', { name: 'Operations' }).click();
  await proxied.locator('#deliveries tbody tr', { hasText: `${env('DELIVERY_ID')} webhook` }).waitFor();
  check(!(await proxied.locator('#h-deliveries').locator('..').textContent()).includes('Could not list deliveries'),
    'deliveries are listed behind the proxy');
  await accessible(proxied, 'operations behind the proxy');
  await proxied.screenshot({ path: join(shots, 'proxy-operations.png') });
  check(proxyErrors.length === 0, `no script error or CSP violation behind the proxy (${proxyErrors.join(' | ')})`);
  await proxied.close();
});
