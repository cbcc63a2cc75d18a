// #/queues/ENTITY/NAME: the queue's items, pushing a job, cancelling.
import * as api from './api.js';
import { h, field, select, announce, age, stateBadge, TERMINAL } from './dom.js';
import { render } from './app.js';

// Splits a command line into words as a POSIX shell would quote them:
// 'single', "double" (with \" \\ \$ \`), and backslash escapes.
export function shellWords(line) {
  const words = [];
  let cur = '', inWord = false, i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('a single quote is not closed');
      cur += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new Error('a double quote is not closed');
        const d = line[i];
        if (d === '"') { i++; break; }
        if (d === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) { cur += line[i + 1]; i += 2; continue; }
        cur += d;
        i++;
      }
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 < line.length) cur += line[i + 1];
      inWord = true;
      i += 2;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      i++;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

function itemRows(items, onCancel) {
  const now = Date.now();
  return items.map((it) => h('tr', { 'data-item': it.id },
    h('td', {}, h('a', { href: `#/items/${encodeURIComponent(it.id)}` }, it.id)),
    h('td', {}, it.spec?.name ?? ''),
    h('td', {}, stateBadge(it.state)),
    h('td', {}, it.priority ?? ''),
    h('td', {}, it.spec?.author ?? ''),
    h('td', {}, age(it.created_at, now)),
    h('td', {}, TERMINAL.has(it.state) ? ''
      : h('button', { type: 'button', class: 'danger', 'data-cancel': it.id,
        'aria-label': `Cancel item ${it.id}`, onclick: () => onCancel(it.id) }, 'Cancel'))));
}

function pushForm(queue, onPushed) {
  const ref = `${queue.entity}/${queue.name}`;
  const name = field('Job name', h('input', { type: 'text', spellcheck: 'false' }), { hint: 'Optional.' });
  const image = field('Image', h('input', { type: 'text', spellcheck: 'false' }),
    { hint: 'The container image (a local-process queue runs the command on the agent\'s machine and only records it).' });
  const command = field('Command', h('input', { type: 'text', spellcheck: 'false' }),
    { hint: 'The entry point, split into words as a shell would: sh -c "echo hi".' });
  const vars = Object.entries(queue.template_variables ?? {});
  const valueFields = {};
  const varControls = vars.map(([n, s]) => {
    let control;
    if (s.enum && s.enum.length) {
      control = select([['', s.default !== undefined ? `(default: ${s.default})` : '(choose)'], ...s.enum.map((v) => [String(v), String(v)])]);
    } else {
      control = h('input', {
        type: s.type === 'string' ? 'text' : 'number',
        step: s.type === 'integer' ? '1' : 'any',
        min: s.minimum, max: s.maximum,
        placeholder: s.default !== undefined ? String(s.default) : undefined,
      });
    }
    const bits = [s.type];
    if (s.minimum !== undefined) bits.push(`at least ${s.minimum}`);
    if (s.maximum !== undefined) bits.push(`at most ${s.maximum}`);
    if (s.default !== undefined) bits.push(`default ${s.default}`);
    else bits.push('required');
    const f = field(n, control, { hint: `${s.description ? `${s.description} ` : ''}(${bits.join(', ')})` });
    valueFields[n] = f;
    return f.wrap;
  });
  const varsSet = vars.length
    ? h('fieldset', {}, h('legend', {}, 'Template values'), varControls) : null;
  const priority = queue.prioritization
    ? field('Priority', select([['', 'the queue\'s default'], ['critical', 'critical'], ['high', 'high'], ['medium', 'medium'], ['low', 'low']]))
    : null;
  const formError = h('p', { class: 'error', id: 'push-error', hidden: true });
  const submit = h('button', { type: 'submit', 'aria-describedby': 'push-error' }, 'Push job');
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'push-heading' },
    h('h2', { id: 'push-heading' }, 'Push a job'),
    name.wrap, image.wrap, command.wrap, varsSet, priority?.wrap, formError, submit);
  const all = [name, image, command, priority, ...Object.values(valueFields)].filter(Boolean);
  const show = (f, message) => {
    if (f) {
      f.setError(message);
      f.control.focus();
    } else {
      formError.textContent = message;
      formError.hidden = false;
      submit.focus();
    }
    announce(`Not pushed: ${message}`);
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    all.forEach((f) => f.setError(''));
    formError.hidden = true;
    let argv;
    try {
      argv = shellWords(command.control.value);
    } catch (e) {
      return show(command, `The command: ${e.message}.`);
    }
    if (!argv.length) return show(command, 'Give the command to run.');
    const spec = { entry_point: argv };
    if (name.control.value.trim()) spec.name = name.control.value.trim();
    // The job spec's one JSON form (docs/api.md) names the source flat:
    // image, git_url and git_ref, or code_dir.
    if (image.control.value.trim()) spec.image = image.control.value.trim();
    const values = {};
    for (const [n, f] of Object.entries(valueFields)) {
      const v = f.control.value.trim();
      if (v !== '') values[n] = v;
    }
    if (Object.keys(values).length) spec.template_values = values;
    if (priority && priority.control.value) spec.priority = priority.control.value;
    submit.disabled = true;
    try {
      const item = await api.post(`/queues/${api.q(ref)}/items`, spec);
      announce(`Pushed item ${item.id}.`);
      onPushed(item);
    } catch (e) {
      if (e.status === 401) return;
      const path = e.field ?? '';
      const [key, sub] = path.split(/[.[]/);
      let f = null;
      if (key === 'template_values') f = valueFields[sub] ?? null;
      else if (key === 'image' || key === 'source') f = image;
      else if (key === 'entry_point' || key === 'args') f = command;
      else if (key === 'name') f = name;
      else if (key === 'priority') f = priority;
      show(f, e.message);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function queueView(entity, qname) {
  const ref = `${entity}/${qname}`;
  const [queue, items] = await Promise.all([
    api.get(`/queues/${api.q(ref)}`),
    api.get(`/items?queue=${encodeURIComponent(ref)}&limit=200`),
  ]);
  const tbody = h('tbody');
  const empty = h('p', {}, 'No items yet.');
  const table = h('table', {},
    h('caption', { class: 'hint' }, 'Items, newest first (the latest 200)'),
    h('thead', {}, h('tr', {}, ['Item', 'Name', 'State', 'Priority', 'Author', 'Age', 'Actions']
      .map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  let stopped = false;
  const cancel = async (id) => {
    try {
      const it = await api.post(`/items/${encodeURIComponent(id)}/cancel`);
      announce(`Item ${id} is ${it.state}.`);
    } catch (e) {
      if (e.status !== 401) announce(`Not cancelled: ${e.message}`);
    }
    refresh();
  };
  const fill = (list) => {
    list.sort((a, b) => (b.created_at ?? 0) - (a.created_at ?? 0));
    // Focus stays on the same item's control across a refresh.
    const focused = document.activeElement?.dataset?.cancel;
    tbody.replaceChildren(...itemRows(list, cancel));
    table.hidden = !list.length;
    empty.hidden = !!list.length;
    if (focused) {
      const again = tbody.querySelector(`[data-cancel="${CSS.escape(focused)}"]`);
      (again ?? table).focus?.();
    }
  };
  const refresh = async () => {
    try {
      const list = await api.get(`/items?queue=${encodeURIComponent(ref)}&limit=200`);
      if (!stopped) fill(list);
    } catch (e) {
      if (e.status !== 401) announce(`Could not refresh the items: ${e.message}`);
    }
  };
  fill(items);
  const vars = Object.entries(queue.template_variables ?? {});
  render(`Queue ${ref}`, [
    h('p', {}, h('a', { href: '#/queues' }, 'All queues')),
    h('h1', {}, `Queue ${ref}`),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Resource'), h('dd', {}, queue.resource),
      h('dt', {}, 'Prioritization'), h('dd', {}, queue.prioritization ? 'on' : 'off'),
      h('dt', {}, 'Lease'), h('dd', {}, `${queue.lease_seconds} s`),
      h('dt', {}, 'Attempts'), h('dd', {}, String(queue.max_attempts)),
      h('dt', {}, 'Template variables'), h('dd', {}, vars.length ? vars.map(([n, s]) => `${n} (${s.type})`).join(', ') : 'none')),
    h('h2', {}, 'Configuration'),
    h('pre', { class: 'config', tabindex: '0', 'aria-label': 'Configuration' }, JSON.stringify(queue.config ?? {}, null, 2)),
    h('h2', {}, 'Items'),
    table, empty,
    pushForm(queue, () => refresh()),
  ]);
  const timer = setInterval(refresh, 2000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
