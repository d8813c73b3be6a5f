// The dashboard of `pose serve`: wires the panels to the API and to the watched stream's live socket. Each panel
// owns its part of the page; this file decides what a message or a click changes, and shows errors.

import './style.css';

import { ApiError, PoseApi } from './api';
import type { Exercise, FrameMessage, HeartbeatMessage, LiveMessage, StreamState } from './api_types';
import { HistoryTable } from './history_table';
import { type ConnectionState, LiveConnection } from './live_connection';
import { LiveView } from './live_view';
import { byId, setText } from './dom';
import { PeoplePanel } from './people_panel';
import { StreamsPanel } from './streams_panel';

const kJpegFps = 10;
const kReadinessPollMs = 5_000;
const kExercisesRetryMs = 5_000;
const kNoticeShownMs = 8_000;
const kFinishedStates: ReadonlySet<StreamState> = new Set(['ended', 'failed', 'stopped']);

const api = new PoseApi();
const keyAngles = new Map<string, readonly string[]>();
const liveView = new LiveView(byId<HTMLCanvasElement>('live-canvas'));
const people = new PeoplePanel(byId('people'), (exercise) => keyAngles.get(exercise));
const history = new HistoryTable(byId<HTMLTableSectionElement>('history-body'), api, showError);
const streams = new StreamsPanel(api, {
  onSelect: watch,
  // The list came back, so the token (or its absence) is accepted. The watched stream's state comes from its
  // socket (hello, status), which is never older than the list.
  onStreams: hideAuthMessage,
  onError: showError,
});

let watchedId: string | null = null;
let live: LiveConnection | null = null;
let exercisesRetryTimer: number | undefined;
let noticeTimer: number | undefined;

// ---- the watched stream -------------------------------------------------------------------------------------

function watch(streamId: string | null): void {
  live?.close();
  live = null;
  watchedId = streamId;
  liveView.clear();
  people.clear();
  history.watch(streamId);
  setText(byId('live-title'), streamId ?? 'No stream selected');
  setText(byId('live-frame'), '');
  setText(byId('live-heartbeat'), '');
  setText(byId('live-connection'), '');
  showStreamState(null, '');
  // In the address, so that a reload or a shared link watches the same stream.
  const hash = streamId === null ? '' : `#stream=${encodeURIComponent(streamId)}`;
  window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}${hash}`);
  if (streamId === null) return;
  live = new LiveConnection((lastEventId) => api.liveUrl(streamId, { jpegFps: kJpegFps, lastEventId }), {
    onMessage: showLiveMessage,
    onConnectionState: showConnectionState,
  });
}

function showLiveMessage(message: LiveMessage): void {
  switch (message.type) {
    case 'hello':
      people.showSummary(message.stream.people);
      showStreamState(message.stream.state, message.stream.message);
      break;
    case 'frame':
      liveView.showFrame(message);
      people.showFrame(message);
      showFrameInfo(message);
      break;
    case 'image':
      liveView.showImage(message);
      break;
    case 'rep':
      people.showEvent(message);
      history.refresh();
      break;
    case 'form':
    case 'anomaly':
      people.showEvent(message);
      break;
    case 'status':
      showStreamState(message.state, message.message);
      void streams.refresh(); // the list's state and buttons follow at once rather than within 2 s
      break;
    case 'heartbeat':
      showHeartbeat(message);
      break;
    case 'resume':
      // Events older than the server keeps for resuming are in the store: the table reads them from there.
      if (!message.complete) history.refresh();
      break;
  }
}

/** A finished stream says so above the canvas, with the server's message (why it failed, for one). */
function showStreamState(state: StreamState | null, message: string): void {
  const badge = byId('live-state');
  setText(badge, state ?? '');
  badge.className = state ? `state state-${state}` : 'state';
  const banner = byId('live-status');
  const finished = state !== null && kFinishedStates.has(state);
  banner.hidden = !finished;
  if (!finished) return;
  banner.className = `live-status live-status-${state}`;
  banner.dataset['state'] = state;
  setText(banner, `Stream ${state}${message ? `: ${message}` : ''}`);
}

function showFrameInfo(frame: FrameMessage): void {
  const latencyMs = Math.round(frame.latency_ms.total);
  setText(
    byId('live-frame'),
    `frame ${frame.frame} · ${frame.pts_s.toFixed(1)} s · ${frame.people.length} in view · latency ${latencyMs} ms`,
  );
}

function showHeartbeat(heartbeat: HeartbeatMessage): void {
  const element = byId('live-heartbeat');
  setText(element, `dropped ${heartbeat.dropped} · queued ${heartbeat.queued}`);
  element.classList.toggle('warn', heartbeat.dropped > 0);
  element.title = `last heartbeat ${heartbeat.time}; dropped counts frame and image messages this view lost`;
}

function showConnectionState(state: ConnectionState): void {
  const element = byId('live-connection');
  element.dataset['state'] = state.kind;
  if (state.kind === 'open') setText(element, '● live');
  else if (state.kind === 'connecting') setText(element, 'connecting…');
  else setText(element, `${state.reason}; retrying in ${(state.retryInMs / 1000).toFixed(1)} s`);
}

// ---- the service --------------------------------------------------------------------------------------------

async function pollReadiness(): Promise<void> {
  const pill = byId('readiness');
  try {
    const readiness = await api.readiness();
    pill.dataset['ready'] = String(readiness.ready);
    if (readiness.ready) {
      setText(pill, 'ready');
      pill.title = '';
    } else {
      const failing = Object.entries(readiness.checks)
        .filter(([, value]) => value !== true && value !== 'ok')
        .map(([name]) => name);
      setText(pill, failing.length ? `not ready: ${failing.join(', ')}` : 'not ready');
      pill.title = JSON.stringify(readiness.checks);
    }
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    pill.dataset['ready'] = 'false';
    setText(pill, error.status === 0 ? 'unreachable' : `readyz: ${error.status}`);
    pill.title = error.message;
  }
}

async function loadExercises(): Promise<void> {
  window.clearTimeout(exercisesRetryTimer); // one retry loop, however often this is called
  let exercises: Exercise[];
  try {
    exercises = await api.listExercises();
  } catch (error) {
    showError(error);
    exercisesRetryTimer = window.setTimeout(() => void loadExercises(), kExercisesRetryMs);
    return;
  }
  keyAngles.clear();
  for (const exercise of exercises) keyAngles.set(exercise.name, exercise.key_angles);
  streams.setExercises(exercises);
}

// ---- token and errors ---------------------------------------------------------------------------------------

function setUpTokenForm(): void {
  const form = byId<HTMLFormElement>('token-form');
  const input = byId<HTMLInputElement>('token-input');
  input.value = api.currentToken;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    api.setToken(input.value);
    hideAuthMessage();
    // Everything read so far may have been refused: read it again, and reopen the socket with the token.
    void streams.refresh();
    void loadExercises();
    watch(watchedId);
  });
}

function showError(error: unknown): void {
  if (!(error instanceof ApiError)) throw error;
  if (error.isUnauthorized) {
    const banner = byId('auth-message');
    setText(banner, error.message);
    banner.hidden = false;
    return;
  }
  const notice = byId('notice');
  setText(notice, error.message);
  notice.hidden = false;
  window.clearTimeout(noticeTimer);
  noticeTimer = window.setTimeout(() => (notice.hidden = true), kNoticeShownMs);
}

function hideAuthMessage(): void {
  byId('auth-message').hidden = true;
}

function streamInAddress(): string | null {
  const match = /^#stream=(.+)$/.exec(window.location.hash);
  return match?.[1] ? decodeURIComponent(match[1]) : null;
}

setUpTokenForm();
void pollReadiness();
window.setInterval(() => void pollReadiness(), kReadinessPollMs);
void loadExercises();
void streams.refresh().then(() => streams.select(streamInAddress()));
