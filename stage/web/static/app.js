// The stagehand stage page: join a stage with a participant token, publish
// camera and microphone over WHIP, watch the other publishers over WHEP.
// See package web for how it reports its state.

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// report is window.stagehand: plain data, so that a test reads it whole
// with one evaluation.
const report = { state: 'idle', publishing: false, participantId: '', local: null, remote: {}, errors: [] };
window.stagehand = report;

let current = null; // the joined Session

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

// negotiate makes the WHIP/WHEP exchange of peer ({pc, resource}): the
// offer is POSTed to url, the 201 answer applied. peer.resource is set as
// soon as the server has created the session, so that release can always
// DELETE it.
async function negotiate(peer, url, token) {
  const { pc } = peer;
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const resp = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  const body = await resp.text();
  if (resp.status !== 201) throw new Error(`${resp.status} ${body.trim() || resp.statusText}`);
  const loc = resp.headers.get('Location');
  if (loc) peer.resource = new URL(loc, url).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
}

// release leaves a WHIP/WHEP session: DELETE first, so that the stage
// records a leave rather than a lost connection, then close.
async function release(peer, token) {
  const url = peer.resource;
  peer.resource = '';
  if (url) {
    try {
      // A 404 is fine: the stage ends subscriptions of a publisher that left.
      await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` }, keepalive: true });
    } catch (err) {
      recordError(`DELETE ${url}`, err);
    }
  }
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
// token may publish, and a WHEP subscription per other publisher.
class Session {
  constructor(token, claims, whip, events) {
    this.token = token;
    this.claims = claims;
    this.caps = claims.capabilities || {};
    this.whip = whip;
    this.events = events;
    this.base = whip.replace(/\/whip\/?$/, '');
    this.pub = null; // {pc, resource}
    this.subs = new Map(); // participantId -> {pc, resource, tile}
    this.stream = null;
    this.ws = null;
    this.closed = false;
    this.timer = 0;
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
      ws.onmessage = (e) => this.onEvent(JSON.parse(e.data));
      ws.onclose = (e) => {
        const why = `closed (${e.code}${e.reason ? ` ${e.reason}` : ''})`;
        if (!open) reject(new Error(`events channel ${this.events} refused or unreachable: ${why}`));
        else this.fail('events', why);
      };
    });
  }

  onEvent(m) {
    switch (m.type) {
      case 'snapshot':
        for (const p of m.participants ?? []) if (p.tracks?.length) this.watch(p);
        break;
      case 'tracks-published':
        // Again for a participant already watched: a track started late,
        // which only a new subscription carries.
        if (this.subs.has(m.participant.participantId)) this.unwatch(m.participant.participantId);
        this.watch(m.participant);
        break;
      case 'tracks-unpublished':
      case 'participant-left':
        this.unwatch(m.participant.participantId);
        break;
      case 'session-ended':
        for (const id of [...this.subs.keys()]) this.unwatch(id);
        break;
    }
  }

  async publish() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    addTile(this.claims.jti, this.claims.user_id || this.claims.jti, true).video.srcObject = this.stream;
    const pc = new RTCPeerConnection();
    this.pub = { pc, resource: '' };
    for (const track of this.stream.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [this.stream] });
      if (track.kind === 'video') preferVP8(tr);
    }
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') {
        report.publishing = false;
        this.fail('publish', new Error('the connection failed (no ICE/DTLS traffic)'));
      }
    };
    setState('connecting'); // "publishing" once frames are sent
    await negotiate(this.pub, this.whip, this.token);
  }

  watch(p) {
    const id = p.participantId;
    if (!this.caps.allow_subscribe || this.closed || id === this.claims.jti || this.subs.has(id)) return;
    const { fig, video } = addTile(id, p.userId || id, false);
    const sub = { pc: new RTCPeerConnection(), resource: '', tile: fig };
    this.subs.set(id, sub);
    const r = (report.remote[id] = { userId: p.userId || '', state: 'subscribing', frames: 0, presented: 0, width: 0, height: 0, codec: '' });
    render();
    countPresented(video, r);
    const stream = new MediaStream();
    sub.pc.addTransceiver('audio', { direction: 'recvonly' });
    sub.pc.addTransceiver('video', { direction: 'recvonly' });
    sub.pc.ontrack = (e) => {
      stream.addTrack(e.track);
      video.srcObject = stream;
    };
    sub.pc.onconnectionstatechange = () => { r.state = sub.pc.connectionState; };
    negotiate(sub, `${this.base}/whep/${encodeURIComponent(id)}`, this.token).then(
      () => {
        if (this.subs.get(id) !== sub) release(sub, this.token); // unpublished meanwhile
      },
      (err) => {
        if (this.subs.get(id) !== sub) return release(sub, this.token);
        recordError(`subscribe to ${p.userId || id}`, err);
        this.unwatch(id);
      },
    );
  }

  unwatch(id) {
    const sub = this.subs.get(id);
    if (!sub) return;
    this.subs.delete(id);
    delete report.remote[id];
    sub.tile.remove();
    render();
    release(sub, this.token);
  }

  // poll updates window.stagehand from the peer connections' stats.
  async poll() {
    if (this.pub) {
      const stats = await this.pub.pc.getStats();
      for (const s of stats.values()) {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') continue;
        report.local = { framesEncoded: s.framesEncoded ?? 0, framesSent: s.framesSent ?? 0,
          width: s.frameWidth ?? 0, height: s.frameHeight ?? 0, codec: codecOf(stats, s.codecId) };
      }
      const flowing = this.pub.pc.connectionState === 'connected' && report.local?.framesSent > 0;
      if (flowing && !report.publishing && !report.state.startsWith('error')) {
        report.publishing = true;
        setState('publishing');
      }
    }
    for (const [id, sub] of this.subs) {
      const stats = await sub.pc.getStats();
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
    await Promise.all(subs.map((p) => release(p, this.token)));
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
  $('leave').disabled = !joined;
}

async function join(text) {
  if (current) return;
  const token = text.trim();
  let s = null;
  report.errors = [];
  try {
    const claims = decodeToken(token);
    const whip = params.get('whip') || claims.whip_url;
    const events = params.get('events') || claims.events_url;
    if (!whip || !events) throw new Error('the token has no whip_url or events_url claim; add ?whip= and ?events=');
    s = current = new Session(token, claims, whip, events);
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
$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  join($('token').value);
});
$('leave').addEventListener('click', () => leave());
addEventListener('pagehide', () => current?.close()); // DELETEs go out with keepalive
if (params.get('autojoin') === '1' && $('token').value) join($('token').value);
