// A person's key angles over the last seconds of media time, drawn on a canvas: the lines a coach reads a rep
// from (the knee going down and up, the trunk leaning). Media time (`pts_s`) and not the wall clock, so that a
// file analysed faster than real time still shows seconds of movement.

import { angleColor } from './colors';
import { beginDraw, DrawScheduler, sharpCanvas } from './dom';

const kWindowS = 10;
// A longer gap between samples (the person left the picture) breaks the line instead of bridging it.
const kMaxGapS = 0.5;
const kMaxDeg = 180;

interface Sample {
  tS: number;
  angleDeg: number;
}

export class AngleChart {
  private readonly context: CanvasRenderingContext2D;
  private readonly scheduler = new DrawScheduler(() => this.draw());
  private readonly series = new Map<string, Sample[]>();
  private latestS = 0;

  constructor(private readonly canvas: HTMLCanvasElement) {
    this.context = sharpCanvas(canvas, this.scheduler);
  }

  /** `names` are the angles to chart, in legend order; the others in `anglesDeg` are ignored. */
  add(tS: number, anglesDeg: Record<string, number>, names: readonly string[]): void {
    // Time going back means the stream started again (a loop or a restart): the old lines no longer connect.
    if (tS < this.latestS - kMaxGapS) this.series.clear();
    this.latestS = tS;
    for (const name of names) {
      const angleDeg = anglesDeg[name];
      if (angleDeg === undefined || !Number.isFinite(angleDeg)) continue;
      let samples = this.series.get(name);
      if (!samples) {
        samples = [];
        this.series.set(name, samples);
      }
      samples.push({ tS, angleDeg });
      const firstKept = samples.findIndex((sample) => sample.tS >= tS - kWindowS - 1);
      if (firstKept > 0) samples.splice(0, firstKept);
    }
    this.scheduler.request();
  }

  private draw(): void {
    const { width, height } = beginDraw(this.canvas, this.context);
    const context = this.context;
    const plot = { left: 30, right: width - 6, top: 20, bottom: height - 16 };
    context.clearRect(0, 0, width, height);

    context.font = '10px system-ui, sans-serif';
    context.lineWidth = 1;
    context.textBaseline = 'middle';
    context.textAlign = 'right';
    for (const gridDeg of [0, 45, 90, 135, 180]) {
      const y = plot.bottom - (gridDeg / kMaxDeg) * (plot.bottom - plot.top);
      context.strokeStyle = gridDeg === 90 ? '#2c3642' : '#1e2630';
      context.beginPath();
      context.moveTo(plot.left, y);
      context.lineTo(plot.right, y);
      context.stroke();
      context.fillStyle = '#6b7785';
      context.fillText(`${gridDeg}°`, plot.left - 4, y);
    }
    context.textAlign = 'left';
    context.textBaseline = 'alphabetic';
    context.fillText(`last ${kWindowS} s`, plot.left, height - 3);

    if (this.series.size === 0) {
      context.fillStyle = '#5c6773';
      context.textAlign = 'center';
      context.fillText('no angles yet', (plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2 - 8);
      return;
    }

    const startS = this.latestS - kWindowS;
    const xOf = (tS: number): number => plot.left + ((tS - startS) / kWindowS) * (plot.right - plot.left);
    const yOf = (angleDeg: number): number =>
      plot.bottom - (Math.min(kMaxDeg, Math.max(0, angleDeg)) / kMaxDeg) * (plot.bottom - plot.top);

    let legendX = plot.left;
    let colorIndex = 0;
    for (const [name, samples] of this.series) {
      const color = angleColor(colorIndex);
      colorIndex += 1;
      context.strokeStyle = color;
      context.lineWidth = 1.75;
      context.beginPath();
      let previous: Sample | null = null;
      for (const sample of samples) {
        if (sample.tS < startS) continue;
        const connect = previous !== null && sample.tS - previous.tS <= kMaxGapS;
        if (connect) context.lineTo(xOf(sample.tS), yOf(sample.angleDeg));
        else context.moveTo(xOf(sample.tS), yOf(sample.angleDeg));
        previous = sample;
      }
      context.stroke();

      const latest = samples[samples.length - 1];
      const legend = `${name} ${latest ? Math.round(latest.angleDeg) : '–'}°`;
      context.fillStyle = color;
      context.font = '600 11px system-ui, sans-serif';
      context.fillText(legend, legendX, 12);
      legendX += context.measureText(legend).width + 14;
    }
  }
}
