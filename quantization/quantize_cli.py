"""`edgepose quantize MODEL_DIR --calib DIR [...] -o OUTDIR`: INT8 / mixed-precision calibration."""
from __future__ import annotations

METHODS = ("kl", "aciq", "percentile", "mse")


def add_arguments(parser) -> None:
    parser.add_argument("model", metavar="MODEL_DIR", help="converted fp32 model (folder, .json or .ncnn.param)")
    parser.add_argument("--calib", nargs="+", required=True, metavar="DIR",
                        help="calibration image folder(s) or files (never the evaluation images)")
    parser.add_argument("--method", choices=METHODS, default="kl",
                        help="activation threshold method (default kl, as ncnn2table)")
    parser.add_argument("--target", type=float, default=None, metavar="AGREEMENT",
                        help="mixed precision: keep the most sensitive layers in float until this "
                             "agreement with fp32 is met (pose: SimCC argmax within one bin, e.g. 0.95; "
                             "RTMDet: box AP against fp32's confident detections, e.g. 0.9). Without it: pure int8")
    parser.add_argument("--det", metavar="DETECTOR_DIR", default=None,
                        help="person detector used to crop people for pose calibration")
    parser.add_argument("--max-images", type=int, default=None, metavar="N",
                        help="use at most N calibration images (spread over the sorted list)")
    parser.add_argument("--quantize-input-layer", action="store_true",
                        help="also quantize the layer reading raw pixels (kept float by default)")
    parser.add_argument("--output-error", dest="output_error", action="store_true", default=None,
                        help="refine each layer's scale by the error of its output, the --method threshold "
                             "being one candidate (default: on for detectors, off for pose models)")
    parser.add_argument("--no-output-error", dest="output_error", action="store_false",
                        help="keep the --method threshold as is")
    parser.add_argument("--bias-correction", dest="bias_correction", action="store_true", default=None,
                        help="cancel each int8 layer's mean output shift through its bias "
                             "(default: on for detectors, off for pose models)")
    parser.add_argument("--no-bias-correction", dest="bias_correction", action="store_false")
    parser.add_argument("--rank-by", choices=("solo", "float-gain"), default="solo",
                        help="mixed precision ranking: damage of each layer alone in int8 (default) or "
                             "gain of keeping each layer alone float in the int8 model")
    parser.add_argument("--float-depthwise", action="store_true",
                        help="keep every depthwise convolution float (RTMDet-nano: within 1 AP of fp32 "
                             "with the other layers int8)")
    parser.add_argument("--all-int8", action="store_true",
                        help="every convolution int8 (for CPUs whose int8 kernels are fast everywhere, e.g. "
                             "ARMv8.2 dot-product); default: int8 only where measured faster here and accurate")
    parser.add_argument("--budget", type=float, default=None, metavar="AGREEMENT",
                        help="default mode's accuracy budget vs fp32 on calibration inputs (detector: "
                             "pseudo-label box AP, default 0.90; pose: SimCC within one bin, default 0.96)")
    parser.add_argument("--no-cle", dest="cle", action="store_false", default=True,
                        help="skip cross-layer equalization (applied only where exact)")
    parser.add_argument("--no-equalize-depthwise", dest="equalize_depthwise", action="store_false", default=True,
                        help="no per-channel input equalization before int8 depthwise convolutions (a float "
                             "Scale layer each; exact in float, it gives every channel the full int8 range)")
    parser.add_argument("--no-equalize-dense", dest="equalize_dense", action="store_false", default=True,
                        help="--all-int8: do not try equalizing the dense convolutions' inputs (SmoothQuant "
                             "strengths 0.25 / 0.5 / 0.75, the best on the calibration inputs kept)")
    parser.add_argument("--adaround", dest="adaround", action="store_true", default=None,
                        help="learn each int8 layer's weight rounding on the calibration data (off by default: "
                             "on RTMDet-nano it lowered each layer's output error but cost box AP)")
    parser.add_argument("--no-adaround", dest="adaround", action="store_false", help="nearest weight rounding")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="folder for the new model folder")


def main(args) -> int:
    from .quantize_api import quantize_model

    path = quantize_model(args.model, args.calib, method=args.method, out_dir=args.out, target=args.target,
                          det_model=args.det, max_images=args.max_images,
                          quantize_input_layer=args.quantize_input_layer, overwrite=args.overwrite,
                          output_error=args.output_error, bias_correction=args.bias_correction,
                          rank_by=args.rank_by, float_depthwise=args.float_depthwise,
                          all_int8=args.all_int8, budget=args.budget, cle=args.cle, adaround=args.adaround,
                          equalize_depthwise=args.equalize_depthwise, equalize_dense=args.equalize_dense,
                          progress=True, threads=args.threads)
    print(path)
    return 0
