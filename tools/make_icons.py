"""The app's icons (assets/icons/*.png), drawn from code: a red record dot in a white ring on the header's slate.

Pillow is not a dependency, so the PNGs are written with zlib; the circles' edges are anti-aliased by their
distance to each pixel. `python -m tools.make_icons` rewrites the files; a test checks they match this code.
"""

import struct
import zlib
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / 'assets' / 'icons'
SLATE, WHITE, RED = (0x26, 0x32, 0x38), (0xFF, 0xFF, 0xFF), (0xC6, 0x28, 0x28)
# (file name, side in px, maskable): a maskable icon keeps its drawing inside the central 80 % safe zone.
VARIANTS = (
    ('icon-192.png', 192, False),
    ('icon-512.png', 512, False),
    ('maskable-512.png', 512, True),
    ('apple-touch-icon.png', 180, True),  # iOS rounds the corners itself and wants no transparency
)


def coverage(distance: float, radius: float) -> float:
    """How much of a pixel whose centre is `distance` from the centre lies inside a circle of `radius`."""
    return min(1.0, max(0.0, radius - distance + 0.5))


def mix(under: tuple[int, ...], over: tuple[int, ...], amount: float) -> tuple[int, ...]:
    return tuple(round(u + (o - u) * amount) for u, o in zip(under, over, strict=True))


def pixel(x: int, y: int, side: int, full_bleed: bool) -> tuple[int, ...]:
    centre = side / 2
    distance = ((x + 0.5 - centre) ** 2 + (y + 0.5 - centre) ** 2) ** 0.5
    scale = 0.8 if full_bleed else 1.0  # maskable: everything inside the safe zone
    colour: tuple[int, ...] = (*SLATE, 255)
    if not full_bleed:
        colour = (*SLATE, round(255 * coverage(distance, centre)))  # a round icon, transparent outside
    colour = mix(colour, (*WHITE, colour[3]), coverage(distance, centre * 0.62 * scale))
    return mix(colour, (*RED, colour[3]), coverage(distance, centre * 0.46 * scale))


def png(side: int, full_bleed: bool) -> bytes:
    rows = b''.join(
        b'\x00' + bytes(channel for x in range(side) for channel in pixel(x, y, side, full_bleed)) for y in range(side)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    header = struct.pack('>IIBBBBB', side, side, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b'')


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    for name, side, full_bleed in VARIANTS:
        (ICONS / name).write_bytes(png(side, full_bleed))


if __name__ == '__main__':
    main()
