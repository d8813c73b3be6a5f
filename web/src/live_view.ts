// The live canvas: the latest JPEG the server sent, scaled to fit, and on top of it the skeletons of the latest
// analysed frame. Keypoints are in pixels of the analysed frame (`size`); the JPEG may be another size of the
// same picture, so both are mapped onto one letterboxed rectangle.

import type { FrameMessage, FramePerson, ImageMessage } from './api_types';
import { personColor } from './colors';
import { beginDraw, DrawScheduler, sharpCanvas } from './dom';

const kBackground = '#0b0f14';

// COCO-17: 0 nose, 1-2 eyes, 3-4 ears, 5-6 shoulders, 7-8 elbows, 9-10 wrists, 11-12 hips, 13-14 knees,
// 15-16 ankles (left before right).
const kCocoLimbs: ReadonlyArray<readonly [number, number]> = [
  [0, 1],
  [0, 2],
  [1, 3],
  [2, 4],
  [5, 6],
  [5, 7],
  [7, 9],
  [6, 8],
  [8, 10],
  [5, 11],
  [6, 12],
  [11, 12],
  [11, 13],
  [13, 15],
  [12, 14],
  [14, 16],
];

/** What the canvas shows, exposed as data-content for tests and styling. */
type Content = 'empty' | 'skeleton' | 'image';

export class LiveView {
  private readonly context: CanvasRenderingContext2D;
  private readonly scheduler = new DrawScheduler(() => this.draw());
  private image: ImageBitmap | null = null;
  private frame: FrameMessage | null = null;
  // Bumped by clear(): a JPEG still decoding for the previous stream must not appear on the next one.
  private generation = 0;
  private decoding = false;
  private nextImage: ImageMessage | null = null;

  constructor(private readonly canvas: HTMLCanvasElement) {
    this.context = sharpCanvas(canvas, this.scheduler);
    this.scheduler.request();
  }

  clear(): void {
    this.generation += 1;
    this.image?.close();
    this.image = null;
    this.frame = null;
    this.nextImage = null;
    this.scheduler.request();
  }

  showFrame(frame: FrameMessage): void {
    this.frame = frame;
    this.scheduler.request();
  }

  /** Decodes off the main thread; while one decodes, only the newest waiting image is kept (older are stale). */
  showImage(message: ImageMessage): void {
    this.nextImage = message;
    if (!this.decoding) void this.decodeWaitingImages();
  }

  private async decodeWaitingImages(): Promise<void> {
    this.decoding = true;
    while (this.nextImage) {
      const message = this.nextImage;
      const generation = this.generation;
      this.nextImage = null;
      try {
        const bytes = Uint8Array.from(atob(message.data), (char) => char.charCodeAt(0));
        const bitmap = await createImageBitmap(new Blob([bytes], { type: message.mime || 'image/jpeg' }));
        if (generation !== this.generation) {
          bitmap.close();
          continue;
        }
        this.image?.close();
        this.image = bitmap;
        this.scheduler.request();
      } catch {
        // A JPEG that does not decode is skipped: the next one comes within 100 ms.
      }
    }
    this.decoding = false;
  }

  private draw(): void {
    const { width, height } = beginDraw(this.canvas, this.context);
    const context = this.context;
    context.fillStyle = kBackground;
    context.fillRect(0, 0, width, height);

    const picture = this.image
      ? { width: this.image.width, height: this.image.height }
      : this.frame
        ? { width: this.frame.size[0], height: this.frame.size[1] }
        : null;
    if (!picture || picture.width <= 0 || picture.height <= 0) {
      this.drawPlaceholder(width, height);
      this.canvas.dataset['content'] = 'empty' satisfies Content;
      return;
    }
    const scale = Math.min(width / picture.width, height / picture.height);
    const box = {
      x: (width - picture.width * scale) / 2,
      y: (height - picture.height * scale) / 2,
      width: picture.width * scale,
      height: picture.height * scale,
    };
    if (this.image) context.drawImage(this.image, box.x, box.y, box.width, box.height);
    if (this.frame) {
      const [frameWidth, frameHeight] = this.frame.size;
      for (const person of this.frame.people) {
        drawSkeleton(context, person, {
          x: box.x,
          y: box.y,
          scaleX: box.width / frameWidth,
          scaleY: box.height / frameHeight,
        });
      }
    }
    this.canvas.dataset['content'] = (this.image ? 'image' : 'skeleton') satisfies Content;
  }

  private drawPlaceholder(width: number, height: number): void {
    this.context.fillStyle = '#5c6773';
    this.context.font = '14px system-ui, sans-serif';
    this.context.textAlign = 'center';
    this.context.textBaseline = 'middle';
    this.context.fillText('No frames yet', width / 2, height / 2);
  }
}

interface Mapping {
  x: number;
  y: number;
  scaleX: number;
  scaleY: number;
}

function drawSkeleton(context: CanvasRenderingContext2D, person: FramePerson, to: Mapping): void {
  const keypoints = person.keypoints;
  if (!keypoints) return;
  const color = personColor(person.id);
  const point = (index: number): { x: number; y: number } | null => {
    const keypoint = keypoints[index];
    if (!keypoint || !keypoint[3]) return null;
    return { x: to.x + keypoint[0] * to.scaleX, y: to.y + keypoint[1] * to.scaleY };
  };

  context.strokeStyle = color;
  context.fillStyle = color;
  context.lineWidth = 3;
  context.lineCap = 'round';
  context.beginPath();
  for (const [from, toIndex] of kCocoLimbs) {
    const a = point(from);
    const b = point(toIndex);
    if (!a || !b) continue;
    context.moveTo(a.x, a.y);
    context.lineTo(b.x, b.y);
  }
  context.stroke();
  for (let index = 0; index < keypoints.length; index += 1) {
    const p = point(index);
    if (!p) continue;
    context.beginPath();
    context.arc(p.x, p.y, 3.5, 0, 2 * Math.PI);
    context.fill();
  }

  // A tag above the person's box, so that the canvas and the cards beside it can be matched by color and id.
  const [boxX, boxY] = person.box;
  const label = `#${person.id} · ${person.reps}`;
  context.font = '600 12px system-ui, sans-serif';
  context.textAlign = 'left';
  context.textBaseline = 'bottom';
  const labelX = to.x + boxX * to.scaleX;
  const labelY = Math.max(16, to.y + boxY * to.scaleY);
  const labelWidth = context.measureText(label).width + 8;
  context.fillStyle = color;
  context.fillRect(labelX, labelY - 16, labelWidth, 16);
  context.fillStyle = '#0b0f14';
  context.fillText(label, labelX + 4, labelY - 2);
}
