"""Window stage: cut the stream of mel frames into the model's fixed-length windows.

A preallocated ring of the last ``window_frames`` frames; every ``hop_frames`` new frames it
emits one window. Before the first window is full it can emit *provisional* windows (after
``first_after_frames`` frames) in which the frames seen so far are repeated to fill the window —
musicnn was trained with repeat-padding of short clips, so this is closer to its training data
than zeros — so a live display shows a first estimate after about a second instead of three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowBatch:
    """Windows emitted by one :meth:`MelWindower.process` call.

    Attributes
    ----------
    windows
        ``(k, window_frames, n_mels)`` float32 (a fresh array the caller may keep).
    end_frames
        For each window, the stream index (exclusive) of its last frame.
    provisional
        For each window, whether it was padded because fewer than ``window_frames`` frames had
        been seen.
    """

    windows: np.ndarray
    end_frames: np.ndarray
    provisional: np.ndarray

    def __len__(self) -> int:
        return int(self.windows.shape[0])


class MelWindower:
    """Rolling window over mel frames.

    Parameters
    ----------
    window_frames
        Frames per window (the model's input length).
    n_mels
        Mel bands per frame.
    hop_frames
        Frames between consecutive windows (``window_frames`` for non-overlapping windows).
    first_after_frames
        Emit provisional (repeat-padded) windows once this many frames have been seen, then every
        ``hop_frames`` until the window is full. None disables provisional windows.
    """

    def __init__(self, window_frames: int, n_mels: int, hop_frames: int,
                 first_after_frames: int | None = None) -> None:
        for name, value in (("window_frames", window_frames), ("n_mels", n_mels), ("hop_frames", hop_frames)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if first_after_frames is not None and not 1 <= first_after_frames <= window_frames:
            raise ValueError(f"first_after_frames must be in 1..{window_frames}, got {first_after_frames}")
        self.window_frames = int(window_frames)
        self.n_mels = int(n_mels)
        self.hop_frames = int(hop_frames)
        self.first_after_frames = first_after_frames
        # Twice the window, so a window is always one contiguous slice (copied down when full).
        self._buffer = np.zeros((2 * self.window_frames, self.n_mels), np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget all frames (start of a new stream)."""
        self._fill = 0  # valid frames in the buffer
        self.frames_seen = 0
        self._next_emit = self.first_after_frames or self.window_frames

    def process(self, frames: np.ndarray) -> WindowBatch:
        """Add ``(n, n_mels)`` frames; return the windows that became due."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[1] != self.n_mels:
            raise ValueError(f"frames must be shaped (n, {self.n_mels}), got {frames.shape}")
        windows, ends, provisional = [], [], []
        position = 0
        while position < len(frames):
            take = min(len(frames) - position, self._next_emit - self.frames_seen)
            self._append(frames[position:position + take])
            position += take
            if self.frames_seen == self._next_emit:
                windows.append(self._current_window())
                ends.append(self.frames_seen)
                provisional.append(self.frames_seen < self.window_frames)
                step = self.hop_frames
                if self.frames_seen < self.window_frames:  # still filling: provisional cadence, then full
                    step = min(self.hop_frames, self.window_frames - self.frames_seen)
                self._next_emit = self.frames_seen + step
        return self._batch(windows, ends, provisional)

    def flush_partial(self) -> WindowBatch:
        """At end of stream: one repeat-padded provisional window if no window was ever emitted."""
        if self.frames_seen == 0 or self.frames_seen >= min(self._first_due(), self.window_frames):
            return self._batch([], [], [])
        return self._batch([self._current_window()], [self.frames_seen], [True])

    @property
    def next_end(self) -> int:
        """Stream frame count at which the next window is due (where it will end)."""
        return self._next_emit

    def recent(self) -> np.ndarray:
        """The newest frames seen (at most ``window_frames``; a view, valid until the next call).

        They end at stream frame :attr:`frames_seen`: what a stream's model cache can be filled
        from between windows.
        """
        have = min(self._fill, self.window_frames)
        return self._buffer[self._fill - have:self._fill]

    def _first_due(self) -> int:
        return self.first_after_frames or self.window_frames

    def _append(self, frames: np.ndarray) -> None:
        n = len(frames)
        if n == 0:
            return
        self.frames_seen += n
        if n >= self.window_frames:  # only the newest window_frames matter
            self._buffer[: self.window_frames] = frames[-self.window_frames:]
            self._fill = self.window_frames
            return
        if self._fill + n > len(self._buffer):  # keep the newest frames a window may still need
            keep = min(self._fill, self.window_frames - n)
            self._buffer[:keep] = self._buffer[self._fill - keep:self._fill]
            self._fill = keep
        self._buffer[self._fill:self._fill + n] = frames
        self._fill += n

    def _current_window(self) -> np.ndarray:
        have = min(self._fill, self.window_frames)
        recent = self._buffer[self._fill - have:self._fill]
        if have == self.window_frames:
            return recent.copy()
        reps = -(-self.window_frames // have)
        return np.tile(recent, (reps, 1))[: self.window_frames].copy()

    def _batch(self, windows: list[np.ndarray], ends: list[int], provisional: list[bool]) -> WindowBatch:
        if not windows:
            return WindowBatch(np.zeros((0, self.window_frames, self.n_mels), np.float32),
                               np.zeros(0, np.int64), np.zeros(0, bool))
        return WindowBatch(np.stack(windows), np.asarray(ends, np.int64), np.asarray(provisional, bool))
