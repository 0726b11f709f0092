"""Peer timings for DataBenchmarks: what torchvision's PIL path costs for the same work, per image, one thread.

Run: /usr/bin/python3 benchmarks/peer/pil_transforms.py   (Debian python3-pil 9.4; no torch needed)
RandomResizedCrop on a PIL image = crop + resize(BILINEAR); Resize(256) + CenterCrop(224) = resize + crop; the
ToTensor + Normalize float step that CrateIL fuses in is not included here (torchvision does it afterwards in torch).
"""
import io
import random
import time

from PIL import Image

W, H = 500, 375
img = Image.new("RGB", (W, H))
px = img.load()
for y in range(H):
    for x in range(W):
        px[x, y] = ((x * 255) // W, (y * 255) // H, ((x // 16 + y // 16) % 2) * 200)
buf = io.BytesIO()
img.save(buf, "JPEG", quality=90)
jpeg = buf.getvalue()


def bench(name, fn, n=200):
    for _ in range(10):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    print(f"{name}: {(time.perf_counter() - t) / n * 1e6:.1f} us")


rng = random.Random(0)


def rrc():
    # A torchvision-like crop draw (area 0.08..1, ratio 3/4..4/3), then crop + bilinear resize to 224 and a flip.
    import math
    area = W * H * rng.uniform(0.08, 1.0)
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w = min(W, int(round(math.sqrt(area * ratio))))
    h = min(H, int(round(math.sqrt(area / ratio))))
    i, j = rng.randint(0, H - h), rng.randint(0, W - w)
    out = img.crop((j, i, j + w, i + h)).resize((224, 224), Image.BILINEAR)
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return out


bench("PIL RandomResizedCrop+flip 500x375 -> 224 (uint8, no normalise)", rrc)
bench("PIL Resize(256)+CenterCrop(224) 500x375 (uint8, no normalise)",
      lambda: img.resize((341, 256), Image.BILINEAR).crop((58, 16, 282, 240)))
bench("PIL JPEG decode 500x375 (+convert RGB)", lambda: Image.open(io.BytesIO(jpeg)).convert("RGB"))
