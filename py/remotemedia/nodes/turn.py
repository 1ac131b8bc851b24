"""SmartTurn reference: end-of-turn detection with the Smart Turn v3 model (native:
nodes/audio/turn.rs, which documents the turn rules). The Python runtime computes
Whisper's log-mel features in numpy (native: model/whisper_mel.rs) and runs the model on
onnxruntime, whichever engine the manifest names."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InvalidInputError, NodeError
from ..model import SAMPLE_CLIP, smart_turn_package_model
from ..node import Emit, ParamError
from ._common import BuiltinNode, audio_input, builtin, onnx_session

RATE, SAMPLES, MELS, NFFT, HOP = 16000, 8 * 16000, 80, 400, 160
MAX_HELD = 120 * RATE  # native turn.rs MAX_HELD
MAX_START_S, MAX_FRAME_MS, MAX_FRAMES = 1e7, 10_000.0, 1_000_000  # native turn.rs, a frames event's bounds
FRAMES = SAMPLES // HOP
PORT_VAD = 1
log = logging.getLogger("remotemedia")


def _samples(seconds: float) -> int:
    """Seconds as samples, halves rounded up (native: f64::round on positive values)."""
    return int(np.floor(seconds * RATE + 0.5))


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    return np.where(hz < 1000.0, 3.0 * hz / 200.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * 27.0 / np.log(6.4))


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return np.where(mel < 15.0, 200.0 * mel / 3.0, 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0))


def _filters() -> np.ndarray:
    """Slaney-normalised triangular filters over the rfft bins, (MELS, bins)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(RATE / 2)), MELS + 2))
    bins = np.arange(NFFT // 2 + 1) * (RATE / 2) / (NFFT // 2)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up, down = (bins - left) / (centre - left), (right - bins) / (right - centre)
    return np.maximum(0.0, np.minimum(up, down)) * (2.0 / (right - left))


_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(NFFT) / NFFT)
_FILTERS = _filters()


def log_mel(clip: np.ndarray) -> np.ndarray:
    """Smart Turn's input from a clip: its last 8 s front-padded with zeros, as Whisper's
    normalised log-mel features (MELS, FRAMES), float32. The waveform is normalised in
    float32 (as the transformers feature extractor does; the model's quantized input
    turns a last-bit difference into another code), the spectrum taken in float64."""
    clip = np.clip(np.asarray(clip, np.float32)[-SAMPLES:], -SAMPLE_CLIP, SAMPLE_CLIP)
    x = np.concatenate([np.zeros(SAMPLES - len(clip), np.float32), clip])
    x = ((x - x.mean()) / np.sqrt(x.var() + np.float32(1e-7))).astype(np.float64)
    padded = np.pad(x, NFFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, NFFT)[::HOP][:FRAMES]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2
    logs = np.log10(np.maximum(power @ _FILTERS.T, 1e-10)).T
    return ((np.maximum(logs, logs.max() - 8.0) + 4.0) / 4.0).astype(np.float32)


@builtin
class SmartTurn(BuiltinNode):
    def __init__(self, engine: str, threshold: float, pre_speech_ms: float, max_duration_s: float, stop_s: float,
                 model_path: str | None = None):
        model_path = model_path or smart_turn_package_model()
        if model_path is None:
            raise ParamError("model_path", "SmartTurn needs the Smart Turn v3 model: pip install --no-deps pipecat-ai "
                                           "(its wheel ships smart-turn-v3.2-cpu.onnx), or give model_path")
        self.session = onnx_session(model_path)
        inputs = self.session.inputs
        if len(inputs) != 1 or inputs[0].dims[1:] != [MELS, FRAMES]:
            raise ParamError("model_path", f"'{model_path}': not a Smart Turn v3 model: its input is not [batch, 80, 800]")
        self.threshold = threshold
        self.pre_speech = _samples(pre_speech_ms / 1000)
        self.max_duration, self.stop = _samples(max_duration_s), _samples(stop_s)
        self.reset()

    def reset(self):
        self.audio = np.zeros(0, np.float32)
        self.base, self.vad_end, self.vad_seen, self.in_speech = 0, 0, False, False
        self.turn_start = self.speech_end = self.due = None

    def _received(self) -> int:
        return self.base + len(self.audio)

    def probability(self, clip: np.ndarray) -> float:
        features = log_mel(clip)[None]
        out = self.session.run([self.session.outputs[0].name], {self.session.inputs[0].name: features})
        return float(np.asarray(out[0]).reshape(-1)[0])

    def _evaluate(self, end: int) -> list:
        start = min(max(self.turn_start or 0, self.base, end - self.max_duration), end)
        clip = self.audio[max(start - self.base, 0):max(min(end, self._received()) - self.base, 0)]
        if len(clip) == 0:  # its audio is gone: the VAD lagged more than MAX_HELD behind
            log.warning("SmartTurn: no audio left for the turn ending at %.3f s; not judged", end / RATE)
            self.due = None
            return []
        p = np.float32(self.probability(clip))
        complete = float(p) > self.threshold
        self.due = None
        if complete:
            self.turn_start = self.speech_end = None
        return [{"start": start / RATE, "end": end / RATE, "probability": float(p), "end_of_turn": complete,
                 "timeout": False}]

    def _run_due(self) -> list:
        return self._evaluate(self.due) if self.due is not None and self.due <= self._received() else []

    def process(self, data):
        return self.process_port(0, data)

    def process_port(self, port: int, data):
        if port == PORT_VAD:
            return [Emit("out", e) for e in self._frames(data)] or None
        audio = audio_input(data, "SmartTurn", f32=True)
        if audio.channels != 1:
            raise NodeError(f"SmartTurn takes mono audio, got {audio.channels} channels; put a Downmix before it")
        if not np.isfinite(audio.samples).all():
            raise InvalidInputError("SmartTurn refuses non-finite samples (NaN or infinity); the chunk was not processed")
        if audio.sample_rate != RATE:
            raise InvalidInputError(f"SmartTurn takes {RATE} Hz, got {audio.sample_rate}; resample first")
        self.audio = np.concatenate([self.audio, audio.samples.reshape(-1)])
        received = self._received()
        keep_from = max(min(self.vad_end, received) - SAMPLES if self.vad_seen else 0, received - MAX_HELD, 0)
        excess = min(max(keep_from - self.base, 0), len(self.audio))
        self.audio, self.base = self.audio[excess:], self.base + excess
        return [Emit("out", e) for e in self._run_due()] or None

    def _frames(self, event) -> list:
        bad = InvalidInputError(f'SmartTurn\'s vad port takes a VAD\'s frames events ({{"start": 0..={int(MAX_START_S)}, '
                                f'"frame_ms": 1..={int(MAX_FRAME_MS)}, "speech": [up to {MAX_FRAMES} booleans]}})')
        if not isinstance(event, dict):
            raise bad
        start, frame_ms, speech = event.get("start"), event.get("frame_ms"), event.get("speech")

        def number(x, low, high) -> bool:  # range checks only: NaN and huge ints fail them
            return isinstance(x, (int, float)) and not isinstance(x, bool) and low <= x <= high

        if (not number(start, 0, MAX_START_S) or not number(frame_ms, 1, MAX_FRAME_MS) or not isinstance(speech, list)
                or len(speech) > MAX_FRAMES or not all(isinstance(s, bool) for s in speech)):
            raise bad
        self.vad_seen = True
        frame, first, out = _samples(frame_ms / 1000), _samples(start), []
        for i, is_speech in enumerate(speech):
            at = first + i * frame
            if is_speech and not self.in_speech:
                self.in_speech, self.speech_end = True, None
                if self.turn_start is None:
                    self.turn_start = max(0, at - self.pre_speech)
            elif not is_speech and self.in_speech:
                self.in_speech, self.speech_end, self.due = False, at, at
                out += self._run_due()
            elif (not is_speech and self.turn_start is not None and self.speech_end is not None and self.due is None
                  and at + frame >= self.speech_end + self.stop):
                out.append({"start": self.turn_start / RATE, "end": self.speech_end / RATE, "probability": None,
                            "end_of_turn": True, "timeout": True})
                self.turn_start = self.speech_end = None
        self.vad_end = first + len(speech) * frame
        return out

    def flush(self):
        end, out = self._received(), []
        if not self.vad_seen:
            if end > 0:
                out = self._evaluate(end)
        elif self.due is not None:
            out = self._evaluate(self.due)
        elif self.in_speech and self.turn_start is not None:
            out = self._evaluate(end)
        self.reset()
        return [Emit("out", e) for e in out] or None
