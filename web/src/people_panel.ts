// One card per person (track id) of the watched stream: the rep counter, phase, exercise, the form issues firing
// now, the latest form and anomaly events, and the key-angle chart. Frames say what is true now; events say what
// just happened. Cards stay when a person leaves the picture (their count still matters), dimmed.

import { AngleChart } from './angle_chart';
import type { AnomalyEvent, FormEvent, FrameMessage, FramePerson, RepEvent, StreamPerson } from './api_types';
import { personColor } from './colors';
import { h, setText } from './dom';

const kEventsShown = 5;

/** The key angles of an exercise (GET /api/v1/exercises), or undefined while unknown (then every angle). */
export type KeyAnglesOf = (exercise: string) => readonly string[] | undefined;

class PersonCard {
  readonly root: HTMLElement;
  private readonly reps = h('span', { class: 'rep-count', 'data-testid': 'rep-count' }, '0');
  private readonly exercise = h('span', { class: 'person-exercise', 'data-testid': 'person-exercise' });
  private readonly phase = h('span', { class: 'value', 'data-testid': 'person-phase' }, '–');
  private readonly hold = h('span', { class: 'value', 'data-testid': 'person-hold' });
  private readonly holdStat = h(
    'div',
    { class: 'stat', hidden: true },
    h('span', { class: 'label' }, 'hold'),
    this.hold,
  );
  private readonly issues = h('ul', { class: 'issues', 'data-testid': 'person-issues' });
  private readonly events = h('ol', { class: 'person-events', 'data-testid': 'person-events' });
  private readonly chart: AngleChart;
  // A rule's message comes with its `form` event; the frame's `issues` name only the rule.
  private readonly ruleMessages = new Map<string, string>();
  private shownIssues: string | null = null; // null: nothing drawn yet

  constructor(readonly personId: number) {
    const chartCanvas = h('canvas', { class: 'angle-chart', 'data-testid': 'angle-chart' });
    this.reps.dataset['person'] = String(personId);
    this.root = h(
      'article',
      {
        class: 'person-card',
        'data-testid': 'person-card',
        'data-person': personId,
        style: `--person-color: ${personColor(personId)}`,
      },
      h('header', {}, h('span', { class: 'swatch' }), h('h3', {}, `Person ${personId}`), this.exercise),
      h(
        'div',
        { class: 'person-stats' },
        h('div', { class: 'reps' }, this.reps, h('span', { class: 'label' }, 'reps')),
        h('div', { class: 'stat' }, h('span', { class: 'label' }, 'phase'), this.phase),
        this.holdStat,
      ),
      this.issues,
      chartCanvas,
      this.events,
    );
    this.chart = new AngleChart(chartCanvas);
  }

  showSummary(person: StreamPerson): void {
    this.showState(person.reps, person.phase, person.exercise, person.issues);
  }

  showFrame(person: FramePerson, ptsS: number, keyAnglesOf: KeyAnglesOf): void {
    this.showState(person.reps, person.phase, person.exercise, person.issues);
    // hold_s comes only while a hold (a plank) lasts; then the time held says more than the count.
    this.holdStat.hidden = person.hold_s === undefined;
    if (person.hold_s !== undefined) setText(this.hold, `${person.hold_s.toFixed(1)} s`);
    this.root.classList.remove('away');
    const names = keyAnglesOf(person.exercise) ?? Object.keys(person.angles_deg);
    this.chart.add(ptsS, person.angles_deg, names);
  }

  showAway(): void {
    this.root.classList.add('away');
  }

  showRep(event: RepEvent): void {
    setText(this.reps, String(event.rep));
    // Restarting the animation needs a reflow between removing and adding the class.
    this.reps.classList.remove('bump');
    void this.reps.offsetWidth;
    this.reps.classList.add('bump');
  }

  showForm(event: FormEvent): void {
    this.ruleMessages.set(event.rule, event.message);
    this.addEvent(
      h(
        'li',
        { class: `event severity-${event.severity}` },
        h('span', { class: 'event-time' }, `${event.t_s.toFixed(1)} s`),
        h('span', { class: 'event-text', title: event.message }, event.message || event.rule),
        h('span', { class: 'event-rep' }, `rep ${event.rep}`),
      ),
    );
  }

  showAnomaly(event: AnomalyEvent): void {
    this.addEvent(
      h(
        'li',
        { class: 'event severity-anomaly' },
        h('span', { class: 'event-time' }, `${event.t_s.toFixed(1)} s`),
        h(
          'span',
          { class: 'event-text' },
          `Unusual rep (score ${event.score.toFixed(2)}, limit ${event.threshold.toFixed(2)})`,
        ),
        h('span', { class: 'event-rep' }, `rep ${event.rep}`),
      ),
    );
  }

  private showState(reps: number, phase: string, exercise: string, issues: readonly string[]): void {
    setText(this.reps, String(reps));
    setText(this.phase, phase || '–');
    setText(this.exercise, exercise || 'recognising…');
    const issuesKey = issues.join('\n');
    if (issuesKey === this.shownIssues) return;
    this.shownIssues = issuesKey;
    this.issues.replaceChildren(
      ...(issues.length === 0
        ? [h('li', { class: 'issue none' }, 'no form issues')]
        : issues.map((rule) => h('li', { class: 'issue', title: this.ruleMessages.get(rule) ?? rule }, rule))),
    );
  }

  private addEvent(item: HTMLLIElement): void {
    this.events.prepend(item);
    while (this.events.children.length > kEventsShown) this.events.lastElementChild?.remove();
  }
}

export class PeoplePanel {
  private readonly cards = new Map<number, PersonCard>();
  private readonly placeholder = h('p', { class: 'empty' }, 'Nobody in view yet.');

  constructor(
    private readonly container: HTMLElement,
    private readonly keyAnglesOf: KeyAnglesOf,
  ) {
    this.clear();
  }

  clear(): void {
    this.cards.clear();
    this.container.replaceChildren(this.placeholder);
  }

  /** The people of the stream's last analysed frame, from `hello`: counts show before the first frame. */
  showSummary(people: readonly StreamPerson[]): void {
    for (const person of people) this.card(person.person).showSummary(person);
  }

  showFrame(frame: FrameMessage): void {
    const inView = new Set<number>();
    for (const person of frame.people) {
      inView.add(person.id);
      this.card(person.id).showFrame(person, frame.pts_s, this.keyAnglesOf);
    }
    for (const [id, card] of this.cards) if (!inView.has(id)) card.showAway();
  }

  showEvent(event: RepEvent | FormEvent | AnomalyEvent): void {
    const card = this.card(event.person);
    if (event.type === 'rep') card.showRep(event);
    else if (event.type === 'form') card.showForm(event);
    else card.showAnomaly(event);
  }

  private card(personId: number): PersonCard {
    let card = this.cards.get(personId);
    if (card) return card;
    card = new PersonCard(personId);
    this.cards.set(personId, card);
    this.placeholder.remove();
    // Ordered by id, so that cards do not jump around as people come and go.
    const next = [...this.cards.values()]
      .filter((other) => other.personId > personId)
      .sort((a, b) => a.personId - b.personId)[0];
    this.container.insertBefore(card.root, next?.root ?? null);
    return card;
  }
}
