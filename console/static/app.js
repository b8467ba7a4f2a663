// The Stagehand console page. Every IVS operation goes through the
// console's server (POST /console/api/op/<Operation>), which runs it in
// process for the signed-in session: the page holds no key, only an
// HttpOnly cookie it cannot read. See package console.
//
// For tests and users alike, document.body.dataset.view names the view
// shown and window.consoleReport holds plain data: signedIn, errors.

const $ = (id) => document.getElementById(id);
const report = { signedIn: false, view: 'loading', errors: [] };
window.consoleReport = report;

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(path, { method = 'POST', body } = {}) {
  const resp = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { 'X-Stagehand-Console': '1', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const ctype = resp.headers.get('Content-Type') || '';
  const data = ctype.includes('json') ? await resp.json() : await resp.blob();
  if (!resp.ok) {
    if (resp.status === 401 && !path.endsWith('/session')) signedOut();
    throw new APIError(resp.status, data.code || String(resp.status), data.message || resp.statusText);
  }
  return data;
}

const op = (name, body = {}) => call(`/console/api/op/${name}`, { body });

function showError(el, err) {
  el.textContent = err ? (err.code ? `${err.code}: ${err.message}` : String(err.message || err)) : '';
}

function note(msg) {
  $('status').textContent = msg;
}

function fail(where, err) {
  const msg = `${where}: ${err.code ? `${err.code}: ` : ''}${err.message || err}`;
  report.errors.push(msg);
  console.error(msg);
  note(msg);
}

const idOf = (arn) => (arn || '').split('/').pop();
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const when = (t) => (t ? new Date(t).toLocaleTimeString() : '');
const bytes = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${n | 0} B`);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return e;
}

// fill replaces a table's rows, or says there are none.
function fill(table, rows, none) {
  const cols = table.tHead.rows[0].cells.length;
  table.tBodies[0].replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: cols, class: 'none' }, none))]));
}

function stateCell(s) {
  return el('td', {}, el('span', { class: `state state-${s}` }, s));
}

// ---- sign-in ----

async function checkSession() {
  const s = await call('/console/api/session', { method: 'GET' });
  report.signedIn = s.signedIn;
  $('who-key').textContent = s.noAuth ? 'authentication off' : s.accessKeyId || '';
  $('signout').hidden = !!s.noAuth;
  return s.signedIn;
}

// go shows the view of hash, whether or not the hash changes.
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash; // hashchange routes
}

function signedOut() {
  report.signedIn = false;
  go('');
}

$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  showError($('signin-error'), null);
  try {
    await call('/console/api/session', { body: { accessKeyId: $('signin-key').value.trim(), secretAccessKey: $('signin-secret').value } });
    $('signin-secret').value = '';
    await checkSession();
    go('#stages');
  } catch (err) {
    showError($('signin-error'), err);
  }
});

$('signout').addEventListener('click', async () => {
  try {
    await call('/console/api/session', { method: 'DELETE' });
  } finally {
    await checkSession().catch(() => {});
    signedOut();
  }
});

// ---- routing and polling ----

let leave = () => {}; // ends what the current view runs

function show(view) {
  report.view = view;
  document.body.dataset.view = view;
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== `view-${view}`;
  const tab = { stage: 'stages', composition: 'compositions' }[view] || view;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  $('nav').hidden = view === 'signin';
  $('who').hidden = view === 'signin';
}

// every runs refresh now and then every ms while the view is shown.
function every(ms, refresh) {
  let stopped = false;
  let timer = 0;
  const tick = async () => {
    if (stopped) return;
    try {
      await refresh();
    } catch (err) {
      if (err.status !== 401) fail('refresh', err);
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function route() {
  leave();
  leave = () => {};
  note('');
  if (!report.signedIn) {
    show('signin');
    $('signin-key').focus();
    return;
  }
  const [name, arg] = decodeURIComponent(location.hash.slice(1)).split(/\/(.*)/s);
  switch (name) {
    case 'stage': show('stage'); leave = openStage(arg); break;
    case 'compositions': show('compositions'); leave = every(2000, refreshCompositions); break;
    case 'composition': show('composition'); leave = openComposition(arg); break;
    case 'layout': show('layout'); designerChanged(); break;
    case 'fleet': show('fleet'); leave = every(3000, refreshFleet); break;
    default: show('stages'); leave = every(2000, refreshStages);
  }
}
window.addEventListener('hashchange', () => {
  route();
  // Keyboard and screen-reader users land on the new view's heading.
  document.querySelector('.view:not([hidden]) h2')?.focus({ preventScroll: false });
});

// ---- stages ----

async function listAll(name, key, body = {}) {
  const out = [];
  let nextToken;
  for (let i = 0; i < 20; i++) {
    const r = await op(name, { ...body, maxResults: 100, ...(nextToken ? { nextToken } : {}) });
    out.push(...(r[key] || []));
    nextToken = r.nextToken;
    if (!nextToken) break;
  }
  return out;
}

async function refreshStages() {
  const stages = await listAll('ListStages', 'stages');
  stages.sort((a, b) => (a.name || '').localeCompare(b.name || ''));
  fill($('stages-table'), stages.map((s) => el('tr', { dataset: { arn: s.arn } },
    el('td', {}, el('a', { href: `#stage/${s.arn}` }, s.name || '(no name)')),
    el('td', { class: 'id' }, idOf(s.arn)),
    el('td', { class: 'id' }, s.activeSessionId || '—'),
    el('td', {}, el('a', { href: `#stage/${s.arn}`, class: 'open' }, 'Open')))), 'No stages yet: create one above.');
}

$('stage-create').addEventListener('submit', async (e) => {
  e.preventDefault();
  showError($('stage-create-error'), null);
  try {
    const name = $('stage-name').value.trim();
    const r = await op('CreateStage', name ? { name } : {});
    $('stage-name').value = '';
    location.hash = `#stage/${r.stage.arn}`;
  } catch (err) {
    showError($('stage-create-error'), err);
  }
});

// openStage shows one stage: its participants, their events and a tile per
// publisher, refreshed every 2 s; the returned function ends it all.
function openStage(arn) {
  const tiles = new Map(); // participant id → {figure, video, pc, resource}
  const details = new Map(); // participant id → GetParticipant's participant
  let viewer = null; // {token, participantId, base}
  let closed = false;
  $('tiles').replaceChildren();
  $('timeline').replaceChildren();
  $('participants-table').tBodies[0].replaceChildren();
  $('token-out').hidden = true;
  $('stage-title').textContent = 'Stage';
  currentStage = arn;

  // ensureViewer mints the page's subscribe-only token once (concurrent
  // tiles share the request).
  let minting = null;
  function ensureViewer() {
    minting ??= op('CreateParticipantToken', { stageArn: arn, userId: 'stagehand-console', capabilities: ['SUBSCRIBE'],
      attributes: { role: 'console-viewer' }, duration: 720 }).then((r) => {
      const claims = decodeToken(r.participantToken.token);
      viewer = { token: r.participantToken.token, participantId: r.participantToken.participantId,
        base: String(claims.whip_url || '').replace(/\/whip$/, '') };
      return viewer;
    }, (err) => {
      minting = null;
      throw err;
    });
    return minting;
  }

  // addTile shows p's tile at once (tiles keep the order of arrival),
  // then subscribes to it.
  async function addTile(p) {
    const video = el('video', { autoplay: '', playsinline: '', 'aria-label': `Live video of ${p.userId || p.participantId}`,
      dataset: { participantId: p.participantId } });
    video.muted = true;
    const figure = el('figure', { class: 'tile' }, video, el('figcaption', {}, p.userId || p.participantId));
    const t = { figure, video, pc: new RTCPeerConnection(), resource: '' };
    tiles.set(p.participantId, t);
    $('tiles').append(figure);
    const stream = new MediaStream();
    t.pc.addTransceiver('audio', { direction: 'recvonly' });
    t.pc.addTransceiver('video', { direction: 'recvonly' });
    t.pc.ontrack = (e) => {
      stream.addTrack(e.track);
      video.srcObject = stream;
    };
    try {
      const v = await ensureViewer();
      if (closed || tiles.get(p.participantId) !== t) return;
      await t.pc.setLocalDescription(await t.pc.createOffer());
      await gathered(t.pc);
      const url = `${v.base}/whep/${encodeURIComponent(p.participantId)}`;
      const resp = await fetch(url, { method: 'POST', body: t.pc.localDescription.sdp,
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${v.token}` } });
      if (!resp.ok) throw new Error(`WHEP ${resp.status}: ${(await resp.text()).trim()}`);
      const loc = resp.headers.get('Location');
      if (loc) t.resource = new URL(loc, resp.url || url).href;
      await t.pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
    } catch (err) {
      fail(`tile of ${p.userId || p.participantId}`, err);
      dropTile(p.participantId);
    }
  }

  function dropTile(id) {
    const t = tiles.get(id);
    if (!t) return;
    tiles.delete(id);
    t.figure.remove();
    if (t.resource && viewer) {
      fetch(t.resource, { method: 'DELETE', headers: { Authorization: `Bearer ${viewer.token}` }, keepalive: true }).catch(() => {});
    }
    t.pc.close();
  }

  async function refresh() {
    const { stage } = await op('GetStage', { arn });
    $('stage-title').textContent = `Stage ${stage.name || idOf(arn)}`;
    const session = stage.activeSessionId;
    $('stage-meta').textContent = `${arn} · ${session ? `live session ${session}` : 'no live session'}`;
    if (!session) {
      for (const id of [...tiles.keys()]) dropTile(id);
      $('participants-table').tBodies[0].replaceChildren();
      return;
    }
    const list = await listAll('ListParticipants', 'participants', { stageArn: arn, sessionId: session });
    list.sort((a, b) => (a.firstJoinTime || '').localeCompare(b.firstJoinTime || ''));
    const shown = list.slice(-50);
    await Promise.all(shown.map(async (p) => {
      const known = details.get(p.participantId);
      if (known && known.state === 'DISCONNECTED') return;
      const r = await op('GetParticipant', { stageArn: arn, sessionId: session, participantId: p.participantId });
      details.set(p.participantId, r.participant);
    }));
    const rows = shown.map((s) => {
      const p = { ...s, ...details.get(s.participantId) };
      const attrs = Object.entries(p.attributes || {}).map(([k, v]) => `${k}=${v}`).join(' ');
      const client = [p.browserName, p.osName, p.sdkVersion].filter(Boolean).join(' · ');
      const btn = p.state === 'CONNECTED'
        ? el('button', { type: 'button', class: 'secondary', dataset: { user: p.userId || '' }, onclick: () => disconnect(p) },
          `Disconnect ${p.userId || ''}`.trim())
        : '';
      return el('tr', { dataset: { participantId: p.participantId } },
        el('td', {}, p.userId || '—', el('div', { class: 'mono' }, p.participantId)),
        stateCell(p.state), el('td', {}, p.published ? 'yes' : 'no'), el('td', {}, p.protocol || ''),
        el('td', { class: 'mono' }, attrs), el('td', {}, client), el('td', {}, btn));
    });
    $('participants-table').tBodies[0].replaceChildren(...rows);
    const live = shown.filter((p) => p.state === 'CONNECTED' && p.published && p.participantId !== viewer?.participantId);
    // shown is in order of arrival: new tiles go after the older ones.
    for (const id of [...tiles.keys()]) if (!live.some((p) => p.participantId === id)) dropTile(id);
    for (const p of live) if (!tiles.has(p.participantId)) addTile(p);
    // The timeline: the latest events of the session's participants.
    const events = [];
    await Promise.all(shown.slice(-20).map(async (p) => {
      const r = await op('ListParticipantEvents', { stageArn: arn, sessionId: session, participantId: p.participantId, maxResults: 100 });
      for (const ev of r.events || []) events.push({ ...ev, userId: p.userId });
    }));
    events.sort((a, b) => b.eventTime.localeCompare(a.eventTime));
    $('timeline').replaceChildren(...events.slice(0, 100).map((ev) => el('li', {},
      el('time', { datetime: ev.eventTime }, when(ev.eventTime)),
      `${ev.userId || ev.participantId} ${ev.name}`,
      ev.remoteParticipantId ? ` ← ${userOf(shown, ev.remoteParticipantId)}` : '',
      ev.errorCode ? ` (${ev.errorCode})` : '')));
  }

  async function disconnect(p) {
    try {
      await op('DisconnectParticipant', { stageArn: arn, participantId: p.participantId, reason: 'disconnected from the console' });
      note(`${p.userId || p.participantId} disconnected`);
    } catch (err) {
      fail('disconnect', err);
    }
  }

  const stop = every(2000, refresh);
  return () => {
    closed = true;
    stop();
    for (const id of [...tiles.keys()]) dropTile(id);
    currentStage = null;
  };
}

let currentStage = null;

function userOf(list, id) {
  return list.find((p) => p.participantId === id)?.userId || id;
}

function decodeToken(tok) {
  let b64 = tok.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  b64 += '='.repeat((4 - (b64.length % 4)) % 4);
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
}

function gathered(pc, ms = 3000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, ms);
  });
}

$('token-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  showError($('token-error'), null);
  const capabilities = [];
  if ($('token-publish').checked) capabilities.push('PUBLISH');
  if ($('token-subscribe').checked) capabilities.push('SUBSCRIBE');
  const attributes = {};
  for (const kv of $('token-attrs').value.split(/\s+/).filter(Boolean)) {
    const [k, ...v] = kv.split('=');
    attributes[k] = v.join('=');
  }
  try {
    const user = $('token-user').value.trim();
    const r = await op('CreateParticipantToken', { stageArn: currentStage, capabilities, attributes, ...(user ? { userId: user } : {}) });
    $('token-value').value = r.participantToken.token;
    $('token-join').href = `/?token=${encodeURIComponent(r.participantToken.token)}`;
    $('token-out').hidden = false;
  } catch (err) {
    showError($('token-error'), err);
  }
});

$('token-copy').addEventListener('click', () => copy($('token-value'), $('token-copy')));

async function copy(field, button) {
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand('copy');
  }
  const label = button.textContent;
  button.textContent = 'Copied';
  setTimeout(() => { button.textContent = label; }, 1500);
}

// ---- compositions ----

let formFilled = false;

async function fillCompositionForm() {
  const [stages, storages, encoders] = await Promise.all([listAll('ListStages', 'stages'),
    listAll('ListStorageConfigurations', 'storageConfigurations'), listAll('ListEncoderConfigurations', 'encoderConfigurations')]);
  const fill = (select, items, extra) => {
    const keep = select.value;
    select.replaceChildren(...items.map((i) => el('option', { value: i.arn }, `${i.name || idOf(i.arn)} (${idOf(i.arn)})`)), ...extra);
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  };
  fill($('comp-stage'), stages, []);
  fill($('comp-storage'), storages, [el('option', { value: 'new' }, 'New storage configuration (bucket below)')]);
  fill($('comp-encoder'), encoders, [el('option', { value: 'new' }, 'New encoder configuration (720p30)')]);
  formFilled = true;
}

async function refreshCompositions() {
  if (!formFilled) await fillCompositionForm();
  const comps = await listAll('ListCompositions', 'compositions');
  comps.sort((a, b) => (b.startTime || '').localeCompare(a.startTime || ''));
  fill($('comps-table'), comps.map((c) => el('tr', { dataset: { arn: c.arn } },
    el('td', { class: 'id' }, el('a', { href: `#composition/${c.arn}` }, idOf(c.arn))),
    el('td', { class: 'id' }, idOf(c.stageArn)), stateCell(c.state),
    el('td', {}, (c.destinations || []).map((d) => d.state).join(', ')),
    el('td', {}, when(c.startTime)),
    el('td', {}, el('a', { href: `#composition/${c.arn}` }, 'Open')))), 'No compositions yet: start one above.');
}

function formLayout() {
  const kind = $('comp-layout').value;
  if (kind === 'designer') return designerLayout();
  const knobs = {};
  if ($('comp-gap').value !== '') knobs.gridGap = Number($('comp-gap').value);
  if ($('comp-featured').value.trim()) knobs.featuredParticipantAttribute = $('comp-featured').value.trim();
  return { [kind]: knobs };
}

$('comp-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  showError($('comp-error'), null);
  $('comp-submit').disabled = true;
  try {
    let storage = $('comp-storage').value;
    let encoder = $('comp-encoder').value;
    if (storage === 'new') {
      const r = await op('CreateStorageConfiguration', { name: 'console', s3: { bucketName: $('comp-bucket').value.trim() } });
      storage = r.storageConfiguration.arn;
      // A retry after a refusal below uses this one.
      $('comp-storage').prepend(el('option', { value: storage }, `console (${idOf(storage)})`));
      $('comp-storage').value = storage;
    }
    if (encoder === 'new') {
      const r = await op('CreateEncoderConfiguration', { name: 'console-720p30' });
      encoder = r.encoderConfiguration.arn;
      $('comp-encoder').prepend(el('option', { value: encoder }, `console-720p30 (${idOf(encoder)})`));
      $('comp-encoder').value = encoder;
    }
    const seconds = $('comp-segment').value;
    const thumbs = $('comp-thumbs').value;
    const r = await op('StartComposition', {
      stageArn: $('comp-stage').value,
      layout: formLayout(),
      destinations: [{ s3: { storageConfigurationArn: storage, encoderConfigurationArns: [encoder],
        recordingConfiguration: { hlsConfiguration: { targetSegmentDurationSeconds: seconds === '' ? undefined : Number(seconds) } },
        ...(thumbs === '' ? {} : { thumbnailConfigurations: [{ targetIntervalSeconds: Number(thumbs), storage: ['LATEST'] }] }) } }],
    });
    formFilled = false;
    location.hash = `#composition/${r.composition.arn}`;
  } catch (err) {
    showError($('comp-error'), err);
  } finally {
    $('comp-submit').disabled = false;
  }
});

// openComposition shows one composition: state, destinations with their
// counters, the recording (hls.js) and the layout over the thumbnail.
function openComposition(arn) {
  let hls = null;
  let playing = '';
  const video = $('rec-video');
  $('comp-title').textContent = `Composition ${idOf(arn)}`;
  $('comp-state').textContent = '';
  $('rec-meta').textContent = 'No recording yet.';
  $('thumb').hidden = true;
  $('thumb').removeAttribute('src');
  showError($('comp-stop-error'), null);
  $('comp-stop').onclick = async () => {
    showError($('comp-stop-error'), null);
    try {
      await op('StopComposition', { arn });
      note('stopping…');
    } catch (err) {
      showError($('comp-stop-error'), err);
    }
  };

  function play(url) {
    if (playing === url) return;
    playing = url;
    if (hls) hls.destroy();
    if (window.Hls?.isSupported()) {
      hls = new window.Hls({ enableWorker: false, liveSyncDurationCount: 2, xhrSetup: (xhr) => { xhr.withCredentials = true; } });
      hls.on(window.Hls.Events.ERROR, (_, d) => { if (d.fatal) fail('recording', new Error(`${d.type}: ${d.details}`)); });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else {
      video.src = url; // Safari plays HLS itself
    }
    video.play().catch(() => {});
  }

  async function refresh() {
    const [{ composition: c }, recs, fleet] = await Promise.all([op('GetComposition', { arn }),
      call(`/console/api/recordings?arn=${encodeURIComponent(arn)}`, { method: 'GET' }),
      call('/console/api/fleet', { method: 'GET' })]);
    $('comp-state').textContent = c.state;
    $('comp-state').className = `state state-${c.state}`;
    document.body.dataset.composition = c.state;
    const over = c.state === 'STOPPED' || c.state === 'FAILED';
    $('comp-stop').disabled = over || c.state === 'STOPPING';
    if (over && $('status').textContent === 'stopping…') note('');
    $('comp-meta').textContent = `stage ${c.stageArn} · started ${c.startTime || '—'}${c.endTime ? ` · ended ${c.endTime}` : ''}`;
    $('layout-json').textContent = `layout ${JSON.stringify(c.layout)}`;
    const counters = new Map(fleet.destinations.filter((d) => d.composition === idOf(arn)).map((d) => [d.destination, d]));
    $('dests-table').tBodies[0].replaceChildren(...(c.destinations || []).map((d) => {
      const rec = recs.recordings.find((r) => r.destination === d.id);
      const segs = rec ? rec.renditions.reduce((n, r) => n + r.segments, 0) : 0;
      const size = rec ? rec.renditions.reduce((n, r) => n + r.bytes, 0) : 0;
      const k = counters.get(d.id);
      const kind = d.configuration?.s3 ? `S3 ${rec?.bucket || ''}/${rec?.prefix || ''}` : `channel ${d.configuration?.channel?.channelArn || ''}`;
      return el('tr', {}, el('td', { class: 'id' }, d.id), el('td', { class: 'mono' }, kind), stateCell(d.state),
        el('td', {}, rec ? segs : '—'), el('td', {}, rec ? bytes(size) : '—'),
        el('td', {}, k ? bytes(k.bytes) : '—'), el('td', {}, k ? k.failures : '—'));
    }));
    const rec = recs.recordings.find((r) => r.playlist);
    if (rec) {
      $('rec-meta').textContent = `${rec.bucket}/${rec.prefix} · ${rec.renditions.map((r) => `${r.name}: ${r.segments} segments`).join(', ')}`;
      play(rec.playlist);
    } else if (recs.recordings.some((r) => !r.source)) {
      $('rec-meta').textContent = 'No recording found yet where this server reads recordings (its local buckets or S3).';
    }
    const thumb = recs.recordings.find((r) => r.thumbnail)?.thumbnail;
    $('thumb').hidden = !thumb;
    if (thumb) $('thumb').src = `${thumb}?t=${Date.now()}`;
    await drawBoxes(c);
  }

  // drawBoxes lays the composition's layout, for the stage's publishers
  // now, as boxes over the thumbnail.
  async function drawBoxes(c) {
    const box = $('thumb-box');
    for (const b of box.querySelectorAll('.box')) b.remove();
    const { stage } = await op('GetStage', { arn: c.stageArn });
    if (!stage.activeSessionId) return;
    // In arrival order, with their attributes (featured, order, PiP), as
    // the compositor takes them.
    const ps = (await listAll('ListParticipants', 'participants', { stageArn: c.stageArn, sessionId: stage.activeSessionId }))
      .filter((p) => p.state === 'CONNECTED' && p.published)
      .sort((a, b) => (a.firstJoinTime || '').localeCompare(b.firstJoinTime || ''))
      .slice(0, 12);
    const attrs = await Promise.all(ps.map(async (p) => (await op('GetParticipant',
      { stageArn: c.stageArn, sessionId: stage.activeSessionId, participantId: p.participantId })).participant.attributes || {}));
    const g = await call('/console/api/layout/preview?format=json', {
      body: { layout: c.layout, participants: attrs.map((a) => ({ attributes: a })), width: 1280, height: 720 } });
    for (const t of g.tiles || []) {
      const n = Number(t.id.slice(1)) - 1;
      const b = el('div', { class: 'box' }, ps[n]?.userId || t.id);
      // CSSOM, not a style attribute: the CSP allows no inline styles.
      Object.assign(b.style, { left: `${(100 * t.tile.x) / 1280}%`, top: `${(100 * t.tile.y) / 720}%`,
        width: `${(100 * t.tile.w) / 1280}%`, height: `${(100 * t.tile.h) / 720}%` });
      box.append(b);
    }
  }

  const stop = every(2000, refresh);
  return () => {
    stop();
    if (hls) hls.destroy();
    video.removeAttribute('src');
    video.load();
    delete document.body.dataset.composition;
  };
}

// ---- layout designer ----

const num = (id) => ($(id).value === '' ? undefined : Number($(id).value));
const str = (id) => $(id).value.trim() || undefined;

function designerLayout() {
  const kind = $('d-type').value;
  const k = { featuredParticipantAttribute: str('d-featured'), participantOrderAttribute: str('d-order'), gridGap: num('d-gap'),
    videoFillMode: str('d-fill'), omitStoppedVideo: $('d-omit').checked || undefined };
  if (kind === 'grid') k.videoAspectRatio = str('d-aspect');
  else Object.assign(k, { pipParticipantAttribute: str('d-pipattr'), pipBehavior: str('d-behavior'), pipPosition: str('d-position'),
    pipWidth: num('d-pipw'), pipHeight: num('d-piph'), pipOffset: num('d-pipoff') });
  for (const key of Object.keys(k)) if (k[key] === undefined) delete k[key];
  return { [kind]: k };
}

let previewTimer = 0;
let previewURL = '';
let previewSeq = 0;

function designerChanged() {
  const form = $('designer');
  form.classList.toggle('pip-mode', $('d-type').value === 'pip');
  form.classList.toggle('grid-mode', $('d-type').value === 'grid');
  clearTimeout(previewTimer);
  previewTimer = setTimeout(renderPreview, 120);
}

async function renderPreview() {
  const layout = designerLayout();
  $('d-json').value = JSON.stringify(layout, null, 2);
  const n = Math.max(0, Math.min(12, Number($('d-count').value) || 0));
  const participants = Array.from({ length: n }, () => ({ attributes: {} }));
  for (const spec of $('d-attrs').value.split(/\s+/).filter(Boolean)) {
    const m = /^(\d+):([^=]+)=(.*)$/.exec(spec);
    if (m && participants[m[1] - 1]) participants[m[1] - 1].attributes[m[2]] = m[3];
  }
  const seq = ++previewSeq;
  try {
    const png = await call('/console/api/layout/preview', { body: { layout, participants, width: 640, height: 360 } });
    if (seq !== previewSeq) return;
    showError($('d-error'), null);
    if (previewURL) URL.revokeObjectURL(previewURL);
    previewURL = URL.createObjectURL(png);
    $('d-preview').src = previewURL;
  } catch (err) {
    if (seq === previewSeq) showError($('d-error'), err);
  }
}

$('designer').addEventListener('input', designerChanged);
$('designer').addEventListener('submit', (e) => e.preventDefault());
$('d-copy').addEventListener('click', () => copy($('d-json'), $('d-copy')));

// ---- fleet ----

async function refreshFleet() {
  const f = await call('/console/api/fleet', { method: 'GET' });
  fill($('workers-table'), f.workers.map((w) => el('tr', {},
    el('td', { class: 'id' }, w.id + (w.local ? ' (this serve)' : '')),
    el('td', {}, w.local ? w.running : w.compositions.length),
    el('td', {}, w.local && w.capacity ? `${w.running} of ${w.capacity}` : '—'),
    el('td', {}, w.local ? `${bytes(w.spoolBytes)} of ${bytes(w.spoolLimit)}` : '—'),
    el('td', {}, w.local ? `${w.frames} (${w.framesLate} late)` : '—'),
    el('td', { class: 'id' }, w.compositions.map(idOf).join(', ') || '—'))), 'No worker runs a composition (serve --no-worker).');
  $('queue').textContent = f.queue
    ? `${f.queue.Waiting} waiting for a worker · ${f.queue.Unsettled} claimed · ${f.queue.Stored} stored`
    : 'unknown';
  fill($('nodes-table'), f.nodes.map((n) => el('tr', {},
    el('td', { class: 'id' }, n.id), el('td', { class: 'id' }, n.url), el('td', {}, n.stages), el('td', {}, n.participants),
    el('td', {}, n.peers),
    el('td', {}, `${n.silent ? 'silent' : n.draining ? 'draining' : 'up'} · ${n.role || 'any'}`))), 'No stage node announced itself.');
  if (f.errors?.length) note(f.errors.join('; '));
}

// ---- start ----

(async () => {
  try {
    await checkSession();
  } catch (err) {
    fail('session', err);
  }
  route();
})();
