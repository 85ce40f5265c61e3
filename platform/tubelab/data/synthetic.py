"""Built-in synthetic action-recognition dataset in which only motion gives the class away.

Every clip shows a textured background (sometimes panning), one main object whose motion pattern is
the class, and 1-3 distractors that wander slowly or stay still. Shapes, colours, sizes, speeds and
backgrounds are drawn from pools shared by all classes, so a single frame says (almost) nothing about
the class: a motion-sensitive pretraining method should beat a static one. It needs no download and
is generated in well under a minute on one CPU core, in the UCF101 layout so the UCF101 indexer
reads it unchanged. See datasets/synthetic.md.

    from tubelab.data.synthetic import generate
    root = generate("data/synthetic")  # <root>/MoveLeft/v_MoveLeft_g01_c01.mp4, classInd.txt, ...

`generate(out_dir, kind=...)` also writes the proxies of the SEVERE factors (tubelab.data.synthetic_proxy):
kind="fine" (fine-grained classes, UCF101 layout), "count" (repetition counting, UCFRep CSV layout) and
"multi" (multi-label clips, Charades layout). The domain proxy is kind="classes" with style="alt".

This module is the API; the motion classes are written by synthetic_classes, the proxies by
synthetic_proxy, and both share synthetic_files (checks, the H.264 writer, atomic files).
"""

from tubelab.data.synthetic_classes import CLASSES, FINE_CLASSES, generate_classes, render_video
from tubelab.data.synthetic_proxy import generate_proxy

__all__ = ["CLASSES", "FINE_CLASSES", "KINDS", "generate", "generate_classes", "generate_proxy", "render_video"]

KINDS = ("classes", "fine", "count", "multi")  # what generate() writes; see synthetic_proxy.py


def generate(out_dir, *, kind="classes", **params):
    """Write a synthetic dataset of the given kind to out_dir and return its path.

    kind="classes" (default): the motion-class dataset, UCF101 layout; params as generate_classes
        (style="alt" gives the domain-shift proxy).
    kind="fine" | "count" | "multi": the SEVERE-factor proxies; params as
        tubelab.data.synthetic_proxy.generate_proxy.

    A dataset card's `generator:` is passed here as is: generate(root, **card.generator).
    """
    if kind == "classes":
        return generate_classes(out_dir, **params)
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return generate_proxy(kind, out_dir, **params)
