// The words of an instance and its media: the audio player lights up the word being spoken (word_timings), a
// click on a word seeks the audio there (or, in what-if's mask mode, masks the word).
import { useEffect, useRef, type RefObject } from "react";
import { mediaUrl } from "../api";
import { divergingRgb, modalityColor, textOn } from "../colors";
import { fmt } from "../stats";
import type { WordAttribution } from "../types";
import { wordAtTime, type WordTiming } from "./instanceLogic";
import "./Instance.css";

export function WordStrip(props: {
  modality: string;
  kind: string | undefined;
  words: WordAttribution[];
  scale: number;
  speaking: number | null;
  masked: Set<number>;
  timed: Map<number, WordTiming>;
  onWord: (position: number) => void;
  maskMode: boolean;
}) {
  const { words } = props;
  const verb = props.maskMode ? "click a word to mask it" : props.timed.size > 0 ? "click a word to hear it" : null;
  return (
    <div className="inst-words-block">
      <h4>
        <span className="dot" style={{ background: modalityColor(props.modality, props.kind) }} /> {props.modality}: {words.length} words coloured by attribution
        {verb && <span className="sub"> · {verb}</span>}
      </h4>
      <p className={`words inst-words${props.maskMode ? " mask-mode" : ""}`} aria-label="words coloured by attribution" data-testid="word-strip">
        {words.map((w) => {
          const rgb = divergingRgb(w.value ?? 0, props.scale);
          const t = props.timed.get(w.position);
          const masked = props.masked.has(w.position);
          const clickable = props.maskMode || t !== undefined;
          return (
            <span
              key={w.position}
              className={`word${props.speaking === w.position ? " speaking" : ""}${masked ? " masked" : ""}${clickable ? " clickable" : ""}`}
              style={{ background: `rgb(${rgb.join(",")})`, color: textOn(rgb) }}
              title={`${w.token}: attribution ${fmt(w.value)}${t ? ` · ${t.start.toFixed(2)}–${t.end.toFixed(2)} s` : ""}${masked ? " · masked" : ""}`}
              data-position={w.position}
              role={clickable ? "button" : undefined}
              tabIndex={clickable ? 0 : undefined}
              onClick={clickable ? () => props.onWord(w.position) : undefined}
              onKeyDown={clickable ? (e) => (e.key === "Enter" || e.key === " ") && props.onWord(w.position) : undefined}
            >
              {w.token}
            </span>
          );
        })}
      </p>
    </div>
  );
}

/** Follow an audio element: the word being spoken, every animation frame while it plays (timeupdate fires ~4/s). */
export function useSpeaking(audio: RefObject<HTMLAudioElement | null>, timings: WordTiming[], onChange: (position: number | null) => void, mediaKey: string) {
  const last = useRef<number | null>(null);
  useEffect(() => {
    const el = audio.current;
    if (!el || timings.length === 0) return;
    let frame = 0;
    const update = () => {
      const p = el.currentTime > 0 || !el.paused ? wordAtTime(timings, el.currentTime) : null;
      if (p !== last.current) {
        last.current = p;
        onChange(p);
      }
    };
    const loop = () => {
      update();
      if (!el.paused && !el.ended) frame = requestAnimationFrame(loop);
    };
    const onPlay = () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(loop);
    };
    const events = ["timeupdate", "seeked", "pause", "ended"] as const;
    events.forEach((e) => el.addEventListener(e, update));
    el.addEventListener("play", onPlay);
    return () => {
      cancelAnimationFrame(frame);
      events.forEach((e) => el.removeEventListener(e, update));
      el.removeEventListener("play", onPlay);
    };
  }, [audio, timings, onChange, mediaKey]);
}

/** Face images and audio/video players of the instance (not the images drawn under a patch heat map). */
export function MediaPanel(props: {
  runId: string;
  rowId: string;
  media: { key: string; mime: string; file: string }[];
  audioRef: RefObject<HTMLAudioElement | null>;
  timed: boolean;
}) {
  const items = props.media.map((m) => ({ m, url: mediaUrl(props.runId, m.key, m.file) })).filter((x) => x.url);
  if (items.length === 0) return null;
  let audioTaken = false;
  return (
    <div className="media inst-media" data-testid="instance-media">
      {items.map(({ m, url }) => {
        if (m.mime.startsWith("image/")) return <img key={m.key} src={url!} alt={`${m.key} of ${props.rowId}`} className="thumb" />;
        if (m.mime.startsWith("audio/")) {
          const ref = audioTaken ? undefined : props.audioRef; // the first audio drives the word highlight
          audioTaken = true;
          return (
            <figure key={m.key}>
              <figcaption>
                {m.key}
                {ref && props.timed ? " · the word being spoken lights up" : ""}
              </figcaption>
              <audio ref={ref} controls src={url!} aria-label={`${m.key} audio`} preload="metadata" />
            </figure>
          );
        }
        if (m.mime.startsWith("video/")) return <video key={m.key} controls src={url!} className="thumb" />;
        return null;
      })}
    </div>
  );
}
