// The watched stream's stored reps (GET /api/v1/events?kind=rep), newest first. The store pages oldest first,
// so the table walks the pages with `next` and then stays at the start of the last, partial, page: a refresh
// re-reads at most one page and picks up what was added since.

import { ApiError, type PoseApi } from './api';
import type { EventRow, RepEvent } from './api_types';
import { personColor } from './colors';
import { h } from './dom';

const kPageSize = 50;
const kRowsShown = 50;
const kRefreshMs = 10_000;

export class HistoryTable {
  private streamId: string | null = null;
  private rows = new Map<number, EventRow<RepEvent>>();
  private lastPageCursor: number | undefined;
  private refreshTimer: number | undefined;
  private loading: Promise<void> | null = null;
  private reloadAfterLoading = false;

  constructor(
    private readonly body: HTMLTableSectionElement,
    private readonly api: PoseApi,
    private readonly onError: (error: ApiError) => void,
  ) {
    this.render();
  }

  watch(streamId: string | null): void {
    this.streamId = streamId;
    this.rows = new Map();
    this.lastPageCursor = undefined;
    this.render();
    window.clearInterval(this.refreshTimer);
    if (streamId === null) return;
    this.refreshTimer = window.setInterval(() => this.refresh(), kRefreshMs);
    this.refresh();
  }

  /** Safe to call on every rep event: requests never overlap, and a burst collapses into one more load. */
  refresh(): void {
    if (this.streamId === null) return;
    if (this.loading) {
      this.reloadAfterLoading = true;
      return;
    }
    this.loading = this.load(this.streamId).finally(() => {
      this.loading = null;
      if (this.reloadAfterLoading) {
        this.reloadAfterLoading = false;
        this.refresh();
      }
    });
  }

  private async load(streamId: string): Promise<void> {
    try {
      for (;;) {
        const query = { stream: streamId, kind: 'rep' as const, limit: kPageSize };
        const page = await this.api.listEvents<RepEvent>(
          this.lastPageCursor === undefined ? query : { ...query, after: this.lastPageCursor },
        );
        if (streamId !== this.streamId) return; // another stream was selected meanwhile
        for (const row of page.events) this.rows.set(row.id, row);
        if (page.next === null) break;
        this.lastPageCursor = page.next;
      }
      // A stream looping forever stores reps without end: keep only those shown.
      const newestFirst = [...this.rows.values()].sort((a, b) => b.id - a.id).slice(0, kRowsShown);
      this.rows = new Map(newestFirst.map((row) => [row.id, row]));
      this.render();
    } catch (error) {
      if (error instanceof ApiError) this.onError(error);
      else throw error;
    }
  }

  private render(): void {
    if (this.streamId === null || this.rows.size === 0) {
      const text = this.streamId === null ? 'Select a stream to see its reps.' : 'No reps stored yet.';
      this.body.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 7 }, text)));
      return;
    }
    const newestFirst = [...this.rows.values()].sort((a, b) => b.id - a.id);
    this.body.replaceChildren(...newestFirst.map(renderRow));
  }
}

function renderRow(row: EventRow<RepEvent>): HTMLTableRowElement {
  const rep = row.event;
  // No score while the stream's first reps are recorded as the reference the later ones are compared with.
  const score = rep.anomaly_score === null ? 'reference rep' : rep.anomaly_score.toFixed(2);
  return h(
    'tr',
    { 'data-testid': 'history-row', 'data-event-id': row.id, class: rep.anomalous ? 'anomalous' : false },
    h('td', { class: 'time' }, formatTime(row.time)),
    h('td', {}, h('span', { class: 'swatch', style: `--person-color: ${personColor(rep.person)}` }), `#${rep.person}`),
    h('td', {}, rep.exercise),
    h('td', { class: 'num' }, rep.rep),
    h('td', { class: 'num' }, `${rep.duration_s.toFixed(1)} s`),
    h('td', {}, rep.form_issues.length ? rep.form_issues.join(', ') : '–'),
    h(
      'td',
      {},
      rep.anomalous ? h('span', { class: 'badge bad' }, `yes · ${score}`) : h('span', { class: 'muted' }, score),
    ),
  );
}

/** Local time of day, with the date when it is not today. A number is the store's microseconds since the epoch. */
function formatTime(time: string | number): string {
  const date = new Date(typeof time === 'number' ? time / 1000 : time);
  if (Number.isNaN(date.getTime())) return String(time);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
}
