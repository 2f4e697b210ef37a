"""Track ids for poses across video frames: greedy matching on IoU and OKS.

Each frame, every (live track, new pose) pair gets a similarity: the box IoU,
or the OKS of the keypoints when both have enough confident keypoints and the
OKS is larger (OKS follows a person whose box changes shape, e.g. when an arm
is raised). Pairs are taken greedily, best first, while the similarity is above
`min_similarity`; each track and pose is used once. Unmatched poses start new
tracks; a track not seen for more than `max_age` frames ends (its id is never
reused), so a person hidden for a moment keeps their id.

`IdSwitchCounter` measures id consistency from the output alone, without
ground truth (see its docstring for the exact rule).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from .pose_nms import oks_matrix


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N,4 xyxy) with every box in b (M,4) -> (N,M)."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def greedy_match(similarity: np.ndarray, min_similarity: float):
    """Pairs (row, col) taken best first, each row and column at most once."""
    pairs = []
    if similarity.size == 0:
        return pairs
    order = np.argsort(-similarity, axis=None, kind="stable")
    used_r, used_c = set(), set()
    for flat in order:
        r, c = divmod(int(flat), similarity.shape[1])
        if similarity[r, c] < min_similarity:
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    keypoints: Optional[np.ndarray]
    scores: Optional[np.ndarray]
    first_frame: int
    last_frame: int
    hits: int = 1


@dataclass
class Tracker:
    """Greedy IoU/OKS tracker. Call `update(boxes, keypoints, scores)` once per frame."""

    min_similarity: float = 0.3
    max_age: int = 10               # frames a track survives unseen
    use_oks: bool = True
    sigmas: Optional[np.ndarray] = None
    score_threshold: float = 0.3
    tracks: Dict[int, Track] = field(default_factory=dict)
    next_id: int = 0
    frame: int = -1
    total_tracks: int = 0

    def update(self, boxes, keypoints=None, scores=None, known_ids=None) -> np.ndarray:
        """Assign ids to this frame's poses; returns track ids (N,) int64.

        `known_ids` (N,): ids already decided by the caller (e.g. a box carried from
        that track's previous pose); -1 entries are matched as usual.
        """
        self.frame += 1
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        n = len(boxes)
        ids = np.full(n, -1, np.int64)
        if known_ids is not None:
            known = np.asarray(known_ids, np.int64).reshape(-1)
            ids[:] = np.where(np.isin(known, list(self.tracks)), known, -1)
        taken = set(int(i) for i in ids if i >= 0)
        live = [t for t in self.tracks.values() if t.track_id not in taken]
        free = np.flatnonzero(ids < 0)
        if live and len(free):
            sim = iou_matrix(np.stack([t.box for t in live]), boxes[free])
            if self.use_oks and keypoints is not None and all(t.keypoints is not None for t in live):
                prev_k = np.stack([t.keypoints for t in live])
                prev_s = np.stack([t.scores for t in live])
                oks = oks_matrix(prev_k, prev_s, np.asarray(keypoints)[free], np.asarray(scores)[free],
                                 boxes_a=np.stack([t.box for t in live]), sigmas=self.sigmas,
                                 score_threshold=self.score_threshold)
                sim = np.maximum(sim, oks)
            for r, c in greedy_match(sim, self.min_similarity):
                ids[free[c]] = live[r].track_id
        for c in range(n):
            if ids[c] < 0:
                ids[c] = self.next_id
                self.next_id += 1
                self.total_tracks += 1
            tid = int(ids[c])
            kp = None if keypoints is None else np.array(keypoints[c], np.float32)
            sc = None if scores is None else np.array(scores[c], np.float32)
            if tid in self.tracks:
                t = self.tracks[tid]
                t.box, t.keypoints, t.scores, t.last_frame = boxes[c].copy(), kp, sc, self.frame
                t.hits += 1
            else:
                self.tracks[tid] = Track(tid, boxes[c].copy(), kp, sc, self.frame, self.frame)
        for tid in [t.track_id for t in self.tracks.values() if self.frame - t.last_frame > self.max_age]:
            del self.tracks[tid]
        return ids


class IdSwitchCounter:
    """Counts track-id changes in the tracker's output, without ground truth.

    Rule (stated in the run summary): a pose in frame t whose box overlaps a
    box of frame t-1 with IoU > `iou` (0.5), the best such overlap, but carries
    a different id than that box, is one id switch. Overlap above 0.5 between
    consecutive frames (20-50 ms apart) means the same person in practice, so
    a changed id there is a tracker fault: a swap between neighbours, or a new
    id born on a person who already had one. Each previous box can explain at
    most one current box, so two people leaving one box count once.
    People entering or leaving the picture are not switches.
    """

    def __init__(self, iou: float = 0.5):
        self.iou = iou
        self.switches = 0
        self.ids_seen: set = set()
        self._prev_boxes = np.zeros((0, 4), np.float32)
        self._prev_ids = np.zeros(0, np.int64)

    def update(self, boxes, track_ids) -> int:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        track_ids = np.asarray(track_ids, np.int64).reshape(-1)
        self.ids_seen.update(int(i) for i in track_ids)
        new = 0
        ious = iou_matrix(self._prev_boxes, boxes)
        for r, c in greedy_match(ious, self.iou + 1e-9):
            if self._prev_ids[r] != track_ids[c]:
                new += 1
        self.switches += new
        self._prev_boxes, self._prev_ids = boxes.copy(), track_ids.copy()
        return new

    @property
    def num_tracks(self) -> int:
        return len(self.ids_seen)
