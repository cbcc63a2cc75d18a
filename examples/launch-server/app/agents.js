// #/agents: the agents the store knows, refreshed every few seconds.
import * as api from './api.js';
import { h, age } from './dom.js';
import { render } from './app.js';

function rows(agents) {
  const now = Date.now();
  return agents.map((a) => h('tr', {},
    h('td', {}, a.id), h('td', {}, a.host), h('td', { class: 'num' }, a.pid),
    h('td', {}, a.version), h('td', {}, a.entity ?? ''), h('td', {}, (a.queues ?? []).join(', ')),
    h('td', {}, h('span', { class: `state state-${a.status}` }, a.status)),
    h('td', { class: 'num' }, `${a.running_jobs ?? 0} / ${a.max_jobs < 0 ? 'any' : a.max_jobs}`),
    h('td', {}, age(a.started_at, now)), h('td', {}, age(a.last_seen, now))));
}

export async function agentsView() {
  const agents = await api.get('/agents');
  const tbody = h('tbody', {}, rows(agents));
  const empty = h('p', { hidden: agents.length > 0 }, 'No agent has registered yet.');
  const table = h('table', { hidden: agents.length === 0 },
    h('thead', {}, h('tr', {}, ['Agent', 'Host', 'PID', 'Version', 'Entity', 'Queues', 'Status', 'Jobs', 'Started', 'Last seen']
      .map((t) => h('th', { scope: 'col' }, t)))), tbody);
  render('Agents', [h('h1', {}, 'Agents'), table, empty]);
  const timer = setInterval(async () => {
    try {
      const list = await api.get('/agents');
      tbody.replaceChildren(...rows(list));
      table.hidden = !list.length;
      empty.hidden = !!list.length;
    } catch { /* the next tick tries again; a 401 signs out */ }
  }, 3000);
  return () => clearInterval(timer);
}
