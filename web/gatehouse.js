/**
 * @file gatehouse.js — browser client for the Gatehouse WebRTC security
 * gateway, and the demo page that the gateway serves at "/".
 *
 * Part 1 is the client library: the class {@link Gatehouse} speaks the
 * signaling protocol (docs/protocol.md) over the WebSocket at /ws and runs
 * the calls' RTCPeerConnections. Gatehouse only lets media through its own
 * TURN relay, so every connection is made with the call's short-lived TURN
 * credentials and iceTransportPolicy "relay"; candidates are trickled both
 * ways, and remote ones are queued until the remote description is set.
 *
 * Part 2 is the demo: when the page has an element #gh-demo, the library is
 * bound to the page's form, contact list, call buttons, videos and the
 * security indicator. The page is served with a Content-Security-Policy
 * that forbids inline scripts, which is why the demo lives in this file.
 *
 * Usage (see docs/protocol.md, "Using gatehouse.js"):
 *
 *     const gh = new Gatehouse();
 *     await gh.connect();                       // ws(s)://<this host>/ws
 *     await gh.login({user: 'alice', password: '…', totp: '123456'});
 *     gh.on('track', ({track, streams}) => { video.srcObject = streams[0]; });
 *     const call = await gh.call('bob', ['audio', 'video', 'data']);
 *     gh.on('security', s => console.log(Gatehouse.describeSecurity(s)));
 *     gh.hangup(call.id);
 *
 * No dependencies; runs in current Chromium, Firefox and Safari.
 */
(function (global) {
  'use strict';

  // ===================================================================
  // Part 1: the client library
  // ===================================================================

  /** Largest message the gateway takes (bytes of JSON text). */
  const MAX_MESSAGE = 64 * 1024;
  /** Client-side send rate, below the gateway's 20/s with a burst of 40:
   * a client that goes over it gets bad_request and, after five, is cut. */
  const SEND_PER_S = 15;
  const SEND_BURST = 30;
  /** The gateway closes connections idle for 120 s. */
  const KEEPALIVE_MS = 30 * 1000;
  /** Password logins take about 0.3 s on the gateway (argon2id). */
  const REQUEST_TIMEOUT_MS = 20 * 1000;
  /** A login the gateway was too busy to check is tried again this many
   * times, after its retry_after_ms with jitter (so that a crowd behind
   * one address, arriving at 9:00, spreads out). */
  const LOGIN_BUSY_RETRIES = 4;
  const STATS_INTERVAL_MS = 1000;
  const KINDS = ['audio', 'video', 'screen', 'data'];

  /**
   * An error answered by the gateway (`{"type":"error", code, message}`) or
   * raised by the client.
   * Gateway codes: auth_failed, forbidden, offline, bad_request.
   * Client codes: not_connected, closed, timeout, too_large, unknown_call,
   * bad_state, no_media (camera/microphone unavailable: the call goes on
   * receive-only).
   */
  class GatehouseError extends Error {
    /**
     * @param {string} code
     * @param {string} message
     */
    constructor(code, message) {
      super(message || code);
      this.name = 'GatehouseError';
      /** @type {string} */
      this.code = code;
      /** When the gateway asks to be tried again later (a busy login
       * checker), after how many ms; otherwise undefined.
       * @type {number|undefined} */
      this.retryAfterMs = undefined;
    }
  }

  /**
   * @typedef {Object} IceServer
   * @property {string[]} urls        "turn:…?transport=udp", "turns:…"
   * @property {string} username      opaque, short-lived, bound to user and call
   * @property {string} credential
   */

  /**
   * @typedef {Object} Contact
   * @property {string} user
   * @property {boolean} online
   * @property {string[]} media       what this user may use toward that contact
   */

  /**
   * The security of a call, computed from live state.
   * @typedef {Object} SecurityState
   * @property {?string} call         call id, or null when there is no call
   * @property {?boolean} relayed     the selected ICE pair is relay on both
   *   ends (getStats); null until a pair is selected
   * @property {?boolean} encrypted   DTLS is "connected" and the transport
   *   stats name the ciphers; null until DTLS has finished
   * @property {?string} srtpCipher   e.g. "AES_CM_128_HMAC_SHA1_80"
   * @property {?string} dtlsCipher   e.g. "TLS_AES_128_GCM_SHA256"
   * @property {?string} tlsVersion   DTLS version as reported by the browser
   * @property {?string} dtlsState    "new", "connecting", "connected", …
   * @property {?string} localCandidateType   of the selected pair
   * @property {?string} remoteCandidateType  of the selected pair
   * @property {?string} relayProtocol        udp, tcp or tls to the relay
   * @property {?boolean} recorded    the policy asks for this call to be recorded
   *                                   (nothing records media yet)
   */

  /**
   * One call. Its properties are read-only for applications; they change as
   * the call goes on.
   */
  class GatehouseCall {
    constructor(init) {
      /** @type {string} the gateway's call id */
      this.id = init.id;
      /** @type {string} the other participant */
      this.peer = init.peer;
      /** @type {'outgoing'|'incoming'} */
      this.direction = init.direction;
      /** @type {string[]} media the gateway granted */
      this.media = init.media || [];
      /** @type {boolean} policy records this call */
      this.record = !!init.record;
      /**
       * @type {string} 'ringing' (placed, the other side rings),
       * 'incoming' (rings here), 'accepting', 'connecting', 'connected',
       * 'disconnected' (ICE lost, may come back), 'failed', 'ended'
       */
      this.state = init.state;
      /** @type {?RTCPeerConnection} */
      this.pc = null;
      /** @type {?MediaStream} camera and microphone sent to the peer */
      this.localStream = null;
      /** @type {?MediaStream} what the peer sends */
      this.remoteStream = null;
      /** @type {?RTCDataChannel} when "data" is in media */
      this.dataChannel = null;
      /** @type {string[]} candidate lines received from the gateway
       * (trickled, and those inside remote descriptions) */
      this.remoteCandidates = [];
      /** @type {string[]} candidate lines gathered here and sent */
      this.localCandidates = [];
      /** @type {SecurityState} */
      this.security = emptySecurity(this);
      // Internal.
      this._iceServers = [];
      this._policy = 'relay';
      /** @type {?string} why it ended (a `hangup` event reason) */
      this.endReason = null;
      this._accepted = false;
      // Resolved once media and the peer connection are set up.
      this._ready = new Promise((resolve) => { this._readyResolve = resolve; });
      this._queue = Promise.resolve(); // serialises SDP handling
      this._pendingRemote = [];    // candidates before the remote description
      this._pendingLocal = [];     // candidates before our description was sent
      this._descriptionSent = false;
      this._tracksAdded = false;
      this._statsTimer = null;
    }

    /** @returns {boolean} */
    get ended() {
      return this.state === 'ended';
    }
  }

  function emptySecurity(call) {
    return {
      call: call ? call.id : null,
      relayed: null,
      encrypted: null,
      srtpCipher: null,
      dtlsCipher: null,
      tlsVersion: null,
      dtlsState: null,
      localCandidateType: null,
      remoteCandidateType: null,
      relayProtocol: null,
      recorded: call ? !!call.record : null,
    };
  }

  /** Copies of messages for the debug log, with secrets blanked. */
  function redact(msg) {
    return JSON.stringify(msg, (k, v) =>
      (k === 'password' || k === 'totp' || k === 'token' || k === 'credential') &&
      typeof v === 'string' ? '***' : v);
  }

  /**
   * The Gatehouse client: one WebSocket session, one logged-in user, any
   * number of calls (the gateway allows 4 at once per user).
   *
   * Events (subscribe with {@link Gatehouse#on}):
   * - `connection` {state: 'connecting'|'open'|'busy'|'authenticated'|'closed', user?, code?,
   *                reason?, retryInMs?} — 'busy': the gateway had no room to check the
   *                login; it is tried again in retryInMs
   * - `incoming`   {@link GatehouseCall} — someone calls; answer with accept(), or reject()
   * - `accepted`   {@link GatehouseCall} — the callee answered our call
   * - `hangup`     {call, reason, peer} — a call ended; reason is the gateway's
   *                ("hangup", "rejected", "timeout", "disconnected",
   *                "answered_elsewhere", "policy") or "local" when we ended it,
   *                "failed" when the media path could not be set up
   * - `callstate`  {call, state} — see {@link GatehouseCall#state}
   * - `localstream` {call, stream} — camera/microphone captured
   * - `track`      {call, track, streams} — a remote track arrived
   * - `datachannel` {call, channel} — the call's data channel opened
   * - `message`    {call, data} — data channel message
   * - `candidate`  {call, direction: 'local'|'remote', candidate} — for diagnostics
   * - `security`   {@link SecurityState} — the indicator changed
   * - `error`      {@link GatehouseError} — an error not tied to a request
   *                (e.g. a refused description, or no camera)
   */
  class Gatehouse {
    /**
     * @param {Object} [options]
     * @param {boolean} [options.debug=false] log every signaling message
     *   (secrets blanked) and peer-connection event to the console
     * @param {MediaStreamConstraints} [options.constraints] overrides the
     *   getUserMedia constraints; audio/video are still limited to the
     *   call's media
     */
    constructor(options) {
      this.options = Object.assign({debug: false, constraints: null}, options || {});
      /** @type {?WebSocket} */
      this.ws = null;
      /** @type {?string} logged-in user */
      this.user = null;
      /** @type {Map<string, GatehouseCall>} live calls by id */
      this.calls = new Map();
      this._handlers = new Map();
      this._pending = new Map();
      this._nextId = 1;
      this._outbox = [];
      this._tokens = SEND_BURST;
      this._tokensAt = Date.now();
      this._drainTimer = null;
      /** A busy login's wait before it goes again: {timer, reject}. */
      this._loginWait = null;
      this._keepalive = null;
    }

    // --------------------------------------------------------- events

    /**
     * Subscribes to an event. Returns a function that unsubscribes.
     * @param {string} type
     * @param {function(*): void} fn
     * @returns {function(): void}
     */
    on(type, fn) {
      if (!this._handlers.has(type)) this._handlers.set(type, new Set());
      this._handlers.get(type).add(fn);
      return () => this.off(type, fn);
    }

    /** @param {string} type @param {function(*): void} fn */
    off(type, fn) {
      const set = this._handlers.get(type);
      if (set) set.delete(fn);
    }

    _emit(type, detail) {
      const set = this._handlers.get(type);
      if (!set) return;
      for (const fn of Array.from(set)) {
        try {
          fn(detail);
        } catch (e) {
          console.error('gatehouse: "' + type + '" handler threw', e);
        }
      }
    }

    _debug(...args) {
      if (this.options.debug) console.debug('gatehouse:', ...args);
    }

    // ----------------------------------------------------- connection

    /**
     * Opens the WebSocket. Resolves once it is open.
     * @param {string} [url] default: ws(s)://<page host>/ws
     * @returns {Promise<void>}
     */
    connect(url) {
      if (!url) {
        const loc = global.location;
        url = (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/ws';
      }
      if (this.ws) this.close();
      this._emit('connection', {state: 'connecting'});
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        let opened = false;
        this.ws = ws;
        ws.onopen = () => {
          opened = true;
          this._tokens = SEND_BURST;
          this._tokensAt = Date.now();
          this._keepalive = setInterval(() => {
            try {
              this._send({type: 'ping'});
            } catch (e) { /* closing; onclose cleans up */ }
          }, KEEPALIVE_MS);
          this._emit('connection', {state: 'open'});
          resolve();
        };
        ws.onmessage = (ev) => this._onMessage(ev.data);
        ws.onclose = (ev) => {
          if (this.ws === ws) this._closed(ev.code, ev.reason);
          if (!opened) reject(new GatehouseError('closed', 'cannot connect to ' + url));
        };
        ws.onerror = () => { /* onclose follows and says it */ };
      });
    }

    /** Closes the session; every call ends. */
    close() {
      if (!this.ws) return;
      const ws = this.ws;
      this._closed(1000, 'closed by the client');
      try { ws.close(1000); } catch (e) { /* already closed */ }
    }

    _closed(code, reason) {
      clearInterval(this._keepalive);
      clearTimeout(this._drainTimer);
      this._keepalive = this._drainTimer = null;
      if (this._loginWait) {
        clearTimeout(this._loginWait.timer);
        this._loginWait.reject(new GatehouseError('closed', 'connection closed'));
        this._loginWait = null;
      }
      this._outbox = [];
      this.ws = null;
      this.user = null;
      for (const p of this._pending.values()) {
        clearTimeout(p.timer);
        p.reject(new GatehouseError('closed', 'connection closed'));
      }
      this._pending.clear();
      for (const call of Array.from(this.calls.values())) this._end(call, 'disconnected');
      this._emit('connection', {state: 'closed', code, reason});
    }

    /** Queues a message, keeping under the gateway's rate limit. */
    _send(msg) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        throw new GatehouseError('not_connected', 'not connected');
      }
      const text = JSON.stringify(msg);
      if (text.length > MAX_MESSAGE) {
        throw new GatehouseError('too_large', 'message larger than 64 KiB');
      }
      this._debug('->', redact(msg));
      this._outbox.push(text);
      this._drain();
    }

    _drain() {
      const now = Date.now();
      this._tokens = Math.min(SEND_BURST, this._tokens + (now - this._tokensAt) * SEND_PER_S / 1000);
      this._tokensAt = now;
      while (this._outbox.length && this._tokens >= 1 && this.ws) {
        this.ws.send(this._outbox.shift());
        this._tokens -= 1;
      }
      if (this._outbox.length && !this._drainTimer) {
        const wait = Math.ceil((1 - this._tokens) * 1000 / SEND_PER_S);
        this._drainTimer = setTimeout(() => { this._drainTimer = null; this._drain(); }, wait);
      }
    }

    /** Sends a request with a fresh id; resolves with the reply, rejects
     * with a GatehouseError on an error reply. */
    _request(msg) {
      return new Promise((resolve, reject) => {
        const id = this._nextId++;
        const timer = setTimeout(() => {
          this._pending.delete(id);
          reject(new GatehouseError('timeout', 'no answer to "' + msg.type + '"'));
        }, REQUEST_TIMEOUT_MS);
        this._pending.set(id, {resolve, reject, timer});
        try {
          this._send(Object.assign({}, msg, {id}));
        } catch (e) {
          clearTimeout(timer);
          this._pending.delete(id);
          reject(e);
        }
      });
    }

    // ----------------------------------------------------------- requests

    /**
     * Logs in with a password (and TOTP code when the gateway requires
     * MFA), or with a JWT. Resolves with the user name.
     * @param {{user: string, password: string, totp?: string}|{token: string}} creds
     * @returns {Promise<string>}
     */
    async login(creds) {
      const msg = {type: 'login'};
      if (creds.token) {
        msg.token = creds.token;
      } else {
        msg.user = creds.user;
        msg.password = creds.password;
        if (creds.totp) msg.totp = String(creds.totp).replace(/\s+/g, '');
      }
      const ws = this.ws;
      let reply;
      for (let attempt = 0; ; attempt++) {
        try {
          reply = await this._request(msg);
          break;
        } catch (e) {
          // Busy is not an attempt on the gateway (nothing was checked,
          // the code is not used up): the same login may go again, on the
          // connection it began on only (a close ends the wait).
          if (!(e instanceof GatehouseError) || e.retryAfterMs === undefined ||
              attempt >= LOGIN_BUSY_RETRIES || this.ws !== ws || this._loginWait) throw e;
          const wait = Math.round(e.retryAfterMs * (0.5 + Math.random()));
          this._emit('connection', {state: 'busy', retryInMs: wait});
          await new Promise((resolve, reject) => {
            this._loginWait = {reject, timer: setTimeout(() => {
              this._loginWait = null;
              resolve();
            }, wait)};
          });
        }
      }
      this.user = reply.user;
      this._emit('connection', {state: 'authenticated', user: reply.user});
      return reply.user;
    }

    /**
     * The peers this user may call, with the media allowed toward each.
     * @returns {Promise<Contact[]>}
     */
    async contacts() {
      const reply = await this._request({type: 'contacts'});
      return reply.contacts || [];
    }

    /**
     * Places a call. Resolves when the gateway has allowed it (the callee
     * rings); the call then goes 'accepted' → 'connecting' → 'connected',
     * or ends with a `hangup` event. The camera and microphone are opened
     * while it rings.
     * @param {string} to
     * @param {string[]} [media=['audio','video']] audio, video, screen, data
     * @returns {Promise<GatehouseCall>}
     */
    async call(to, media) {
      media = media || ['audio', 'video'];
      const reply = await this._request({type: 'call', to, media});
      const call = new GatehouseCall({
        id: reply.call, peer: to, direction: 'outgoing',
        media: reply.media || media, record: reply.record, state: 'ringing',
      });
      call._iceServers = reply.ice_servers || [];
      call._policy = reply.ice_transport_policy || 'relay';
      this.calls.set(call.id, call);
      this._emit('callstate', {call, state: call.state});
      this._publishSecurity(call, emptySecurity(call), true);
      this._prepare(call).then(call._readyResolve);
      return call;
    }

    /**
     * Answers an incoming call: opens camera/microphone and waits for the
     * caller's offer.
     * @param {string} callId
     * @returns {Promise<GatehouseCall>}
     */
    async accept(callId) {
      const call = this._callOf(callId);
      if (call.direction !== 'incoming' || call.state !== 'incoming') {
        throw new GatehouseError('bad_state', 'no ringing call to accept');
      }
      this._setState(call, 'accepting');
      let reply;
      try {
        reply = await this._request({type: 'accept', call: call.id});
      } catch (e) {
        this._end(call, 'failed');
        throw e;
      }
      call._accepted = true;
      call._iceServers = reply.ice_servers || [];
      call._policy = reply.ice_transport_policy || 'relay';
      if (reply.media) call.media = reply.media;
      call.record = !!reply.record;
      this._setState(call, 'connecting');
      this._publishSecurity(call, emptySecurity(call), true);
      this._prepare(call).then(call._readyResolve);
      return call;
    }

    /**
     * Declines an incoming call; the caller gets hangup reason "rejected".
     * @param {string} callId
     */
    reject(callId) {
      const call = this._callOf(callId);
      if (call.direction !== 'incoming' || call._accepted) {
        throw new GatehouseError('bad_state', 'no ringing call to reject');
      }
      this._send({type: 'reject', call: call.id});
      this._end(call, 'local');
    }

    /**
     * Ends a call (placed, ringing here, or connected). The other side gets
     * hangup reason "hangup" ("rejected" for a call that only rang here).
     * @param {string} callId
     */
    hangup(callId) {
      const call = this._callOf(callId);
      if (call.direction === 'incoming' && !call._accepted) {
        this.reject(callId);
        return;
      }
      try {
        this._send({type: 'hangup', call: call.id});
      } finally {
        this._end(call, 'local');
      }
    }

    /**
     * Sends a text over the call's data channel.
     * @param {string} callId
     * @param {string} text
     */
    send(callId, text) {
      const call = this._callOf(callId);
      if (!call.dataChannel || call.dataChannel.readyState !== 'open') {
        throw new GatehouseError('bad_state', 'the data channel is not open');
      }
      call.dataChannel.send(text);
    }

    /** @param {string} callId @returns {?GatehouseCall} */
    getCall(callId) {
      return this.calls.get(callId) || null;
    }

    /** The most recently started live call, or null. @returns {?GatehouseCall} */
    currentCall() {
      let last = null;
      for (const c of this.calls.values()) last = c;
      return last;
    }

    /**
     * The security indicator's state for a call (default: the current
     * call), as last computed from getStats (about once a second). With no
     * call, every field is null.
     * @param {string} [callId]
     * @returns {SecurityState}
     */
    securityState(callId) {
      const call = callId ? this.getCall(callId) : this.currentCall();
      if (!call) return emptySecurity(null);
      return Object.assign({}, call.security);
    }

    /**
     * Recomputes a call's security state now.
     * @param {string} [callId]
     * @returns {Promise<SecurityState>}
     */
    async refreshSecurity(callId) {
      const call = callId ? this.getCall(callId) : this.currentCall();
      if (!call) return emptySecurity(null);
      await this._pollStats(call);
      return Object.assign({}, call.security);
    }

    /**
     * The call's RTCStatsReport (null before its peer connection exists).
     * @param {string} callId
     * @returns {Promise<?RTCStatsReport>}
     */
    async stats(callId) {
      const call = this._callOf(callId);
      return call.pc ? call.pc.getStats() : null;
    }

    _callOf(callId) {
      const call = this.calls.get(callId);
      if (!call) throw new GatehouseError('unknown_call', 'no such call: ' + callId);
      return call;
    }

    // ------------------------------------------------ incoming messages

    _onMessage(text) {
      let msg;
      try {
        msg = JSON.parse(text);
      } catch (e) {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      this._debug('<-', redact(msg));
      if (msg.id !== undefined && this._pending.has(msg.id)) {
        const p = this._pending.get(msg.id);
        this._pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.type === 'error') {
          const err = new GatehouseError(msg.code, msg.message);
          if (Number.isFinite(msg.retry_after_ms) && msg.retry_after_ms >= 0) {
            err.retryAfterMs = Math.min(msg.retry_after_ms, 60 * 1000);
          }
          p.reject(err);
        } else {
          p.resolve(msg);
        }
        return;
      }
      const call = typeof msg.call === 'string' ? this.calls.get(msg.call) : null;
      switch (msg.type) {
        case 'incoming':
          this._onIncoming(msg);
          break;
        case 'accepted':
          if (call) this._onAccepted(call);
          break;
        case 'hangup':
          if (call) this._end(call, msg.reason || 'hangup');
          break;
        case 'sdp':
          if (call && msg.sdp) this._enqueue(call, () => this._onDescription(call, msg.sdp));
          break;
        case 'candidate':
          if (call && msg.candidate) this._onRemoteCandidate(call, msg.candidate);
          break;
        case 'error':
          this._emit('error', new GatehouseError(msg.code, msg.message));
          break;
        default:
          break; // pong, and replies nobody waits for any more
      }
    }

    _onIncoming(msg) {
      if (this.calls.has(msg.call)) return;
      const call = new GatehouseCall({
        id: msg.call, peer: msg.from, direction: 'incoming',
        media: msg.media, record: msg.record, state: 'incoming',
      });
      this.calls.set(call.id, call);
      this._emit('callstate', {call, state: call.state});
      this._emit('incoming', call);
    }

    _onAccepted(call) {
      call._accepted = true;
      this._setState(call, 'connecting');
      this._emit('accepted', call);
      // The gateway refuses descriptions before the call is accepted, so
      // the offer is made only now.
      this._enqueue(call, async () => {
        await call._ready;
        if (call.ended) return;
        const offer = await call.pc.createOffer();
        if (call.ended) return;
        await call.pc.setLocalDescription(offer);
        if (call.ended) return;
        this._sendDescription(call);
      });
    }

    /** Runs SDP work for a call one step at a time, in arrival order. */
    _enqueue(call, fn) {
      call._queue = call._queue.then(fn).catch((e) => {
        if (call.ended) return;
        console.error('gatehouse: call ' + call.id + ':', e);
        this._emit('error', new GatehouseError('bad_state', String(e && e.message || e)));
        try {
          this.hangup(call.id);
        } catch (e2) { /* not connected any more */ }
      });
    }

    async _onDescription(call, desc) {
      await call._ready;
      if (call.ended || !call.pc) return;
      for (const line of (desc.sdp || '').split(/\r?\n/)) {
        if (line.startsWith('a=candidate:')) {
          call.remoteCandidates.push(line.slice(2));
          this._emit('candidate', {call, direction: 'remote', candidate: line.slice(2)});
        }
      }
      await call.pc.setRemoteDescription({type: desc.type, sdp: desc.sdp});
      if (call.ended) return;
      await this._flushRemoteCandidates(call);
      if (desc.type !== 'offer') return;
      if (!call._tracksAdded && call.localStream) {
        // addTrack reuses the offer's transceiver of the same kind.
        for (const track of call.localStream.getTracks()) call.pc.addTrack(track, call.localStream);
        call._tracksAdded = true;
      }
      const answer = await call.pc.createAnswer();
      if (call.ended) return;
      await call.pc.setLocalDescription(answer);
      if (call.ended) return;
      this._sendDescription(call);
    }

    _sendDescription(call) {
      const d = call.pc.localDescription;
      this._send({type: 'sdp', call: call.id, sdp: {type: d.type, sdp: d.sdp}});
      call._descriptionSent = true;
      const held = call._pendingLocal;
      call._pendingLocal = [];
      for (const c of held) this._send({type: 'candidate', call: call.id, candidate: c});
    }

    _onRemoteCandidate(call, cand) {
      if (typeof cand.candidate !== 'string' || !cand.candidate) return;
      call.remoteCandidates.push(cand.candidate);
      this._emit('candidate', {call, direction: 'remote', candidate: cand.candidate});
      const init = {
        candidate: cand.candidate,
        sdpMid: cand.sdpMid === undefined ? null : cand.sdpMid,
        sdpMLineIndex: cand.sdpMLineIndex === undefined ? null : cand.sdpMLineIndex,
      };
      if (!call.pc || !call.pc.remoteDescription) {
        call._pendingRemote.push(init);
        return;
      }
      call.pc.addIceCandidate(init).catch((e) => this._debug('addIceCandidate', e));
    }

    async _flushRemoteCandidates(call) {
      const held = call._pendingRemote;
      call._pendingRemote = [];
      for (const init of held) {
        try {
          await call.pc.addIceCandidate(init);
        } catch (e) {
          this._debug('addIceCandidate', e);
        }
      }
    }

    // ------------------------------------------------ media and the PC

    /** Opens camera/microphone for the call's media and builds its
     * RTCPeerConnection (relay only). Never rejects: without a camera the
     * call goes on receive-only. */
    async _prepare(call) {
      const want = {
        audio: call.media.includes('audio'),
        video: call.media.includes('video'),
      };
      if ((want.audio || want.video) && global.navigator && navigator.mediaDevices) {
        const c = this.options.constraints || {};
        const constraints = {
          audio: want.audio ? (c.audio || true) : false,
          video: want.video ? (c.video || true) : false,
        };
        try {
          call.localStream = await navigator.mediaDevices.getUserMedia(constraints);
        } catch (e) {
          this._emit('error', new GatehouseError('no_media',
            'camera/microphone unavailable (' + (e && e.name) + '); receiving only'));
        }
      }
      if (call.ended) {
        this._stopLocal(call);
        return;
      }
      if (call.localStream) this._emit('localstream', {call, stream: call.localStream});
      const pc = new RTCPeerConnection({
        iceServers: call._iceServers.map((s) => ({
          urls: s.urls, username: s.username, credential: s.credential,
        })),
        // The gateway hands out relay servers only and drops every other
        // candidate anyway; gathering host candidates would only leak
        // local addresses.
        iceTransportPolicy: call._policy === 'all' ? 'all' : 'relay',
        bundlePolicy: 'max-bundle',
        rtcpMuxPolicy: 'require',
      });
      call.pc = pc;
      call.remoteStream = new MediaStream();
      pc.onicecandidate = (ev) => this._onLocalCandidate(call, ev.candidate);
      pc.onicecandidateerror = (ev) => this._debug('icecandidateerror', call.id, ev.url,
        ev.errorCode, ev.errorText);
      pc.ontrack = (ev) => {
        call.remoteStream.addTrack(ev.track);
        const streams = ev.streams && ev.streams.length ? ev.streams : [call.remoteStream];
        this._emit('track', {call, track: ev.track, streams});
      };
      pc.ondatachannel = (ev) => this._bindChannel(call, ev.channel);
      pc.onconnectionstatechange = () => this._onConnectionState(call);
      pc.oniceconnectionstatechange = () => this._debug('ice', call.id, pc.iceConnectionState);
      if (call.direction === 'outgoing') {
        for (const kind of ['audio', 'video']) {
          if (!call.media.includes(kind)) continue;
          const tracks = call.localStream ? call.localStream.getTracks().filter((t) => t.kind === kind) : [];
          if (tracks.length) {
            for (const t of tracks) pc.addTrack(t, call.localStream);
          } else {
            pc.addTransceiver(kind, {direction: 'recvonly'});
          }
        }
        call._tracksAdded = true;
        if (call.media.includes('data')) {
          this._bindChannel(call, pc.createDataChannel('gatehouse', {ordered: true}));
        }
      }
      call._statsTimer = setInterval(() => this._pollStats(call), STATS_INTERVAL_MS);
    }

    _onLocalCandidate(call, cand) {
      if (!cand || !cand.candidate) return; // end of gathering
      call.localCandidates.push(cand.candidate);
      this._emit('candidate', {call, direction: 'local', candidate: cand.candidate});
      const c = {candidate: cand.candidate, sdpMid: cand.sdpMid, sdpMLineIndex: cand.sdpMLineIndex};
      if (!call._descriptionSent) {
        call._pendingLocal.push(c);
        return;
      }
      try {
        this._send({type: 'candidate', call: call.id, candidate: c});
      } catch (e) {
        this._debug('candidate not sent', e);
      }
    }

    _bindChannel(call, channel) {
      call.dataChannel = channel;
      channel.onopen = () => this._emit('datachannel', {call, channel});
      channel.onmessage = (ev) => this._emit('message', {call, data: ev.data});
    }

    _onConnectionState(call) {
      const s = call.pc.connectionState;
      this._debug('connection', call.id, s);
      if (call.ended) return;
      if (s === 'connected' || s === 'disconnected' || s === 'failed') this._setState(call, s);
      if (s === 'connected' || s === 'failed') this._pollStats(call);
    }

    _setState(call, state) {
      if (call.state === state || call.ended) return;
      call.state = state;
      this._emit('callstate', {call, state});
    }

    _stopLocal(call) {
      if (call.localStream) for (const t of call.localStream.getTracks()) t.stop();
    }

    /** Tears a call down here; the gateway has been told already (or told us). */
    _end(call, reason) {
      if (call.ended) return;
      call.state = 'ended';
      call.endReason = reason;
      clearInterval(call._statsTimer);
      this._stopLocal(call);
      if (call.dataChannel) try { call.dataChannel.close(); } catch (e) { /* closed */ }
      if (call.pc) try { call.pc.close(); } catch (e) { /* closed */ }
      this.calls.delete(call.id);
      // call.security keeps the last state seen; the indicator shows "no call".
      this._emit('security', Object.assign(emptySecurity(null), {ended: call.id}));
      this._emit('callstate', {call, state: 'ended'});
      this._emit('hangup', {call, reason, peer: call.peer});
    }

    // ------------------------------------------- the security indicator

    /** Reads the call's stats and updates its security state. */
    async _pollStats(call) {
      if (!call.pc || call.ended) return;
      let report;
      try {
        report = await call.pc.getStats();
      } catch (e) {
        return;
      }
      if (call.ended) return;
      const byId = new Map();
      let transport = null;
      report.forEach((s) => {
        byId.set(s.id, s);
        if (s.type === 'transport' && (!transport || s.selectedCandidatePairId)) transport = s;
      });
      let pair = transport && transport.selectedCandidatePairId
        ? byId.get(transport.selectedCandidatePairId) : null;
      if (!pair) {
        // Browsers without transport stats mark the pair itself.
        report.forEach((s) => {
          if (s.type === 'candidate-pair' && s.selected) pair = s;
        });
      }
      const local = pair ? byId.get(pair.localCandidateId) : null;
      const remote = pair ? byId.get(pair.remoteCandidateId) : null;
      const sec = emptySecurity(call);
      if (local && remote) {
        sec.localCandidateType = local.candidateType || null;
        sec.remoteCandidateType = remote.candidateType || null;
        sec.relayProtocol = local.relayProtocol || null;
        sec.relayed = local.candidateType === 'relay' && remote.candidateType === 'relay';
      }
      if (transport) {
        sec.dtlsState = transport.dtlsState || null;
        sec.srtpCipher = transport.srtpCipher || null;
        sec.dtlsCipher = transport.dtlsCipher || null;
        sec.tlsVersion = transport.tlsVersion || null;
      } else {
        const t = call.pc.getSenders().map((x) => x.transport).find(Boolean) ||
          (call.pc.sctp && call.pc.sctp.transport);
        sec.dtlsState = t ? t.state : null;
      }
      if (sec.dtlsState === 'connected') {
        // WebRTC media is always DTLS-SRTP; the ciphers are the evidence
        // (none are reported by browsers without transport stats).
        const needsSrtp = call.media.includes('audio') || call.media.includes('video');
        sec.encrypted = transport
          ? !!sec.dtlsCipher && (!needsSrtp || !!sec.srtpCipher)
          : true;
      } else if (sec.dtlsState === 'failed' || sec.dtlsState === 'closed') {
        sec.encrypted = false;
      }
      this._publishSecurity(call, sec);
    }

    _publishSecurity(call, sec, force) {
      const before = JSON.stringify(call.security);
      call.security = sec;
      if (force || before !== JSON.stringify(sec)) this._emit('security', Object.assign({}, sec));
    }

    /**
     * Plain-language lines for a security state, for people:
     * [{key: 'relayed'|'encrypted'|'recorded', level: 'ok'|'pending'|'bad'|'info', text}].
     * @param {SecurityState} s
     * @returns {{key: string, level: string, text: string}[]}
     */
    static describeSecurity(s) {
      if (!s || !s.call) return [{key: 'call', level: 'info', text: 'No call'}];
      const lines = [];
      if (s.relayed === true) {
        lines.push({key: 'relayed', level: 'ok',
          text: 'Relayed through the gateway: the other side does not see your address'});
      } else if (s.relayed === false) {
        lines.push({key: 'relayed', level: 'bad',
          text: 'NOT relayed through the gateway (' + s.localCandidateType + ' to ' +
            s.remoteCandidateType + ')'});
      } else {
        lines.push({key: 'relayed', level: 'pending', text: 'Media path: not connected yet'});
      }
      if (s.encrypted === true) {
        const how = [s.srtpCipher, s.dtlsCipher].filter(Boolean).join(', ');
        lines.push({key: 'encrypted', level: 'ok',
          text: 'Encrypted' + (how ? ' (' + how + ')' : ' (DTLS-SRTP)')});
      } else if (s.encrypted === false) {
        lines.push({key: 'encrypted', level: 'bad', text: 'NOT encrypted'});
      } else {
        lines.push({key: 'encrypted', level: 'pending', text: 'Encryption: setting up'});
      }
      lines.push(s.recorded
        // Media termination is not built yet (DESIGN.md, "Coming next"):
        // say what the policy asks for, and that nothing is recorded.
        ? {key: 'recorded', level: 'info',
          text: 'Recording: asked for by policy, but not available on this gateway: nothing is recorded'}
        : {key: 'recorded', level: 'ok', text: 'Recorded: no'});
      return lines;
    }
  }

  Gatehouse.Call = GatehouseCall;
  Gatehouse.Error = GatehouseError;
  global.Gatehouse = Gatehouse;
  global.GatehouseError = GatehouseError;

  // ===================================================================
  // Part 2: the demo page (bound only when the page has #gh-demo)
  // ===================================================================

  const REASONS = {
    local: 'you ended the call',
    hangup: 'the other side hung up',
    rejected: 'the call was rejected',
    timeout: 'no answer',
    disconnected: 'the other side disconnected',
    answered_elsewhere: 'answered on another device',
    policy: 'ended by the gateway\'s policy',
    failed: 'the media connection failed',
  };

  const ERRORS = {
    auth_failed: 'Login failed: check user, password and code',
    forbidden: 'This call is not allowed',
    offline: 'The user is not online',
    bad_request: 'The gateway refused the request',
  };

  function demo(root) {
    const $ = (id) => document.getElementById(id);
    const params = new URLSearchParams(global.location.search);
    const gh = new Gatehouse({debug: params.has('debug')});
    let active = null;      // the call shown on the page
    let ringing = null;     // an incoming call waiting for Answer/Reject
    let contactsTimer = null;

    // For tests and the console: the page's client.
    global.gh = gh;

    function status(text) {
      $('status').textContent = text;
    }

    function show(id, on) {
      $(id).hidden = !on;
    }

    function errorText(e) {
      // Busy after every retry: not the user's credentials.
      if (e && e.retryAfterMs !== undefined) return 'The gateway is busy: try again in a moment';
      return (e && ERRORS[e.code]) || (e && e.message) || String(e);
    }

    function renderSecurity(s) {
      const box = $('security');
      box.replaceChildren();
      for (const line of Gatehouse.describeSecurity(s)) {
        const li = document.createElement('li');
        li.className = 'sec-' + line.level;
        li.dataset.key = line.key;
        li.textContent = line.text;
        box.appendChild(li);
      }
      box.dataset.relayed = String(s.relayed === true);
      box.dataset.encrypted = String(s.encrypted === true);
      box.dataset.recorded = String(s.recorded === true);
    }

    function buttonsFor(allowed) {
      // The richest call first, then lighter ones; screen sharing is not
      // captured by this demo.
      const media = allowed.filter((m) => m !== 'screen');
      const out = [];
      if (media.includes('video')) out.push({label: 'Video call', media});
      if (media.includes('audio')) {
        out.push({label: 'Audio call', media: media.filter((m) => m !== 'video')});
      }
      if (media.includes('data') && !out.length) out.push({label: 'Chat', media: ['data']});
      return out;
    }

    function renderContacts(list) {
      const ul = $('contacts');
      ul.replaceChildren();
      if (!list.length) {
        const li = document.createElement('li');
        li.textContent = 'Nobody you may call.';
        ul.appendChild(li);
      }
      for (const c of list) {
        const li = document.createElement('li');
        li.dataset.user = c.user;
        const name = document.createElement('span');
        name.className = 'name';
        name.textContent = c.user;
        const presence = document.createElement('span');
        presence.className = c.online ? 'online' : 'offline';
        presence.textContent = c.online ? 'online' : 'offline';
        li.append(name, ' ', presence, ' ');
        for (const b of buttonsFor(c.media)) {
          const btn = document.createElement('button');
          btn.type = 'button';
          btn.className = 'call';
          btn.dataset.user = c.user;
          btn.dataset.media = b.media.join(',');
          btn.textContent = b.label;
          btn.title = b.media.join(', ');
          li.append(btn, ' ');
        }
        ul.appendChild(li);
      }
    }

    async function refreshContacts() {
      try {
        renderContacts(await gh.contacts());
      } catch (e) {
        if (gh.user) status('Contacts: ' + errorText(e));
      }
    }

    function setInCall(call) {
      active = call;
      $('hangup').disabled = !call;
      $('chat-send').disabled = true;
      for (const b of document.querySelectorAll('button.call')) b.disabled = !!call;
      if (!call) {
        $('local-video').srcObject = null;
        $('remote-video').srcObject = null;
      }
    }

    function media(m) {
      return m.join(', ');
    }

    function chat(who, text) {
      const li = document.createElement('li');
      li.textContent = who + ': ' + text;
      $('chat-log').appendChild(li);
    }

    // Connection and login.
    gh.on('connection', (ev) => {
      if (ev.state === 'busy') status('The gateway is busy: logging in again in a moment…');
      if (ev.state === 'closed') {
        status('Disconnected from the gateway' + (ev.reason ? ': ' + ev.reason : ''));
        clearInterval(contactsTimer);
        show('login-panel', true);
        show('main-panel', false);
        $('login').disabled = false;
      }
    });

    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('login').disabled = true;
      try {
        if (!gh.ws) {
          status('Connecting…');
          await gh.connect(params.get('ws') || undefined);
        }
        status('Logging in…');
        const user = await gh.login({
          user: $('user').value.trim(), password: $('password').value, totp: $('totp').value,
        });
        $('password').value = '';
        $('totp').value = '';
        $('me').textContent = user;
        show('login-panel', false);
        show('main-panel', true);
        status('Logged in as ' + user);
        await refreshContacts();
        contactsTimer = setInterval(refreshContacts, 10 * 1000);
      } catch (e) {
        status(errorText(e));
        $('login').disabled = false;
      }
    });

    $('refresh').addEventListener('click', refreshContacts);

    $('logout').addEventListener('click', () => gh.close());

    // Placing a call.
    $('contacts').addEventListener('click', async (ev) => {
      const btn = ev.target.closest('button.call');
      if (!btn || active) return;
      const to = btn.dataset.user;
      const m = btn.dataset.media.split(',');
      status('Calling ' + to + ' (' + media(m) + ')…');
      setInCall({pending: true});
      try {
        const call = await gh.call(to, m);
        if (call.ended) {
          setInCall(null);
          status('Call with ' + to + ' ended: ' + (REASONS[call.endReason] || call.endReason));
          return;
        }
        setInCall(call);
        $('chat-log').replaceChildren();
        status('Ringing ' + to + '…');
      } catch (e) {
        setInCall(null);
        status(to + ': ' + errorText(e));
      }
    });

    // Answering.
    gh.on('incoming', (call) => {
      if (active || ringing) {
        // One call at a time in this demo.
        gh.reject(call.id);
        return;
      }
      ringing = call;
      $('incoming-text').textContent = call.peer + ' is calling (' + media(call.media) + ')' +
        (call.record ? ' (policy asks for recording; nothing is recorded yet)' : '');
      show('incoming', true);
      $('answer').disabled = false;
      $('reject').disabled = false;
      status('Incoming call from ' + call.peer);
    });

    function closePrompt() {
      ringing = null;
      show('incoming', false);
      $('answer').disabled = true;
      $('reject').disabled = true;
    }

    $('answer').addEventListener('click', async () => {
      const call = ringing;
      if (!call) return;
      closePrompt();
      setInCall(call);
      $('chat-log').replaceChildren();
      status('Answering ' + call.peer + '…');
      try {
        await gh.accept(call.id);
      } catch (e) {
        if (active === call) setInCall(null);
        // A call that ended meanwhile has said why already.
        if (call.endReason !== 'hangup') status('Cannot answer: ' + errorText(e));
      }
    });

    $('reject').addEventListener('click', () => {
      const call = ringing;
      if (!call) return;
      closePrompt();
      try {
        gh.reject(call.id);
      } catch (e) { /* it ended meanwhile */ }
      status('Rejected the call from ' + call.peer);
    });

    $('hangup').addEventListener('click', () => {
      if (active && active.id) gh.hangup(active.id);
    });

    // The call's progress.
    gh.on('accepted', (call) => {
      if (call === active) status(call.peer + ' answered; connecting…');
    });

    gh.on('callstate', ({call, state}) => {
      if (call !== active) return;
      if (state === 'connected') status('In a call with ' + call.peer);
      else if (state === 'disconnected') status('Connection to ' + call.peer + ' interrupted…');
      else if (state === 'failed') {
        status('The media connection to ' + call.peer + ' failed');
        gh.hangup(call.id);
      }
    });

    gh.on('hangup', ({call, reason}) => {
      if (call === ringing) {
        closePrompt();
        status('Missed call from ' + call.peer + ' (' + (REASONS[reason] || reason) + ')');
        return;
      }
      if (call !== active) return;
      setInCall(null);
      status('Call with ' + call.peer + ' ended: ' + (REASONS[reason] || reason));
    });

    gh.on('localstream', ({call, stream}) => {
      if (call !== active) return;
      const v = $('local-video');
      v.srcObject = stream;
      v.play().catch(() => {});
    });

    gh.on('track', ({call, streams}) => {
      if (call !== active) return;
      const v = $('remote-video');
      if (v.srcObject !== streams[0]) {
        v.srcObject = streams[0];
        v.play().catch(() => {});
      }
    });

    gh.on('security', (s) => {
      if (!s.call || (active && s.call === active.id)) renderSecurity(s);
    });

    gh.on('datachannel', ({call}) => {
      if (call === active) $('chat-send').disabled = false;
    });

    gh.on('message', ({call, data}) => {
      if (call === active) chat(call.peer, String(data));
    });

    gh.on('error', (e) => {
      if (e.code === 'no_media') status(e.message);
      else console.warn('gatehouse:', e.code, e.message);
    });

    $('chat-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = $('chat-input').value;
      if (!text || !active || !active.id) return;
      try {
        gh.send(active.id, text);
        chat('me', text);
        $('chat-input').value = '';
      } catch (e) {
        status(errorText(e));
      }
    });

    renderSecurity(emptySecurity(null));
    closePrompt();
    setInCall(null);
    status('Not logged in');
    root.dataset.ready = 'true';
  }

  if (global.document) {
    const start = () => {
      const root = document.getElementById('gh-demo');
      if (root) demo(root);
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else start();
  }
})(typeof window !== 'undefined' ? window : globalThis);
