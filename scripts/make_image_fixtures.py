"""Regenerates tests/QueCC.Model.Tests/Fixtures/images with PIL (the resampler CLIPImageProcessor uses).
Run with Debian's python3-pil: /usr/bin/python3 scripts/make_image_fixtures.py"""
import os
import numpy as np
from PIL import Image

out = os.path.join(os.path.dirname(__file__), "..", "tests", "QueCC.Model.Tests", "Fixtures", "images")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
a = rng.integers(0, 256, size=(37, 50, 3), dtype=np.uint8)
# a smooth ramp in red next to noise in green/blue, so the filter sees both
yy, xx = np.mgrid[0:37, 0:50]
a[..., 0] = ((xx * 5 + yy * 3) % 256).astype(np.uint8)
im = Image.fromarray(a, "RGB")
im.save(os.path.join(out, "rand_50x37.png"))
for (w, h) in [(20, 15), (90, 66), (21, 16), (50, 16), (7, 37)]:
    im.resize((w, h), resample=Image.BICUBIC).save(os.path.join(out, f"pil_bicubic_50x37_to_{w}x{h}.png"))
Image.new("RGB", (40, 30), (200, 30, 90)).save(os.path.join(out, "solid_200_30_90.jpg"), quality=95)
with open(os.path.join(out, "not_an_image.png"), "w") as f:
    f.write("this is text, not a PNG\n")
