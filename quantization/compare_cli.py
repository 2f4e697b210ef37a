"""`edgepose compare MODEL_VARIANTS... --data DIR_OR_GT_JSON [--det DETECTOR] -o REPORT_DIR`."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL_VARIANTS",
                        help="model folders / .json files of one model: the fp32 reference and its "
                             "fp16 / int8 / mixed variants (an fp32 file also runs as fp16)")
    parser.add_argument("--data", required=True, metavar="DIR_OR_GT_JSON",
                        help="COCO annotation .json (images beside it), a folder holding one, "
                             "or a folder of unlabelled images (agreement only; needs --det for pose)")
    parser.add_argument("--det", metavar="DETECTOR",
                        help="pose: take person boxes from this detector instead of the ground truth")
    parser.add_argument("--det-score", type=float, default=0.3,
                        help="pose with --det: minimum detector score of a person box (default 0.3)")
    parser.add_argument("-o", "--out", required=True, metavar="REPORT_DIR",
                        help="folder for report.md, report.json and the PNG plots")
    parser.add_argument("--threads", type=int, default=None, help="ncnn threads per inference")
    parser.add_argument("--device", default="cpu", metavar="DEVICE",
                        help="cpu (default), gpu or gpu:N (Vulkan) for the fp32/fp16 variants and the detector; "
                             "int8 variants always run on the CPU")
    parser.add_argument("--max-images", type=int, default=None, help="use only the first N images")
    parser.add_argument("--no-fp16", action="store_true", help="do not add the fp16 run of the fp32 model")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args) -> int:
    import os

    from edgepose.errors import EdgeposeError

    from .compare import compare

    if args.threads is not None and args.threads < 1:
        raise EdgeposeError(f"--threads must be at least 1, got {args.threads}")
    if args.max_images is not None and args.max_images < 1:
        raise EdgeposeError(f"--max-images must be at least 1, got {args.max_images}")
    report = compare(args.models, args.data, args.out, det=args.det, threads=args.threads,
                     max_images=args.max_images, fp16=not args.no_fp16, det_score=args.det_score,
                     plots=not args.no_plots, device=args.device,
                     progress=not args.quiet)
    for v in report["variants"]:
        speed = v["speed"].get("ms_per_crop", v["speed"].get("ms_per_image"))
        ap = v["ap"]
        if ap and report["task"] == "pose":
            ap_text = " ".join(f"{p}={a['AP']:.4f}" for p, a in ap.items())
        elif ap:
            ap_text = (f"box AP={ap['AP']:.4f} AP50={ap['AP50']:.4f} "
                       f"(all detections >= score {v.get('ap_score_threshold')})")
        else:
            ap_text = "no labels"
        ratio = v["speed"].get("vs_fp32")
        timing = (f"  {speed:.2f} ms at {v['speed'].get('threads')} thread(s)"
                  + (f" (x{ratio:.2f} of fp32 time)" if ratio else "")) if speed is not None else ""
        print(f"{v['label']:>10}: {ap_text}{timing}")
    print(f"report: {os.path.join(args.out, 'report.md')}")
    return 0
