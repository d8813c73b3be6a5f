// The service's streams (refreshed every 2 s) with their start/stop/delete buttons, which one is watched, and
// the form that adds one. The list is updated in place, so that a refresh never swallows a click.

import { ApiError, type PoseApi } from './api';
import type { AddStreamRequest, Exercise, Stream, StreamState } from './api_types';
import { byId, h, setText } from './dom';

const kRefreshMs = 2_000;
const kActiveStates: ReadonlySet<StreamState> = new Set(['opening', 'running']);

export interface StreamsPanelEvents {
  /** The user picked a stream to watch, or the watched one is gone (null). */
  onSelect(streamId: string | null): void;
  /** A list came back from the service. */
  onStreams(): void;
  /** A request failed in a way the user should see (the form shows its own errors as well). */
  onError(error: ApiError): void;
}

interface StreamRow {
  root: HTMLLIElement;
  state: HTMLElement;
  meta: HTMLElement;
  source: HTMLElement;
  start: HTMLButtonElement;
  stop: HTMLButtonElement;
}

export class StreamsPanel {
  private readonly list = byId<HTMLUListElement>('stream-list');
  private readonly form = byId<HTMLFormElement>('add-stream-form');
  private readonly exerciseSelect = byId<HTMLSelectElement>('add-stream-exercise');
  private readonly formError = byId('add-stream-error');
  private readonly rows = new Map<string, StreamRow>();
  private selectedId: string | null = null;
  private refreshing = false;

  constructor(
    private readonly api: PoseApi,
    private readonly events: StreamsPanelEvents,
  ) {
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.addStream();
    });
    window.setInterval(() => void this.refresh(), kRefreshMs);
  }

  /** "auto" first: it recognises the exercise, so it is right for any video. */
  setExercises(exercises: readonly Exercise[]): void {
    const chosen = this.exerciseSelect.value;
    const names = ['auto', ...exercises.map((exercise) => exercise.name)];
    this.exerciseSelect.replaceChildren(...names.map((name) => h('option', { value: name }, name)));
    if (names.includes(chosen)) this.exerciseSelect.value = chosen;
  }

  /** Only a stream of the list can be watched: a socket to an unknown id would be refused. */
  select(streamId: string | null): void {
    if (streamId !== null && !this.rows.has(streamId)) streamId = null;
    if (streamId === this.selectedId) return;
    this.selectedId = streamId;
    for (const [id, row] of this.rows) row.root.classList.toggle('selected', id === streamId);
    this.events.onSelect(streamId);
  }

  async refresh(): Promise<void> {
    if (this.refreshing) return; // a slow service must not pile up requests
    this.refreshing = true;
    try {
      const streams = await this.api.listStreams();
      this.render(streams);
      this.events.onStreams();
      if (this.selectedId !== null && !this.rows.has(this.selectedId)) this.select(null);
    } catch (error) {
      this.report(error);
    } finally {
      this.refreshing = false;
    }
  }

  private render(streams: readonly Stream[]): void {
    const seen = new Set<string>();
    streams.forEach((stream, index) => {
      seen.add(stream.id);
      const row = this.rows.get(stream.id) ?? this.createRow(stream.id);
      updateRow(row, stream);
      // Moved only when out of the service's order: moving a node takes the focus off its buttons.
      const current = this.list.children[index];
      if (current !== row.root) this.list.insertBefore(row.root, current ?? null);
    });
    for (const [id, row] of this.rows) {
      if (seen.has(id)) continue;
      row.root.remove();
      this.rows.delete(id);
    }
    this.list.classList.toggle('is-empty', streams.length === 0);
  }

  private createRow(streamId: string): StreamRow {
    const action = (label: string, testId: string, run: () => Promise<void>): HTMLButtonElement => {
      const button = h('button', { type: 'button', class: `action ${testId}`, 'data-testid': testId }, label);
      button.addEventListener('click', () => void this.act(run));
      return button;
    };
    const row: StreamRow = {
      root: h('li', { class: 'stream-row', 'data-testid': 'stream-row', 'data-stream-id': streamId }),
      state: h('span', { class: 'state', 'data-testid': 'stream-state' }),
      meta: h('span', { class: 'stream-meta' }),
      source: h('span', { class: 'stream-source' }),
      start: action('Start', 'stream-start', () => this.api.startStream(streamId)),
      stop: action('Stop', 'stream-stop', () => this.api.stopStream(streamId)),
    };
    const remove = action('Delete', 'stream-delete', () => this.api.deleteStream(streamId));
    const selectButton = h(
      'button',
      { type: 'button', class: 'stream-select', 'data-testid': 'stream-select', title: 'Watch this stream' },
      h('span', { class: 'stream-title' }, h('span', { class: 'stream-id' }, streamId), row.state),
      row.meta,
      row.source,
    );
    selectButton.addEventListener('click', () => this.select(streamId));
    row.root.append(selectButton, h('div', { class: 'stream-actions' }, row.start, row.stop, remove));
    row.root.classList.toggle('selected', streamId === this.selectedId);
    this.rows.set(streamId, row);
    return row;
  }

  private async act(run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      this.report(error);
    }
    await this.refresh();
  }

  private async addStream(): Promise<void> {
    const field = (name: string): HTMLInputElement => this.form.elements.namedItem(name) as HTMLInputElement;
    const request: AddStreamRequest = {
      source: field('source').value.trim(),
      exercise: this.exerciseSelect.value,
      realtime: field('realtime').checked,
      loops: Number(field('loops').value),
    };
    const id = field('id').value.trim();
    if (id) request.id = id;

    const submit = byId<HTMLButtonElement>('add-stream-submit');
    submit.disabled = true;
    setText(this.formError, '');
    try {
      const stream = await this.api.addStream(request);
      field('id').value = '';
      await this.refresh();
      this.select(stream.id);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setText(this.formError, error.message);
      if (error.isUnauthorized) this.events.onError(error);
    } finally {
      submit.disabled = false;
    }
  }

  private report(error: unknown): void {
    if (error instanceof ApiError) this.events.onError(error);
    else throw error;
  }
}

function updateRow(row: StreamRow, stream: Stream): void {
  setText(row.state, stream.state);
  row.state.className = `state state-${stream.state}`;
  row.root.title = stream.message;
  const fps = stream.stats.fps.toFixed(1);
  setText(row.meta, `${stream.exercise} · ${fps} fps · ${stream.stats.frames_dropped} dropped`);
  setText(row.source, stream.source);
  row.source.title = stream.source;
  const active = kActiveStates.has(stream.state);
  row.start.disabled = active;
  row.stop.disabled = !active;
}
