"""`edgepose run SOURCE`: whole-body pose on an image, a folder, a video file or a camera.

Writes into the output folder (default ./edgepose_out):
  <stem>_pose.<ext>          annotated image(s) (.jpg/.png as the input), or <stem>_pose.mp4 for video/camera
  <stem>_keypoints.json      COCO keypoint results of every frame/image (image_id = frame/file number)
  openpose/<stem>_<frame>_keypoints.json   with --openpose-json (one file per frame, as OpenPose writes)
Images: detector on every image, no smoothing. Video: skip-frame detection
(--det-every), track ids, One-Euro smoothing (--no-smooth to turn off).
Files are written under temporary names and renamed when complete (edgepose.files.Outputs);
a run that processes nothing leaves nothing behind.
"""
from __future__ import annotations

from collections import deque
import os
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional

from edgepose.errors import BadImageError, EdgeposeError, ModelNotFoundError, WrongTaskError, with_context

ID_SWITCH_RULE = ("id switch = a person whose box overlaps their box of the previous frame "
                  "with IoU > 0.5 but carries a different track id")


def add_arguments(p) -> None:
    p.add_argument("source", help="image file, folder of images, video file, or camera index (0, 1, ...)")
    p.add_argument("--det", metavar="MODEL", help="converted person detector (folder, .json or .ncnn.param); "
                                                  "default: the one `edgepose demo` prepared")
    p.add_argument("--pose", metavar="MODEL", help="converted pose model (folder, .json or .ncnn.param); "
                                                   "default: the one `edgepose demo` prepared")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None,
                   help="model variant / ncnn mode (default: fp16 on ARM and on a GPU with fp16 storage, fp32 elsewhere)")
    p.add_argument("--threads", type=int, default=None,
                   help="ncnn threads per extractor (default: chosen from the machine, see the printed schedule)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="persons run at once on separate extractors (default: chosen from the machine)")
    p.add_argument("--cores", choices=("auto", "big", "little", "all"), default="auto",
                   help="cores to run on (default auto: the big cores on big.LITTLE, else all)")
    add_device_argument(p)
    p.add_argument("--det-every", type=int, default=5, metavar="N",
                   help="video: run the detector every N frames, carry boxes from the poses in between "
                        "(default 5; 1 = every frame)")
    p.add_argument("--no-smooth", action="store_true", help="video: turn One-Euro keypoint smoothing off")
    p.add_argument("-o", "--output-dir", default="edgepose_out", help="output folder (default ./edgepose_out)")
    p.add_argument("--openpose-json", action="store_true",
                   help="also write OpenPose JSON per frame (18-point body, hands, face) for ControlNet")
    p.add_argument("--draw-style", choices=("mmpose", "openpose"), default="mmpose",
                   help="mmpose: skeleton on the picture, coloured by part; openpose: OpenPose-style on black")
    p.add_argument("--show-fps", action="store_true", help="print the live FPS onto the output frames")
    p.add_argument("--threshold", type=float, default=0.3, help="keypoint score threshold for drawing (0.3)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (camera runs)")
    p.add_argument("--no-draw", action="store_true", help="write only the JSON results")


def _check_args(args) -> None:
    if args.det_every < 1:
        raise EdgeposeError(f"--det-every must be >= 1, got {args.det_every}")
    for flag, value in (("--threads", args.threads), ("--concurrency", getattr(args, "concurrency", None))):
        if value is not None and value < 1:
            raise EdgeposeError(f"{flag} must be >= 1, got {value}")
    if not 0.0 <= args.threshold <= 1.0:
        raise EdgeposeError(f"--threshold must be within 0..1, got {args.threshold}")
    if args.max_frames is not None and args.max_frames < 1:
        raise EdgeposeError(f"--max-frames must be >= 1, got {args.max_frames}")


@dataclass
class RunSummary:
    kind: str
    processed: int
    skipped: int
    cut_short: bool
    frames_read: int
    interrupted: bool
    persons: int
    fps: float
    precision: str
    det_every: int
    tracks: Optional[int]
    id_switches: Optional[int]
    written: List[str] = field(default_factory=list)


class _Models:
    """What PoseTracker needs from a solution: a detector and a pose estimator."""

    def __init__(self, det: str, pose: str, precision: Optional[str], threads: Optional[int],
                 concurrency: Optional[int] = None, cores: str = "auto", device: Optional[str] = None):
        from .detector import Detector
        from .pose import PoseEstimator
        from .schedule import make_plan
        self.plan = make_plan(cores, threads, concurrency)
        self.detector = _load_checked(Detector, det, "--det", "detect", precision,
                                      dict(threads=self.plan.det_threads, device=device))
        self.pose_estimator = _load_checked(PoseEstimator, pose, "--pose", "pose", precision,
                                            dict(plan=self.plan, device=device))
        gpu = self.pose_estimator.model.gpu
        if gpu is not None:
            print(f"edgepose: running on {gpu.describe()}", file=sys.stderr)


def add_device_argument(p) -> None:
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="cpu (default), gpu (ncnn's default Vulkan device) or gpu:N")


def _load_checked(cls, path, flag, task, precision, schedule):
    if not os.path.exists(path):
        raise ModelNotFoundError(f"{flag} {path}: no such model file or folder")
    try:
        return cls(path, precision=precision, **schedule)
    except WrongTaskError as e:
        raise with_context(e, f"{flag} {path}: not a {task} model: ") from None
    except EdgeposeError as e:
        raise with_context(e, f"{flag}: ") from None


def resolve_models(args):
    det, pose = args.det, args.pose
    if det is None or pose is None:
        from .demo import cached_models
        cached = cached_models()
        det = det or cached.get("det")
        pose = pose or cached.get("pose")
    missing = [f for f, v in (("--det", det), ("--pose", pose)) if v is None]
    if missing:
        raise EdgeposeError(f"no model given for {' and '.join(missing)}: pass converted models "
                            f"(`edgepose convert MODEL.onnx -o DIR`, then --det DIR / --pose DIR), "
                            f"or run `edgepose demo` once to prepare the default ones")
    return det, pose


def _image_output_name(name: str) -> str:
    stem, ext = os.path.splitext(name)
    ext = ext.lower() if ext.lower() in (".jpg", ".jpeg", ".png", ".bmp") else ".png"
    return f"{stem}_pose{ext}"


class _Outputs:
    """Everything written for one run, through one `edgepose.files.Outputs`: staged under
    temporary names until `finish`; `abandon` removes it all (a failed run leaves nothing)."""

    def __init__(self, out_dir: str, source, style: str, openpose: bool, draw: bool, show_fps: bool,
                 threshold: float):
        from edgepose.files import Outputs
        self.source, self.style = source, style
        self.openpose, self.draw, self.show_fps, self.threshold = openpose, draw, show_fps, threshold
        self.coco = []
        self._writer = None
        self._video_tmp = None
        self._video_size = None
        inputs = [source.spec] if source.kind in ("image", "video") else list(source._files)
        self.files = Outputs(out_dir, "output folder", inputs=inputs)
        self.out_dir = self.files.folder
        self.json_name = f"{source.stem}_keypoints.json"
        self.json_path = self.files.path(self.json_name)
        try:
            self.files.claim(*self._planned(), *self._earlier_openpose_files())
        except BaseException:
            self.files.rollback()
            raise

    @property
    def written(self) -> List[str]:
        return self.files.written

    def _planned(self) -> List[str]:
        """Output names (relative to out_dir) this run will write, checked before the first frame
        (per-frame OpenPose files are checked as they come)."""
        video = self.source.kind in ("video", "camera")
        names = [self.json_name]
        if self.draw:
            if video:
                names.append(f"{self.source.stem}_pose.mp4")
            else:
                files = [self.source.spec] if self.source.kind == "image" else self.source._files
                names += [_image_output_name(os.path.basename(f)) for f in files]
        return names

    def _earlier_openpose_files(self) -> List[str]:
        """Per-frame OpenPose files already in openpose/ under this run's names: checked up front
        (a user's file there fails the run before the first frame, not in the middle)."""
        folder = self.files.path("openpose")
        if not (self.openpose and os.path.isdir(folder)):
            return []
        video = self.source.kind in ("video", "camera")
        files = [] if video else ([self.source.spec] if self.source.kind == "image" else self.source._files)
        stems = [self.source.stem] if video else [os.path.splitext(os.path.basename(f))[0] for f in files]
        return [f"openpose/{n}" for n in sorted(os.listdir(folder))
                if n.endswith("_keypoints.json") and any(n.startswith(st + "_") for st in stems)]

    def _picture(self, image, poses, kset, fps):
        from .draw import draw_fps, draw_mmpose, draw_openpose
        if self.style == "openpose":
            pic = draw_openpose(image.shape, poses.keypoints, poses.scores, self.threshold)
        else:
            pic = draw_mmpose(image, poses.keypoints, poses.scores, poses.boxes,
                              poses.track_ids if self.source.kind in ("video", "camera") else None,
                              keypoint_set=kset, threshold=self.threshold)
        if self.show_fps and fps:
            draw_fps(pic, fps)
        return pic

    def add(self, frame, image, poses, kset, fps) -> None:
        from .results_json import coco_results, openpose_frame
        video = self.source.kind in ("video", "camera")
        self.coco += coco_results(frame.index, poses.boxes, poses.box_scores, poses.keypoints, poses.scores,
                                  poses.track_ids if video else None,
                                  None if video else frame.name)
        if self.openpose:
            stem = os.path.splitext(frame.name)[0] if not video else self.source.stem
            self.files.write_json(f"openpose/{stem}_{frame.index:012d}_keypoints.json",
                                  openpose_frame(poses.keypoints, poses.scores, image.shape[1], image.shape[0],
                                                 poses.track_ids if video else None, self.threshold),
                                  indent=None)
        if not self.draw:
            return
        pic = self._picture(image, poses, kset, fps)
        if video:
            self._write_video_frame(pic)
        else:
            self._write_image(frame, pic)

    def _write_image(self, frame, pic) -> None:
        import cv2
        name = _image_output_name(frame.name)
        tmp = self.files.stage(name, suffix=os.path.splitext(name)[1])
        if not cv2.imwrite(tmp, pic):
            raise EdgeposeError(f"{self.files.path(name)}: cannot write the annotated image")

    def _write_video_frame(self, pic) -> None:
        import cv2
        if self._writer is None:
            name = f"{self.source.stem}_pose.mp4"
            self._video_tmp = self.files.stage(name, suffix=".mp4")
            fps = self.source.fps or 30.0
            h, w = pic.shape[:2]
            self._writer = cv2.VideoWriter(self._video_tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise EdgeposeError(f"{self.files.path(name)}: OpenCV cannot write mp4 video here")
            self._video_size = (w, h)
        if (pic.shape[1], pic.shape[0]) != self._video_size:
            pic = cv2.resize(pic, self._video_size)
        self._writer.write(pic)

    def _close_video(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def finish(self) -> None:
        """Put the results in place: the pictures/video, then the COCO JSON (its list is the record
        of what was processed, so it lands last)."""
        self._close_video()
        self.files.write_json(self.json_name, self.coco, indent=None)
        self.files.commit(order=[n for n in self._planned() if n != self.json_name])

    def abandon(self) -> None:
        """Nothing was processed: remove every staged file and any folder this run created."""
        self._close_video()
        self.files.rollback()


def _precision(models) -> str:
    """What actually ran: the mode of each model, and the file's own precision where it differs
    (an int8 detector folder runs its int8 file whatever the mode is called)."""
    parts = []
    for role, est in (("det", models.detector), ("pose", models.pose_estimator)):
        model = getattr(est, "model", None)
        mode = str(getattr(model, "precision", "?"))
        file_prec = str(getattr(getattr(model, "meta", None), "precision", mode))
        parts.append((role, file_prec if file_prec in ("int8", "mixed") else mode))
    if parts[0][1] == parts[1][1]:
        return parts[0][1]
    return ", ".join(f"{role} {p}" for role, p in parts)


def execute(args) -> "RunSummary":
    """Run the pipeline over args.source and write the outputs; returns the figures."""
    from tqdm import tqdm

    from .draw import keypoint_set_for
    from .image_input import as_bgr8
    from .pose_tracker import PoseTracker
    from .sources import Source, warn
    from .tracking import IdSwitchCounter

    _check_args(args)
    det, pose = resolve_models(args)
    source = Source(args.source)
    models = _Models(det, pose, args.precision, args.threads, getattr(args, "concurrency", None),
                     getattr(args, "cores", "auto"), getattr(args, "device", None))
    print(models.plan.describe(), file=sys.stderr)
    video = source.kind in ("video", "camera")
    tracker = PoseTracker(models, det_every=args.det_every if video else 1,
                          smooth=video and not args.no_smooth, fps=source.fps or 30.0,
                          keypoint_threshold=args.threshold)
    meta_kp = getattr(models.pose_estimator.meta, "keypoints", None)
    kset = keypoint_set_for(models.pose_estimator.num_keypoints, meta_kp)
    outputs = _Outputs(args.output_dir, source, args.draw_style, args.openpose_json, not args.no_draw,
                       args.show_fps, args.threshold)
    switches = IdSwitchCounter()

    done = persons = failed = 0
    compute = 0.0
    fps_live = 0.0
    interrupted = False
    bar = tqdm(total=args.max_frames or source.expected_frames, unit="frame", dynamic_ncols=True,
               disable=None, file=sys.stderr)
    read: deque = deque()  # video: frames handed to the tracker's stream, not yet returned

    def video_frames():
        nonlocal failed
        for frame in source:
            try:
                image = as_bgr8(frame.image)
            except EdgeposeError as e:
                warn(f"{frame.name}: {e}; skipped")
                failed += 1
                bar.update(1)
                continue
            read.append((frame, image))
            yield image, frame.timestamp

    def image_results():
        nonlocal failed
        for frame in source:
            try:
                tracker.reset()
                image = as_bgr8(frame.image)
                yield frame, image, tracker(image, frame.timestamp)
            except EdgeposeError as e:
                warn(f"{frame.name}: {e}; skipped")
                failed += 1
                bar.update(1)

    def video_results():
        # The stream overlaps the next frame's detector with this frame's poses (schedule.py).
        for poses in tracker.stream(video_frames()):
            frame, image = read.popleft()
            yield frame, image, poses

    try:
        results = video_results() if video else image_results()
        t0 = time.perf_counter()
        for frame, image, poses in results:
            dt = time.perf_counter() - t0
            compute += dt
            fps_live = 1.0 / dt if fps_live == 0 else 0.9 * fps_live + 0.1 / max(dt, 1e-6)
            if video:
                switches.update(poses.boxes, poses.track_ids)
            outputs.add(frame, image, poses, kset, fps_live)
            done += 1
            persons += len(poses)
            bar.set_postfix(fps=f"{fps_live:.1f}", persons=len(poses), refresh=False)
            bar.update(1)
            if args.max_frames and done >= args.max_frames:
                break
            t0 = time.perf_counter()
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        bar.close()
        outputs.abandon()
        source.close()
        raise
    bar.close()
    source.close()
    if done == 0:
        outputs.abandon()     # no empty keypoints file standing for a failure
        if interrupted:
            raise KeyboardInterrupt
        raise BadImageError(f"{args.source}: no frame or image could be processed "
                            f"({len(source.skipped) + failed} unreadable)")
    outputs.finish()
    return RunSummary(kind=source.kind, processed=done, skipped=len(source.skipped) + failed,
                      cut_short=source.cut_short, frames_read=source.frames_read, interrupted=interrupted,
                      persons=persons, fps=done / compute if compute else 0.0, precision=_precision(models),
                      det_every=tracker.det_every, tracks=switches.num_tracks if video else None,
                      id_switches=switches.switches if video else None, written=list(outputs.written))


def print_summary(s: "RunSummary") -> None:
    video = s.kind in ("video", "camera")
    what = "frames" if video else "images"
    print(f"edgepose run: {s.processed} {what} processed"
          + (f", {s.skipped} skipped" if s.skipped else "")
          + (f" (video ended early at frame {s.frames_read})" if s.cut_short else "")
          + (" (interrupted)" if s.interrupted else ""))
    print(f"  persons: {s.persons} ({s.persons / s.processed:.2f} per {what[:-1]})")
    print(f"  speed: {s.fps:.1f} FPS (detector + pose + tracking, precision {s.precision}, "
          f"det every {s.det_every})")
    if video:
        print(f"  tracks: {s.tracks}, id switches: {s.id_switches} ({ID_SWITCH_RULE})")
    for path in s.written:
        print(f"  wrote {path}")


def main(args) -> int:
    summary = execute(args)
    print_summary(summary)
    return 130 if summary.interrupted else 0
