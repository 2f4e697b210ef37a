"""`edgepose convert SOURCE -o OUTDIR`: .pth checkpoint, deploy .onnx or zoo name -> ncnn + metadata."""
from __future__ import annotations

import argparse
import textwrap

DESCRIPTION = textwrap.fill(
    "Convert an official RTMPose / DWPose / RTMW pose model or RTMDet / YOLOX detector to ncnn. "
    "Writes OUTDIR/NAME.ncnn.param, NAME.ncnn.bin and NAME.json (the metadata the runtime reads: input "
    "size, folded normalisation (feed raw BGR pixels), output roles, keypoints, precision, source "
    "checksum). Before anything is written, the ncnn model is run against the source (torch or "
    "onnxruntime) on real images and the max abs difference / SimCC argmax agreement is printed; a "
    "model that does not reproduce its source is not written.", width=79)

EPILOG = """examples:
  edgepose convert dwpose-t -o models/                  zoo name: fetched into the cache first
  edgepose convert rtmpose-t_simcc-body7_pt-body7_420e-256x192-026a1439_20230504.pth -o models/
  edgepose convert rtmdet_nano_320-8xb32_coco-person.pth -o models/   detector checkpoint
  edgepose convert end2end.onnx -o models/ --config rtmpose-m_8xb64-270e_coco-wholebody-256x192
  edgepose convert dwpose-m -o models/ --fp16           fp16 weights (ScaleNorm kept fp32)

errors print one line and exit with code 2; a failed run leaves no model behind."""


def add_arguments(parser) -> None:
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("source",
                        help="official checkpoint (.pth), deploy ONNX (.onnx), a model zoo name "
                             "(edgepose fetch --list) or an https URL of a .pth; pose or detector")
    parser.add_argument("-o", "--out", dest="out_dir", required=True, metavar="OUTDIR",
                        help="output folder (created if missing)")
    parser.add_argument("--config", default=None, metavar="NAME",
                        help="official config name (e.g. rtmpose-m_8xb64-270e_coco-wholebody-256x192 or "
                             "rtmpose-t_body8_256x192); inferred from a checkpoint when omitted, taken "
                             "from the zoo for a zoo name; gives an ONNX its mean/std, keypoint set and, "
                             "for dynamic height/width, its input size")
    parser.add_argument("--fp16", action="store_true",
                        help="store weights in fp16 (precision 'fp16'); layers that overflow fp16 stay fp32")
    parser.add_argument("--name", default=None,
                        help="output file stem (default: the zoo name or the source's file stem, +_fp16)")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip the self-check against the source model")
    parser.add_argument("--check-images", default=None, metavar="DIR",
                        help="images for the self-check: a folder of photos, or a COCO keypoint folder "
                             "(person_keypoints*.json + its images: pose models then see person crops); "
                             "default: a synthetic image")


def main(args) -> int:
    from .api import convert
    convert(args.source, args.out_dir, config=args.config, fp16=args.fp16, name=args.name,
            check=args.check, check_images=args.check_images)
    return 0
