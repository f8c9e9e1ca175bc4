"""The arguments of the ``otmetrics`` command: :func:`build_parser`."""

from __future__ import annotations

import argparse
import sys

__all__ = ["PROG", "DEFAULT_FEATURES", "UsageError", "Parser", "build_parser"]

PROG = "otmetrics"

#: The feature extractor of each command when ``--features`` is not given: the Inception for the
#: Fréchet distances (FID, FID-infinity), CLIP ViT-L/14@336px for CMMD (Jayasumana et al.), DINOv2
#: ViT-L/14 for PRDC (dgm-eval's default, the representation Stein et al. recommend).
DEFAULT_FEATURES = {"fd": "inception", "fd-inf": "inception", "all": "inception",
                    "cmmd": "clip-vit-l-14-336px", "prdc": "dinov2-vitl14"}


class UsageError(Exception):
    """A usage problem found after parsing (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (status 2), not the usage block."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``otmetrics`` command.

    Examples
    --------
    >>> args = build_parser().parse_args(["kid", "real.npy", "fake.npy", "--subsets", "10"])
    >>> args.command, args.paths, args.subsets, args.subset_size
    ('kid', ['real.npy', 'fake.npy'], 10, 1000)
    >>> args = build_parser().parse_args(["prdc", "real/", "fake/", "--k", "3"])
    >>> args.real, args.fake, args.k, args.features, args.ball
    ('real/', 'fake/', 3, None, 'open')
    """
    from .. import __version__
    from ..generative.features.registry import extractor_names

    parser = Parser(prog=PROG, description="Generative-model metrics of image folders: FID and FD on any "
                    "feature extractor, KID, CMMD, precision/recall/density/coverage, FD-infinity, Inception "
                    "Score; and the otmetrics demo.")
    parser.add_argument("--version", action="version", version=f"otmetrics {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("feature extraction")
    group.add_argument("--batch-size", type=int, default=50, metavar="N",
                       help="images per forward pass (default 50)")
    group.add_argument("--device", default=None,
                       help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available, else cpu)")
    group.add_argument("--weights", default=None, metavar="FILE",
                       help="the weight file of the feature extractor (the FID Inception's "
                            "pt_inception-2015-12-05-6726825d.pth for fid/kid/is; default: its environment "
                            "variable, the caches, or a verified download)")
    group.add_argument("--num-workers", type=int, default=0, metavar="N",
                       help="processes decoding images (default 0: decode in the main process)")
    group.add_argument("--resize", default=None, metavar="MODE",
                       help="the extractor's resize: pytorch-fid (the Inception's default) or tf1 for the "
                            "Inception; dgm-eval, cmmd, tf1 or none for DINOv2 and CLIP (default: the "
                            "extractor's own)")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    group.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    names = ", ".join(extractor_names())

    def features_option(command_parser, command):
        command_parser.add_argument("--features", default=None, metavar="NAME",
                                    help=f"the feature extractor (default {DEFAULT_FEATURES[command]}); "
                                         f"one of {names}")

    def dims_option(command_parser, what="Inception features"):
        command_parser.add_argument("--dims", type=int, default=2048, choices=(64, 192, 768, 2048),
                                    help=f"{what}: 2048 (pool3, the standard) or an earlier layer")

    fid = commands.add_parser("fid", parents=[common], help="Frechet Inception Distance",
                              description="FID between two image sets. Each PATH is an image folder "
                              "(searched recursively), a statistics .npz (keys mu, sigma: pytorch-fid's "
                              "format) or a features .npy (N x d).")
    fid.add_argument("paths", nargs=2, metavar="PATH")
    dims_option(fid)
    fid.add_argument("--save-stats", action="store_true",
                     help="instead of the FID, save the statistics of the image folder PATH1 to the .npz "
                          "PATH2 (pytorch-fid's --save-stats)")
    fid.set_defaults(metrics=("fid",))

    fd = commands.add_parser("fd", parents=[common], help="Frechet distance on any feature extractor",
                             description="The Frechet distance between two image sets on the features of "
                             "any registered extractor (FD_DINOv2 with --features dinov2-vitl14). Each PATH "
                             "is an image folder, a statistics .npz of the same extractor or a features "
                             ".npy.")
    fd.add_argument("paths", nargs=2, metavar="PATH")
    features_option(fd, "fd")
    fd.add_argument("--save-stats", action="store_true",
                    help="instead of the FD, save the statistics of the image folder PATH1 (with the name of "
                         "the extractor) to the .npz PATH2")
    fd.set_defaults(metrics=("fd",))

    kid = commands.add_parser("kid", parents=[common], help="Kernel Inception Distance",
                              description="KID (mean and std over random subsets) between two image "
                              "sets. Each PATH is an image folder or a features .npy (N x d).")
    kid.add_argument("paths", nargs=2, metavar="PATH")
    dims_option(kid)
    kid_options(kid)
    kid.set_defaults(metrics=("kid",))

    cmmd = commands.add_parser("cmmd", parents=[common], help="CMMD (MMD of CLIP embeddings)",
                               description="CMMD (Jayasumana et al. 2024): 1000 MMD^2 of L2-normalised CLIP "
                               "ViT-L/14@336px embeddings, Gaussian kernel of bandwidth 10. REAL and FAKE "
                               "are image folders or embeddings .npy (used as they are).")
    real_and_fake(cmmd)
    features_option(cmmd, "cmmd")
    cmmd.set_defaults(metrics=("cmmd",))

    prdc = commands.add_parser("prdc", parents=[common], help="precision, recall, density, coverage",
                               description="Precision, recall, density and coverage of the generated set "
                               "FAKE against the real set REAL (k-nearest-neighbour balls). Each is an image "
                               "folder or a features .npy.")
    real_and_fake(prdc)
    features_option(prdc, "prdc")
    prdc.add_argument("--k", type=int, default=5, help="neighbourhood size (default 5; 3 for Kynkaanniemi's)")
    prdc.add_argument("--ball", choices=("open", "closed"), default="open",
                      help="open balls (<, the prdc package, default) or closed (<=, torch-fidelity)")
    prdc.set_defaults(metrics=("prdc",))

    fd_inf = commands.add_parser("fd-inf", parents=[common],
                                 help="FD extrapolated to infinitely many samples",
                                 description="FD-infinity (Chong and Forsyth 2020, dgm-eval's protocol): the "
                                 "FD of random subsets of FAKE against all of REAL, extrapolated to 1/N = 0. "
                                 "REAL is an image folder, a statistics .npz or a features .npy; FAKE an "
                                 "image folder or a features .npy.")
    real_and_fake(fd_inf)
    features_option(fd_inf, "fd-inf")
    fd_inf.add_argument("--num-points", type=int, default=15, help="subset sizes (default 15)")
    fd_inf.add_argument("--seed", type=int, default=0, help="seed of the subsets (default 0)")
    fd_inf.set_defaults(metrics=("fd-inf",))

    score = commands.add_parser("is", parents=[common], help="Inception Score",
                                description="Inception Score (mean and std over splits) of an image "
                                "folder, from the logits without bias as in the original code.")
    score.add_argument("paths", nargs=1, metavar="PATH")
    score.add_argument("--splits", type=int, default=10, help="contiguous splits (default 10)")
    score.set_defaults(metrics=("is",), dims=2048)

    every = commands.add_parser("all", parents=[common],
                                help="FID (or FD), KID and the IS of PATH1 in one pass",
                                description="FID and KID between the image folders PATH1 and PATH2 and "
                                "the Inception Score of PATH1 (the generated set), with one forward pass "
                                "per image. With --features NAME, FD and KID on NAME's features (the IS "
                                "still needs the Inception).")
    every.add_argument("paths", nargs=2, metavar="PATH")
    dims_option(every, "Inception features for FID and KID (without --features)")
    features_option(every, "all")
    kid_options(every)
    every.add_argument("--splits", type=int, default=10, help="IS splits (default 10)")
    every.set_defaults(metrics=("fid", "kid", "is"))

    demo = commands.add_parser("demo", help="run the otmetrics demo", add_help=False,
                               description="Run the otmetrics demo; arguments are passed to it.")
    demo.add_argument("demo_args", nargs=argparse.REMAINDER)
    return parser


def real_and_fake(parser):
    """The two inputs of an asymmetric command, in this order (``args.real``, ``args.fake``)."""
    parser.add_argument("real", metavar="REAL", help="the real images (or their features)")
    parser.add_argument("fake", metavar="FAKE", help="the generated images (or their features)")


def kid_options(parser):
    """The options of the KID subsets and kernel."""
    parser.add_argument("--subsets", type=int, default=100, help="random subsets (default 100)")
    parser.add_argument("--subset-size", type=int, default=1000, help="samples per subset (default 1000)")
    parser.add_argument("--degree", type=int, default=3, help="polynomial kernel degree (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsets (default 0)")
