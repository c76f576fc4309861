import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h } from './dom';

/** Series colours; the same model or user keeps its colour on every chart of a page. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const cssVar = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function axes(el: HTMLElement, yLabel: string, yFormat: (v: number) => string): uPlot.Axis[] {
  const stroke = cssVar('--muted');
  const grid = { stroke: cssVar('--grid'), width: 1 };
  // On a phone the axis title would overlap the tick values; the panel title says the unit.
  const narrow = el.clientWidth < 500;
  return [
    { stroke, grid, ticks: grid },
    { stroke, grid, ticks: grid, label: narrow ? undefined : yLabel, size: narrow ? 64 : 76, values: (_u, vals) => vals.map(yFormat) },
  ];
}

/**
 * Stacked areas: each series is drawn at the running sum of the ones below it, and the legend
 * shows each series' own value, not the running sum.
 */
export function stackedChart(
  el: HTMLElement,
  x: number[],
  series: { label: string; values: number[] }[],
  opts: { yLabel: string; yFormat: (v: number) => string; height?: number },
): uPlot {
  const stacked: number[][] = [];
  let below = x.map(() => 0);
  for (const s of series) {
    below = below.map((v, i) => v + s.values[i]);
    stacked.push(below);
  }
  const data: uPlot.AlignedData = [x, ...stacked];
  const bands: uPlot.Band[] = series.slice(1).map((_, i) => ({ series: [i + 2, i + 1] as [number, number] }));
  return new uPlot(
    {
      width: Math.max(280, el.clientWidth),
      height: opts.height ?? 260,
      axes: axes(el, opts.yLabel, opts.yFormat),
      bands,
      legend: { live: true },
      series: [
        {},
        ...series.map((s, i) => {
          const colour = PALETTE[i % PALETTE.length];
          return {
            label: s.label,
            stroke: colour,
            fill: `${colour}99`,
            width: 1,
            points: { show: x.length < 3 },
            value: (_u: uPlot, _v: number | null, _si: number, di: number | null) => (di === null ? '—' : opts.yFormat(s.values[di] ?? 0)),
          };
        }),
      ],
    },
    data,
    el,
  );
}

export function lineChart(
  el: HTMLElement,
  x: number[],
  series: { label: string; values: number[]; colour: string }[],
  opts: { yLabel: string; yFormat: (v: number) => string; height?: number },
): uPlot {
  return new uPlot(
    {
      width: Math.max(280, el.clientWidth),
      height: opts.height ?? 220,
      axes: axes(el, opts.yLabel, opts.yFormat),
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 2, points: { show: x.length < 3 }, value: (_u: uPlot, v: number | null) => (v === null ? '—' : opts.yFormat(v)) }))],
    },
    [x, ...series.map((s) => s.values)],
    el,
  );
}

/** A sparkline: one inline SVG polyline of the values, scaled to its own maximum. */
export function sparkline(values: number[], label: string): SVGSVGElement {
  const w = 120;
  const hgt = 28;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(hgt));
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const max = Math.max(...values, 0);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(hgt - 2 - (max > 0 ? (v / max) * (hgt - 4) : 0)).toFixed(1)}`);
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', points.length === 1 ? `0,${points[0].split(',')[1]} ${w},${points[0].split(',')[1]}` : points.join(' '));
  svg.appendChild(line);
  const title = document.createElementNS(ns, 'title');
  title.textContent = label;
  svg.appendChild(title);
  return svg;
}

/** A row of horizontal bars (tokens by type): plain elements, no chart needed. */
export function bars(items: { label: string; value: number; text: string }[]): HTMLElement {
  const max = Math.max(...items.map((i) => i.value), 1);
  return h(
    'div',
    { class: 'bars' },
    items.map((i) =>
      h('div', { class: 'bar-row' }, h('span', { class: 'bar-label' }, i.label), h('span', { class: 'bar-track' }, h('span', { class: 'bar-fill', style: `width:${((i.value / max) * 100).toFixed(2)}%` })), h('span', { class: 'bar-value' }, i.text)),
    ),
  );
}
