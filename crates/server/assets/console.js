// The console: the caller's jobs with live progress, a form to post a customer CSV, and links to
// each report and export. No framework, no build step; every request goes to this origin.
import { readEvents } from '/ui/sse.js';

const KEY = 'icp-api-key';
const STAGES = ['resolve', 'enrich', 'analyze', 'map', 'find', 'validate'];
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const EVENTS_PATH = '/v1/jobs/{id}/events';
const POLL_MS = 1000;

const $ = (id) => document.getElementById(id);
/** id → { job, row, watching } */
const jobs = new Map();
let nextPage = null;
let eventsServed = null;

class NeedKey extends Error {}

function apiKey() {
  return sessionStorage.getItem(KEY);
}

/** fetch() on this origin with the key, if there is one; a 401 asks for a key. */
async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  const key = apiKey();
  if (key) headers.set('Authorization', `Bearer ${key}`);
  const response = await fetch(path, { ...init, headers, cache: 'no-store' });
  if (response.status === 401) {
    askForKey(key ? 'The service refused this key.' : null);
    throw new NeedKey();
  }
  return response;
}

/** The problem+json detail of an error answer, or its status line. */
async function problemText(response) {
  try {
    const problem = await response.json();
    const fields = (problem.errors || []).map((e) => `${e.location || ''} ${e.message || ''}`.trim());
    return [problem.detail || problem.title, ...fields].filter(Boolean).join('; ');
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function show(element, visible) {
  element.hidden = !visible;
}

function askForKey(message) {
  show($('main'), false);
  show($('key-panel'), true);
  show($('forget-key'), false);
  const error = $('key-error');
  error.textContent = message || '';
  show(error, Boolean(message));
  $('key').focus();
}

// ---- progress ---------------------------------------------------------------------------

/** Stages done out of all six, plus the running stage's done / total. */
export function progressOf(job) {
  if (job.status === 'succeeded') return 1;
  const p = job.progress || {};
  let done = STAGES.filter((s) => p[s] && p[s].finished_at).length;
  const running = job.stage && p[job.stage];
  if (running && !running.finished_at && running.total > 0) {
    done += Math.min(running.done / running.total, 1);
  }
  return Math.min(done / STAGES.length, 1);
}

function progressLabel(job, fraction) {
  const pct = `${Math.floor(fraction * 100)}%`;
  if (TERMINAL.has(job.status) || !job.stage) return pct;
  const s = (job.progress || {})[job.stage] || {};
  const count = s.total > 0 ? ` ${s.done}/${s.total}` : '';
  return `${pct} · ${job.stage}${count}`;
}

// ---- rendering ---------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

/** A link to `path` on this service: plain when there is no key, else fetched with it. */
function link(text, path, how) {
  const a = el('a', { href: path }, text);
  if (how === 'download') a.setAttribute('download', '');
  a.addEventListener('click', (event) => {
    if (!apiKey()) return; // the browser opens it itself
    event.preventDefault();
    openWithKey(path, how).catch((e) => reportError(e));
  });
  if (how !== 'download') a.target = '_blank';
  return a;
}

/** Fetches `path` with the key and opens it (or saves it) from a blob URL. */
async function openWithKey(path, how) {
  const response = await api(path);
  if (!response.ok) throw new Error(await problemText(response));
  let blob;
  if (how === 'report') {
    // A blob document has no base URL: make the report's links absolute first.
    const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
    for (const a of doc.querySelectorAll('a[href^="/"]')) {
      a.setAttribute('href', new URL(a.getAttribute('href'), location.origin).href);
    }
    blob = new Blob([`<!DOCTYPE html>\n${doc.documentElement.outerHTML}`], { type: 'text/html' });
  } else {
    blob = await response.blob();
  }
  const url = URL.createObjectURL(blob);
  if (how === 'download') {
    const name = /filename="([^"]+)"/.exec(response.headers.get('content-disposition') || '');
    const a = el('a', { href: url, download: name ? name[1] : 'export' });
    document.body.append(a);
    a.click();
    a.remove();
  } else {
    window.open(url, '_blank');
  }
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function reportError(error) {
  if (error instanceof NeedKey) return;
  const p = $('job-error');
  p.textContent = String(error.message || error);
  show(p, true);
}

function renderRow(entry) {
  const { job } = entry;
  const fraction = progressOf(job);
  const bar = el('progress', { max: '100', 'data-job': job.id });
  bar.value = Math.round(fraction * 100);
  bar.setAttribute('data-status', job.status);
  const cells = [
    el('td', {}, el('code', { title: job.id }, job.id.slice(0, 8))),
    el('td', {}, new Date(job.created_at).toLocaleString()),
    el('td', { class: `status status-${job.status}` }, job.status,
      job.error && job.error.detail ? el('span', { class: 'progress-label' }, job.error.detail) : ''),
    el('td', { class: 'progress' }, bar, el('span', { class: 'progress-label' }, progressLabel(job, fraction))),
    el('td', { class: 'links' }, ...links(entry)),
  ];
  const row = el('tr', { 'data-job': job.id }, ...cells);
  if (entry.row) entry.row.replaceWith(row);
  entry.row = row;
  return row;
}

function links(entry) {
  const { job } = entry;
  const out = [link('job', `/v1/jobs/${job.id}`, 'open')];
  if (job.status !== 'succeeded') return out;
  out.push(link('report', `/v1/jobs/${job.id}/report`, 'report'));
  out.push(link('result', `/v1/jobs/${job.id}/result`, 'open'));
  for (const audience of entry.audiences || []) {
    out.push(el('span', { class: 'audience' }, `${audience.name}: `,
      link('CSV', audience.exports.csv, 'download'), ' ',
      link('JSON', audience.exports.json, 'download'), ' ',
      link('JSONL', audience.exports.jsonl, 'download')));
  }
  return out;
}

function update(job) {
  let entry = jobs.get(job.id);
  if (!entry) {
    entry = { job, row: null, watching: false };
    jobs.set(job.id, entry);
  }
  entry.job = { ...entry.job, ...job };
  renderRow(entry);
  return entry;
}

function place(entry, first) {
  const body = document.querySelector('#jobs tbody');
  if (first) body.prepend(entry.row);
  else body.append(entry.row);
  show($('no-jobs'), false);
}

// ---- live progress -------------------------------------------------------------------------

/** Whether this service serves job events (its OpenAPI document says so), asked once. */
async function eventsAvailable() {
  if (eventsServed === null) {
    eventsServed = fetch('/openapi.json', { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : {}))
      .then((spec) => Boolean(spec.paths && spec.paths[EVENTS_PATH]))
      .catch(() => false);
  }
  return eventsServed;
}

async function watch(id) {
  const entry = jobs.get(id);
  if (!entry || entry.watching || TERMINAL.has(entry.job.status)) return;
  entry.watching = true;
  try {
    if (await eventsAvailable()) await followEvents(entry);
    // The stream ended (or there is none): poll until the job ends.
    while (!TERMINAL.has(entry.job.status)) {
      await refreshJob(id);
      if (!TERMINAL.has(entry.job.status)) await new Promise((r) => setTimeout(r, POLL_MS));
    }
    await refreshJob(id);
  } catch (e) {
    reportError(e);
  } finally {
    entry.watching = false;
  }
}

/** Reads `GET /v1/jobs/{id}/events` until the job ends, resuming with Last-Event-ID. */
async function followEvents(entry) {
  let lastId = null;
  for (let attempt = 0; attempt < 20 && !TERMINAL.has(entry.job.status); attempt += 1) {
    const headers = { Accept: 'text/event-stream' };
    if (lastId !== null) headers['Last-Event-ID'] = lastId;
    const response = await api(`/v1/jobs/${entry.job.id}/events`, { headers });
    const type = response.headers.get('content-type') || '';
    if (!response.ok || !type.startsWith('text/event-stream')) {
      if (response.body) await response.body.cancel();
      return;
    }
    await readEvents(response.body, (event) => {
      lastId = event.id;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      const change = { status: data.status, stage: data.stage };
      if (data.progress) change.progress = data.progress;
      update({ ...entry.job, ...change });
    });
  }
}

async function refreshJob(id) {
  const response = await api(`/v1/jobs/${id}`);
  if (!response.ok) return;
  const job = await response.json();
  const entry = update(job);
  if (job.status === 'succeeded' && !entry.audiences) await loadAudiences(entry);
}

/** The audiences a succeeded job built, for their export links: the planned ones, the ranked
 * tiers, each segment's, the combined one and the custom ones, each under its export name. */
async function loadAudiences(entry) {
  const response = await api(`/v1/jobs/${entry.job.id}/result`);
  if (!response.ok) return;
  const result = await response.json();
  entry.audiences = (result.audiences || []).map((a) => ({ name: a.strategy, exports: a.exports }));
  for (const tier of (result.ranked && result.ranked.tiers) || []) {
    entry.audiences.push({ name: tier.name, exports: tier.exports });
  }
  for (const segment of result.segments || []) {
    for (const a of segment.audiences || []) entry.audiences.push({ name: a.name, exports: a.exports });
  }
  if (result.combined_audience) {
    entry.audiences.push({ name: 'combined', exports: result.combined_audience.exports });
  }
  for (const a of result.custom_audiences || []) entry.audiences.push({ name: a.id, exports: a.exports });
  renderRow(entry);
}

// ---- loading, posting ----------------------------------------------------------------------

async function loadJobs(more) {
  const query = new URLSearchParams({ page_size: '20' });
  if (more && nextPage) query.set('page_token', nextPage);
  const response = await api(`/v1/jobs?${query}`);
  if (!response.ok) throw new Error(await problemText(response));
  const page = await response.json();
  show($('key-panel'), false);
  show($('main'), true);
  show($('forget-key'), Boolean(apiKey()));
  if (!more) {
    document.querySelector('#jobs tbody').replaceChildren();
    jobs.clear();
  }
  for (const job of page.jobs) {
    const entry = update(job);
    place(entry, false);
    if (job.status === 'succeeded') loadAudiences(entry).catch(reportError);
    else watch(job.id);
  }
  nextPage = page.next_page_token || null;
  show($('more'), Boolean(nextPage));
  show($('no-jobs'), jobs.size === 0);
}

async function postJob(event) {
  event.preventDefault();
  const error = $('job-error');
  show(error, false);
  const file = $('csv').files[0];
  if (!file) return;
  const options = $('options').value.trim().replace(/^\?/, '');
  const button = $('post-job');
  button.disabled = true;
  try {
    const response = await api(`/v1/jobs${options ? `?${options}` : ''}`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/csv' },
      body: file,
    });
    if (response.status !== 202) throw new Error(await problemText(response));
    const job = await response.json();
    const entry = update(job);
    place(entry, true);
    $('job-form').reset();
    watch(job.id);
  } catch (e) {
    reportError(e);
  } finally {
    button.disabled = false;
  }
}

function start() {
  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $('key').value.trim());
    $('key').value = '';
    loadJobs(false).catch(reportError);
  });
  $('forget-key').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    location.reload();
  });
  $('job-form').addEventListener('submit', postJob);
  $('refresh').addEventListener('click', () => loadJobs(false).catch(reportError));
  $('more').addEventListener('click', () => loadJobs(true).catch(reportError));
  loadJobs(false).catch(reportError);
}

start();
