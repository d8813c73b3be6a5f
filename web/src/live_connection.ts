// One stream's live WebSocket (docs/api.md, "Live"). The server may drop us at any time (a restart, a proxy,
// status 1008 "client too slow"); this reconnects with backoff and passes last_event_id, the highest event id
// seen, so that the server first sends the events we missed: a reconnect loses no rep.

import type { LiveMessage, StoredEvent } from './api_types';

const kFirstRetryMs = 500;
const kMaxRetryMs = 10_000;
// A connection that lived this long was a working one: the next failure starts the backoff again from the
// start. Resetting on `hello` instead would spin if a server accepts and then closes at once (an ended stream).
const kStableConnectionMs = 5_000;

export type ConnectionState =
  { kind: 'connecting' } | { kind: 'open' } | { kind: 'retrying'; retryInMs: number; reason: string };

export interface LiveHandlers {
  onMessage(message: LiveMessage): void;
  onConnectionState(state: ConnectionState): void;
}

/** Connects on construction and keeps reconnecting until close(). Not reusable after close(). */
export class LiveConnection {
  private socket: WebSocket | null = null;
  private lastEventId: number | null = null;
  private failedAttempts = 0;
  private retryTimer: number | undefined;

  constructor(
    private readonly urlFor: (lastEventId: number | null) => string,
    private readonly handlers: LiveHandlers,
  ) {
    this.connect();
  }

  close(): void {
    window.clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onmessage = null;
    socket.onclose = null;
    // Closing a socket that is still connecting makes the browser log an error: let it open, then close it.
    if (socket.readyState === WebSocket.CONNECTING) socket.onopen = () => socket.close(1000);
    else socket.close(1000, 'dashboard closed the view');
  }

  private connect(): void {
    this.handlers.onConnectionState({ kind: 'connecting' });
    const socket = new WebSocket(this.urlFor(this.lastEventId));
    let openedAtMs: number | null = null;
    this.socket = socket;
    socket.onopen = () => (openedAtMs = performance.now());
    socket.onmessage = (event: MessageEvent<unknown>) => this.receive(event.data);
    // Every failure ends in `close` (an `error` is always followed by one), so retrying lives only there.
    socket.onclose = (event: CloseEvent) => {
      if (openedAtMs !== null && performance.now() - openedAtMs >= kStableConnectionMs) this.failedAttempts = 0;
      this.retryLater(closeReason(event));
    };
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') return; // the protocol is text only
    let message: LiveMessage;
    try {
      message = JSON.parse(data) as LiveMessage;
    } catch {
      return;
    }
    if (message.type === 'hello') this.handlers.onConnectionState({ kind: 'open' });
    if (isStoredEvent(message) && message.id !== undefined) {
      // A resumed connection replays from last_event_id on; anything at or below it was already shown.
      if (this.lastEventId !== null && message.id <= this.lastEventId) return;
      this.lastEventId = message.id;
    }
    this.handlers.onMessage(message);
  }

  private retryLater(reason: string): void {
    const backoffMs = Math.min(kMaxRetryMs, kFirstRetryMs * 2 ** this.failedAttempts);
    // Jitter, so that the dashboards of a restarted server do not all come back in the same millisecond.
    const retryInMs = Math.round(backoffMs * (0.8 + 0.4 * Math.random()));
    this.failedAttempts += 1;
    this.handlers.onConnectionState({ kind: 'retrying', retryInMs, reason });
    this.retryTimer = window.setTimeout(() => this.connect(), retryInMs);
  }
}

function isStoredEvent(message: LiveMessage): message is StoredEvent {
  return message.type === 'rep' || message.type === 'form' || message.type === 'anomaly' || message.type === 'status';
}

function closeReason(event: CloseEvent): string {
  if (event.code === 1008) return `the server dropped this view: ${event.reason || 'policy'}`;
  if (event.code === 1006) return 'connection lost';
  return event.reason ? `closed: ${event.reason}` : `closed (code ${event.code})`;
}
