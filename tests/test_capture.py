"""Tests for the capture stage: the real-time callback, device selection and PortAudio errors.

The PortAudio side is replaced by a small stand-in for the ``sounddevice`` module (device list,
default device, stream class) so that selection and error paths are exact and need no hardware;
tests/test_live_device.py covers a real device.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
import time
import tracemalloc
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from streamgenre import capture as capture_mod
from streamgenre.capture import Capture, list_devices, resolve_device
from streamgenre.cli import main
from streamgenre.errors import DeviceError

DEVICES = [
    {
        "index": 0,
        "name": "HDA Intel PCH: ALC892 Analog (hw:0,0)",
        "hostapi": 0,
        "max_input_channels": 2,
        "max_output_channels": 2,
        "default_samplerate": 44100.0,
    },
    {
        "index": 1,
        "name": "HDA Intel PCH: HDMI 0 (hw:0,3)",
        "hostapi": 0,
        "max_input_channels": 0,
        "max_output_channels": 8,
        "default_samplerate": 48000.0,
    },
    {
        "index": 2,
        "name": "USB Audio CODEC: Analog (hw:1,0)",
        "hostapi": 0,
        "max_input_channels": 1,
        "max_output_channels": 0,
        "default_samplerate": 48000.0,
    },
    {
        "index": 3,
        "name": "pulse",
        "hostapi": 0,
        "max_input_channels": 32,
        "max_output_channels": 32,
        "default_samplerate": 44100.0,
    },
    {
        "index": 4,
        "name": "default",
        "hostapi": 0,
        "max_input_channels": 32,
        "max_output_channels": 32,
        "default_samplerate": 44100.0,
    },
]


class FakePortAudioError(Exception):
    pass


class FakeStream:
    """Stands in for ``sounddevice.InputStream``: records its settings, can refuse to open."""

    fail: str | None = None

    def __init__(self, **kwargs: Any) -> None:
        if FakeStream.fail:
            raise FakePortAudioError(FakeStream.fail)
        self.kwargs = kwargs
        self.active = False

    def start(self) -> None:
        self.active = True

    def abort(self, ignore_errors: bool = True) -> None:
        self.active = False

    def close(self, ignore_errors: bool = True) -> None:
        self.active = False


class Flags:
    """Like ``sounddevice.CallbackFlags``: false when no flag is set."""

    def __init__(self, input_overflow: bool = False, other: bool = False) -> None:
        self.input_overflow = input_overflow
        self._any = input_overflow or other

    def __bool__(self) -> bool:
        return self._any


def fake_sd(devices: list[dict[str, Any]], default: int) -> SimpleNamespace:
    return SimpleNamespace(
        query_devices=lambda: [dict(d) for d in devices],
        query_hostapis=lambda: [{"name": "ALSA"}],
        default=SimpleNamespace(device=[default, default]),
        PortAudioError=FakePortAudioError,
        InputStream=FakeStream,
    )


@pytest.fixture
def sd(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    module = fake_sd(DEVICES, 4)
    monkeypatch.setattr(capture_mod, "import_sounddevice", lambda: module)
    FakeStream.fail = None
    return module


# ---------------------------------------------------------------------------------- device selection
@pytest.mark.parametrize(
    ("spec", "index"),
    [
        (None, 4),
        ("default", 4),
        (" Default ", 4),
        (0, 0),
        ("2", 2),
        ("usb", 2),
        ("ALC892", 0),
        ("pulse", 3),
    ],
)
def test_resolve_device_by_index_name_and_default(sd: SimpleNamespace, spec: Any, index: int) -> None:
    assert resolve_device(spec).index == index


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("analog", "matches several inputs"),  # devices 0 and 2
        ("nosuchcard", "no input device matches 'nosuchcard'"),
        (1, r"device 1 \(HDA Intel PCH: HDMI 0 \(hw:0,3\)\) has no input channels"),
        ("99", "no audio device with index 99"),
        ("", "must be an index or a name"),
    ],
)
def test_resolve_device_errors_are_one_line(sd: SimpleNamespace, spec: Any, match: str) -> None:
    with pytest.raises(DeviceError, match=match) as info:
        resolve_device(spec)
    assert "\n" not in str(info.value)


def test_no_input_device_says_how_to_choose_a_source(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs_only = [d | {"max_input_channels": 0} for d in DEVICES]
    monkeypatch.setattr(capture_mod, "import_sounddevice", lambda: fake_sd(outputs_only, -1))
    with pytest.raises(DeviceError) as info:
        resolve_device(None)
    message = str(info.value)
    assert "no audio input device" in message and "--device" in message and "streamgenre file" in message
    assert list_devices() == []


def test_missing_default_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_mod, "import_sounddevice", lambda: fake_sd(DEVICES, -1))
    with pytest.raises(DeviceError, match="no default audio input"):
        resolve_device("default")
    assert not any(d.is_default for d in list_devices())


def test_list_devices_inputs_only_default_marked(sd: SimpleNamespace) -> None:
    devices = list_devices()
    assert [d.index for d in devices] == [0, 2, 3, 4]
    assert [d.is_default for d in devices] == [False, False, False, True]
    assert [d.channels for d in devices] == [2, 1, 2, 2]  # capped at MAX_CHANNELS
    assert devices[1].default_samplerate == 48000.0


def test_missing_portaudio_library_is_one_line_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoPortAudio(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
            if name == "sounddevice":
                raise OSError("PortAudio library not found")  # what sounddevice raises on import

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    with pytest.raises(DeviceError, match="apt-get install libportaudio2") as info:
        capture_mod.import_sounddevice()
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------- the callback
def make_capture(sd: SimpleNamespace, device: Any = 0) -> Capture:
    return Capture(device, block_seconds=0.1, ring_seconds=0.4)


def test_capture_uses_native_rate_and_channels(sd: SimpleNamespace) -> None:
    cap = make_capture(sd, "usb")
    assert (cap.sample_rate, cap.channels, cap.blocksize) == (48000, 1, 4800)
    cap.start()
    kwargs = cap._stream.kwargs
    assert kwargs["samplerate"] == 48000 and kwargs["channels"] == 1 and kwargs["blocksize"] == 4800
    assert kwargs["latency"] == "high" and kwargs["dtype"] == "float32" and kwargs["device"] == 2
    assert cap.active
    cap.close()
    assert not cap.active
    info = make_capture(sd, "default").source_info()
    assert (info.kind, info.name, info.sample_rate, info.channels) == ("device", "default", 44100, 2)


def test_callback_copies_into_ring_and_stamps_capture_times(sd: SimpleNamespace) -> None:
    cap = make_capture(sd)
    rng = np.random.default_rng(0)
    blocks = [rng.uniform(-1, 1, (cap.blocksize, 2)).astype(np.float32) for _ in range(3)]
    before = time.monotonic()
    for block in blocks:
        cap.callback(block, cap.blocksize, None, Flags())
    assert cap.callbacks == 3 and cap.ring.available == 3 * cap.blocksize
    stamps = []
    for block in blocks:
        got, captured = cap.read_block(0.0)
        np.testing.assert_array_equal(got, block)
        stamps.append(captured)
    assert before <= stamps[0] <= stamps[1] <= stamps[2] <= time.monotonic()
    assert stamps == [float(t) for t in cap._times[:3]]  # each block gets its own callback's time


def test_capture_time_with_blocks_split_across_callbacks(sd: SimpleNamespace) -> None:
    cap = make_capture(sd)
    half = cap.blocksize // 2
    for _ in range(4):  # PortAudio may deliver other sizes: 4 half blocks = 2 blocks
        cap.callback(np.zeros((half, 2), np.float32), half, None, Flags())
    first = cap.read_block(0.0)[1]
    second = cap.read_block(0.0)[1]
    assert first == cap._times[1] and second == cap._times[3]  # the callback holding the block's last frame


def test_read_block_sleeps_until_the_callback_brings_audio(sd: SimpleNamespace) -> None:
    cap = make_capture(sd)
    cap.start()
    block = np.full((cap.blocksize, 2), 0.25, np.float32)
    half = cap.blocksize // 2
    deliveries = [block[:half], block[half:]]  # the second callback completes the block

    def deliver() -> None:
        for part in deliveries:
            time.sleep(0.05)
            cap.callback(part, len(part), None, Flags())

    thread = threading.Thread(target=deliver)
    start = time.monotonic()
    thread.start()
    try:
        got = cap.read_block(5.0)
    finally:
        thread.join(5)
    assert got is not None and time.monotonic() - start < 2.0  # woken by the callback, not the 5 s timeout
    np.testing.assert_array_equal(got[0], block)
    assert got[1] == cap._times[1]  # the callback that completed it
    assert cap.read_block(0.05) is None  # nothing more: a timeout, and the lock is left held again
    assert cap._arrived.locked()


def test_read_block_learns_at_once_that_the_stream_finished(sd: SimpleNamespace) -> None:
    cap = make_capture(sd)
    cap.start()
    timer = threading.Timer(0.05, cap._finished_callback)  # PortAudio ends the stream (device unplugged)
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(DeviceError, match="stopped delivering audio"):
            cap.read_block(5.0)
    finally:
        timer.join(5)
    assert time.monotonic() - start < 2.0


def test_callback_counts_overflows_and_flags(sd: SimpleNamespace) -> None:
    cap = make_capture(sd)  # ring of 4 blocks
    block = np.ones((cap.blocksize, 2), np.float32)
    cap.callback(block, cap.blocksize, None, Flags(input_overflow=True))
    cap.callback(block, cap.blocksize, None, Flags(other=True))
    for _ in range(4):
        cap.callback(block, cap.blocksize, None, Flags())
    assert cap.input_overflows == 1 and cap.status_flags == 2
    assert cap.overflows == 2 * cap.blocksize  # the newest frames that did not fit were dropped
    assert cap.ring.available == cap.ring.capacity


def test_callback_allocates_nothing(sd: SimpleNamespace) -> None:
    cap = make_capture(sd)
    block = np.full((cap.blocksize, 2), 0.25, np.float32)  # 35 kB per block
    flags = Flags(input_overflow=True)
    out = np.empty((cap.blocksize, 2), np.float32)
    cap.callback(block, cap.blocksize, None, flags)  # first call outside the trace
    cap.ring.read_into(out)
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(300):  # ring full after 4 blocks: exercises the overflow path too
            cap.callback(block, cap.blocksize, None, flags)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cap.callbacks == 301 and cap.input_overflows == 301
    assert current - start < 512  # nothing kept
    assert peak - start < 2048  # nothing block-sized, not even transiently (a copy would be 35 kB)


# ---------------------------------------------------------------------------------- stream errors
def test_open_failure_is_a_device_error(sd: SimpleNamespace) -> None:
    FakeStream.fail = "Invalid sample rate [PaErrorCode -9997]"
    cap = make_capture(sd)
    with pytest.raises(DeviceError, match=r"cannot open input device .*Invalid sample rate"):
        cap.start()
    assert cap._stream is None


def test_lost_device_raises_from_read_block(sd: SimpleNamespace) -> None:
    cap = make_capture(sd)
    with pytest.raises(DeviceError, match="not running"):
        cap.read_block(0.0)
    cap.start()
    assert cap.read_block(0.01) is None  # running, nothing yet: just a timeout
    cap._stream.active = False  # PortAudio ended the stream (device unplugged)
    with pytest.raises(DeviceError, match="stopped delivering audio"):
        cap.read_block(0.01)


def test_stalled_device_raises(sd: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    cap = make_capture(sd)
    cap.start()
    monkeypatch.setattr(capture_mod, "STALL_TIMEOUT_S", 0.05)
    time.sleep(0.06)
    with pytest.raises(DeviceError, match="delivered no audio"):
        cap.read_block(0.01)


def test_bad_capture_settings(sd: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="block_seconds"):
        Capture(0, block_seconds=0.0)
    with pytest.raises(ValueError, match="ring_seconds"):
        Capture(0, block_seconds=0.1, ring_seconds=0.2)


# ---------------------------------------------------------------------------------- command line
@pytest.mark.parametrize("argv", [["devices"], ["--list-devices"]])
def test_devices_command(sd: SimpleNamespace, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if "ALSA" in line]
    assert len(rows) == 4 and "HDMI" not in "".join(rows)
    assert [row.lstrip().startswith("*") for row in rows] == [False, False, False, True]


def test_devices_command_json(sd: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["devices", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["index"] for r in records] == [0, 2, 3, 4] and records[3]["default"] is True


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["live", "--device", "nosuchcard", "--no-ui"], "no input device matches 'nosuchcard'"),
        (["live", "--device", "analog", "--no-ui"], "matches several inputs"),
    ],
)
def test_live_with_bad_device_is_one_line(
    sd: SimpleNamespace, capsys: pytest.CaptureFixture[str], argv: list[str], match: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("streamgenre: error:") and match in err


def test_live_without_input_devices_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs_only = [d | {"max_input_channels": 0} for d in DEVICES]
    monkeypatch.setattr(capture_mod, "import_sounddevice", lambda: fake_sd(outputs_only, -1))
    assert main(["live", "--no-ui"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device" in err and "streamgenre file PATH" in err
