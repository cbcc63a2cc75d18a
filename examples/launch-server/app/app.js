// The Launch App: routes of the URL hash to views; sign in and out.
import * as api from './api.js';
import { h, field, announce } from './dom.js';
import { queuesView } from './queues.js';
import { queueView } from './queue.js';
import { itemView } from './item.js';
import { agentsView } from './agents.js';

// Who the key belongs to (GET /me). A server without accounts answers
// kind "none" and no entities (an older one has no /me: null).
export const session = { me: null };
export const hasAccounts = () => !!session.me && session.me.kind !== 'none';

const main = document.getElementById('main');
let cleanup = null;

function setNav(current) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function showWho() {
  const who = document.getElementById('who');
  who.hidden = !api.apiKey();
  const me = session.me;
  document.getElementById('who-name').textContent = me && me.name
    ? `Signed in as ${me.name}${me.admin ? ' (server admin)' : ''}` : 'Signed in';
}

// Replaces the page with `nodes`, titles it and moves focus to its heading.
export function render(title, nodes, { focus = true } = {}) {
  main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
  document.title = `${title} · Launch`;
  const h1 = main.querySelector('h1');
  if (h1 && focus) {
    h1.tabIndex = -1;
    h1.focus();
  }
}

function signIn(message) {
  setNav(null);
  showWho();
  const input = h('input', { type: 'password', id: 'api-key', autocomplete: 'off', required: true,
    spellcheck: 'false' });
  const f = field('API key', input, { hint: 'The key you were given (launch-server init prints the first one). It is kept in this tab only, until you sign out.' });
  if (message) f.setError(message);
  const form = h('form', { class: 'card', novalidate: true }, f.wrap,
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) {
      f.setError('Enter an API key.');
      input.focus();
      return;
    }
    api.setApiKey(key);
    try {
      await loadMe({ quiet: true });
    } catch (e) {
      api.clearApiKey();
      f.setError(e.status === 401 ? `The server refused this key: ${e.message}` : e.message);
      input.focus();
      return;
    }
    announce('Signed in.');
    showWho();
    if (!location.hash || location.hash === '#/' || location.hash === '#/sign-in') location.hash = '#/queues';
    else route();
  });
  render('Sign in', [h('h1', {}, 'Sign in to Launch'), form], { focus: false });
  input.focus();
}

async function loadMe({ quiet = false } = {}) {
  try {
    session.me = await api.get('/me', { quiet });
  } catch (e) {
    // A server without accounts has no /me: it takes any key.
    if (e.status === 404) session.me = null;
    else throw e;
  }
}

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  if (!api.apiKey()) {
    signIn();
    return;
  }
  showWho();
  const path = (location.hash.replace(/^#/, '') || '/queues').split('/').filter(Boolean)
    .map(decodeURIComponent);
  try {
    if (path[0] === 'queues' && path.length === 1) {
      setNav('queues');
      cleanup = await queuesView();
    } else if (path[0] === 'queues' && path.length === 3) {
      setNav('queues');
      cleanup = await queueView(path[1], path[2]);
    } else if (path[0] === 'items' && path.length === 2) {
      setNav('queues');
      cleanup = await itemView(path[1]);
    } else if (path[0] === 'agents' && path.length === 1) {
      setNav('agents');
      cleanup = await agentsView();
    } else {
      setNav(null);
      render('Not found', [h('h1', {}, 'No such page'),
        h('p', {}, 'Nothing is at ', h('code', {}, location.hash), '. ',
          h('a', { href: '#/queues' }, 'See the queues'), '.')]);
    }
  } catch (e) {
    if (e.status === 401) return;
    render('Error', [h('h1', {}, 'Something went wrong'), h('p', { class: 'error' }, e.message)]);
  }
}

api.setUnauthorizedHandler((err) => {
  api.clearApiKey();
  session.me = null;
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  signIn(`Signed out: ${err.message}`);
});

document.getElementById('sign-out').addEventListener('click', () => {
  api.clearApiKey();
  session.me = null;
  announce('Signed out.');
  location.hash = '#/sign-in';
  route();
});

window.addEventListener('hashchange', route);

(async () => {
  if (api.apiKey()) {
    try {
      await loadMe({ quiet: true });
    } catch (e) {
      api.clearApiKey();
      signIn(e.status === 401 ? `Signed out: ${e.message}` : e.message);
      return;
    }
  }
  route();
})();
