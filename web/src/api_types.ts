// The JSON that `pose serve` sends, as docs/api.md ("Events" and "Pose service") defines it. That document is
// the contract: a field added there is added here, and nothing here is invented. Fields the dashboard does not
// read are left out.

export type StreamState = 'created' | 'opening' | 'running' | 'ended' | 'failed' | 'stopped';

export interface StreamPerson {
  person: number;
  exercise: string;
  reps: number;
  phase: string;
  issues: string[];
}

export interface Stream {
  id: string;
  source: string;
  exercise: string;
  settings: { realtime: boolean; loops: number; max_side: number };
  state: StreamState;
  message: string;
  stats: { frames_decoded: number; frames_analysed: number; frames_dropped: number; reconnects: number; fps: number };
  people: StreamPerson[];
}

export interface AddStreamRequest {
  source: string;
  exercise: string;
  id?: string;
  realtime: boolean;
  loops: number;
}

export interface Exercise {
  name: string;
  description: string;
  key_angles: string[];
  kind: 'reps' | 'hold';
}

/** [x, y, score, visible] in pixels of the analysed frame. */
export type Keypoint = [number, number, number, boolean];

export interface FramePerson {
  id: number;
  score: number;
  box: [number, number, number, number];
  keypoints?: Keypoint[]; // absent when the socket was opened with keypoints=false
  exercise: string;
  phase: string;
  reps: number;
  angles_deg: Record<string, number>;
  hold_s?: number;
  issues: string[];
}

export interface FrameMessage {
  type: 'frame';
  frame: number;
  pts_s: number;
  size: [number, number];
  latency_ms: { queue: number; inference: number; total: number };
  people: FramePerson[];
}

export interface RepEvent {
  type: 'rep';
  id?: number; // only on the live socket: the stored event's id
  person: number;
  exercise: string;
  rep: number;
  duration_s: number;
  form_issues: string[];
  anomaly_score: number | null;
  anomalous: boolean;
}

export interface FormEvent {
  type: 'form';
  id?: number;
  person: number;
  exercise: string;
  t_s: number;
  rule: string;
  message: string;
  severity: 'info' | 'warning' | 'error';
  rep: number;
}

export interface AnomalyEvent {
  type: 'anomaly';
  id?: number;
  person: number;
  exercise: string;
  rep: number;
  t_s: number;
  score: number;
  threshold: number;
}

export interface StatusEvent {
  type: 'status';
  id?: number;
  state: StreamState;
  message: string;
}

export type StoredEvent = RepEvent | FormEvent | AnomalyEvent | StatusEvent;

export interface HelloMessage {
  type: 'hello';
  stream: Stream;
  heartbeat_s: number;
  queue: number;
}

export interface ImageMessage {
  type: 'image';
  frame: number;
  mime: string;
  data: string; // base64
}

export interface HeartbeatMessage {
  type: 'heartbeat';
  time: string;
  dropped: number;
  queued: number;
}

export interface ResumeMessage {
  type: 'resume';
  after: number;
  replayed: number;
  complete: boolean;
}

export type LiveMessage = HelloMessage | FrameMessage | ImageMessage | HeartbeatMessage | ResumeMessage | StoredEvent;

/** One row of GET /api/v1/events. */
export interface EventRow<E extends StoredEvent = StoredEvent> {
  id: number;
  stream: string;
  kind: E['type'];
  person: number;
  exercise: string;
  time: string | number; // RFC 3339, or the store's microseconds since the epoch
  event: E;
}

export interface EventPage<E extends StoredEvent = StoredEvent> {
  events: EventRow<E>[];
  next: number | null;
}

export interface EventQuery {
  stream: string;
  kind: StoredEvent['type'];
  limit: number;
  after?: number;
}

/** GET /readyz: 200 when ready, else 503 with the checks that failed. */
export interface Readiness {
  ready: boolean;
  checks: Record<string, unknown>;
}
