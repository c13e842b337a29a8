"""runner.ReadAhead: a restore's input made a few chunks ahead of the tool, in its own thread; the same bytes in the
same order, the source's errors in their place, bounded memory, and a stop that ends the thread."""

import threading
import time

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.artifact import ArtifactError
from ansible_collections.rollcall.ops.plugins.module_utils.runner import CHUNK, ReadAhead


def test_the_same_chunks_in_the_same_order():
    chunks = [bytes([n]) * (n + 1) for n in range(50)]
    assert list(ReadAhead(iter(chunks))) == chunks


def test_an_empty_source_ends_at_once_and_stays_ended():
    ahead = ReadAhead(iter([]))
    assert list(ahead) == []
    assert list(ahead) == []


def test_a_long_chunk_waits_in_chunk_sized_pieces():
    long = bytes(range(256)) * (CHUNK * 2 // 256 + 3)  # a decompressed chunk larger than two CHUNKs
    pieces = list(ReadAhead(iter([b"head", long, b"tail"])))
    assert b"".join(pieces) == b"head" + long + b"tail"
    assert max(len(p) for p in pieces) == CHUNK
    assert len(pieces) == 2 + 3


def test_the_sources_error_comes_in_its_place_and_ends_the_stream():
    def source():
        yield b"one"
        yield b"two"
        raise ArtifactError("checksum mismatch: x.dump")

    ahead = ReadAhead(source())
    assert next(ahead) == b"one"
    assert next(ahead) == b"two"
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        next(ahead)
    with pytest.raises(StopIteration):
        next(ahead)


def test_at_most_depth_chunks_are_made_ahead():
    made = []

    def source():
        for n in range(100):
            made.append(n)
            yield b"x"

    ahead = ReadAhead(source(), depth=3)
    time.sleep(0.3)
    # three wait in the queue, one more is made and waits to be put
    assert len(made) <= 4, made
    assert next(ahead) == b"x"
    ahead.close()


def test_close_stops_the_thread_without_reading_on():
    made = []

    def source():
        for n in range(10 ** 6):
            made.append(n)
            yield b"x" * 10

    ahead = ReadAhead(source(), depth=2)
    next(ahead)
    ahead.close()
    count = len(made)
    time.sleep(0.3)
    assert len(made) <= count + 1, (count, len(made))
    assert not ahead._thread.is_alive()
    with pytest.raises(StopIteration):
        next(ahead)


def test_the_source_runs_in_another_thread():
    seen = []

    def source():
        seen.append(threading.current_thread())
        yield b"x"

    assert list(ReadAhead(source())) == [b"x"]
    assert seen and seen[0] is not threading.current_thread()
