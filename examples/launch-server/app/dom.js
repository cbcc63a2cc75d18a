// Small DOM helpers. Text always goes in as text, never as markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let uid = 0;
export const newId = (base) => `${base}-${++uid}`;

// Says `message` through the page's live region.
let announceTimer = null;
export function announce(message) {
  const s = document.getElementById('status');
  s.textContent = '';
  clearTimeout(announceTimer);
  // A fresh text node, so the same message twice is read twice; gone after
  // a while, so an old message never stands beside a new page.
  announceTimer = setTimeout(() => {
    s.textContent = message;
    announceTimer = setTimeout(() => { s.textContent = ''; }, 8000);
  }, 30);
}

// A labelled control with a hint and a place for its error:
// returns { wrap, control, error, setError(msg) }.
export function field(label, control, { hint, inline = false, wide = false } = {}) {
  const id = control.id || newId('f');
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const errorEl = h('p', { class: 'error', id: `${id}-error`, hidden: true });
  const labelEl = h('label', { for: id }, label);
  const wrap = h('div', { class: `field${inline ? ' inline' : ''}${wide ? ' wide' : ''}` },
    inline ? [control, labelEl] : [labelEl, control], hintEl, errorEl);
  const describe = () => {
    const ids = [];
    if (hintEl) ids.push(hintEl.id);
    if (!errorEl.hidden) ids.push(errorEl.id);
    if (ids.length) control.setAttribute('aria-describedby', ids.join(' '));
    else control.removeAttribute('aria-describedby');
  };
  describe();
  const result = {
    wrap, control, error: errorEl, hint: hintEl,
    setError(msg) {
      errorEl.textContent = msg || '';
      errorEl.hidden = !msg;
      if (msg) control.setAttribute('aria-invalid', 'true');
      else control.removeAttribute('aria-invalid');
      describe();
    },
  };
  // An edit answers the error: it goes until the next submit says otherwise.
  const clear = () => { if (!errorEl.hidden) result.setError(''); };
  control.addEventListener('input', clear);
  control.addEventListener('change', clear);
  return result;
}

export function select(options, attrs = {}) {
  return h('select', attrs, options.map(([value, text]) => h('option', { value }, text)));
}

// "3 min ago" from a time in milliseconds.
export function age(ms, now = Date.now()) {
  if (!ms) return '';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function time(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleString());
}

export const TERMINAL = new Set(['finished', 'failed', 'stopped']);

export function stateBadge(state) {
  return h('span', { class: `state state-${state}` }, state);
}
