/**
 * The README's picture of a real shutdown: an SVG drawn from the range queries a real Prometheus
 * answered in the scrape e2e (test/e2e/prometheus-scrape.test.ts, recorded with
 * PIKA_SIDECAR_RECORD_SCRAPE into docs/img/shutdown-scrape.json). Three panels over one time axis:
 * the shutdown state, commands in flight, the stalled replica's lag. No dependencies: SVG text.
 * `npm run chart` rewrites docs/img/shutdown.svg; a unit test keeps it equal to the recorded JSON.
 */
export const CHART_DATA_PATH = 'docs/img/shutdown-scrape.json';
export const CHART_PATH = 'docs/img/shutdown.svg';

interface Matrix {
  data: { result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> };
}

export interface ScrapeRecord {
  scrapeIntervalMs: number;
  stallMs: number;
  phase: Matrix;
  inflight: Matrix;
  lag: Matrix;
}

const STATE_COLORS: Readonly<Record<string, string>> = {
  running: '#9ca3af',
  intercept: '#f59e0b',
  drain: '#ef4444',
  close_clients: '#a855f7',
  replication_sync: '#3b82f6',
  release: '#14b8a6',
  drained: '#22c55e',
  exited: '#111827',
};

const W = 900;
const LEFT = 90;
const RIGHT = 20;
const PLOT_W = W - LEFT - RIGHT;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** 0, 1, 2 or 5 times a power of ten: a tick step giving about `n` ticks over `span`. */
function niceStep(span: number, n: number): number {
  const raw = span / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function renderShutdownChart(rec: ScrapeRecord): string {
  // The state at each step: the phase whose gauge reads 1.
  const states = new Map<number, string>();
  for (const s of rec.phase.data.result) for (const [t, v] of s.values) if (v === '1') states.set(t, s.metric['phase'] ?? '?');
  const times = [...states.keys()].sort((a, b) => a - b);
  if (times.length < 2) throw new Error('the record holds fewer than two scraped states');
  const sigterm = times.find((t) => states.get(t) !== 'running') ?? times[0]!;
  const t0 = times[0]!;
  const t1 = times[times.length - 1]! + rec.scrapeIntervalMs / 1000;
  const x = (t: number) => LEFT + ((t - t0) / (t1 - t0)) * PLOT_W;

  const out: string[] = [];
  const panelTop = { phase: 40, inflight: 130, lag: 290 };
  const panelH = { phase: 44, inflight: 110, lag: 110 };
  const axisY = panelTop.lag + panelH.lag;
  const H = axisY + 70;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="22" font-size="15" font-weight="bold">A real shutdown, as Prometheus scraped it every ${rec.scrapeIntervalMs} ms (replica stalled ${fmt(rec.stallMs / 1000)} s)</text>`,
  );

  // Phase band: one rectangle per run of the same state.
  let runStart = times[0]!;
  for (let i = 1; i <= times.length; i++) {
    const t = times[i];
    if (t !== undefined && states.get(t) === states.get(runStart)) continue;
    const state = states.get(runStart)!;
    const end = t ?? t1;
    const x0 = x(runStart);
    const w = x(end) - x0;
    out.push(
      `<rect x="${x0.toFixed(1)}" y="${panelTop.phase}" width="${w.toFixed(1)}" height="${panelH.phase}" fill="${STATE_COLORS[state] ?? '#000'}"/>`,
    );
    if (w > state.length * 7 + 6) {
      out.push(
        `<text x="${(x0 + w / 2).toFixed(1)}" y="${panelTop.phase + panelH.phase / 2 + 4}" text-anchor="middle" fill="#ffffff" font-weight="bold">${esc(state)}</text>`,
      );
    }
    if (t !== undefined) runStart = t;
  }
  out.push(`<text x="${LEFT - 8}" y="${panelTop.phase + panelH.phase / 2 + 4}" text-anchor="end">phase</text>`);

  const linePanel = (m: Matrix, top: number, h: number, label: string, scale: number, unit: string, color: string) => {
    const values = m.data.result[0]?.values ?? [];
    const ys = values.map(([, v]) => Number(v) / scale);
    const max = Math.max(1e-9, ...ys);
    const step = niceStep(max, 3);
    const top2 = Math.ceil(max / step) * step;
    const y = (v: number) => top + h - (v / top2) * h;
    out.push(`<rect x="${LEFT}" y="${top}" width="${PLOT_W}" height="${h}" fill="none" stroke="#d1d5db"/>`);
    for (let v = 0; v <= top2 + 1e-9; v += step) {
      out.push(`<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eef0f3"/>`);
      out.push(`<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#4b5563">${fmt(v)}</text>`);
    }
    // A step line: each scraped value holds until the next scrape.
    const pts: string[] = [];
    values.forEach(([t, v], i) => {
      const next = values[i + 1]?.[0] ?? t + rec.scrapeIntervalMs / 1000;
      const yy = y(Number(v) / scale).toFixed(1);
      pts.push(`${x(t).toFixed(1)},${yy}`, `${x(next).toFixed(1)},${yy}`);
    });
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${LEFT}" y="${top - 6}" fill="#111827">${esc(label)} (${esc(unit)})</text>`);
  };
  linePanel(rec.inflight, panelTop.inflight, panelH.inflight, 'pika_sidecar_inflight_commands', 1, 'commands', '#ef4444');
  linePanel(rec.lag, panelTop.lag, panelH.lag, 'pika_sidecar_replica_lag_bytes of the stalled replica', 1024 * 1024, 'MiB', '#3b82f6');

  // Markers across the panels: SIGTERM, replication_sync starts, the stop gate opens.
  const firstOf = (state: string) => times.find((t) => states.get(t) === state);
  const markers: Array<[number | undefined, string]> = [
    [sigterm, 'SIGTERM'],
    [firstOf('replication_sync'), 'replication_sync'],
    [firstOf('drained'), 'gate open (drained)'],
  ];
  for (const [t, label] of markers) {
    if (t === undefined) continue;
    out.push(
      `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${panelTop.phase + panelH.phase}" y2="${axisY}" stroke="#111827" stroke-dasharray="4 3"/>`,
    );
    out.push(`<text x="${(x(t) + 4).toFixed(1)}" y="${panelTop.inflight + 14}" fill="#111827">${esc(label)}</text>`);
  }

  // Time axis, in seconds from SIGTERM.
  const step = niceStep(t1 - t0, 10);
  for (let s = Math.ceil((t0 - sigterm) / step) * step; sigterm + s <= t1; s += step) {
    const xx = x(sigterm + s).toFixed(1);
    out.push(`<line x1="${xx}" x2="${xx}" y1="${axisY}" y2="${axisY + 5}" stroke="#4b5563"/>`);
    out.push(`<text x="${xx}" y="${axisY + 18}" text-anchor="middle" fill="#4b5563">${fmt(Math.round(s * 10) / 10)}</text>`);
  }
  out.push(
    `<text x="${LEFT + PLOT_W / 2}" y="${axisY + 36}" text-anchor="middle">seconds from SIGTERM (Prometheus range query, step ${rec.scrapeIntervalMs} ms)</text>`,
  );

  // Legend.
  let lx = LEFT;
  for (const [state, color] of Object.entries(STATE_COLORS)) {
    if (state === 'exited') continue;
    out.push(
      `<rect x="${lx}" y="${axisY + 48}" width="10" height="10" fill="${color}"/>`,
      `<text x="${lx + 14}" y="${axisY + 57}">${esc(state)}</text>`,
    );
    lx += 14 + state.length * 7 + 16;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
