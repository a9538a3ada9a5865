// Charts (uPlot, bundled): time series with markers for decisions, fills and exits.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Marker {
  t: number; // seconds since the epoch
  y: number;
  kind: "decision" | "buy" | "sell";
  label: string;
}

const COLORS = { price: "#1f6feb", reference: "#8b949e", decision: "#d29922", buy: "#2da44e", sell: "#cf222e" };

function markerPlugin(markers: Marker[]): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u: uPlot) => {
          const ctx = u.ctx;
          ctx.save();
          for (const m of markers) {
            const x = u.valToPos(m.t, "x", true);
            const y = u.valToPos(m.y, "y", true);
            if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
            const s = 7 * devicePixelRatio;
            ctx.fillStyle = COLORS[m.kind];
            ctx.strokeStyle = "#fff";
            ctx.lineWidth = devicePixelRatio;
            ctx.beginPath();
            if (m.kind === "decision") {
              ctx.rect(x - s / 2, y - s / 2, s, s);
            } else if (m.kind === "buy") {
              ctx.moveTo(x, y - s);
              ctx.lineTo(x - s, y + s * 0.6);
              ctx.lineTo(x + s, y + s * 0.6);
              ctx.closePath();
            } else {
              ctx.moveTo(x, y + s);
              ctx.lineTo(x - s, y - s * 0.6);
              ctx.lineTo(x + s, y - s * 0.6);
              ctx.closePath();
            }
            ctx.fill();
            ctx.stroke();
          }
          ctx.restore();
        },
      ],
    },
  };
}

export interface Line {
  label: string;
  values: (number | null)[];
  color?: string;
  dash?: boolean;
}

export function lineChart(
  host: HTMLElement,
  times: number[],
  lines: Line[],
  opts: { markers?: Marker[]; height?: number; yLabel?: string; bars?: boolean } = {},
): uPlot {
  const width = Math.max(320, host.clientWidth || 800);
  const palette = [COLORS.price, COLORS.reference, COLORS.decision, COLORS.sell];
  const options: uPlot.Options = {
    width,
    height: opts.height ?? 280,
    legend: { show: true },
    scales: { x: { time: true } },
    axes: [{}, { label: opts.yLabel ?? "", size: 70 }],
    series: [
      {},
      ...lines.map((l, i) => ({
        label: l.label,
        stroke: l.color ?? palette[i % palette.length],
        width: 1.5,
        dash: l.dash ? [6, 4] : undefined,
        spanGaps: false,
        ...(opts.bars
          ? { paths: uPlot.paths.bars!({ size: [0.6, 40] }), fill: l.color ?? palette[i % palette.length] }
          : {}),
      })),
    ],
    plugins: opts.markers && opts.markers.length ? [markerPlugin(opts.markers)] : [],
  };
  const data: uPlot.AlignedData = [times, ...lines.map((l) => l.values)] as uPlot.AlignedData;
  return new uPlot(options, data, host);
}
