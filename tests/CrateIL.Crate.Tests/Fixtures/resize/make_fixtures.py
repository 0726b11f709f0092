"""Writes the Pillow oracle for CrateIL's antialiased bilinear resampler (AugmentTests.Resampling_matches_pillow).

Run with Debian's Pillow 9.4 (python3-pil): /usr/bin/python3 make_fixtures.py
torchvision's transforms on PIL images call exactly these PIL operations: RandomResizedCrop = crop + resize(BILINEAR),
Resize(s) = resize of the shorter side to s (longer int(s * long / short)), CenterCrop = crop at round((in - out) / 2).
"""
from PIL import Image

W, H = 61, 47
src = Image.new("RGB", (W, H))
px = src.load()
for y in range(H):
    for x in range(W):
        r = min(255, x * 255 // (W - 1) + (x * 131 + y * 71) % 17 * 3)
        g = y * 255 // (H - 1)
        b = 230 if (x // 5 + y // 4) % 2 else 30
        px[x, y] = (r, g, b)
src.save("source.png")

src.resize((16, 16), Image.BILINEAR).save("down_16x16.png")
src.resize((97, 83), Image.BILINEAR).save("up_97x83.png")
src.crop((5, 7, 5 + 40, 7 + 30)).resize((24, 24), Image.BILINEAR).save("crop_5_7_40x30_to_24.png")
# Resize(36) + CenterCrop(32): 61x47 -> 46x36, crop left round(7.0) = 7, top round(2.0) = 2.
src.resize((46, 36), Image.BILINEAR).crop((7, 2, 39, 34)).save("eval_36_32.png")
# Horizontal flip after a crop-resize.
src.crop((0, 0, 61, 47)).resize((20, 30), Image.BILINEAR).transpose(Image.FLIP_LEFT_RIGHT).save("flip_20x30.png")
