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
