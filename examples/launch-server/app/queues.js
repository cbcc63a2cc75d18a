// #/queues: the queue list and the form that creates a queue.
import * as api from './api.js';
import { h, field, select, announce, newId } from './dom.js';
import { render, session, hasAccounts } from './app.js';

async function counts(ref) {
  const [pending, running] = await Promise.all(['pending', 'running'].map((state) =>
    api.get(`/items?queue=${encodeURIComponent(ref)}&state=${state}`).then((a) => a.length)));
  return { pending, running };
}

function queueTable(queues, tally) {
  if (!queues.length) return h('p', {}, 'No queues yet: create one below.');
  return h('table', {},
    h('caption', { class: 'hint' }, `${queues.length} queue${queues.length === 1 ? '' : 's'}`),
    h('thead', {}, h('tr', {}, ['Entity', 'Name', 'Resource'].map((t) => h('th', { scope: 'col' }, t)),
      h('th', { scope: 'col', class: 'num' }, 'Pending'), h('th', { scope: 'col', class: 'num' }, 'Running'))),
    h('tbody', {}, queues.map((qd, i) => {
      const ref = `${qd.entity}/${qd.name}`;
      return h('tr', {},
        h('td', {}, qd.entity),
        h('td', {}, h('a', { href: `#/queues/${api.q(ref)}` }, qd.name)),
        h('td', {}, qd.resource),
        h('td', { class: 'num' }, tally[i].pending),
        h('td', { class: 'num' }, tally[i].running));
    })));
}

// The value of a schema's text field as its type: 8 for an integer "8".
function typed(type, text, what) {
  if (type === 'string') return text;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (type === 'integer' && !Number.isInteger(n))) {
    throw new Error(`${what} "${text}" is not ${type === 'integer' ? 'an integer' : 'a number'}`);
  }
  return n;
}

function variableRow(onRemove, preset = {}) {
  const name = field('Name', h('input', { type: 'text', value: preset.name ?? '', spellcheck: 'false' }),
    { hint: 'As written in {{name}}.' });
  const type = field('Type', select([['string', 'string'], ['integer', 'integer'], ['number', 'number']]));
  const min = field('Minimum', h('input', { type: 'number', step: 'any' }), { hint: 'Numbers only.' });
  const max = field('Maximum', h('input', { type: 'number', step: 'any' }), { hint: 'Numbers only.' });
  const en = field('Allowed values', h('input', { type: 'text' }), { hint: 'Comma-separated; empty: any.' });
  const def = field('Default', h('input', { type: 'text' }), { hint: 'Empty: a push must give it.' });
  const desc = field('Description', h('input', { type: 'text' }), { wide: true });
  const legend = h('legend', {}, 'Template variable');
  const remove = h('button', { type: 'button', class: 'danger' }, 'Remove this variable');
  const set = h('fieldset', { class: 'var' }, legend, name.wrap, type.wrap, min.wrap, max.wrap,
    en.wrap, def.wrap, desc.wrap, h('div', { class: 'wide' }, remove));
  const relabel = () => {
    const n = name.control.value.trim();
    legend.textContent = n ? `Template variable ${n}` : 'Template variable';
    remove.textContent = n ? `Remove variable ${n}` : 'Remove this variable';
  };
  name.control.addEventListener('input', relabel);
  relabel();
  remove.addEventListener('click', () => onRemove(row));
  const fields = [name, type, min, max, en, def, desc];
  const byKey = { type, minimum: min, maximum: max, enum: en, default: def, description: desc };
  const row = {
    // The control of a schema key ("default"), for the server's errors.
    fieldFor: (key) => byKey[key] ?? name,
    el: set,
    first: name.control,
    name: () => name.control.value.trim(),
    clear: () => fields.forEach((f) => f.setError('')),
    // The schema, or throws { field, message } naming the control at fault.
    schema() {
      const n = name.control.value.trim();
      if (!n) throw { f: name, message: 'Give the variable a name.' };
      const t = type.control.value;
      const s = { type: t };
      for (const [f, key] of [[min, 'minimum'], [max, 'maximum']]) {
        const v = f.control.value.trim();
        if (!v) continue;
        if (t === 'string') throw { f, message: `${key} applies to integer and number variables only` };
        s[key] = Number(v);
      }
      const e = en.control.value.trim();
      if (e) {
        try {
          s.enum = e.split(',').map((x) => x.trim()).filter((x) => x !== '').map((x) => typed(t, x, 'allowed value'));
        } catch (err) { throw { f: en, message: err.message }; }
      }
      const d = def.control.value;
      if (d.trim() !== '') {
        try { s.default = typed(t, d.trim(), 'default'); } catch (err) { throw { f: def, message: err.message }; }
      }
      const ds = desc.control.value.trim();
      if (ds) s.description = ds;
      return [n, s];
    },
  };
  return row;
}

// The field a refusal of a new queue concerns: the error's own `field`,
// the entity for a 403, else what its message starts with ("queue name ...", "entity ...",
// "template variable "X": default ..."); "" for the configuration.
export function errorField(e) {
  if (e.field) return e.field;
  // Who may create a queue depends on its entity alone.
  if (e.status === 403) return 'entity';
  const m = e.message;
  if (/^queue name "/.test(m)) return 'name';
  if (/^entity "/.test(m)) return 'entity';
  const v = /template variable "([^"]+)": (minimum|maximum|default|enum value)?/.exec(m);
  if (v) return `template_variables.${v[1]}${v[2] ? `.${v[2] === 'enum value' ? 'enum' : v[2]}` : ''}`;
  return '';
}

function createForm(resources, onCreated) {
  const me = session.me;
  // The entity: the signed-in user and their teams. A server without
  // accounts (no /me) takes any entity name.
  const entities = hasAccounts() ? me.entities ?? [] : [];
  const entityControl = entities.length
    ? select(entities.map((e) => [e.name, e.kind === 'user' ? `${e.name} (you)` : `${e.name} (team, ${e.role})`]), { required: true })
    : h('input', { type: 'text', required: true, spellcheck: 'false' });
  const entity = field('Entity', entityControl, { hint: 'Your own name makes a private queue; a team makes one shared with the team.' });
  const explain = () => {
    const e = entities.find((x) => x.name === entityControl.value);
    if (!e) return;
    entity.hint.textContent = e.kind === 'user'
      ? `Your own name: a private queue, only you (and admins) see and use it.`
      : `Team ${e.name}: a queue shared with every member of the team.${e.role === 'member'
        ? ' Only the team\'s admins may create one.' : ''}`;
  };
  entityControl.addEventListener('change', explain);
  explain();
  const name = field('Queue name', h('input', { type: 'text', required: true, spellcheck: 'false',
    pattern: '[A-Za-z0-9._\\-]+' }), { hint: 'Letters, digits, ".", "_" and "-".' });
  const resourceControl = resources
    ? select(resources.map((r) => [r, r]), { required: true })
    : h('input', { type: 'text', required: true, value: 'local-process' });
  // The runner that needs nothing set up is the first choice shown.
  if (resources && resources.includes('local-process')) resourceControl.value = 'local-process';
  const resource = field('Resource', resourceControl, { hint: 'The runner that runs this queue\'s jobs.' });
  const prio = field('Prioritization', h('input', { type: 'checkbox', role: 'switch' }),
    { inline: true, hint: 'On: jobs carry a priority (critical, high, medium, low) and run in that order.' });
  const config = field('Configuration (JSON or YAML)', h('textarea', { rows: 10, spellcheck: 'false' }),
    { hint: 'The runner\'s settings. {{name}} is a template variable, filled in when a job is pushed; in YAML, quote a value that holds one: "{{name}}".' });
  const varsBox = h('div');
  const varsError = h('p', { class: 'error', id: newId('vars-error'), hidden: true });
  const rows = [];
  const removeRow = (row) => {
    rows.splice(rows.indexOf(row), 1);
    row.el.remove();
    addVar.focus();
    announce('Variable removed.');
  };
  const addRow = (preset) => {
    const row = variableRow(removeRow, preset);
    rows.push(row);
    varsBox.append(row.el);
    return row;
  };
  const addVar = h('button', { type: 'button', class: 'secondary' }, 'Add a template variable');
  addVar.addEventListener('click', () => addRow().first.focus());
  const fromConfig = h('button', { type: 'button', class: 'secondary' }, 'Add the configuration\'s placeholders');
  fromConfig.addEventListener('click', () => {
    const have = new Set(rows.map((r) => r.name()));
    const added = [];
    for (const m of config.control.value.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) {
      if (!have.has(m[1])) {
        have.add(m[1]);
        added.push(addRow({ name: m[1] }));
      }
    }
    if (added.length) added[0].first.focus();
    announce(added.length ? `Added ${added.length} variable${added.length === 1 ? '' : 's'}.` : 'No new placeholders in the configuration.');
  });
  const vars = h('fieldset', { 'aria-describedby': varsError.id },
    h('legend', {}, 'Template variables'),
    h('p', { class: 'hint' }, 'Each {{name}} in the configuration needs a schema here.'),
    varsBox, varsError, h('div', { class: 'actions' }, addVar, fromConfig));
  const submit = h('button', { type: 'submit' }, 'Create queue');
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'create-heading' },
    h('h2', { id: 'create-heading' }, 'Create a queue'),
    entity.wrap, name.wrap, resource.wrap, prio.wrap, config.wrap, vars, submit);

  const byField = { entity, name, resource, prioritization: prio, config };
  const clear = () => {
    Object.values(byField).forEach((f) => f.setError(''));
    varsError.hidden = true;
    rows.forEach((r) => r.clear());
  };
  const show = (f, message) => {
    f.setError(message);
    f.control.focus();
    announce(`Not created: ${message}`);
  };
  const showVars = (message) => {
    varsError.textContent = message;
    varsError.hidden = false;
    (rows[0]?.first ?? addVar).focus();
    announce(`Not created: ${message}`);
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear();
    if (!entityControl.value.trim()) return show(entity, 'Choose an entity.');
    if (!name.control.value.trim()) return show(name, 'Give the queue a name.');
    const template_variables = {};
    for (const row of rows) {
      try {
        const [n, s] = row.schema();
        if (template_variables[n]) throw { f: null, message: `variable "${n}" is defined twice` };
        template_variables[n] = s;
      } catch (err) {
        if (err.f) return show(err.f, err.message);
        return showVars(err.message);
      }
    }
    const body = {
      entity: entityControl.value.trim(),
      name: name.control.value.trim(),
      resource: resourceControl.value.trim(),
      prioritization: prio.control.checked,
      template_variables,
    };
    if (config.control.value.trim()) body.config = config.control.value;
    submit.disabled = true;
    try {
      const created = await api.post('/queues', body);
      announce(`Queue ${created.entity}/${created.name} created.`);
      onCreated(created);
    } catch (e) {
      if (e.status === 401) return;
      const [key, varName, varKey] = errorField(e).split('.');
      const row = key === 'template_variables' && rows.find((r) => r.name() === varName);
      if (row) show(row.fieldFor(varKey), e.message);
      else if (key === 'template_variables') showVars(e.message);
      else show(byField[key] ?? config, e.message);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function queuesView() {
  const [queues, resources] = await Promise.all([
    api.get('/queues'),
    api.get('/resources').then((r) => r.resources).catch((e) => {
      if (e.status === 404) return null;  // a server that does not list them
      throw e;
    }),
  ]);
  const tally = await Promise.all(queues.map((qd) => counts(`${qd.entity}/${qd.name}`)));
  const notice = hasAccounts() ? null : h('p', { class: 'notice' },
    'This server has no accounts: any entity name may be given.');
  render('Queues', [
    h('h1', {}, 'Queues'),
    notice,
    queueTable(queues, tally),
    createForm(resources, (created) => {
      location.hash = `#/queues/${api.q(`${created.entity}/${created.name}`)}`;
    }),
  ]);
  return null;
}
