// The console's Checklists screen in a real browser: Debian's chromium (/usr/bin/chromium) driven by
// playwright-core; axe-core checks each view. Run by tests/browser/checklists_test.cpp, which starts
// the stack and plays the operator (webhooks as Meta sends them); the two take turns through files
// in TURNS_DIR (each waits for the other's, with a deadline). Environment:
//   CONSOLE_URL                  http://127.0.0.1:<port>/console/
//   MANAGER_TOKEN, VIEWER_TOKEN  tenant "demo"'s
//   OPERATOR, BUSINESS           the operator's wa_id and the number the checklist goes from
//   CHECKLIST_ID                 the checklist the manager defines
//   TURNS_DIR                    this script writes `assigned`, `seen-first-answer`, `seen-answers`; the test
//                                `confirmed`
//   SCREENSHOT_DIR               where each view's picture goes
// Prints one line per check; exits non-zero on any failure.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accessible, check, launch, run, signIn as signInAt, watchedPage } from './support.mjs';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const url = env('CONSOLE_URL');
const shots = env('SCREENSHOT_DIR');
const turns = env('TURNS_DIR');
const operator = env('OPERATOR');
const business = env('BUSINESS');
const checklistId = env('CHECKLIST_ID');

// The test's turn: its file, within the deadline.
async function turn(name, ms = 90000) {
  const deadline = Date.now() + ms;
  while (!existsSync(join(turns, name))) {
    if (Date.now() > deadline) throw new Error(`the test did not get to ${name} in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const done = (name) => writeFileSync(join(turns, name), 'done\n');

const signIn = (page, token) => signInAt(page, url, token);

async function narrow(page, what) {
  await page.setViewportSize({ width: 390, height: 844 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, `${what} is usable at 390 px (page is ${width} px wide)`);
}

const loadedPhotos = (page) => page.evaluate(() =>
  [...document.querySelectorAll('#answers img')].filter((i) => i.complete && i.naturalWidth > 0).length);

const downloads = mkdtempSync(join(tmpdir(), 'convoy-downloads-'));
const { context, close } = await launch({ acceptDownloads: true, downloadsPath: downloads });
await run(async () => { await close(); rmSync(downloads, { recursive: true, force: true }); }, async () => {
  const { page, errors } = await watchedPage(context, 15000);

  // The manager: the screen, then a checklist defined (and versioned) in it.
  await signIn(page, env('MANAGER_TOKEN'));
  await page.getByRole('link', { name: 'Checklists' }).click();
  await page.getByRole('heading', { name: 'Define a checklist' }).waitFor();
  await page.getByLabel('Checklist id').fill(checklistId);
  await page.getByLabel('Title', { exact: true }).fill('Press QA');
  await page.getByLabel('Question 1', { exact: true }).fill('Is the press guard closed and undamaged?');
  await page.locator('#q1-photo').selectOption('required');
  await page.locator('#q1-answers').fill('OK, NOT OK');
  await page.locator('#q1-notes').fill('NOT OK');
  await page.getByRole('button', { name: 'Add question' }).click();
  await page.getByLabel('Question 2', { exact: true }).fill('Photo of the batch label, with the batch number as the note.');
  await page.locator('#q2-photo').selectOption('required');
  await page.getByRole('button', { name: 'Save checklist' }).click();
  await page.getByText(`Saved ${checklistId} as version 1.`).waitFor();
  await page.getByLabel('Title', { exact: true }).fill('Press QA — start of shift');
  await page.getByRole('button', { name: 'Save checklist' }).click();
  await page.getByText(`Saved ${checklistId} as version 2.`).waitFor();
  await page.getByRole('button', { name: 'Save checklist' }).click();
  await page.getByText(`No change: ${checklistId} stays at version 2.`).waitFor();
  const row = page.locator('#checklist-list tbody tr', { hasText: checklistId });
  check((await row.textContent()).includes('Press QA — start of shift'), 'the list shows the latest version');
  // A bad definition is refused with the API's reason, and nothing is saved.
  await page.locator('#q1-notes').fill('BROKEN');
  await page.getByRole('button', { name: 'Save checklist' }).click();
  await page.getByText('is not one of the question\'s answers').waitFor();
  await page.locator('#q1-notes').fill('NOT OK');
  errors.length = 0;  // the refused definition's 400, logged by the browser, was the point
  check(await row.locator('td[data-label="Version"]').textContent() === '2', 'the refused definition made no version');
  await accessible(page, 'checklists');

  // Assigned to the operator: the assignment opens, on its first question.
  await page.getByLabel('Checklist', { exact: true }).selectOption(checklistId);
  await page.getByLabel('From business number').selectOption(business);
  await page.getByLabel('Operator (phone or BSUID)').fill(`+${operator}`);
  await page.getByLabel('Operator name (optional)').fill('Ana');
  await page.getByRole('button', { name: 'Assign', exact: true }).click();
  await page.locator('#progress', { hasText: 'Question 1 of 2' }).waitFor();
  check(/#\/checklists\/asg_/.test(page.url()), 'the new assignment opens');
  check(!page.url().includes(env('MANAGER_TOKEN')), 'the token is never in the URL');
  done('assigned');

  // The operator answers: the answers and their photos appear as they come.
  await page.locator('#progress', { hasText: 'Question 2 of 2' }).waitFor({ timeout: 60000 });
  await page.locator('#answers li', { hasText: 'guard cracked' }).waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('#answers img')].some((i) => i.complete && i.naturalWidth > 0));
  check(await loadedPhotos(page) === 1, "question 1's photo is shown while question 2 is open");
  done('seen-first-answer');
  await page.locator('#progress', { hasText: 'All 2 answered: waiting for CONFIRM' }).waitFor({ timeout: 60000 });
  await page.locator('#answers li', { hasText: 'Batch 4711' }).waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('#answers img')].filter((i) => i.complete && i.naturalWidth > 0).length === 2,
    null, { timeout: 30000 });
  const answersText = await page.locator('#answers').textContent();
  check(answersText.includes('NOT OK') && answersText.includes('— guard cracked'), 'question 1: the answer and its note');
  check(await page.getByRole('img', { name: 'Photo for question 1' }).count() === 1 &&
        await page.getByRole('img', { name: 'Photo for question 2' }).count() === 1, 'each answer shows its photo');
  const src = await page.getByRole('img', { name: 'Photo for question 1' }).getAttribute('src');
  check(/\/media\/[0-9a-f]{64}\.jpg\?expires=\d+&sig=[0-9a-f]{64}$/.test(src), 'a photo is a signed, expiring link to media');
  await page.screenshot({ path: join(shots, 'checklist-answers.png'), fullPage: true });
  done('seen-answers');

  // Confirmed: completed, exported.
  await turn('confirmed');
  await page.locator('#progress', { hasText: 'Completed: 2 of 2 answered' }).waitFor({ timeout: 60000 });
  await accessible(page, 'assignment');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
  const file = join(downloads, 'export.csv');
  await download.saveAs(file);
  check(/^asg_[0-9a-f]+\.csv$/.test(download.suggestedFilename()), `the export is named after the assignment (${download.suggestedFilename()})`);
  const csv = readFileSync(file, 'utf8').split('\r\n');
  check(csv[0] === 'number,question,answer,note,photos,photo_links,completed_at', 'the CSV has its header');
  check(csv.length === 4 && csv[3] === '', `one row per question (${csv.length - 2})`);
  check(/^1,Is the press guard closed and undamaged\?,NOT OK,guard cracked,[0-9a-f]{64}\.jpg,http:\/\/\S+\/media\/[0-9a-f]{64}\.jpg\?expires=\d+&sig=[0-9a-f]{64},\d{4}-\d\d-\d\dT/.test(csv[1]),
    `question 1's row: ${csv[1]}`);
  check(/^2,"Photo of the batch label, with the batch number as the note\.",Batch 4711,,[0-9a-f]{64}\.jpg,http:\/\/\S+,\d{4}-/.test(csv[2]),
    `question 2's row: ${csv[2]}`);
  const link = csv[1].split(',')[5];
  const photo = await fetch(link);
  check(photo.status === 200 && photo.headers.get('content-type') === 'image/jpeg', `the exported photo link works (${photo.status})`);
  // The same as a PDF, made by convoy-conversation with both photos embedded.
  const [pdfDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export PDF' }).click()]);
  await page.getByText('Exported as PDF.').waitFor();
  const pdfFile = join(downloads, 'export.pdf');
  await pdfDownload.saveAs(pdfFile);
  check(/^asg_[0-9a-f]+\.pdf$/.test(pdfDownload.suggestedFilename()), `the PDF is named after the assignment (${pdfDownload.suggestedFilename()})`);
  const pdf = readFileSync(pdfFile).toString('latin1');
  check(pdf.startsWith('%PDF-1.4\n') && pdf.trimEnd().endsWith('%%EOF'), 'the PDF is a whole file');
  check((pdf.match(/\/Subtype \/Image/g) || []).length === 2 && (pdf.match(/\/Filter \/DCTDecode/g) || []).length === 2,
    'both photos are embedded in the PDF');
  check(pdf.includes('(1. Is the press guard closed and undamaged?) Tj') && pdf.includes('(Note: guard cracked) Tj'),
    'the PDF holds the questions, answers and notes');

  // A phone-sized screen: nothing wider than it, the assignment and the lists.
  await narrow(page, 'the assignment');
  await page.screenshot({ path: join(shots, 'checklist-answers-390.png'), fullPage: true });
  await page.getByRole('link', { name: '← All checklists' }).click();
  await page.locator('#assignment-list tbody tr', { hasText: 'Completed: 2 of 2 answered' }).first().waitFor();
  await narrow(page, 'the checklists screen');
  await page.screenshot({ path: join(shots, 'checklists-390.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(shots, 'checklists.png'), fullPage: true });
  check(errors.length === 0, `no script error or CSP violation in the page (${errors.join(' | ')})`);
  await page.close();

  // A viewer: progress, never the answers or a way to write.
  const viewer = await context.newPage();
  viewer.setDefaultTimeout(15000);
  await signIn(viewer, env('VIEWER_TOKEN'));
  await viewer.getByRole('link', { name: 'Checklists' }).click();
  const mine = viewer.locator('#assignment-list tbody tr', { hasText: 'Completed: 2 of 2 answered' }).first();
  await mine.waitFor();
  const listText = await viewer.locator('#assignment-list').textContent();
  check(!listText.includes(operator) && listText.includes(operator.slice(-4)), "the viewer sees the operator's number masked");
  check(await viewer.getByRole('heading', { name: 'Assign a checklist' }).count() === 0 &&
        await viewer.getByRole('heading', { name: 'Define a checklist' }).count() === 0, 'no forms for the viewer');
  await mine.getByRole('link').click();
  await viewer.getByText('Answers are not shown to viewers.').waitFor();
  check(await viewer.locator('#answers img').count() === 0, 'no photos for the viewer');
  check(await viewer.getByRole('button', { name: 'Export CSV' }).count() === 0 &&
        await viewer.getByRole('button', { name: 'Export PDF' }).count() === 0 &&
        await viewer.getByRole('button', { name: 'Cancel assignment' }).count() === 0, 'no actions for the viewer');
  await viewer.close();
});
