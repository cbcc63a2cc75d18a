// #/items/ID: one item, its state, error and warnings, and its live log.
import * as api from './api.js';
import { h, announce, time, stateBadge, TERMINAL, select, field } from './dom.js';
import { render } from './app.js';

// A word as a shell would need it written: quoted when it holds more
// than plain characters.
function quoted(word) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function facts(it) {
  const src = it.spec?.source ?? it.spec ?? {};
  const source = src.image ?? (src.git_url ? `${src.git_url}${src.git_ref ? `@${src.git_ref}` : ''}` : src.code_dir ?? '');
  const pairs = [
    ['Queue', h('a', { href: `#/queues/${api.q(it.queue)}` }, it.queue)],
    ['Name', it.spec?.name ?? ''],
    ['State', stateBadge(it.state)],
    ['Priority', it.priority ?? ''],
    ['Author', it.spec?.author ?? ''],
    ['Source', source],
    ['Command', h('code', {}, [...(it.spec?.entry_point ?? []), ...(it.spec?.args ?? [])].map(quoted).join(' '))],
    ['Template values', Object.entries(it.spec?.template_values ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')],
    ['Attempt', it.attempt ?? ''],
    ['Agent', it.agent_id ?? ''],
    ['Run', it.run_id ?? ''],
    ['Created', time(it.created_at)],
    ['Started', time(it.started_at)],
    ['Ended', time(it.ended_at)],
    ['Exit code', it.exit_code ?? ''],
  ];
  return pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]);
}

function problems(it) {
  const out = [];
  if (it.error) {
    out.push(h('h2', {}, 'Error'),
      h('p', { class: 'error' }, `${it.error.stage ? `${it.error.stage}: ` : ''}${it.error.message ?? ''}`));
  }
  if (it.warnings && it.warnings.length) {
    out.push(h('h2', {}, 'Warnings'), h('ul', {}, it.warnings.map((w) =>
      h('li', {}, typeof w === 'string' ? w : (w.message ?? JSON.stringify(w))))));
  }
  return out;
}

export async function itemView(id) {
  let item = await api.get(`/items/${encodeURIComponent(id)}`);
  const dl = h('dl', { class: 'facts' }, facts(item));
  const extra = h('div', {}, problems(item));
  const cancel = h('button', { type: 'button', class: 'danger', hidden: TERMINAL.has(item.state) }, 'Cancel this item');
  const logPre = h('pre', { class: 'log', id: 'log', tabindex: '0', 'aria-label': 'Log' });
  const logStatus = h('p', { class: 'hint', id: 'log-status', role: 'status' }, 'Loading the log…');
  const stream = field('Stream', select([['stdout', 'stdout'], ['stderr', 'stderr'], ['build', 'build']]));
  let stopped = false;
  let lastState = item.state;
  const decoder = { d: new TextDecoder() };
  let offset = 0, complete = false, logTimer = null, generation = 0;

  const pollLog = async () => {
    const mine = generation;
    logTimer = null;
    try {
      const chunk = await api.logChunk(id, stream.control.value, offset);
      if (stopped || mine !== generation) return;
      if (chunk.bytes.length) {
        logPre.append(decoder.d.decode(chunk.bytes, { stream: !chunk.complete }));
        logPre.scrollTop = logPre.scrollHeight;
      }
      offset = chunk.next;
      complete = chunk.complete;
      // A complete log means the item ended: show that now, not a tick later.
      if (complete && !TERMINAL.has(item.state)) refresh();
      logStatus.textContent = complete
        ? `The log is complete (${offset} bytes).`
        : `Following the log (${offset} bytes so far)…`;
    } catch (e) {
      if (stopped || mine !== generation || e.status === 401) return;
      logStatus.textContent = `Could not read the log: ${e.message}`;
      if (e.status === 404 || e.status === 501) return;  // no log to follow here
    }
    if (!complete && !stopped && mine === generation) logTimer = setTimeout(pollLog, 1000);
  };
  stream.control.addEventListener('change', () => {
    generation++;
    if (logTimer) clearTimeout(logTimer);
    offset = 0;
    complete = false;
    decoder.d = new TextDecoder();
    logPre.replaceChildren();
    logStatus.textContent = 'Loading the log…';
    pollLog();
  });

  const refresh = async () => {
    try {
      item = await api.get(`/items/${encodeURIComponent(id)}`);
    } catch (e) {
      return;
    }
    if (stopped) return;
    dl.replaceChildren(...facts(item));
    extra.replaceChildren(...problems(item));
    if (item.state !== lastState) {
      announce(`Item ${id} is ${item.state}.`);
      lastState = item.state;
    }
    if (TERMINAL.has(item.state)) {
      if (document.activeElement === cancel) logPre.focus();
      cancel.hidden = true;
    }
  };
  cancel.addEventListener('click', async () => {
    try {
      await api.post(`/items/${encodeURIComponent(id)}/cancel`);
      announce(`Cancelling item ${id}.`);
    } catch (e) {
      if (e.status !== 401) announce(`Not cancelled: ${e.message}`);
    }
    refresh();
  });

  render(`Item ${id}`, [
    h('p', {}, h('a', { href: `#/queues/${api.q(item.queue)}` }, `Queue ${item.queue}`)),
    h('h1', {}, `Item ${id}`),
    dl, h('div', { class: 'actions' }, cancel), extra,
    h('h2', {}, 'Log'), stream.wrap, logStatus, logPre,
  ]);
  pollLog();
  const timer = setInterval(() => {
    if (!TERMINAL.has(item.state)) refresh();
  }, 1500);
  return () => {
    stopped = true;
    clearInterval(timer);
    if (logTimer) clearTimeout(logTimer);
  };
}
