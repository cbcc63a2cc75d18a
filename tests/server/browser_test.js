// The Launch App in a real browser: Debian's Chromium, headless, driven by
// playwright-core (tests/node/playwright). Starts its own launch-server on a
// fresh SQLite store and a launch-agent beside it (one LAUNCH_HOME, so the
// server serves the job's logs), then, as a person would: signs in, creates
// a queue through the form (YAML config with a template variable and its
// schema; a bad config first, whose error must show beside the field), pushes
// a job from the queue page, follows it to `finished` and reads its log on
// the item page, goes back and forward, looks at the agents, cancels a job.
// Every page is checked for accessibility (names of controls, headings,
// lang) and for console errors. Screenshots go to --artifacts.
//
//   node browser_test.js --server BIN --agent BIN --cli BIN --modules DIR --artifacts DIR
//
// Exit 0 when every step passed; 1 on the first failure (named).
'use strict';

const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { createRequire } = require('node:module');

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['server', 'agent', 'cli', 'modules', 'artifacts']) {
    if (!out[k]) throw new Error(`missing --${k}`);
    out[k] = path.resolve(out[k]);
  }
  return out;
}

const opt = args();
const { chromium } = createRequire(path.join(opt.modules, 'package.json'))('playwright-core');
const CHROMIUM = process.env.LAUNCH_CHROMIUM || '/usr/bin/chromium';
const STEP_MS = 30000;

let passed = 0;
const children = [];
let browser = null;
let tmp = null;

function log(msg) { process.stdout.write(`browser: ${msg}\n`); }

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  passed++;
}

async function step(name, fn) {
  log(`step: ${name}`);
  try {
    await fn();
  } catch (e) {
    e.message = `${name}: ${e.message}`;
    throw e;
  }
}

// Runs `bin args` to its end: { code, stdout, stderr }.
function run(bin, argv, env) {
  return new Promise((resolve) => {
    execFile(bin, argv, { env, timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

// Starts a long-lived process whose output goes to `logFile`; the first
// stdout line is handed to `firstLine` when given.
function start(bin, argv, env, logFile, firstLine) {
  const child = spawn(bin, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const out = fs.createWriteStream(logFile);
  child.stderr.pipe(out);
  const lines = readline.createInterface({ input: child.stdout });
  let first = true;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${path.basename(bin)}: no first line in 15 s (log ${logFile})`)), 15000);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${path.basename(bin)} exited (${code ?? sig}) early; its log: ${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : ''}`));
    });
    lines.on('line', (line) => {
      out.write(`${line}\n`);
      if (first && firstLine) {
        first = false;
        clearTimeout(timer);
        resolve(line);
      }
    });
    if (!firstLine) {
      clearTimeout(timer);
      setTimeout(() => resolve(null), 200);
    }
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => { clearTimeout(kill); resolve(); });
    child.kill('SIGTERM');
  });
}

// The accessibility check of one page: Chromium's own accessibility tree
// (the names a screen reader gets), and the document's structure.
async function accessibilityProblems(page) {
  const cdp = await page.context().newCDPSession(page);
  const { nodes } = await cdp.send('Accessibility.getFullAXTree');
  await cdp.detach();
  const needName = new Set(['textbox', 'combobox', 'checkbox', 'switch', 'spinbutton', 'button',
    'link', 'radio', 'slider', 'searchbox', 'listbox', 'image', 'img']);
  const bad = [];
  for (const n of nodes) {
    if (n.ignored) continue;
    const role = n.role?.value;
    if (!needName.has(role)) continue;
    const name = (n.name?.value ?? '').trim();
    if (!name) bad.push(`${role} without a name (backend node ${n.backendDOMNodeId})`);
  }
  const dom = await page.evaluate(() => {
    const problems = [];
    if (!document.documentElement.lang) problems.push('<html> has no lang');
    if (!document.title.trim()) problems.push('the page has no title');
    for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
      if (el.closest('[hidden]')) continue;
      const labelled = el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
      if (!labelled) problems.push(`${el.tagName.toLowerCase()}#${el.id || '?'} has no label`);
    }
    for (const el of document.querySelectorAll('button')) {
      if (!(el.textContent.trim() || el.getAttribute('aria-label'))) problems.push('a button has no name');
    }
    for (const el of document.querySelectorAll('img')) {
      if (!el.hasAttribute('alt')) problems.push(`img ${el.getAttribute('src')} has no alt`);
    }
    for (const el of document.querySelectorAll('[aria-describedby], [aria-labelledby]')) {
      for (const attr of ['aria-describedby', 'aria-labelledby']) {
        for (const id of (el.getAttribute(attr) ?? '').split(/\s+/).filter(Boolean)) {
          if (!document.getElementById(id)) problems.push(`${attr} names a missing #${id}`);
        }
      }
    }
    const ids = new Map();
    for (const el of document.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) ?? 0) + 1);
    for (const [id, n] of ids) if (n > 1) problems.push(`id ${id} is used ${n} times`);
    const levels = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
      .filter((el) => !el.closest('[hidden]')).map((el) => Number(el.tagName[1]));
    if (levels.filter((l) => l === 1).length !== 1) problems.push(`${levels.filter((l) => l === 1).length} h1 headings (want 1)`);
    let prev = 0;
    for (const l of levels) {
      if (l > prev + 1) problems.push(`heading h${l} follows h${prev}`);
      prev = l;
    }
    if (!document.querySelector('[role=status], [aria-live]')) problems.push('no live region');
    // A value the code failed to turn into text.
    for (const w of document.body.innerText.split(/\s+/)) {
      if (w === 'null' || w === 'undefined' || w === 'NaN' || w.includes('[object')) problems.push(`the page shows "${w}"`);
    }
    // Text contrast (WCAG 2 AA: 4.5:1, 3:1 for large text) against the
    // first opaque background behind it.
    const rgba = (c) => {
      const m = /rgba?\(([^)]+)\)/.exec(c);
      if (!m) return null;
      const [r, g, b, a = 1] = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
      return { r, g, b, a };
    };
    const lum = ({ r, g, b }) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgba(getComputedStyle(e).backgroundColor);
        if (c && c.a >= 1) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const el = t.parentElement;
      if (!t.textContent.trim() || !el || seen.has(el)) continue;
      seen.add(el);
      const cs = getComputedStyle(el);
      if (!el.getClientRects().length || cs.visibility === 'hidden') continue;
      if (el.closest('button:disabled')) continue;
      const fg = rgba(cs.color), bg = background(el);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
      const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
      if (ratio < need) problems.push(`contrast ${ratio.toFixed(2)} < ${need} for "${t.textContent.trim().slice(0, 30)}"`);
    }
    return problems;
  });
  return [...bad, ...dom];
}

async function checkAccessibility(page, where) {
  const all = await accessibilityProblems(page);
  check(all.length === 0, `accessibility of ${where}: ${all.join('; ')}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(opt.artifacts, `${name}.png`), fullPage: true });
}

async function main() {
  // Only this run's screenshots and logs are left there.
  fs.rmSync(opt.artifacts, { recursive: true, force: true });
  fs.mkdirSync(opt.artifacts, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'launch-browser-'));
  const home = path.join(tmp, 'home');
  fs.mkdirSync(home);
  const store = `sqlite://${home}/launch.db`;
  // HOME too, so no launch-config.yaml of the user's is read.
  const env = { ...process.env, LAUNCH_HOME: home, HOME: tmp, LAUNCH_QUEUE_URI: store };
  delete env.LAUNCH_API_KEY;

  // ---- The API key: the one spot that makes and hands out keys. ----
  // `launch-server init` makes the store's first user (a server admin) and
  // a team, and prints the admin's key once ("key: KEY"). The browser signs
  // in with it; the agent and the CLI get it as LAUNCH_API_KEY.
  const admin = 'alice';
  const team = 'ml';
  const init = await run(opt.server, ['init', '--store', store, '--admin', admin, '--team', team], env);
  check(init.code === 0, `launch-server init exits 0 (got ${init.code}: ${init.stderr})`);
  const keyLine = /^key: (\S+)$/m.exec(init.stdout);
  check(keyLine !== null, `launch-server init prints "key: KEY" (printed ${JSON.stringify(init.stdout)})`);
  const key = keyLine[1];
  const agentEnv = { ...env, LAUNCH_API_KEY: key };
  // The queue is the team's: a shared one.
  const entity = team;
  // ---- end of the key spot ----

  const first = await start(opt.server, ['--store', store, '--listen', '127.0.0.1:0'], env,
    path.join(opt.artifacts, 'server.log'), true);
  const m = /^launch-server: listening on (\S+)/.exec(first);
  check(m !== null, `the server's first line names its URL: ${first}`);
  const url = m[1].replace(/\/$/, '');
  const origin = new URL(url).origin;
  log(`server at ${url}`);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const consoleErrors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') {
      // What the browser logs for the 400, 401 and 403 answers this test
      // provokes (a bad config, a refused key, a member's create) is its
      // report of that status; any
      // other error or warning fails the test.
      if (/^Failed to load resource: the server responded with a status of (400|401|403)/.test(msg.text())) return;
      consoleErrors.push(`${msg.type()}: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));
  // Nothing may come from another origin (no CDN, no font, nothing).
  const foreign = [];
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.origin !== origin) {
      foreign.push(u.href);
      return route.abort();
    }
    return route.continue();
  });

  await step('the accessibility check finds what it looks for', async () => {
    // A page with one fault of each kind: the check must name every one.
    const probe = await context.newPage();
    await probe.setContent('<html><head><title>probe</title></head><body><h1>a</h1><h3>b</h3>' +
      '<input id="x"><select><option>1</option></select><button></button><img src="data:,">' +
      '<p aria-describedby="gone">c</p><p id="grey">faint</p><p>undefined</p></body></html>');
    await probe.addStyleTag({ content: '#grey { color: #bbbbbb; }' });
    const found = (await accessibilityProblems(probe)).join('\n');
    await probe.close();
    for (const want of ['lang', 'input#x has no label', 'select#? has no label', 'a button has no name',
      'has no alt', 'missing #gone', 'heading h3 follows h1', 'no live region', 'textbox without a name',
      'for "faint"', 'the page shows "undefined"']) {
      check(found.includes(want), `the check reports "${want}" (it said: ${found})`);
    }
  });

  await step('the page is served with its security policy', async () => {
    const res = await page.goto(`${url}/`);
    check(res.status() === 200, `GET / is 200 (got ${res.status()})`);
    const csp = res.headers()['content-security-policy'] ?? '';
    check(/default-src 'self'/.test(csp), `the Content-Security-Policy holds default-src 'self' (got "${csp}")`);
    await page.getByRole('heading', { level: 1, name: 'Sign in to Launch' }).waitFor();
    await checkAccessibility(page, 'the sign-in page');
    await shot(page, '01-sign-in');
  });

  await step('sign in', async () => {
    const input = page.getByLabel('API key');
    check(await input.evaluate((el) => el === document.activeElement), 'the key field has the focus');
    {
      await input.fill('not-a-key');
      await page.getByRole('button', { name: 'Sign in' }).click();
      const err = page.locator('#api-key-error');
      await err.waitFor({ state: 'visible' });
      check(/refused/i.test(await err.textContent()), 'a wrong key is refused beside the field');
      check(await input.getAttribute('aria-invalid') === 'true', 'the key field is marked invalid');
    }
    await input.fill(key);
    await input.press('Enter');  // the keyboard submits the form
    await page.getByRole('heading', { level: 1, name: 'Queues' }).waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('launch.apiKey')) === key, 'the key is kept in sessionStorage');
    check(await page.getByRole('button', { name: 'Sign out' }).isVisible(), 'a sign-out button shows');
    const who = await page.locator('#who-name').textContent();
    check(who === `Signed in as ${admin} (server admin)`, `the page says who signed in (${who})`);
    await checkAccessibility(page, 'the queue list');
    // The keyboard reaches the controls in order, and the focus shows.
    await page.keyboard.press('Tab');
    const focus = await page.evaluate(() => {
      const el = document.activeElement;
      const cs = getComputedStyle(el);
      return { tag: el.tagName, text: el.textContent.trim(), outline: cs.outlineStyle, width: cs.outlineWidth };
    });
    check(focus.tag !== 'BODY' && focus.outline !== 'none' && focus.width !== '0px',
      `Tab moves to a control with a visible focus ring (${JSON.stringify(focus)})`);
  });

  const qname = 'app-queue';
  const ref = `${entity}/${qname}`;
  await step('the create form shows a bad config beside the config field', async () => {
    const entityControl = page.getByLabel('Entity', { exact: true });
    check(await entityControl.evaluate((el) => el.tagName) === 'SELECT', 'the entity is a drop-down');
    const entities = await entityControl.locator('option').evaluateAll((os) => os.map((o) => o.value));
    check(JSON.stringify(entities) === JSON.stringify([admin, team]),
      `the entities are the user and their team (${entities})`);
    const hintOf = async () => page.locator(`#${await entityControl.getAttribute('id')}-hint`).textContent();
    check(/private/i.test(await hintOf()), `the user's own name makes a private queue (hint: ${await hintOf()})`);
    await entityControl.selectOption(entity);
    check(/shared/i.test(await hintOf()), `a team makes a shared queue (hint: ${await hintOf()})`);
    await page.getByLabel('Queue name').fill(qname);
    const resource = page.getByLabel('Resource', { exact: true });
    check(await resource.evaluate((el) => el.tagName) === 'SELECT', 'the resource is a drop-down');
    const resources = await resource.locator('option').evaluateAll((os) => os.map((o) => o.value));
    check(resources.includes('local-process') && resources.includes('local-container'),
      `the resources are the server's runners (${resources})`);
    await resource.selectOption('local-process');
    const prio = page.getByRole('switch', { name: 'Prioritization' });
    await prio.check();
    const config = page.getByLabel('Configuration (JSON or YAML)');
    await config.fill('env:\n  GREETING: "{{greeting}}"\n  [unclosed');
    await page.getByRole('button', { name: 'Create queue' }).click();
    const configId = await config.getAttribute('id');
    const err = page.locator(`#${configId}-error`);
    await err.waitFor({ state: 'visible' });
    const text = await err.textContent();
    check(/config/i.test(text), `the config error names the config (got: ${text})`);
    check(await config.getAttribute('aria-invalid') === 'true', 'the config field is marked invalid');
    check((await config.getAttribute('aria-describedby')).split(' ').includes(`${configId}-error`),
      'the config field is described by its error');
    check(await config.evaluate((el) => el === document.activeElement), 'the focus moved to the config field');
    await checkAccessibility(page, 'the create form with an error');
    await shot(page, '02-bad-config');
    // An option the runner does not know: refused by the runner's check.
    await config.fill('bogus: 1\n');
    await page.getByRole('button', { name: 'Create queue' }).click();
    await page.locator(`#${configId}-error`, { hasText: 'unknown option "bogus"' }).waitFor();
    check(await config.evaluate((el) => el === document.activeElement), 'the focus is on the config again');
    // A bad queue name: beside the name.
    const nameField = page.getByLabel('Queue name');
    await nameField.fill('bad name');
    await page.getByRole('button', { name: 'Create queue' }).click();
    const nameId = await nameField.getAttribute('id');
    await page.locator(`#${nameId}-error`, { hasText: 'queue name' }).waitFor();
    check(await nameField.getAttribute('aria-invalid') === 'true', 'the name field is marked invalid');
    check(await nameField.evaluate((el) => el === document.activeElement), 'the focus moved to the name');
    check(await config.getAttribute('aria-invalid') === null, 'the config is no longer marked invalid');
    await nameField.fill(qname);
  });

  await step('create a queue with a YAML config and a template variable', async () => {
    const config = page.getByLabel('Configuration (JSON or YAML)');
    await config.fill('# a YAML config\nenv:\n  GREETING: "{{greeting}}"\ntimeout_seconds: 120\n');
    await page.getByRole('button', { name: "Add the configuration's placeholders" }).click();
    const set = page.getByRole('group', { name: 'Template variable greeting' });
    await set.waitFor();
    // A schema the server refuses: beside that variable's own field.
    await set.getByLabel('Type').selectOption('integer');
    const minimum = set.getByLabel('Minimum');
    await minimum.fill('5');
    await set.getByLabel('Maximum').fill('3');
    await page.getByRole('button', { name: 'Create queue' }).click();
    const minId = await minimum.getAttribute('id');
    await page.locator(`#${minId}-error`, { hasText: 'above the maximum' }).waitFor();
    check(await minimum.getAttribute('aria-invalid') === 'true', 'the minimum is marked invalid');
    check(await minimum.evaluate((el) => el === document.activeElement), 'the focus moved to the minimum');
    await minimum.fill('');
    await set.getByLabel('Maximum').fill('');
    await set.getByLabel('Type').selectOption('string');
    await set.getByLabel('Allowed values').fill('hello, bonjour');
    await set.getByLabel('Default').fill('hello');
    await set.getByLabel('Description').fill('How to greet');
    await checkAccessibility(page, 'the create form with a variable');
    await shot(page, '03-create-form');
    await page.getByRole('button', { name: 'Create queue' }).click();
    await page.getByRole('heading', { level: 1, name: `Queue ${ref}` }).waitFor();
    check(page.url().endsWith(`#/queues/${entity}/${qname}`), `the URL is the queue's (${page.url()})`);
    // What the server stored, read with the CLI (not through the app).
    const shown = await run(opt.cli, ['--uri', url, '--json', 'queue', 'show', ref], agentEnv);
    check(shown.code === 0, `launch queue show exits 0 (${shown.stderr})`);
    const qd = JSON.parse(shown.stdout);
    check(qd.resource === 'local-process', `the resource is local-process (${qd.resource})`);
    check(qd.prioritization === true, 'prioritization is on');
    check(qd.config?.env?.GREETING === '{{greeting}}' && qd.config?.timeout_seconds === 120,
      `the YAML config was stored as JSON: ${JSON.stringify(qd.config)}`);
    const v = qd.template_variables?.greeting;
    check(v && v.type === 'string' && v.default === 'hello' && v.description === 'How to greet' &&
      JSON.stringify(v.enum) === '["hello","bonjour"]', `the variable's schema was stored: ${JSON.stringify(v)}`);
  });

  await step('start an agent on the queue', async () => {
    await start(opt.agent, ['--uri', url, '-q', ref, '-v'], agentEnv, path.join(opt.artifacts, 'agent.log'), false);
  });

  let itemId = null;
  await step('push a job from the queue page', async () => {
    await checkAccessibility(page, 'the queue page');
    await page.getByLabel('Job name').fill('hello-job');
    await page.getByLabel('Image').fill('busybox:latest');
    await page.getByLabel('Command').fill('sh -c "echo hello-from-app $GREETING"');
    await page.getByLabel('greeting').selectOption('bonjour');
    await page.getByLabel('Priority').selectOption('high');
    await page.getByRole('button', { name: 'Push job' }).click();
    const row = page.locator('tbody tr', { hasText: 'hello-job' });
    await row.waitFor();
    itemId = await row.getAttribute('data-item');
    check(!!itemId, 'the pushed item is listed');
    check((await row.textContent()).includes('high'), 'the item carries priority high');
    check((await row.textContent()).includes(admin), 'the item\'s author is the signed-in user');
    await shot(page, '04-queue-page');
  });

  await step('the item reaches finished and its log shows the echo', async () => {
    await page.getByRole('link', { name: itemId }).click();
    await page.getByRole('heading', { level: 1, name: `Item ${itemId}` }).waitFor();
    check(page.url().endsWith(`#/items/${itemId}`), 'the URL is the item\'s');
    await page.locator('dd .state-finished').waitFor({ timeout: 60000 });
    const factsText = await page.locator('dl.facts').innerText();
    check(factsText.includes('busybox:latest'), `the item's source is the image given (${factsText})`);
    check(factsText.includes("sh -c 'echo hello-from-app $GREETING'"),
      `the command was split as a shell would (${factsText})`);
    await page.locator('#log', { hasText: 'hello-from-app bonjour' }).waitFor({ timeout: 20000 });
    await page.locator('#log-status', { hasText: 'complete' }).waitFor({ timeout: 20000 });
    const text = await page.locator('#log').textContent();
    check(text.trim() === 'hello-from-app bonjour', `the log is the echo, once (got ${JSON.stringify(text)})`);
    await checkAccessibility(page, 'the item page');
    await shot(page, '05-item-finished');
  });

  await step('back and forward follow the hash', async () => {
    await page.goBack();
    await page.getByRole('heading', { level: 1, name: `Queue ${ref}` }).waitFor();
    await page.locator('tbody tr', { hasText: 'hello-job' }).locator('.state-finished').waitFor();
    await page.goForward();
    await page.getByRole('heading', { level: 1, name: `Item ${itemId}` }).waitFor();
    await page.goBack();
    await page.getByRole('heading', { level: 1, name: `Queue ${ref}` }).waitFor();
    // A reload keeps the tab signed in (sessionStorage) and on the page.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: `Queue ${ref}` }).waitFor();
    check(await page.locator('#who-name').textContent() === `Signed in as ${admin} (server admin)`,
      'a reload stays signed in');
  });

  await step('the log is followed while the job runs', async () => {
    await page.getByLabel('Job name').fill('live');
    await page.getByLabel('Command').fill('sh -c "echo first-line; sleep 4; echo second-line"');
    await page.getByRole('button', { name: 'Push job' }).click();
    const row = page.locator('tbody tr', { hasText: 'live' });
    await row.waitFor();
    const id = await row.getAttribute('data-item');
    await page.getByRole('link', { name: id, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: `Item ${id}` }).waitFor();
    await page.locator('#log', { hasText: 'first-line' }).waitFor({ timeout: 60000 });
    const mid = await page.locator('#log').textContent();
    check(!mid.includes('second-line'), `the first line shows before the job ends (${JSON.stringify(mid)})`);
    check(await page.locator('dd .state-running').count() === 1, 'the item is running meanwhile');
    await page.locator('#log-status', { hasText: 'complete' }).waitFor({ timeout: 30000 });
    const text = await page.locator('#log').textContent();
    check(text === 'first-line\nsecond-line\n', `each piece is read once, in order (${JSON.stringify(text)})`);
    await page.locator('dd .state-finished').waitFor({ timeout: 5000 });
    await page.goBack();
    await page.getByRole('heading', { level: 1, name: `Queue ${ref}` }).waitFor();
  });

  await step('cancel a running job', async () => {
    await page.getByLabel('Job name').fill('sleeper');
    await page.getByLabel('Command').fill('sleep 120');
    await page.getByRole('button', { name: 'Push job' }).click();
    const row = page.locator('tbody tr', { hasText: 'sleeper' });
    await row.locator('.state-running').waitFor({ timeout: 60000 });
    const id = await row.getAttribute('data-item');
    await page.getByRole('button', { name: `Cancel item ${id}` }).click();
    await row.locator('.state-stopped').waitFor({ timeout: 60000 });
    check(await row.getByRole('button').count() === 0, 'a stopped item has no cancel button');
    await shot(page, '06-cancelled');
  });

  await step('the queue list shows the queue and its counts', async () => {
    await page.getByRole('link', { name: 'Queues', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Queues' }).waitFor();
    const row = page.locator('tbody tr', { hasText: qname });
    const cells = await row.locator('td').allTextContents();
    check(JSON.stringify(cells) === JSON.stringify([entity, qname, 'local-process', '0', '0']),
      `the row is entity, name, resource, pending, running (${cells})`);
  });

  await step('the agents page lists the agent', async () => {
    await page.getByRole('link', { name: 'Agents', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
    const row = page.locator('tbody tr', { hasText: ref });
    await row.waitFor();
    check(/polling|running/.test(await row.textContent()), 'the agent is polling or running');
    check(await page.getByRole('link', { name: 'Agents', exact: true }).getAttribute('aria-current') === 'page', 'the nav marks the page');
    await checkAccessibility(page, 'the agents page');
    await shot(page, '07-agents');
  });

  await step('a team member sees the team queue but may not create one there', async () => {
    // bob, a member (not an admin) of the team, made by the admin over the API.
    const asAdmin = async (method, route, body) => {
      const res = await fetch(`${url}/api/v1${route}`, {
        method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      check(res.ok, `${method} ${route}: ${res.status} ${text}`);
      return text ? JSON.parse(text) : null;
    };
    await asAdmin('POST', '/users', { name: 'bob' });
    await asAdmin('PUT', `/teams/${team}/members/bob`, { role: 'member' });
    const bobKey = (await asAdmin('POST', '/keys', { user: 'bob' })).key;
    const bob = await context.browser().newContext();
    const bobPage = await bob.newPage();
    bobPage.setDefaultTimeout(STEP_MS);
    bobPage.on('pageerror', (err) => consoleErrors.push(`page error (bob): ${err.message}`));
    try {
      await bobPage.goto(`${url}/`);
      await bobPage.getByLabel('API key').fill(bobKey);
      await bobPage.getByLabel('API key').press('Enter');
      await bobPage.getByRole('heading', { level: 1, name: 'Queues' }).waitFor();
      check(await bobPage.locator('#who-name').textContent() === 'Signed in as bob', 'bob is signed in');
      check(await bobPage.locator('tbody tr', { hasText: qname }).count() === 1, 'bob sees the team queue');
      const entityControl = bobPage.getByLabel('Entity', { exact: true });
      const options = await entityControl.locator('option').allTextContents();
      check(JSON.stringify(options) === JSON.stringify(['bob (you)', `${team} (team, member)`]),
        `bob's entities are his name and his team (${options})`);
      await entityControl.selectOption(team);
      const hint = await bobPage.locator(`#${await entityControl.getAttribute('id')}-hint`).textContent();
      check(/only the team's admins/i.test(hint), `a member is told who may create team queues (${hint})`);
      await bobPage.getByLabel('Queue name').fill('bobs-queue');
      await bobPage.getByLabel('Resource', { exact: true }).selectOption('local-process');
      await bobPage.getByRole('button', { name: 'Create queue' }).click();
      const err = bobPage.locator(`#${await entityControl.getAttribute('id')}-error`);
      await err.waitFor({ state: 'visible' });
      check(/may not create/.test(await err.textContent()), `the refusal is beside the entity (${await err.textContent()})`);
      check(await entityControl.evaluate((el) => el === document.activeElement), 'the focus moved to the entity');
      await shot(bobPage, '08-member-refused');
      // His own name: a private queue, which he may create.
      await entityControl.selectOption('bob');
      await bobPage.getByRole('button', { name: 'Create queue' }).click();
      await bobPage.getByRole('heading', { level: 1, name: 'Queue bob/bobs-queue' }).waitFor();
    } catch (e) {
      await shot(bobPage, 'failure-bob').catch(() => {});
      throw e;
    } finally {
      await bob.close();
    }
  });

  await step('an unknown route and signing out', async () => {
    await page.goto(`${url}/#/nowhere`);
    await page.getByRole('heading', { level: 1, name: 'No such page' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in to Launch' }).waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('launch.apiKey')) === null, 'signing out forgets the key');
  });

  check(foreign.length === 0, `nothing is fetched from another origin (${foreign.join(', ')})`);
  check(consoleErrors.length === 0, `no console errors: ${consoleErrors.join(' | ')}`);
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  await Promise.all(children.map(stop));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}

// A run never outlives its budget, and a stop from outside (ctest's
// timeout, ^C) still ends the server, the agent and the browser.
const DEADLINE_MS = 300000;
const deadline = setTimeout(async () => {
  log(`FAILED: still running after ${DEADLINE_MS / 1000} s`);
  await cleanup();
  process.exit(1);
}, DEADLINE_MS);
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => {
    log(`FAILED: stopped by ${sig}`);
    await cleanup();
    process.exit(1);
  });
}

main().finally(() => clearTimeout(deadline)).then(async () => {
  await cleanup();
  log(`${passed} checks passed`);
  process.stdout.write(`browser: ${passed} passed, 0 failed\n`);
}, async (err) => {
  log(`FAILED: ${err.stack || err.message}`);
  if (browser) {
    try {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages.length) await pages[0].screenshot({ path: path.join(opt.artifacts, 'failure.png'), fullPage: true });
    } catch { /* the failure is reported either way */ }
  }
  await cleanup();
  process.exitCode = 1;
});
