"""Session groups: many sessions of one pipeline, one call per tick (``Pipeline.sessions``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from .audio import FORMAT_OF, Audio
from .errors import InvalidInputError, SessionError
from .inputs import call_inputs


class VadFrames(NamedTuple):
    """A VAD's frame decisions, one row per frame, as numpy columns: the session, the
    frame's index in that session's stream (its time is ``frame * frame_ms / 1000`` s),
    its score (silero: the speech probability) and its decision. Rows come session by
    session, each session's frames in stream order: what the VAD's ``frames`` events
    say, without a dict per event."""

    session: np.ndarray  # uint64
    frame: np.ndarray  # uint64
    score: np.ndarray  # float32
    speech: np.ndarray  # bool


class GroupOutputs:
    """What :meth:`SessionGroup.pull` took. Iterating gives ``(session, key, item)``
    as a stream's ``pull`` gives ``(key, item)``: audio as Audio, JSON as dicts. With
    the VAD table (the default), the VAD nodes' ``frames`` events are not among them:
    ``vad`` maps each VAD's key to its :class:`VadFrames`."""

    def __init__(self, items: list, vad: dict):
        self.items = items
        self.vad = {key: VadFrames(*columns) for key, columns in vad.items()}

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self):
        return f"GroupOutputs({len(self.items)} items, {sum(len(f.frame) for f in self.vad.values())} VAD frames)"


class SessionGroup:
    """Many sessions of one pipeline, driven by one call per tick.

    ``open()`` gives a session id; ``push({id: chunk, ...})`` hands every listed session
    its chunk in one call; ``pull()`` takes what every session has ready. Sessions are
    as independent as streams: their own node instances, state and stream; a session's
    outputs equal those of a lone stream fed the same chunks. On the native runtime the
    sessions of a push run on the calling thread, and their model inference is batched
    (silero VAD windows of every session in one forward pass, weights read once); the
    Python runtime runs them one by one. Nothing runs between calls: an idle group uses
    no CPU. Each session's queue holds ``capacity`` items; beyond, its oldest are
    dropped (counted in ``queued``).

    A push or flush in which sessions fail raises :class:`SessionError` after the call:
    ``failures`` maps each failed session to its error; every other session's chunks
    were processed and their outputs queued. Calls on one group take turns.
    """

    def __init__(self, impl, inputs: list[str], max_delay_ms: float | None = None):
        self._impl = impl
        self._inputs = inputs  # the pipeline's input names
        self._lock = threading.Lock()
        self._open: set[int] = set()
        self._max_delay = None if max_delay_ms is None else max_delay_ms / 1000
        # apush: each session's chunks waiting for a tick, with their futures, in order
        self._waiting: dict[int, list[tuple[object, asyncio.Future]]] = {}
        self._timer: asyncio.Handle | None = None
        self.longest_tick_s = 0.0  # the longest an apush tick held the event loop

    @property
    def sessions(self) -> list[int]:
        """The open sessions' ids, in order."""
        return sorted(self._open)

    def __len__(self) -> int:
        return len(self._open)

    def open(self) -> int:
        """Opens a session with fresh node instances; returns its id (from 1, never reused)."""
        with self._lock:
            session = self._impl.open()
            self._open.add(session)
            return session

    def close(self, session: int) -> None:
        """Closes a session: its node instances and queued outputs are dropped."""
        sid = _session_id(session)
        with self._lock:
            self._impl.close(sid)
            self._open.discard(sid)

    def push(self, chunks: dict) -> None:
        """One tick: ``chunks`` maps session ids to an :class:`Audio` (the pipeline's one
        input) or a dict of Audio by input name. Raises SessionError naming the sessions
        that failed, after the others' outputs are queued."""
        if not isinstance(chunks, dict):
            raise InvalidInputError(f"push takes a dict of chunks by session id, got {type(chunks).__name__}")
        flat = []
        for session, audio in chunks.items():
            sid = _session_id(session)
            flat.extend((sid, index, a) for index, a in self._checked(sid, audio))
        with self._lock:
            failures = self._impl.push(flat)
        if failures:
            raise SessionError(failures)

    def _checked(self, sid: int, audio) -> list:
        """A session's chunk as (input index, Audio) pairs, or InvalidInputError."""
        if len(self._inputs) == 1 and type(audio) is Audio:
            audio.check_layout()
            return [(0, audio)]
        return call_inputs(self._inputs, audio, None, f"push (session {sid})")

    def push_block(self, sessions, block: np.ndarray, sample_rate: int) -> None:
        """One tick from one array, the fast path of a server that gathers every
        session's frame of a tick: session ``sessions[i]`` takes ``block[i]`` (``block``
        is sessions × frames for mono, sessions × frames × channels otherwise, C-contiguous,
        of an Audio dtype), for the pipeline's one input. Failures as in ``push``."""
        if len(self._inputs) != 1:
            raise InvalidInputError(f"push_block feeds a pipeline's one input; this one has {', '.join(self._inputs)}: use push")
        ids = np.asarray(sessions)
        if ids.ndim != 1 or (ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0)):
            raise InvalidInputError("sessions must be a 1-D sequence of session ids (non-negative integers)")
        if not isinstance(block, np.ndarray) or block.dtype not in FORMAT_OF or block.ndim not in (2, 3):
            what = f"a {block.ndim}-D {block.dtype} array" if isinstance(block, np.ndarray) else type(block).__name__
            raise InvalidInputError(f"block must be a 2-D or 3-D array of float32, int16, int32 or float64, got {what}")
        if len(block) != len(ids):
            raise InvalidInputError(f"block has {len(block)} rows for {len(ids)} sessions")
        if not (block.flags.c_contiguous and block.flags.aligned):
            raise InvalidInputError("block must be C-contiguous and aligned (np.ascontiguousarray copies)")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise InvalidInputError(f"sample_rate must be a positive integer, got {sample_rate!r}")
        with self._lock:
            failures = self._impl.push_block(np.ascontiguousarray(ids, np.uint64), block, int(sample_rate))
        if failures:
            raise SessionError(failures)

    def flush(self, sessions: Iterable[int] | None = None) -> None:
        """Ends the streams of ``sessions`` (default: every open one): their nodes' tails
        are queued, and a later push starts a new stream. Failures as in ``push``."""
        with self._lock:
            ids = sorted(self._open) if sessions is None else [_session_id(s) for s in sessions]
            failures = self._impl.flush(ids)
        if failures:
            raise SessionError(failures)

    def pull(self, max_per_session: int = 0, *, vad_table: bool = True) -> GroupOutputs:
        """Everything queued (or at most ``max_per_session`` items of each session),
        session by session in id order, each in its output order; never waits. With
        ``vad_table`` the VAD frame decisions come as numpy columns (``.vad``)."""
        if isinstance(max_per_session, bool) or not isinstance(max_per_session, int) or max_per_session < 0:
            raise InvalidInputError(f"max_per_session must be a non-negative integer, got {max_per_session!r}")
        with self._lock:
            items, vad = self._impl.pull(min(max_per_session, 2**63), bool(vad_table))
        return GroupOutputs(items, vad)

    async def apush(self, session: int, chunk) -> GroupOutputs:
        """asyncio: hands ``session`` its chunk (as in ``push``) and returns that
        session's outputs of the tick that took it (a :class:`GroupOutputs` of that
        session alone). Sessions pushed from independent tasks, each at its own pace,
        share a tick: it runs, on the event loop, once every open session has a chunk
        waiting, or ``max_delay_ms`` (``Pipeline.sessions``) after the oldest waiting
        chunk came (None: at the loop's next turn, so the pushes of one turn share it).
        A tick holds the loop for its own work only (one push of every waiting
        session). A session that fails raises its own error (a RemoteMediaError) here;
        the others' ticks are not affected. Outputs are taken by the ticks: do not mix
        ``apush`` with ``pull`` on one group."""
        sid = _session_id(session)
        self._checked(sid, chunk)  # a bad chunk fails its own task, not the tick
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.setdefault(sid, []).append((chunk, future))
        if self._open and self._open <= self._waiting.keys():
            self._schedule(loop, 0.0)
        elif self._timer is None:
            delay = 0.0 if self._max_delay is None else self._max_delay
            self._schedule(loop, delay)
        return await future

    def _schedule(self, loop, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(delay, self._tick) if delay > 0 else loop.call_soon(self._tick)

    def _tick(self) -> None:
        """One tick of the first waiting chunk of every session that has one."""
        self._timer = None
        taken = {sid: chunks.pop(0) for sid, chunks in self._waiting.items()}
        self._waiting = {sid: chunks for sid, chunks in self._waiting.items() if chunks}
        started = time.perf_counter()
        failures: dict = {}
        try:
            self.push({sid: chunk for sid, (chunk, _) in taken.items()})
        except SessionError as e:
            failures = e.failures
        except BaseException as e:  # the tick itself failed: every session of it gets the error
            for _, future in taken.values():
                if not future.done():
                    future.set_exception(e)
            return
        finally:
            self.longest_tick_s = max(self.longest_tick_s, time.perf_counter() - started)
            if self._waiting:  # chunks that came twice for a session go in the next tick
                self._schedule(asyncio.get_running_loop(), 0.0)
        mine = _by_session(self.pull())
        for sid, (_, future) in taken.items():
            if future.done():
                continue
            if sid in failures:
                future.set_exception(failures[sid])
            else:
                future.set_result(mine.get(sid, GroupOutputs([], {})))

    def stats(self) -> dict:
        """{"sessions", "ticks", "inference_passes", "inference_inputs"}: open sessions,
        pushes run, and the batched forward passes of model inference with the inputs
        (silero windows) they took (inputs per pass: how many sessions shared one; 0
        on the Python runtime, which does not batch)."""
        with self._lock:
            return self._impl.stats()

    def queued(self, session: int) -> dict:
        """{"queue_depth", "dropped"} of one session."""
        with self._lock:
            depth, dropped = self._impl.queued(_session_id(session))
        return {"queue_depth": depth, "dropped": dropped}


def _by_session(outputs: GroupOutputs) -> dict[int, GroupOutputs]:
    """``outputs`` split by session (rows come session by session, so each session's
    VAD rows are one slice)."""
    items: dict[int, list] = {}
    for sid, key, item in outputs:
        items.setdefault(sid, []).append((sid, key, item))
    vad: dict[int, dict] = {}
    for key, frames in outputs.vad.items():
        ids, starts = np.unique(frames.session, return_index=True)
        ends = list(starts[1:]) + [len(frames.session)]
        for sid, a, b in zip(ids.tolist(), starts, ends):
            vad.setdefault(sid, {})[key] = tuple(column[a:b] for column in frames)
    return {sid: GroupOutputs(items.get(sid, []), vad.get(sid, {})) for sid in items.keys() | vad.keys()}


def _session_id(session) -> int:
    """``session`` checked to be a session id (an int that fits 64 bits)."""
    if isinstance(session, bool) or not isinstance(session, (int, np.integer)) or not 0 <= session < 2**64:
        raise InvalidInputError(f"a session id is an integer from 1 (as open() returns), got {session!r}")
    return int(session)
