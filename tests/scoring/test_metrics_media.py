"""Audio/video metrics on real media written here (WAV with `wave`, MP3 with soundfile's bundled
libsndfile, AVI with OpenCV): the same recording scores 1, a different one scores low, and a
corrupt or missing file is the agent's 0 with the reason (BadInput), never a crash or a 1."""

from __future__ import annotations

import itertools
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from scoring.badinput import BadInput, is_bad_input
from scoring.metrics.audio_match import fast_dtw, mfcc
from scoring.metrics.media import check_mp3_meta, compare_audios, compare_videos
from scoring.registry import check_metric

SR = 44100


def write_wav(path: Path, samples: np.ndarray, sr: int = SR, channels: int = 1) -> str:
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    if channels == 2:
        data = np.repeat(data[:, None], 2, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(data.tobytes())
    return str(path)


def melody(seed: int, seconds: float = 4.0, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    freqs = np.repeat(220 * 2 ** (rng.integers(0, 24, int(seconds * 4) + 1) / 12), sr // 4)[: int(seconds * sr)]
    return 0.4 * np.sin(2 * np.pi * np.cumsum(freqs) / sr)


def test_compare_audios_same_tune_scores_one_even_resampled_in_stereo_and_another_tune_scores_low(tmp_path):
    a = write_wav(tmp_path / "a.wav", melody(1))
    same = write_wav(tmp_path / "same.wav", melody(1, sr=22050), sr=22050, channels=2)
    other = write_wav(tmp_path / "other.wav", melody(2))
    assert compare_audios(a, a) == pytest.approx(1.0)
    assert compare_audios(same, a) > 0.99
    assert compare_audios(other, a) < 0.8


def test_compare_audios_reads_mp3(tmp_path):
    import soundfile

    mp3 = tmp_path / "a.mp3"
    soundfile.write(mp3, melody(1), SR, format="MP3")
    assert compare_audios(str(mp3), write_wav(tmp_path / "a.wav", melody(1))) > 0.98


@pytest.mark.parametrize("content", [b"", b"not audio at all" * 50, None])
def test_compare_audios_unreadable_agent_file_is_bad_input_even_against_an_unreadable_gold(tmp_path, content):
    gold = write_wav(tmp_path / "gold.wav", melody(1))
    path = None if content is None else tmp_path / "mine.mp3"
    if path is not None:
        path.write_bytes(content)
    with pytest.raises(BadInput) as err:
        compare_audios(str(path) if path else None, gold)
    assert err.value.path == (str(path) if path else None)
    # upstream scores two undecodable files as identical (1); here the agent's file is at fault
    with pytest.raises(BadInput):
        compare_audios(str(tmp_path / "missing.wav"), str(tmp_path / "missing-gold.wav"))


def test_fast_dtw_matches_exact_dtw_on_a_shifted_sequence():
    x = np.stack([np.sin(np.linspace(0, 6, 40)), np.cos(np.linspace(0, 6, 40))], axis=1) + 2
    y = np.concatenate([x[:1].repeat(3, axis=0), x])
    distance, path = fast_dtw(x, y)
    assert distance == pytest.approx(0.0, abs=1e-9)  # a repeated first frame costs nothing under DTW
    assert path[0] == (0, 0) and path[-1] == (39, 42)
    assert all(b[0] - a[0] in (0, 1) and b[1] - a[1] in (0, 1) for a, b in itertools.pairwise(path))


def test_mfcc_of_silence_is_finite_with_librosas_shape():
    features = mfcc(np.zeros(SR // 2, dtype=np.float32))
    assert features.shape == (20, 1 + (SR // 2) // 512)
    assert np.isfinite(features).all()


def write_video(path: Path, frames: int, flip: bool = False) -> str:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(frames):
        img = np.zeros((120, 160, 3), np.uint8)
        cv2.circle(img, ((i * 7) % 160, 60), 25, (0, 200, 255), -1)
        cv2.rectangle(img, (10, 10), (50, 40 + i % 30), (255, 0, 0), -1)
        out.write(img[::-1].copy() if flip else img)
    out.release()
    return str(path)


def test_compare_videos_same_frames_one_flipped_or_shorter_zero(tmp_path):
    gold = write_video(tmp_path / "gold.avi", 30)
    assert compare_videos(write_video(tmp_path / "same.avi", 30), gold) == 1.0
    assert compare_videos(write_video(tmp_path / "flipped.avi", 30, flip=True), gold) == 0.0
    assert compare_videos(write_video(tmp_path / "short.avi", 20), gold) == 0.0
    assert compare_videos(write_video(tmp_path / "short.avi", 20), gold, max_frames_to_check=10) == 1.0


def test_compare_videos_corrupt_or_missing_file_is_bad_input(tmp_path):
    gold = write_video(tmp_path / "gold.avi", 10)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 100)
    for mine in (str(junk), str(tmp_path / "missing.mp4"), None):
        with pytest.raises(BadInput) as err:
            compare_videos(mine, gold)
        assert is_bad_input(err.value) and err.value.path == mine
    assert check_metric("compare_videos", {"threshold": 3}) == []
    assert check_metric("compare_videos", {"fps": 3}) == ["metric:compare_videos[unknown option fps]"]


def test_check_mp3_meta_matches_tags_and_an_untagged_mp3_scores_zero_without_crashing(tmp_path):
    import soundfile
    from mutagen.easyid3 import EasyID3

    song = tmp_path / "song.mp3"
    soundfile.write(song, melody(3, seconds=1), SR, format="MP3")
    rules = {"title": {"method": "eq", "ref": "Missing You"}, "artist": {"method": "eq", "ref": "Cheng Xiang"}}
    assert check_mp3_meta(str(song), rules) == 0.0  # no ID3 tag yet (upstream raises here)
    tags = EasyID3()
    tags.update({"title": "Missing You", "artist": ["Cheng Xiang"]})
    tags.save(song)
    assert check_mp3_meta(str(song), rules) == 1.0
    assert check_mp3_meta(str(song), {**rules, "album": {"method": "eq", "ref": "X"}}) == 0.0
    assert check_mp3_meta(str(song), {"title": {"method": "re", "ref": "^Missing"}}) == 1.0
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(BadInput):
        check_mp3_meta(str(junk), rules)
