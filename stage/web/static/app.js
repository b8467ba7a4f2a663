// The stagehand stage page: join a stage with a participant token, publish
// camera and microphone over WHIP, watch the other publishers over WHEP.
// See package web for how it reports its state.

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// report is window.stagehand: plain data, so that a test reads it whole
// with one evaluation.
const report = { state: 'idle', publishing: false, participantId: '', local: null, remote: {}, errors: [],
  reconnects: { events: 0, publish: 0, subscribe: 0 } };
window.stagehand = report;

let current = null; // the joined Session

// SIMULCAST are the camera's encodings with the simulcast box ticked (or
// ?simulcast=1): RIDs q, h and f, low to high, as the stage names them
// low, medium and high.
const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

function setState(s) {
  report.state = s;
  document.body.dataset.state = s;
  render();
}

function render() {
  const n = Object.keys(report.remote).length;
  $('status').textContent = n ? `${report.state} · watching ${n}` : report.state;
}

function recordError(where, err) {
  const msg = `${where}: ${err && err.message ? err.message : err}`;
  report.errors.push(msg);
  console.error(msg);
  return msg;
}

// decodeToken reads a JWT's payload. The signature is the stage server's to
// check; the page only needs the claims: jti (participant id), user_id,
// whip_url, events_url, capabilities.
function decodeToken(tok) {
  const parts = tok.split('.');
  if (parts.length !== 3) throw new Error('not a participant token (a JWT: header.payload.signature)');
  let b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
  b64 += '='.repeat((4 - (b64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

// gathered waits for ICE gathering to complete: the stage server takes no
// trickled candidates, so the offer must carry them all. After ms it goes
// on with what it has.
function gathered(pc, ms = 5000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== 'complete') return;
      pc.removeEventListener('icegatheringstatechange', done);
      resolve();
    };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, ms);
  });
}

// Reconnection: when the stage's node leaves (drained: a reconnect message,
// then the events channel closes with 1012; killed: the connections go
// quiet), every part of the session comes back on its own, with the same
// token, to the same URLs; the stage places it on another node. Attempts
// are spaced as the Go client spaces them: 250 ms doubling to 5 s, each in
// the upper half of its step, for at most a minute.
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5000;
const GIVE_UP_MS = 60000;
const LOST_AFTER_MS = 2000; // 'disconnected' this long counts as lost

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// retrying calls attempt until it resolves, fails with an error that is not
// retryable, the session closes, or GIVE_UP_MS have passed.
async function retrying(what, session, attempt) {
  const deadline = Date.now() + GIVE_UP_MS;
  let step = RETRY_FIRST_MS;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const left = deadline - Date.now();
      if (session.closed || !err.retryable || left <= 0) throw err;
      const delay = Math.min(Math.max(step / 2 + (Math.random() * step) / 2, err.retryAfter || 0), RETRY_MAX_MS);
      step = Math.min(2 * step, RETRY_MAX_MS);
      console.warn(`${what}: attempt ${n} failed (${err.message}); again in ${Math.round(delay)} ms`);
      await sleep(Math.min(delay, left));
    }
  }
}

// post sends an offer. fetch follows a 307 to the node hosting the stage
// with the same method and body. A failure is retryable when the stage may
// be moving (a refused connection, 5xx), or still holds this participant's
// earlier session (409).
async function post(url, token, sdp) {
  let resp;
  try {
    resp = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
      body: sdp,
    });
  } catch (err) {
    err.retryable = true;
    throw err;
  }
  if (resp.status === 201) return resp;
  const body = await resp.text();
  const err = new Error(`${resp.status} ${body.trim() || resp.statusText}`);
  err.status = resp.status;
  err.retryable = resp.status >= 500 || resp.status === 409 || resp.status === 429;
  err.retryAfter = 1000 * Number(resp.headers.get('Retry-After') || 0) || 0;
  throw err;
}

// negotiate makes the WHIP/WHEP exchange of peer ({pc, resource}): the
// offer is POSTed to url (again while the stage is moving), the 201 answer
// applied. peer.resource is set as soon as the server has created the
// session, so that release can always DELETE it; it is resolved against
// the URL that answered, after any redirect. old, the session peer
// replaces, is DELETEd if the stage answers 409 (it still holds it).
async function negotiate(peer, url, session, old = null) {
  const { pc } = peer;
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const resp = await retrying(`POST ${url}`, session, async () => {
    try {
      return await post(url, session.token, pc.localDescription.sdp);
    } catch (err) {
      if (err.status !== 409) throw err;
      // A first join refused 409: someone else publishes as this
      // participant, which waiting does not change.
      if (!old) err.retryable = false;
      if (!old?.resource) throw err;
      await deleteResource(old, session.token, true);
      return post(url, session.token, pc.localDescription.sdp);
    }
  });
  const body = await resp.text();
  const loc = resp.headers.get('Location');
  if (loc) peer.resource = new URL(loc, resp.url || url).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
}

// onLost calls lost once when pc fails, or stays disconnected for
// LOST_AFTER_MS: its node is gone.
function onLost(pc, lost) {
  let timer = 0;
  let fired = false;
  const fire = () => {
    if (!fired) {
      fired = true;
      lost();
    }
  };
  pc.addEventListener('connectionstatechange', () => {
    clearTimeout(timer);
    if (pc.connectionState === 'failed') fire();
    else if (pc.connectionState === 'disconnected') timer = setTimeout(fire, LOST_AFTER_MS);
  });
}

// deleteResource leaves a session's node. A replaced session's node may be
// gone: quiet leaves its failure out of the page's errors.
async function deleteResource(peer, token, quiet = false) {
  const url = peer.resource;
  peer.resource = '';
  if (!url) return;
  try {
    // A 404 is fine: the stage ends subscriptions of a publisher that left.
    await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` }, keepalive: true });
  } catch (err) {
    if (quiet) console.warn(`DELETE ${url}: ${err.message}`);
    else recordError(`DELETE ${url}`, err);
  }
}

// release leaves a WHIP/WHEP session: DELETE first, so that the stage
// records a leave rather than a lost connection, then close.
async function release(peer, token, quiet = false) {
  await deleteResource(peer, token, quiet);
  peer.pc.close();
}

// preferVP8 puts VP8 first: the stage forwards VP8 and H.264 constrained
// baseline only, and VP8 is what every browser encodes in software.
function preferVP8(transceiver) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver?.getCapabilities) return;
  const codecs = RTCRtpReceiver.getCapabilities('video')?.codecs ?? [];
  const vp8 = (c) => c.mimeType.toLowerCase() === 'video/vp8';
  try {
    transceiver.setCodecPreferences([...codecs.filter(vp8), ...codecs.filter((c) => !vp8(c))]);
  } catch (err) {
    console.warn('codec preferences refused; the browser chooses', err);
  }
}

function addTile(id, label, local) {
  const fig = document.createElement('figure');
  fig.className = local ? 'tile local' : 'tile';
  fig.dataset.participantId = id;
  const video = document.createElement('video');
  video.muted = true; // autoplay needs it; a click unmutes a remote tile
  video.autoplay = true;
  video.playsInline = true;
  if (!local) {
    video.title = 'click to toggle sound';
    video.addEventListener('click', () => { video.muted = !video.muted; });
  }
  const caption = document.createElement('figcaption');
  caption.textContent = label;
  fig.append(video, caption);
  $('tiles').append(fig);
  return { fig, video };
}

// countPresented follows the frames a video element shows.
function countPresented(video, r) {
  if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) return;
  const tick = (_now, meta) => {
    r.presented = meta.presentedFrames;
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}

function codecOf(stats, codecId) {
  const c = codecId && stats.get(codecId);
  return c ? c.mimeType : '';
}

// Session is one join: the events channel, the WHIP publication if the
// token may publish, and a WHEP subscription per other publisher. Each
// part reconnects by itself when the stage's node leaves or is lost.
class Session {
  constructor(token, claims, whip, events) {
    this.token = token;
    this.claims = claims;
    this.caps = claims.capabilities || {};
    this.whip = whip;
    this.events = events;
    this.base = whip.replace(/\/whip\/?$/, '');
    this.pub = null; // {pc, resource}
    this.pubMoving = false;
    this.subs = new Map(); // participantId -> {peer: {pc, resource}, tile, video, p, moving}
    this.stream = null;
    this.ws = null;
    this.closed = false;
    this.timer = 0;
    this.moving = 0; // reconnections of the events channel or the publication under way
    this.resync = null; // after an events reconnection: {pub} as it was when the channel was lost
  }

  fail(where, err) {
    if (this.closed) return;
    setState(`error: ${recordError(where, err)}`);
  }

  // openEvents resolves once the events channel is open; its first
  // message is a snapshot of who publishes.
  openEvents() {
    return new Promise((resolve, reject) => {
      const u = new URL(this.events);
      u.searchParams.set('access_token', this.token);
      const ws = (this.ws = new WebSocket(u));
      let open = false;
      ws.onopen = () => {
        open = true;
        resolve();
      };
      ws.onmessage = (e) => this.onEvent(ws, JSON.parse(e.data));
      ws.onclose = (e) => {
        const why = `closed (${e.code}${e.reason ? ` ${e.reason}` : ''})`;
        if (!open) {
          const err = new Error(`events channel ${this.events} refused or unreachable: ${why}`);
          err.retryable = true; // a WebSocket refusal has no status: the first join alone gives up at once
          reject(err);
        } else if (!this.closed && this.ws === ws) {
          // 1001 (the server shut down) and 1012 (a node restarting) say
          // the node leaves, as a reconnect message does.
          this.eventsLost(why, ws.leaving || e.code === 1001 || e.code === 1012);
        }
      };
    });
  }

  // eventsLost reconnects the events channel; when the node said it is
  // leaving, the publication and subscriptions move at once rather than
  // wait for their connections to go quiet.
  async eventsLost(why, leaving) {
    console.warn(`events channel ${why}; reconnecting`);
    this.resync = { pub: this.pub };
    this.moving++;
    setState('reconnecting…');
    if (leaving) {
      if (this.pub) this.reconnectPublication('the node is leaving');
      for (const id of this.subs.keys()) this.resubscribe(id);
    }
    try {
      await retrying('events channel', this, () => this.openEvents());
      report.reconnects.events++;
    } catch (err) {
      this.fail('events', err);
      return;
    } finally {
      this.moving--;
    }
    this.settle();
  }

  // resynced takes up the first snapshot after the events channel came
  // back. A stage lives on one node, so a channel lost without a word
  // (1006: the node was killed) most likely took the connections with it,
  // which the browser would notice only when ICE gives up, seconds later:
  // subscriptions are made again now, and the publication too if the stage
  // does not list it.
  resynced(m, listed) {
    const { pub } = this.resync;
    this.resync = null;
    for (const id of this.subs.keys()) if (listed.has(id)) this.resubscribe(id);
    const self = (m.participants ?? []).find((p) => p.participantId === this.claims.jti);
    if (pub && this.pub === pub && !self?.tracks?.length) this.reconnectPublication('the stage does not list it');
  }

  // settle restores the state once nothing is reconnecting.
  settle() {
    if (this.closed || this.moving > 0 || report.state.startsWith('error')) return;
    if (!this.pub) setState('watching');
    else if (report.publishing) setState('publishing');
    else setState('connecting'); // poll says "publishing" once frames are sent
  }

  onEvent(ws, m) {
    switch (m.type) {
      case 'snapshot': {
        // Also the first message after a reconnection: subscriptions of
        // publishers no longer listed end, new ones start.
        const listed = new Set();
        for (const p of m.participants ?? []) {
          if (!p.tracks?.length) continue;
          listed.add(p.participantId);
          this.watch(p);
        }
        for (const id of [...this.subs.keys()]) if (!listed.has(id)) this.unwatch(id);
        if (this.resync) this.resynced(m, listed);
        break;
      }
      case 'tracks-published':
        // Again for a participant already watched: a track started late,
        // which only a new subscription carries.
        if (this.subs.has(m.participant.participantId)) this.resubscribe(m.participant.participantId);
        else this.watch(m.participant);
        break;
      case 'tracks-unpublished':
      case 'participant-left':
        this.unwatch(m.participant.participantId);
        break;
      case 'session-ended':
        for (const id of [...this.subs.keys()]) this.unwatch(id);
        break;
      case 'reconnect':
        ws.leaving = true; // the node closes the channel next
        console.warn(`the stage's node is leaving: ${m.reason || 'no reason given'}`);
        break;
    }
  }

  async publish() {
    // Simulcast layers a 720p camera picture: Chrome sends fewer layers
    // of a smaller one.
    const video = this.simulcast ? { width: 1280, height: 720 } : true;
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video });
    addTile(this.claims.jti, this.claims.user_id || this.claims.jti, true).video.srcObject = this.stream;
    setState('connecting'); // "publishing" once frames are sent
    await this.connectPublication(null);
  }

  // connectPublication offers the camera and microphone on a new
  // connection, which replaces old once answered.
  async connectPublication(old) {
    const pc = new RTCPeerConnection();
    const pub = { pc, resource: '' };
    for (const track of this.stream.getTracks()) {
      const init = { direction: 'sendonly', streams: [this.stream] };
      if (track.kind === 'video' && this.simulcast) init.sendEncodings = SIMULCAST;
      const tr = pc.addTransceiver(track, init);
      if (track.kind === 'video') preferVP8(tr);
    }
    try {
      await negotiate(pub, this.whip, this, old);
    } catch (err) {
      release(pub, this.token);
      throw err;
    }
    if (this.closed) return release(pub, this.token);
    this.pub = pub;
    if (old) release(old, this.token, true);
    onLost(pc, () => {
      if (this.pub === pub) this.reconnectPublication('the connection was lost');
    });
  }

  async reconnectPublication(why) {
    if (this.closed || this.pubMoving) return;
    console.warn(`publication: ${why}; reconnecting`);
    this.pubMoving = true;
    this.moving++;
    report.publishing = false;
    setState('reconnecting…');
    try {
      await this.connectPublication(this.pub);
      report.reconnects.publish++;
    } catch (err) {
      this.fail('publish', err);
      return;
    } finally {
      this.pubMoving = false;
      this.moving--;
    }
    this.settle();
  }

  watch(p) {
    const id = p.participantId;
    if (!this.caps.allow_subscribe || this.closed || id === this.claims.jti || this.subs.has(id)) return;
    const { fig, video } = addTile(id, p.userId || id, false);
    const sub = { peer: null, tile: fig, video, p, moving: false, layer: params.get('layer') || '' };
    this.subs.set(id, sub);
    const r = (report.remote[id] = { userId: p.userId || '', state: 'subscribing', frames: 0, presented: 0, width: 0, height: 0, codec: '', layer: sub.layer });
    this.layerChooser(id, sub, p);
    render();
    countPresented(video, r);
    this.subscribe(id, sub);
  }

  // subscribe receives sub's publisher on a new connection, shown in the
  // same tile; a subscription lost while its publisher is listed is made
  // again (the publisher may have moved node).
  async subscribe(id, sub) {
    const pc = new RTCPeerConnection();
    const peer = { pc, resource: '' };
    const old = sub.peer;
    sub.peer = peer;
    if (old) release(old, this.token, true);
    const stream = new MediaStream();
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (e) => {
      stream.addTrack(e.track);
      sub.video.srcObject = stream;
    };
    pc.onconnectionstatechange = () => {
      if (report.remote[id] && sub.peer === peer) report.remote[id].state = pc.connectionState;
    };
    onLost(pc, () => {
      if (this.subs.get(id) === sub && sub.peer === peer) this.resubscribe(id);
    });
    try {
      const layer = sub.layer ? `?layer=${encodeURIComponent(sub.layer)}` : '';
      await negotiate(peer, `${this.base}/whep/${encodeURIComponent(id)}${layer}`, this);
      if (this.subs.get(id) !== sub || sub.peer !== peer) release(peer, this.token); // replaced meanwhile
    } catch (err) {
      if (this.subs.get(id) !== sub || sub.peer !== peer) return release(peer, this.token);
      // 404: not publishing (yet) on the stage's node; its tracks-published
      // event brings it back.
      if (err.status !== 404) recordError(`subscribe to ${sub.p.userId || id}`, err);
      this.unwatch(id);
    }
  }

  // layerChooser adds a select box to the tile of a publisher with a
  // simulcast track: a choice is sent to the subscription's session
  // (PATCH {"layer": ...}), and kept for its next connection.
  layerChooser(id, sub, p) {
    const layers = (p.tracks ?? []).find((t) => t.layers?.length)?.layers;
    if (!layers) return;
    const select = document.createElement('select');
    select.className = 'layer';
    select.title = 'simulcast layer';
    for (const name of ['high', 'medium', 'low']) {
      const l = layers.find((x) => x.name === name);
      if (!l) continue;
      const o = document.createElement('option');
      o.value = name;
      o.textContent = l.height ? `${name} (${l.width}x${l.height})` : name;
      select.append(o);
    }
    select.value = sub.layer || 'high';
    select.addEventListener('change', () => this.chooseLayer(id, sub, select.value));
    sub.tile.append(select);
  }

  async chooseLayer(id, sub, layer) {
    sub.layer = layer;
    if (report.remote[id]) report.remote[id].layer = layer;
    const url = sub.peer?.resource;
    if (!url) return; // the next connection asks for it
    try {
      const resp = await fetch(url, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.token}` },
        body: JSON.stringify({ layer }),
      });
      if (!resp.ok) throw new Error(`${resp.status} ${(await resp.text()).trim()}`);
    } catch (err) {
      recordError(`layer of ${sub.p.userId || id}`, err);
    }
  }

  // resubscribe makes sub's connection again, in the same tile.
  resubscribe(id) {
    const sub = this.subs.get(id);
    if (!sub || this.closed) return;
    report.reconnects.subscribe++;
    if (report.remote[id]) report.remote[id].state = 'reconnecting';
    this.subscribe(id, sub);
  }

  unwatch(id) {
    const sub = this.subs.get(id);
    if (!sub) return;
    this.subs.delete(id);
    delete report.remote[id];
    sub.tile.remove();
    render();
    if (sub.peer) release(sub.peer, this.token, true); // its publisher left, or its node did
  }

  // poll updates window.stagehand from the peer connections' stats.
  async poll() {
    if (this.pub) {
      const stats = await this.pub.pc.getStats();
      const layers = [];
      for (const s of stats.values()) {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') continue;
        // With simulcast, one per layer: the top one (f) is the local.
        if (s.rid) layers.push({ rid: s.rid, framesSent: s.framesSent ?? 0, width: s.frameWidth ?? 0, height: s.frameHeight ?? 0 });
        if (s.rid && s.rid !== 'f') continue;
        report.local = { framesEncoded: s.framesEncoded ?? 0, framesSent: s.framesSent ?? 0,
          width: s.frameWidth ?? 0, height: s.frameHeight ?? 0, codec: codecOf(stats, s.codecId) };
      }
      if (report.local && layers.length) report.local.layers = layers;
      const flowing = this.pub.pc.connectionState === 'connected' && report.local?.framesSent > 0;
      if (flowing && !report.publishing && this.moving === 0 && !report.state.startsWith('error')) {
        report.publishing = true;
        setState('publishing');
      }
    }
    for (const [id, sub] of this.subs) {
      if (!sub.peer) continue;
      const stats = await sub.peer.pc.getStats();
      const r = report.remote[id];
      for (const s of stats.values()) {
        if (!r || s.type !== 'inbound-rtp' || s.kind !== 'video') continue;
        r.frames = s.framesDecoded ?? 0;
        r.width = s.frameWidth ?? 0;
        r.height = s.frameHeight ?? 0;
        r.codec = codecOf(stats, s.codecId);
      }
    }
  }

  startPolling() {
    const loop = async () => {
      if (this.closed) return;
      try {
        await this.poll();
      } catch (err) {
        console.warn('stats', err);
      }
      if (!this.closed) this.timer = setTimeout(loop, 500);
    };
    loop();
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, 'left');
    // Subscriptions first, then the publication: the stage then records
    // SUBSCRIBE_STOPPED, PUBLISH_STOPPED, LEFT in that order.
    const subs = [...this.subs.values()];
    this.subs.clear();
    await Promise.all(subs.filter((s) => s.peer).map((s) => release(s.peer, this.token)));
    if (this.pub) await release(this.pub, this.token);
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    $('tiles').replaceChildren();
    report.remote = {};
    report.local = null;
    report.publishing = false;
  }
}

function setJoined(joined) {
  $('join').disabled = joined;
  $('token').disabled = joined;
  $('simulcast').disabled = joined;
  $('leave').disabled = !joined;
}

// sameOrigin is the ?whip= or ?events= override of the token's URLs, taken
// only when it points at this page's own server: a link could otherwise
// send the token to a server of its author's.
function sameOrigin(name) {
  const v = params.get(name);
  if (!v) return '';
  const u = new URL(v, location.href);
  const scheme = u.protocol.replace(/^ws/, 'http');
  if (u.host !== location.host || scheme !== location.protocol) {
    throw new Error(`?${name}= must point at this page's server (${location.host}); the token's own URL is used otherwise`);
  }
  return u.href;
}

async function join(text) {
  if (current) return;
  const token = text.trim();
  let s = null;
  report.errors = [];
  try {
    const claims = decodeToken(token);
    const whip = sameOrigin('whip') || claims.whip_url;
    const events = sameOrigin('events') || claims.events_url;
    if (!whip || !events) throw new Error('the token has no whip_url or events_url claim; add ?whip= and ?events=');
    s = current = new Session(token, claims, whip, events);
    s.simulcast = $('simulcast').checked;
    report.participantId = claims.jti || '';
    setJoined(true);
    setState('joining');
    await s.openEvents();
    s.startPolling();
    if (s.caps.allow_publish) await s.publish();
    else setState('watching');
  } catch (err) {
    const msg = recordError('join', err);
    await s?.close();
    current = null;
    setJoined(false);
    setState(`error: ${msg}`);
  }
}

async function leave() {
  const s = current;
  if (!s) return;
  current = null;
  setState('leaving');
  await s.close();
  setJoined(false);
  setState('left');
}

$('token').value = params.get('token') ?? '';
$('simulcast').checked = params.get('simulcast') === '1';
$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  join($('token').value);
});
$('leave').addEventListener('click', () => leave());
addEventListener('pagehide', () => current?.close()); // DELETEs go out with keepalive
if (params.get('autojoin') === '1' && $('token').value) join($('token').value);
