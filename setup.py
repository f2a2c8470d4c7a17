"""Build hook for the one compiled module; everything else is declared in setup.cfg."""

from setuptools import Extension, setup

# -ffp-contract=off: no fused multiply-add, so the module's IoU is bit for bit numpy's on every CPU
setup(
    ext_modules=[
        Extension(
            "cutmix_transfer.wsol._contours",
            ["cutmix_transfer/wsol/_contours.c"],
            extra_compile_args=["-ffp-contract=off"],
        )
    ]
)
