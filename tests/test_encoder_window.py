"""The encoder window of live pieces (services/transcripts/encoder_window.py): its size, and that it is per thread."""

import threading

import numpy as np

from services.transcripts.encoder_window import FULL_FRAMES, EncoderWindow

FEATURES = np.zeros((80, FULL_FRAMES), np.float32)  # what faster-whisper hands the encoder: always 30 s


def test_a_window_keeps_a_floor_a_margin_past_the_audio_and_never_30_s_more() -> None:
    window = EncoderWindow()
    sizes = {}
    for seconds in (0.5, 4.0, 8.0, 9.33, 20.0, 28.5, 45.0):
        with window.sized_to(seconds):
            sizes[seconds] = window.trim(FEATURES).shape[-1]
    assert sizes == {0.5: 1000, 4.0: 1000, 8.0: 1000, 9.33: 1134, 20.0: 2200, 28.5: 3000, 45.0: 3000}
    assert all(size % 2 == 0 for size in sizes.values()), 'the encoder halves the frames'
    assert window.trim(FEATURES).shape[-1] == FULL_FRAMES, 'outside a window: the whole 30 s'


def test_each_thread_has_its_own_window() -> None:
    window, inside, other = EncoderWindow(), threading.Event(), []
    done = threading.Event()

    def live_piece() -> None:
        with window.sized_to(3.0):
            inside.set()
            done.wait(5)

    thread = threading.Thread(target=live_piece)
    thread.start()
    inside.wait(5)
    other.append(window.trim(FEATURES).shape[-1])  # a full pass on another thread meanwhile
    done.set()
    thread.join()
    assert other == [FULL_FRAMES]
