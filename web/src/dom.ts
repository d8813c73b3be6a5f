// A few lines instead of a UI framework: the dashboard builds its DOM with h() and updates it in place.

type Attribute = string | number | boolean | null | undefined;
type Child = Node | string | number | null | undefined | false;

/** An element with attributes (false/null/undefined ones left out, true ones present and empty) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, Attribute> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Sets text only when it changed, so that 30 updates a second do not churn the DOM or lose a text selection. */
export function setText(element: Element, text: string): void {
  if (element.textContent !== text) element.textContent = text;
}

/** The element with this id in index.html; missing one is a bug in the page, not a runtime condition. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`index.html has no element #${id}`);
  return element as T;
}

/** Coalesces many draw requests (30 frames a second, several people) into one draw per display refresh. */
export class DrawScheduler {
  private pending = false;

  constructor(private readonly draw: () => void) {}

  request(): void {
    if (this.pending) return;
    this.pending = true;
    window.requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }
}

/**
 * Keeps a canvas's backing store at its displayed size times the device pixel ratio, so that lines stay sharp,
 * and redraws when the layout changes it. Returns the 2D context.
 */
export function sharpCanvas(canvas: HTMLCanvasElement, scheduler: DrawScheduler): CanvasRenderingContext2D {
  const context = canvas.getContext('2d');
  if (!context) throw new Error('this browser has no 2D canvas');
  const resize = (): void => {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width === width && canvas.height === height) return;
    canvas.width = width;
    canvas.height = height;
    scheduler.request();
  };
  new ResizeObserver(resize).observe(canvas);
  resize();
  return context;
}

/** Starts a draw in CSS pixels on a sharpCanvas(): returns the size to draw in. */
export function beginDraw(
  canvas: HTMLCanvasElement,
  context: CanvasRenderingContext2D,
): { width: number; height: number } {
  const ratio = canvas.clientWidth > 0 ? canvas.width / canvas.clientWidth : 1;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { width: canvas.width / ratio, height: canvas.height / ratio };
}
