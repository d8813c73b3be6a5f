// The one place that talks HTTP to `pose serve`: every REST call, the token, and the live socket's URL.
// Callers get typed values or an ApiError whose message a user can act on; nothing else throws.

import type { AddStreamRequest, EventPage, EventQuery, Exercise, Readiness, StoredEvent, Stream } from './api_types';

const kTokenStorageKey = 'pose.token';

/** A request that failed: `status` is the HTTP status (0 when the service did not answer at all). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get isUnauthorized(): boolean {
    return this.status === 401;
  }
}

export class PoseApi {
  private token: string;

  constructor(private readonly storage: Storage = window.localStorage) {
    this.token = storage.getItem(kTokenStorageKey) ?? '';
  }

  get currentToken(): string {
    return this.token;
  }

  /** Kept in localStorage so that a reload does not ask again; an empty token removes it. */
  setToken(token: string): void {
    this.token = token.trim();
    if (this.token) this.storage.setItem(kTokenStorageKey, this.token);
    else this.storage.removeItem(kTokenStorageKey);
  }

  async listStreams(): Promise<Stream[]> {
    return (await this.request<{ streams: Stream[] }>('GET', '/api/v1/streams')).streams;
  }

  addStream(request: AddStreamRequest): Promise<Stream> {
    return this.request<Stream>('POST', '/api/v1/streams', request);
  }

  async startStream(id: string): Promise<void> {
    await this.request('POST', `${streamPath(id)}/start`);
  }

  async stopStream(id: string): Promise<void> {
    await this.request('POST', `${streamPath(id)}/stop`);
  }

  async deleteStream(id: string): Promise<void> {
    await this.request('DELETE', streamPath(id));
  }

  async listExercises(): Promise<Exercise[]> {
    return (await this.request<{ exercises: Exercise[] }>('GET', '/api/v1/exercises')).exercises;
  }

  listEvents<E extends StoredEvent>(query: EventQuery): Promise<EventPage<E>> {
    const params = new URLSearchParams({ stream: query.stream, kind: query.kind, limit: String(query.limit) });
    if (query.after !== undefined) params.set('after', String(query.after));
    return this.request<EventPage<E>>('GET', `/api/v1/events?${params}`);
  }

  /** /readyz answers 503 with the failing checks while the model loads: that is an answer, not an error. */
  async readiness(): Promise<Readiness> {
    const response = await this.send('GET', '/readyz');
    if (response.status !== 200 && response.status !== 503) throw await errorOf(response);
    const body = (await readJson(response)) as Partial<Readiness> | undefined;
    return { ready: response.status === 200, checks: body?.checks ?? {} };
  }

  /** Browsers cannot set headers on a WebSocket, so the token travels as ?token= (docs/api.md, "Tokens"). */
  liveUrl(streamId: string, options: { jpegFps: number; lastEventId: number | null }): string {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const params = new URLSearchParams({ jpeg_fps: String(options.jpegFps) });
    if (options.lastEventId !== null) params.set('last_event_id', String(options.lastEventId));
    if (this.token) params.set('token', this.token);
    return `${scheme}//${window.location.host}${streamPath(streamId)}/live?${params}`;
  }

  private async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    if (!response.ok) throw await errorOf(response);
    return (await readJson(response)) as T;
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers['Authorization'] = `Bearer ${this.token}`;
    try {
      return await fetch(path, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, `The pose service at ${window.location.host} does not answer (${method} ${path}).`);
    }
  }
}

function streamPath(id: string): string {
  return `/api/v1/streams/${encodeURIComponent(id)}`;
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined; // 204 No Content
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(response.status, `The service answered ${response.url} with something that is not JSON.`);
  }
}

/** Every error the service sends is {"error": {"status", "message"}}; a proxy in between may send anything. */
async function errorOf(response: Response): Promise<ApiError> {
  let message = '';
  try {
    const body = JSON.parse(await response.text()) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // Not JSON: fall back to the status line below.
  }
  if (response.status === 401) {
    message = `This service needs a token (${message || '401 Unauthorized'}): enter it in the Token field at the top.`;
  }
  return new ApiError(response.status, message || `${response.status} ${response.statusText}`.trim());
}
