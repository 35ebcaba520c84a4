"""Speech part of the demo set: espeak-ng synthesis with word timing, acoustic features aligned to words.

espeak-ng is driven through its C library (``libespeak-ng.so.1``, Debian package ``espeak-ng``) with ctypes: the
synthesis callback hands back the samples and ``espeakEVENT_WORD`` events whose ``text_position`` names the word and
whose ``sample`` says where it starts, which gives exact word intervals for the utterance spoken in one go.

Frame features (10-ms hop at 16 kHz), averaged within each word's interval, named as in COVAREP where they match:
``F0`` (Hz, RAPT pitch tracker of SPTK via pysptk, 50-550 Hz; mean over the word's voiced frames, 0 when none),
``VUV`` (share of the word's frames RAPT finds voiced), ``MCEP_0 .. MCEP_24`` (mel-cepstrum of order 24,
alpha 0.42: the real cepstrum of the Blackman-windowed frame warped to the mel scale by SPTK's all-pass ``freqt``,
via pysptk; COVAREP runs SPTK's iterative ``mcep``, which differs in detail and costs ~1 ms a frame, too slow for a
builder that should finish in minutes), plus ``energy_db`` (RMS level in dB) and ``word_duration`` (s).
"""

from __future__ import annotations

import ctypes
import io
import subprocess
import wave
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

SR = 16_000
HOP = 160  # 10 ms
FRAME = 512  # 32 ms analysis window (a power of two, as SPTK wants)
MCEP_ORDER = 24
MCEP_ALPHA = 0.42  # the usual all-pass constant for 16 kHz
F0_MIN, F0_MAX = 50.0, 550.0

_EVENT_WORD, _EVENT_END = 1, 0
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class Voice:
    """espeak-ng settings for one utterance: voice name (``en-us+f2`` ...), pitch and range 0-100, rate in wpm."""

    name: str
    pitch: int
    range: int
    rate: int
    volume: int = 100


class Speaker:
    """espeak-ng in-process synthesiser returning 16-kHz audio and word start samples."""

    def __init__(self) -> None:
        try:
            self._lib = ctypes.CDLL("libespeak-ng.so.1")
        except OSError as exc:
            raise RuntimeError("libespeak-ng.so.1 not found: apt-get install espeak-ng") from exc
        self.native_sr = self._lib.espeak_Initialize(2, 0, None, 0)  # 2 = AUDIO_OUTPUT_SYNCHRONOUS
        if self.native_sr <= 0:
            raise RuntimeError("espeak_Initialize failed")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int]] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: the C side holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events) -> int:  # noqa: ANN001 -- ctypes callback
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_END:
            if events[i].type == _EVENT_WORD:
                self._events.append((events[i].text_position, events[i].sample))
            i += 1
        return 0

    def say(self, words: list[str], voice: Voice) -> tuple[np.ndarray, np.ndarray]:
        """Speak the words; return float32 audio at 16 kHz and ``[W, 2]`` word intervals in seconds."""
        if self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice.name!r}")
        for key in ("rate", "volume", "pitch", "range"):
            self._lib.espeak_SetParameter(_PARAM[key], int(getattr(voice, key)), 0)
        text = " ".join(words)
        starts_char = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])  # 0-based start of each word
        self._chunks, self._events = [], []
        data = text.encode()
        if self._lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None) != 0:  # POS_CHARACTER, UTF8
            raise RuntimeError(f"espeak_Synth failed on {text!r}")
        self._lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        audio16 = resample_poly(audio, SR, self.native_sr).astype(np.float32)
        starts = _word_starts(self._events, starts_char, len(words), SR / self.native_sr)
        return audio16, _intervals(starts, [len(w) for w in words], audio16)


def _word_starts(events: list[tuple[int, int]], starts_char: np.ndarray, n_words: int, scale: float) -> np.ndarray:
    """Start (s) of each word from espeak-ng's word events; NaN for words that got no event of their own.

    With one event per word the events are taken in order. Otherwise each event goes to the word holding its
    (1-based) text position, first event per word: espeak-ng joins some unstressed words to their neighbour and then
    reports one event for the group.
    """
    events = sorted(events, key=lambda e: e[1])
    starts = np.full(n_words, np.nan)
    if len(events) == n_words:
        return np.array([sample * scale / SR for _, sample in events])
    for pos, sample in events:
        w = int(np.searchsorted(starts_char, pos - 1, side="right") - 1)
        if 0 <= w < n_words and np.isnan(starts[w]):
            starts[w] = sample * scale / SR
    return starts


def _intervals(starts: np.ndarray, letters: list[int], audio: np.ndarray) -> np.ndarray:
    """Contiguous word intervals: each word ends where the next starts, the last where the speech ends.

    A run of words without a start of their own shares the interval of the group it belongs to, in proportion to
    the words' letters.
    """
    frame_rms = np.sqrt(np.mean(_frames(audio) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(frame_rms) > 20 * np.log10(frame_rms.max()) - 40)
    # the last frame (centred at f * HOP) within 40 dB of the peak: accurate to half a frame
    speech_end = loud[-1] * HOP / SR if len(loud) else len(audio) / SR
    starts = starts.copy()
    if np.isnan(starts[0]):
        starts[0] = 0.0
    known = np.flatnonzero(~np.isnan(starts))
    bounds = np.append(starts[known], max(speech_end, np.nanmax(starts) + 0.05))
    for k, first in enumerate(known):
        last = known[k + 1] if k + 1 < len(known) else len(starts)
        share = np.cumsum([0] + letters[first:last])[:-1] / sum(letters[first:last])
        starts[first:last] = bounds[k] + share * (bounds[k + 1] - bounds[k])
    ends = np.append(starts[1:], bounds[-1])
    return np.stack([starts, ends], axis=1)


def _frames(audio: np.ndarray) -> np.ndarray:
    """``[F, FRAME]`` frames, hop 10 ms, frame f centred at f * HOP."""
    padded = np.pad(audio, (FRAME // 2, FRAME // 2))
    n = 1 + (len(padded) - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    return padded[idx]


def pitch_track(audio: np.ndarray) -> np.ndarray:
    """F0 in Hz per 10-ms frame (0 where unvoiced) by RAPT (Talkin 1995) from SPTK, via pysptk."""
    import pysptk

    return pysptk.rapt((audio * 32768).astype(np.float32), SR, HOP, min=F0_MIN, max=F0_MAX, otype="f0").astype(float)


def _freqt_matrix(n_in: int, order: int, alpha: float) -> np.ndarray:
    """SPTK's frequency warping ``freqt`` is linear in the cepstrum: its matrix, column by column."""
    import pysptk

    eye = np.eye(n_in)
    return np.stack([pysptk.freqt(eye[i], order, alpha) for i in range(n_in)], axis=0)  # [n_in, order + 1]


_WARP: np.ndarray | None = None


def mel_cepstrum(frames: np.ndarray) -> np.ndarray:
    """Mel-cepstrum ``[F, MCEP_ORDER + 1]`` of raw frames ``[F, FRAME]`` (Blackman window, real cepstrum, freqt)."""
    global _WARP
    if _WARP is None:
        _WARP = _freqt_matrix(FRAME // 2 + 1, MCEP_ORDER, MCEP_ALPHA)
    spectrum = np.abs(np.fft.rfft(frames * np.blackman(FRAME)[None, :], axis=1))
    cep = np.fft.irfft(np.log(spectrum + 1e-5), axis=1)[:, : FRAME // 2 + 1]
    cep[:, 1:] *= 2.0  # one-sided cepstrum, as SPTK's freqt expects
    return cep @ _WARP


def frame_features(audio: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame F0, voicing, RMS level (dB) and mel-cepstrum of one utterance."""
    frames = _frames(audio).astype(np.float64)
    f0 = pitch_track(audio)
    n = min(len(frames), len(f0))
    frames, f0 = frames[:n], f0[:n]
    voiced = f0 > 0
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-10)
    return {
        "F0": np.where(voiced, f0, 0.0),
        "VUV": voiced.astype(np.float64),
        "energy_db": 20 * np.log10(rms),
        "mcep": mel_cepstrum(frames),
    }


FEATURE_NAMES = ["F0", "VUV", "energy_db", "word_duration"] + [f"MCEP_{k}" for k in range(MCEP_ORDER + 1)]


def word_features(frames: dict[str, np.ndarray], intervals: np.ndarray) -> np.ndarray:
    """Average frame features inside each word interval -> ``[W, len(FEATURE_NAMES)]``."""
    n = len(frames["F0"])
    out = np.zeros((len(intervals), len(FEATURE_NAMES)), dtype=np.float32)
    for w, (start, end) in enumerate(intervals):
        a = min(int(round(start * SR / HOP)), n - 1)
        b = max(a + 1, min(int(round(end * SR / HOP)), n))
        voiced = frames["VUV"][a:b] > 0
        out[w, 0] = frames["F0"][a:b][voiced].mean() if voiced.any() else 0.0
        out[w, 1] = voiced.mean()
        out[w, 2] = frames["energy_db"][a:b].mean()
        out[w, 3] = end - start
        out[w, 4:] = frames["mcep"][a:b].mean(axis=0)
    return out


def encode_ogg(audio: np.ndarray, quality: int = 0) -> bytes:
    """Compress a 16-kHz clip to Ogg Vorbis with sox (Debian package ``sox``).

    ``-R`` (repeatable mode) fixes the Ogg stream serial number, which sox otherwise draws at random, so that
    rebuilding gives the same bytes.
    """
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    result = subprocess.run(
        ["sox", "-R", "-t", "wav", "-", "-t", "ogg", "-C", str(quality), "-"],
        input=buf.getvalue(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"sox failed: {result.stderr.decode(errors='replace')}")
    return result.stdout
