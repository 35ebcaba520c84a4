import type { ReactNode } from "react";
import { DIVERGING, SEQUENTIAL, modalityColor } from "../colors";
import { fmt } from "../stats";

export function Panel(props: { title: string; id: string; actions?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <section className={`panel ${props.className ?? ""}`} aria-labelledby={`${props.id}-title`} data-view={props.id}>
      <header className="panel-head">
        <h2 id={`${props.id}-title`}>{props.title}</h2>
        <div className="panel-actions">{props.actions}</div>
      </header>
      <div className="panel-body">{props.children}</div>
    </section>
  );
}

/** An empty state that says what to do. */
export function Empty(props: { title: string; hint?: ReactNode }) {
  return (
    <div className="empty" role="status">
      <strong>{props.title}</strong>
      {props.hint && <p>{props.hint}</p>}
    </div>
  );
}

export function ErrorBox(props: { error: string; hint?: ReactNode }) {
  return (
    <div className="error" role="alert">
      <strong>Something went wrong</strong>
      <p>{props.error}</p>
      {props.hint && <p className="hint">{props.hint}</p>}
    </div>
  );
}

export function Loading(props: { what: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      Loading {props.what}…
    </div>
  );
}

/** Legend of the diverging attribution map, centred on zero. */
export function DivergingLegend(props: { max: number; label?: string; width?: number }) {
  const w = props.width ?? 160;
  const id = `dl-${Math.round(props.max * 1e6)}-${w}`;
  return (
    <figure className="legend" aria-label={`${props.label ?? "attribution"} colour scale from ${fmt(-props.max)} to ${fmt(props.max)}`}>
      <figcaption>{props.label ?? "Attribution"}</figcaption>
      <svg width={w} height={26}>
        <defs>
          <linearGradient id={id}>
            {DIVERGING.map((c, i) => (
              <stop key={c} offset={`${(100 * i) / (DIVERGING.length - 1)}%`} stopColor={c} />
            ))}
          </linearGradient>
        </defs>
        <rect x={0} y={0} width={w} height={10} fill={`url(#${id})`} stroke="#999" strokeWidth={0.5} />
        <text x={0} y={23} fontSize={10}>
          {fmt(-props.max)}
        </text>
        <text x={w / 2} y={23} fontSize={10} textAnchor="middle">
          0
        </text>
        <text x={w} y={23} fontSize={10} textAnchor="end">
          +{fmt(props.max)}
        </text>
      </svg>
    </figure>
  );
}

export function SequentialLegend(props: { min: number; max: number; label: string; width?: number }) {
  const w = props.width ?? 160;
  return (
    <figure className="legend">
      <figcaption>{props.label}</figcaption>
      <svg width={w} height={26}>
        <defs>
          <linearGradient id="seq-legend">
            {SEQUENTIAL.map((c, i) => (
              <stop key={c} offset={`${(100 * i) / (SEQUENTIAL.length - 1)}%`} stopColor={c} />
            ))}
          </linearGradient>
        </defs>
        <rect x={0} y={0} width={w} height={10} fill="url(#seq-legend)" />
        <text x={0} y={23} fontSize={10}>
          {fmt(props.min)}
        </text>
        <text x={w} y={23} fontSize={10} textAnchor="end">
          {fmt(props.max)}
        </text>
      </svg>
    </figure>
  );
}

export function Swatches(props: { items: { label: string; color: string }[]; label?: string }) {
  return (
    <figure className="legend swatches">
      {props.label && <figcaption>{props.label}</figcaption>}
      <ul>
        {props.items.map((it) => (
          <li key={it.label}>
            <span className="swatch" style={{ background: it.color }} />
            {it.label}
          </li>
        ))}
      </ul>
    </figure>
  );
}

export function ModalityChip(props: { name: string; kind?: string; children?: ReactNode }) {
  const c = modalityColor(props.name, props.kind);
  return (
    <span className="chip" style={{ borderColor: c }}>
      <span className="dot" style={{ background: c }} />
      {props.children ?? props.name}
    </span>
  );
}

/** One bar of the Summary's bar lists: label with its colour dot, the bar for all instances (faded when a
 * selection's bar is drawn over it) and the value; a button when it selects something. Widths are shares 0..1. */
export function BarRow(props: {
  label: string;
  color: string;
  all: number;
  sel: number | null;
  value: ReactNode;
  onClick?: () => void;
  ariaLabel?: string;
  data?: Record<`data-${string}`, string>;
}) {
  const body = (
    <>
      <span className="bar-label">
        <span className="dot" style={{ background: props.color }} />
        {props.label}
      </span>
      <span className="bar-track">
        <span className="bar" style={{ width: `${100 * props.all}%`, background: props.color, opacity: props.sel !== null ? 0.35 : 1 }} />
        {props.sel !== null && <span className="bar overlay" style={{ width: `${100 * props.sel}%`, background: props.color }} />}
      </span>
      <span className="bar-value">{props.value}</span>
    </>
  );
  if (!props.onClick)
    return (
      <div className="bar-row" role="listitem" {...props.data}>
        {body}
      </div>
    );
  return (
    <button type="button" className="bar-row as-button" onClick={props.onClick} aria-label={props.ariaLabel} {...props.data}>
      {body}
    </button>
  );
}
