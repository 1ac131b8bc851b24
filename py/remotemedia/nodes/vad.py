"""VAD reference: the same engines, scores and decisions as the native node
(native/src/nodes/audio/vad/, which documents the algorithm), in numpy."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from ..errors import InvalidInputError, NodeError
from ..model import BUDGET, SAMPLE_CLIP, ModelFileError, silero, silero_package_model
from ..node import Emit, ParamError
from ._common import BuiltinNode, builtin, mono_f32

RATES = (8000, 16000, 32000, 48000)
SPECTRAL_FRAME_MS = (10, 20, 30)
SILERO_RATE, SILERO_FRAME_MS, SILERO_WINDOW = 16000, 32, 512
# Decision defaults per engine (frame_ms, threshold, hangover_ms, min_speech_ms,
# min_silence_ms, speech_pad_ms), as in vad/mod.rs.
DEFAULTS = {"spectral": (30, 0.6, 90, 60, 300, 0), "silero": (SILERO_FRAME_MS, 0.5, 0, 0, 100, 30)}
# the level floor (dBFS): the spectral engine needs one; silero has none (MIN_LEVEL_OFF is below any signal)
SPECTRAL_MIN_LEVEL_DBFS, MIN_LEVEL_OFF = -60.0, -200.0
BANDS = 8
LOW_HZ, HIGH_HZ = 200.0, 4000.0
SMOOTH = 0.6
SUBWINDOW_MS, SUBWINDOWS = 360, 10
NOISE_BIAS = 1.5
RISE_WINDOWS, RISE_FACTOR = 1, 100.0  # a rise of the noise floor (native: follow_rise)
SNR_MAX_DB = 30.0
WEIGHTS = np.array([0.164, 0.293, 0.259])
BIAS = -1.278
TINY = 1e-12


class _Analyzer:
    def __init__(self, rate: int, frame_len: int):
        nfft = 1 << (frame_len - 1).bit_length()
        self.nfft = nfft
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame_len) / frame_len)).astype(np.float32)
        high = min(HIGH_HZ, 0.475 * rate)
        f = LOW_HZ * (high / LOW_HZ) ** (np.arange(BANDS + 1) / BANDS)
        self.edges = np.floor(f * nfft / rate + 0.5).astype(int)  # Rust's round(): half away from zero
        k = np.arange(self.edges[0], self.edges[-1])
        self.band_of = np.minimum(np.searchsorted(self.edges, k, side="right") - 1, BANDS - 1)

    def analyse(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # clipped to ±SAMPLE_CLIP (120 dB above full scale), as natively, so huge samples cannot overflow
        spectrum = np.fft.rfft(np.clip(frame.astype(np.float64), -SAMPLE_CLIP, SAMPLE_CLIP) * self.window, self.nfft)
        power = np.abs(spectrum[self.edges[0]:self.edges[-1]]) ** 2 / len(frame) + TINY
        base = self.edges[0]
        energy = np.array([power[self.edges[b] - base:self.edges[b + 1] - base].sum()
                           / max(self.edges[b + 1] - self.edges[b], 1) + TINY for b in range(BANDS)])
        return energy, power


class _Spectral:
    """The spectral engine's state for one stream (native: vad/spectral.rs)."""

    def __init__(self, rate: int, frame_ms: int):
        self.analyzer = _Analyzer(rate, rate * frame_ms // 1000)
        self.per_window = SUBWINDOW_MS // frame_ms
        self.smoothed = None
        self.current = np.full(BANDS, np.inf)
        self.history: list[np.ndarray] = []
        self.in_window = 0

    def score(self, frame: np.ndarray) -> float:
        energy, power = self.analyzer.analyse(frame)
        self.smoothed = energy.copy() if self.smoothed is None else self.smoothed
        self.smoothed = SMOOTH * self.smoothed + (1 - SMOOTH) * energy
        self.current = np.minimum(self.current, self.smoothed)
        past = np.min(self.history, axis=0) if self.history else np.full(BANDS, np.inf)
        floor = np.minimum(self.current, past) * NOISE_BIAS
        self.in_window += 1
        if self.in_window == self.per_window:
            self.history = (self.history + [self.current])[-SUBWINDOWS:]
            if len(self.history) > RISE_WINDOWS:
                recent = np.min(self.history[-RISE_WINDOWS:], axis=0)
                self.history = [np.where(h * np.float32(RISE_FACTOR) < recent, recent, h) for h in self.history[:-RISE_WINDOWS]] \
                    + self.history[-RISE_WINDOWS:]
            self.current = np.full(BANDS, np.inf)
            self.in_window = 0
        snr = np.clip(10 * np.log10(energy / floor), 0, SNR_MAX_DB)
        white = power / floor[self.analyzer.band_of]
        flatness = 10 * np.log10(2) * (np.mean(np.log2(white)) - np.log2(np.mean(white)))
        z = WEIGHTS @ np.array([snr.mean(), flatness, snr.max()]) + BIAS
        return float(1 / (1 + np.exp(-z)))


class _SileroScorer:
    """The silero engine's state for one stream: the shared model and its own state."""

    def __init__(self, model):
        self.model, self.state = model, model.state()

    def score(self, frame: np.ndarray) -> float:
        return float(np.float32(BUDGET.run(self.model.forward, self.state, frame)))


class _Segmenter:
    """Segments from final frame decisions, bridged, padded and split (native:
    vad/segments.rs, which documents the rule); times in whole milliseconds."""

    def __init__(self, frame_ms: int, min_silence_ms: int, pad_ms: int, max_speech_ms: int | None):
        self.frame_ms, self.min_silence_ms, self.pad_ms = frame_ms, min_silence_ms, pad_ms
        self.max_frames = None if max_speech_ms is None else max(max_speech_ms // frame_ms, 2)
        self.open = None  # [start_ms, first frame, scores]
        self.held = None  # (open, end frame)

    def frame(self, index: int, speech: bool, score: float, out: list) -> None:
        at, fm = index * self.frame_ms, self.frame_ms
        if not speech:
            if self.open is not None:
                self.held, self.open = (self.open, index), None
            if self.held is not None:
                held, end = self.held
                if at + fm >= end * fm + max(self.min_silence_ms, 2 * self.pad_ms):
                    out.append((held[0], end * fm + self.pad_ms))
                    self.held = None
                elif self.max_frames is not None:  # scores kept only to split long segments
                    held[2].append(np.float32(score))
            return
        if self.open is None:
            held, self.held = self.held, None
            if (held is not None and at - held[1] * fm < self.min_silence_ms
                    and (self.max_frames is None or len(held[0][2]) + 1 < self.max_frames)):
                self.open = held[0]  # bridged, unless that would pass max_speech (then it splits at the gap)
            elif held is not None:
                end_ms = held[1] * fm
                if at < end_ms + 2 * self.pad_ms:
                    start = end_ms + (at - end_ms) // 2
                    out.append((held[0][0], start))
                else:
                    out.append((held[0][0], end_ms + self.pad_ms))
                    start = max(at - self.pad_ms, 0)
                self.open = [start, index, []]
            else:
                self.open = [max(at - self.pad_ms, 0), index, []]
        if self.max_frames is None:
            return
        scores = self.open[2]
        scores.append(np.float32(score))
        if len(scores) >= self.max_frames:
            half = len(scores) // 2
            quietest = min(range(len(scores) - 1, half - 1, -1), key=lambda i: scores[i])
            split = self.open[1] + quietest
            out.append((self.open[0], split * fm))
            self.open = [split * fm, split, scores[quietest:]]

    def finish(self, frames: int, out: list) -> None:
        end_of_stream = frames * self.frame_ms
        if self.open is not None:
            last = (self.open[0], end_of_stream)
        elif self.held is not None:
            last = (self.held[0][0], self.held[1] * self.frame_ms)
        else:
            last = None
        self.open = self.held = None
        if last is not None:
            out.append((last[0], min(last[1] + self.pad_ms, end_of_stream)))


def _level_dbfs(frame: np.ndarray) -> float:
    """Mean-square level in dB full scale (-inf for digital silence)."""
    x = frame.astype(np.float64)
    with np.errstate(divide="ignore"):
        return float(10 * np.log10(np.dot(x, x) / max(len(x), 1)))


def _min_run(min_speech_ms: int, frame_ms: int) -> int:
    """Frames in a row that make a speech run."""
    return max(1, -(-min_speech_ms // frame_ms))


def _held_frames(min_run: int, hangover: int) -> int:
    """Most frames whose decision waits at once (native: held_frames)."""
    return min_run + hangover if min_run > 1 else 1


@builtin
class VAD(BuiltinNode):
    @classmethod
    def declared_latency(cls, params: dict, caps: tuple) -> int | None:
        """At worst: a run not yet ``min_speech_ms`` long is held until it is confirmed or
        ends, which its hangover may put off."""
        p, rate = cls.filled(params), caps[3]
        if p is None or rate is None:
            return None
        defaults = DEFAULTS[p["engine"]]
        frame_ms = defaults[0] if p.get("frame_ms") is None else p["frame_ms"]
        min_speech_ms = defaults[3] if p.get("min_speech_ms") is None else p["min_speech_ms"]
        hangover_ms = defaults[2] if p.get("hangover_ms") is None else p["hangover_ms"]
        if p["engine"] == "silero":
            frame_len = SILERO_WINDOW if rate == SILERO_RATE else None
        else:
            frame_len = rate * frame_ms // 1000 if rate in RATES and frame_ms in SPECTRAL_FRAME_MS else None
        if frame_len is None:
            return None
        return _held_frames(_min_run(min_speech_ms, frame_ms), -(-hangover_ms // frame_ms)) * frame_len - 1

    def __init__(self, engine: str, gate: bool, min_level_dbfs: float | None = None, model_path: str | None = None,
                 frame_ms: int | None = None, threshold: float | None = None, hangover_ms: int | None = None,
                 min_speech_ms: int | None = None, min_silence_ms: int | None = None,
                 speech_pad_ms: int | None = None, max_speech_s: float | None = None):
        is_silero = engine == "silero"
        given = (frame_ms, threshold, hangover_ms, min_speech_ms, min_silence_ms, speech_pad_ms)
        frame_ms, threshold, hangover_ms, min_speech_ms, min_silence_ms, speech_pad_ms = (
            default if value is None else value for value, default in zip(given, DEFAULTS[engine]))
        if is_silero and frame_ms != SILERO_FRAME_MS:
            raise ParamError("frame_ms", f"{frame_ms} ms: the silero engine works on {SILERO_FRAME_MS} ms windows")
        if not is_silero and frame_ms not in SPECTRAL_FRAME_MS:
            raise ParamError("frame_ms", f"{frame_ms} ms is not one of 10, 20, 30 (the spectral engine's frames)")
        self.model = None
        if is_silero and model_path is None:
            model_path = silero_package_model()
        if is_silero and model_path is None:
            raise ParamError("model_path", "the silero engine needs a model: pip install 'remotemedia[silero]' "
                                           "(the silero-vad package ships it), or give model_path")
        if not is_silero and model_path is not None:
            raise ParamError("model_path", "only the silero engine takes a model")
        if is_silero:
            try:
                self.model = silero(model_path)
            except ModelFileError as e:
                raise ParamError("model_path", str(e)) from None
        if min_level_dbfs is None:  # native: Defaults::min_level_dbfs (the silero engine has no floor)
            min_level_dbfs = MIN_LEVEL_OFF if is_silero else SPECTRAL_MIN_LEVEL_DBFS
        self.frame_ms, self.threshold, self.gate, self.min_level = frame_ms, threshold, gate, min_level_dbfs
        self.speech_pad_ms, self.min_silence_ms = speech_pad_ms, min_silence_ms
        self.max_speech_ms = None if max_speech_s is None else int(max_speech_s * 1000 + 0.5)  # as Rust rounds
        self.hangover = -(-hangover_ms // frame_ms)
        self.min_run = _min_run(min_speech_ms, frame_ms)
        self.rate = None

    def _start(self, rate: int):
        if self.model is not None:
            if rate != SILERO_RATE:
                raise NodeError(f"VAD's silero engine takes 16000 Hz, got {rate}; resample first")
            self.frame_len, self.scorer = SILERO_WINDOW, _SileroScorer(self.model)
        elif rate in RATES:
            self.frame_len, self.scorer = rate * self.frame_ms // 1000, _Spectral(rate, self.frame_ms)
        else:
            raise NodeError(f"VAD takes 8000, 16000, 32000 or 48000 Hz, got {rate}; resample first")
        self.rate = rate
        self.pending = np.zeros(0, np.float32)
        self.next_index = 0
        self.since_raw = None
        self.run_start, self.confirmed = None, False
        self.held: list[tuple[int, float, bool, np.ndarray | None]] = []
        self.segments = _Segmenter(self.frame_ms, self.min_silence_ms, self.speech_pad_ms, self.max_speech_ms)

    def latency(self) -> int:
        return 0 if self.rate is None else _held_frames(self.min_run, self.hangover) * self.frame_len - 1

    def _seconds(self, index: int) -> float:
        """Frame ``index`` in seconds, by the native node's one formula."""
        return index * self.frame_ms / 1000

    @staticmethod
    def _segment_events(closed: list) -> list[Emit]:
        """Segments in seconds: whole milliseconds / 1000, as the native node."""
        return [Emit("segments", {"start": start / 1000, "end": end / 1000}) for start, end in closed]

    def _decide(self, index, score, loud, samples, speech, decisions, out):
        decisions.append((index, speech, score))
        closed = []
        self.segments.frame(index, speech, score, closed)
        out += self._segment_events(closed)
        if speech and samples is not None:
            out.append(Emit("audio", Audio(samples, self.rate)))

    def _frame(self, samples: np.ndarray, length: int, decisions, out):
        """Scores the whole frame ``samples`` (the first ``length`` are audio, the rest
        padding) and pushes it towards its decision."""
        score = self.scorer.score(samples)
        loud = _level_dbfs(samples[:length]) >= self.min_level
        index, self.next_index = self.next_index, self.next_index + 1
        self._push(index, score, loud, samples[:length].copy() if self.gate else None, decisions, out)

    def _push(self, index, score, loud, samples, decisions, out):
        raw = loud and score > self.threshold
        if raw:
            self.since_raw = 0
        elif self.since_raw is not None and self.since_raw < self.hangover:
            self.since_raw += 1
        else:
            self.since_raw = None
        if self.since_raw is None:
            for held in self.held:
                self._decide(*held, False, decisions, out)
            self.held, self.run_start, self.confirmed = [], None, False
            self._decide(index, score, loud, samples, False, decisions, out)
            return
        if self.run_start is None:
            self.run_start = index
        if raw and index - self.run_start + 1 >= self.min_run:
            self.confirmed = True
        self.held.append((index, score, loud, samples))
        if self.confirmed:
            for held in self.held:
                self._decide(*held, True, decisions, out)
            self.held = []

    def _frames_event(self, decisions):
        if not decisions:
            return []
        return [{"start": self._seconds(decisions[0][0]), "frame_ms": self.frame_ms,
                 "speech": [d[1] for d in decisions], "score": [d[2] for d in decisions]}]

    def configure(self, inputs):
        """Makes the engine's state for the negotiated rate, when known."""
        if inputs[0][3] is not None:
            self._start(inputs[0][3])

    def process(self, data):
        mono_f32(data, "VAD")
        if self.rate is None:
            self._start(data.sample_rate)
        elif data.sample_rate != self.rate:
            raise InvalidInputError(f"its input port in got a chunk of {data.sample_rate} Hz; the stream is {self.rate} Hz "
                                    f"(configured, or its first chunk)")
        x = np.concatenate([self.pending, data.samples])
        whole = len(x) // self.frame_len * self.frame_len
        self.pending = x[whole:]
        decisions, out = [], []
        for start in range(0, whole, self.frame_len):
            self._frame(x[start:start + self.frame_len], self.frame_len, decisions, out)
        return self._frames_event(decisions) + out

    def flush(self):
        if self.rate is None:
            return None
        decisions, out = [], []
        if self.model is not None and len(self.pending):
            # the tail, padded with zeros to a whole window as silero's own tools do
            tail = np.zeros(self.frame_len, np.float32)
            tail[:len(self.pending)] = self.pending
            self._frame(tail, len(self.pending), decisions, out)
        for held in self.held:
            self._decide(*held, False, decisions, out)
        self.held = []
        closed = []
        self.segments.finish(self.next_index, closed)
        out += self._segment_events(closed)
        result = self._frames_event(decisions) + out
        self._start(self.rate)  # the stream is over; a new one may follow
        return result
