"""``synthetic-har``: a generated stand-in for UCI-HAR, shipped so the study runs offline.

The windows are generated, not recorded: results on them are never UCI-HAR results.
They have UCI-HAR's shape and channel order (9 channels x 128 samples at 50 Hz, body
acceleration in g, gyroscope in rad/s, total acceleration in g, six activities) and a
simple physical model of a waist-worn phone:

- gravity is rotated by the posture (forward lean, roll) and by a per-subject mounting
  tilt, so static postures differ by orientation only; sitting and standing overlap,
  as they do in the recorded data;
- the walking classes are gait oscillations at the step frequency (vertical, forward)
  and the stride frequency (lateral, gyroscope), with class-dependent cadence and
  amplitude whose spreads overlap; downstairs adds heel-strike impulses, upstairs a
  slower lift;
- every subject has its own cadence, amplitude, noise level and mounting tilt;
- accelerometer and gyroscope noise are white and Gaussian.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyhil.models.datasets.base import HAR_ACTIVITIES, HAR_CHANNELS, Windows, register_dataset

SAMPLE_RATE_HZ = 50.0
TIMESTEPS = 128
N_SUBJECTS = 30
TRAIN_SUBJECTS = 21  # the first 21 subjects form the "subjects" split's train part, as 70 % in UCI-HAR
WINDOWS_PER_SUBJECT_CLASS = 24
GENERATOR_VERSION = 1

# Per class: mean forward lean and its spread (deg), roll spread (deg), step frequency
# (Hz, mean and spread), vertical/forward/lateral amplitudes (g), gyroscope pitch/yaw/roll
# amplitudes (rad/s). Zero amplitudes make a static posture.
_CLASSES = {
    "WALKING": dict(lean=(3, 3), roll=3, step=(1.85, 0.13), acc=(0.30, 0.18, 0.10), gyro=(0.50, 0.35, 0.25)),
    "WALKING_UPSTAIRS": dict(lean=(8, 4), roll=3, step=(1.60, 0.13), acc=(0.24, 0.14, 0.09), gyro=(0.45, 0.30, 0.30)),
    "WALKING_DOWNSTAIRS": dict(
        lean=(-2, 4), roll=3, step=(2.05, 0.15), acc=(0.38, 0.16, 0.12), gyro=(0.60, 0.40, 0.25)
    ),
    "SITTING": dict(lean=(14, 7), roll=4, step=(0, 0), acc=(0, 0, 0), gyro=(0, 0, 0)),
    "STANDING": dict(lean=(3, 4), roll=3, step=(0, 0), acc=(0, 0, 0), gyro=(0, 0, 0)),
    "LAYING": dict(lean=(85, 10), roll=45, step=(0, 0), acc=(0, 0, 0), gyro=(0, 0, 0)),
}


def _rotation(lean_deg: np.ndarray, roll_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(n, 3, 3)``: lean about the lateral axis, then roll about forward."""
    a, b = np.radians(lean_deg), np.radians(roll_deg)
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
    one, zero = np.ones_like(a), np.zeros_like(a)
    # sensor axes: x vertical (up when upright), y lateral, z forward
    lean = np.stack([np.stack([ca, zero, -sa], -1), np.stack([zero, one, zero], -1), np.stack([sa, zero, ca], -1)], -2)
    roll = np.stack([np.stack([cb, -sb, zero], -1), np.stack([sb, cb, zero], -1), np.stack([zero, zero, one], -1)], -2)
    return roll @ lean


def _class_windows(rng: np.random.Generator, name: str, n: int, subject: dict) -> np.ndarray:
    c = _CLASSES[name]
    t = np.arange(TIMESTEPS) / SAMPLE_RATE_HZ
    lean = rng.normal(c["lean"][0], c["lean"][1], n) + subject["tilt"][0]
    roll = rng.normal(0.0, c["roll"], n) + subject["tilt"][1]
    rot = _rotation(lean, roll)  # (n, 3, 3)

    dyn = np.zeros((n, TIMESTEPS, 3))  # body frame: vertical, lateral, forward
    gyr = np.zeros((n, TIMESTEPS, 3))
    if c["step"][0] > 0:
        f = rng.normal(c["step"][0], c["step"][1], n)[:, None] * subject["cadence"]
        amp = rng.normal(1.0, 0.15, n)[:, None] * subject["amplitude"]
        ph = rng.uniform(0, 2 * np.pi, (n, 3))
        wt = 2 * np.pi * f * t[None, :]
        av, af, al = (a * amp for a in c["acc"])
        dyn[..., 0] = av * (np.sin(wt + ph[:, :1]) + 0.35 * np.sin(2 * wt + ph[:, 1:2]))
        dyn[..., 2] = af * np.sin(wt + ph[:, :1] + np.pi / 2)
        dyn[..., 1] = al * np.sin(wt / 2 + ph[:, 2:3])
        gp, gy, gr = (g * amp for g in c["gyro"])
        gyr[..., 1] = gp * np.sin(wt + ph[:, :1] + 0.6)
        gyr[..., 0] = gy * np.sin(wt / 2 + ph[:, 2:3])
        gyr[..., 2] = gr * np.sin(wt / 2 + ph[:, 2:3] + 1.1)
        if name == "WALKING_DOWNSTAIRS":
            # heel strikes: short vertical impulses once per step
            step_phase = np.mod(wt + ph[:, :1], 2 * np.pi)
            dyn[..., 0] += 0.30 * amp * np.exp(-((step_phase - np.pi / 2) ** 2) / 0.08)
        if name == "WALKING_UPSTAIRS":
            dyn[..., 0] += 0.08 * amp * np.sin(wt / 2 + ph[:, 1:2])
    else:
        # postural sway (and breathing when laying): slow, small
        for _ in range(2):
            fs = rng.uniform(0.15, 0.6, (n, 1))
            dyn += rng.normal(0, 0.012, (n, 1, 3)) * np.sin(2 * np.pi * fs * t + rng.uniform(0, 6.3, (n, 1)))[..., None]
            gyr += rng.normal(0, 0.03, (n, 1, 3)) * np.sin(2 * np.pi * fs * t + rng.uniform(0, 6.3, (n, 1)))[..., None]
        if name == "LAYING":
            fb = rng.uniform(0.2, 0.35, (n, 1))
            dyn[..., 2] += 0.01 * np.sin(2 * np.pi * fb * t)

    up = np.array([1.0, 0.0, 0.0])
    gravity = np.einsum("nij,j->ni", rot, up)[:, None, :]  # (n, 1, 3)
    body = np.einsum("nij,ntj->nti", rot, dyn)
    gyro = np.einsum("nij,ntj->nti", rot, gyr)
    acc_noise = rng.normal(0, 0.012 * subject["noise"], (n, TIMESTEPS, 3))
    gyro_noise = rng.normal(0, 0.02 * subject["noise"], (n, TIMESTEPS, 3))
    body_acc = body + acc_noise
    total_acc = gravity + body + acc_noise
    return np.concatenate([body_acc, gyro + gyro_noise, total_acc], axis=-1).astype(np.float32)


def generate(seed: int = 0, windows_per_subject_class: int = WINDOWS_PER_SUBJECT_CLASS) -> Windows:
    """Generates the dataset deterministically from ``seed``.

    Args:
        seed: Same seed, same windows, on any machine with the same numpy.
        windows_per_subject_class: Windows per subject and activity (30 subjects).

    Returns:
        :class:`Windows` with an official split by subject (first 21 train, last 9 test).
    """
    rng = np.random.default_rng([GENERATOR_VERSION, seed])
    xs, ys, ss = [], [], []
    for subject_id in range(1, N_SUBJECTS + 1):
        subject = {
            "cadence": rng.normal(1.0, 0.07),
            "amplitude": rng.normal(1.0, 0.15),
            "noise": rng.uniform(0.7, 1.6),
            "tilt": rng.normal(0.0, 5.0, 2),
        }
        for label, name in enumerate(HAR_ACTIVITIES):
            xs.append(_class_windows(rng, name, windows_per_subject_class, subject))
            ys.append(np.full(windows_per_subject_class, label))
            ss.append(np.full(windows_per_subject_class, subject_id))
    subjects = np.concatenate(ss)
    return Windows(
        x=np.concatenate(xs),
        y=np.concatenate(ys),
        subjects=subjects,
        official_train=subjects <= TRAIN_SUBJECTS,
        meta={
            "name": "synthetic-har",
            "generated": True,
            "generator_version": GENERATOR_VERSION,
            "windows_per_subject_class": windows_per_subject_class,
            "n_subjects": N_SUBJECTS,
            "sample_rate_hz": SAMPLE_RATE_HZ,
            "class_names": list(HAR_ACTIVITIES),
            "channel_names": list(HAR_CHANNELS),
            "provenance": "generated by models/datasets/synthetic_har.py; not UCI-HAR",
        },
    )


@register_dataset("synthetic-har")
def _load(data_dir: Path | None, seed: int) -> Windows:
    return generate(seed)
