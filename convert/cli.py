"""`edgepose convert SOURCE -o OUTDIR`: .pth checkpoint or deploy .onnx -> ncnn + metadata."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("source", help="official checkpoint (.pth) or deploy ONNX (.onnx): pose or detector")
    parser.add_argument("-o", "--out", dest="out_dir", required=True, help="output folder")
    parser.add_argument("--config", default=None,
                        help="official config name (e.g. rtmpose-m_8xb64-270e_coco-wholebody-256x192 or rtmpose-t_body8_256x192); "
                             "inferred from the checkpoint when omitted")
    parser.add_argument("--fp16", action="store_true", help="store weights in fp16 (precision 'fp16')")
    parser.add_argument("--name", default=None, help="output file stem (default: the source's stem)")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip the self-check against the source model")
    parser.add_argument("--check-images", default=None, metavar="DIR",
                        help="images for the self-check when the shared data folder is absent")


def main(args) -> int:
    from .api import convert
    convert(args.source, args.out_dir, config=args.config, fp16=args.fp16, name=args.name,
            check=args.check, check_images=args.check_images)
    return 0
