"""Tests for app.portraits.processing. Every test image is generated here with Pillow."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import subprocess
import sys
import zipfile
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, ImageDraw, ImageFile, JpegImagePlugin, PngImagePlugin

from app.portraits import processing
from app.portraits.processing import (
    FULL_MAX_SIDE,
    MAX_PIXELS,
    OUTPUT_CONTENT_TYPE,
    THUMB_MAX_SIDE,
    PortraitProcessingError,
    ProcessedPortrait,
    Rendition,
    detect_format,
    process_portrait,
)

# --------------------------------------------------------------------------------------------
# helpers


def photo(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A small image with gradients and noise, so encoders have real content to work on."""
    horizontal = Image.linear_gradient("L").rotate(90).resize(size)
    vertical = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 30)
    return Image.merge("RGB", (horizontal, vertical, noise)).convert(mode)


def encode(image: Image.Image, image_format: str, **params: object) -> bytes:
    if image_format == "PNG":
        params.setdefault("compress_level", 1)  # keeps the big noisy test images fast
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **params)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def near(pixel: float | tuple[int, ...] | None, expected: tuple[int, ...], tolerance: int) -> bool:
    """Every channel of ``pixel`` is within ``tolerance`` of ``expected`` (lossy output)."""
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def riff_chunks(data: bytes) -> list[bytes]:
    """FourCCs of the top-level chunks of a WebP file; asserts the RIFF framing is exact."""
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    assert struct.unpack_from("<I", data, 4)[0] + 8 == len(data), "trailing or missing bytes"
    chunks = []
    offset = 12
    while offset < len(data):
        fourcc, size = struct.unpack_from("<4sI", data, offset)
        chunks.append(fourcc)
        offset += 8 + size + (size & 1)
    assert offset == len(data)
    return chunks


def assert_clean_webp(rendition: Rendition) -> Image.Image:
    """The rendition is a plain, metadata-free WebP whose header matches its declared size."""
    assert rendition.content_type == OUTPUT_CONTENT_TYPE == "image/webp"
    assert set(riff_chunks(rendition.data)) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}
    image = decode(rendition.data)
    assert image.format == "WEBP"
    assert image.size == (rendition.width, rendition.height)
    assert getattr(image, "n_frames", 1) == 1
    for key in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "dpi"):
        assert key not in image.info
    assert len(image.getexif()) == 0
    return image


def rejected(data: bytes | io.BytesIO, **kwargs: int) -> PortraitProcessingError:
    with pytest.raises(PortraitProcessingError) as caught:
        process_portrait(data, **kwargs)
    return caught.value


def set_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR dimensions of a PNG (with a valid CRC) without touching pixel data."""
    assert data[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return data[:16] + ihdr + crc + data[33:]


def set_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the SOF dimensions of a baseline JPEG without touching the scan data."""
    marker = data.index(b"\xff\xc0")
    start = marker + 5  # marker(2) + length(2) + precision(1)
    return data[:start] + struct.pack(">HH", height, width) + data[start + 4 :]


def linear_rgb_profile() -> bytes:
    """An RGB ICC profile with sRGB primaries but linear (gamma 1.0) tone curves."""
    raw = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack_from(">I", raw, 128)
    for index in range(count):
        signature, offset, _size = struct.unpack_from(">4sII", raw, 132 + 12 * index)
        if signature in (b"rTRC", b"gTRC", b"bTRC"):
            assert raw[offset : offset + 4] == b"para"
            struct.pack_into(">4sIHHi", raw, offset, b"para", 0, 0, 0, 1 << 16)
    return bytes(raw)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def gps_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam Industries"
    exif[ExifTags.Base.Model] = "Tracker 3000"
    exif[ExifTags.Base.Software] = "LeakyPhotoApp"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    return exif


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Secret Author"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
LEAK_MARKERS = (b"SpyCam", b"Tracker 3000", b"LeakyPhotoApp", b"Secret Author", b"Exif")


# --------------------------------------------------------------------------------------------
# accepted formats and colour modes


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_supported_formats_are_accepted_and_reencoded_as_webp(image_format: str) -> None:
    result = process_portrait(encode(photo((64, 48)), image_format))

    assert isinstance(result, ProcessedPortrait)
    full = assert_clean_webp(result.full)
    thumb = assert_clean_webp(result.thumb)
    assert (result.full.width, result.full.height) == (64, 48)
    assert (result.thumb.width, result.thumb.height) == (64, 48)
    assert full.mode == thumb.mode == "RGB"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "PNG"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 8, "JPEG"),
        (b"RIFF\x10\0\0\0WEBPVP8 ", "WEBP"),
        (b"RIFF\x10\0\0\0WAVEfmt ", None),
        (b"GIF89a", None),
        (b"", None),
        (b"\xff\xd8", None),
    ],
)
def test_detect_format_uses_only_the_leading_bytes(data: bytes, expected: str | None) -> None:
    assert detect_format(data) == expected
    stream = io.BytesIO(b"xx" + data)
    stream.seek(2)
    assert detect_format(stream) == expected
    assert stream.tell() == 2


def test_rgba_png_keeps_its_alpha_channel() -> None:
    image = photo((80, 60), "RGBA")
    image.putalpha(Image.linear_gradient("L").resize((80, 60)))
    ImageDraw.Draw(image).rectangle((0, 0, 19, 59), fill=(255, 0, 0, 0))

    result = process_portrait(encode(image, "PNG"))

    full = assert_clean_webp(result.full)
    thumb = assert_clean_webp(result.thumb)
    assert full.mode == thumb.mode == "RGBA"
    assert full.getpixel((5, 30))[3] == 0
    for x, y in ((30, 10), (50, 30), (79, 59)):
        assert abs(full.getpixel((x, y))[3] - image.getpixel((x, y))[3]) <= 2


def test_fully_opaque_alpha_channel_is_dropped() -> None:
    result = process_portrait(encode(photo((40, 40), "RGBA"), "PNG"))
    assert assert_clean_webp(result.full).mode == "RGB"


def test_palette_png_with_transparency_becomes_rgba() -> None:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    ImageDraw.Draw(image).rectangle((20, 0, 39, 39), fill=1)
    ImageDraw.Draw(image).rectangle((0, 20, 19, 39), fill=2)
    data = encode(image, "PNG", transparency=0)
    assert decode(data).mode == "P"

    full = assert_clean_webp(process_portrait(data).full)

    assert full.mode == "RGBA"
    assert full.getpixel((5, 5))[3] == 0  # palette index 0 was transparent
    assert near(full.getpixel((30, 10)), (255, 0, 0, 255), 50)
    assert near(full.getpixel((10, 30)), (0, 0, 255, 255), 50)


def test_palette_png_without_transparency_becomes_rgb() -> None:
    image = photo((40, 40)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    full = assert_clean_webp(process_portrait(encode(image, "PNG")).full)
    assert full.mode == "RGB"


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    image = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red in CMYK
    data = encode(image, "JPEG", quality=95)
    assert decode(data).mode == "CMYK"

    full = assert_clean_webp(process_portrait(data).full)

    assert full.mode == "RGB"
    assert near(full.getpixel((32, 32)), (255, 0, 0), 60)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_grayscale_is_accepted(image_format: str) -> None:
    image = Image.linear_gradient("L").resize((64, 64))
    full = assert_clean_webp(process_portrait(encode(image, image_format)).full)
    assert full.mode == "RGB"
    grey = image.getpixel((32, 32))
    assert isinstance(grey, int)
    assert near(full.getpixel((32, 32)), (grey, grey, grey), 8)


def test_grayscale_with_alpha_png_becomes_rgba() -> None:
    image = Image.new("LA", (32, 32), (128, 255))
    ImageDraw.Draw(image).rectangle((0, 0, 15, 31), fill=(200, 0))
    full = assert_clean_webp(process_portrait(encode(image, "PNG")).full)
    assert full.mode == "RGBA"
    assert full.getpixel((4, 4))[3] == 0
    assert full.getpixel((24, 4))[3] == 255


@pytest.mark.parametrize(
    ("mode", "key", "opaque"), [("L", 10, 200), ("RGB", (10, 20, 30), (200, 100, 50))]
)
def test_png_colour_key_transparency_becomes_alpha(
    mode: str, key: int | tuple[int, int, int], opaque: int | tuple[int, int, int]
) -> None:
    image = Image.new(mode, (32, 32), opaque)
    ImageDraw.Draw(image).rectangle((0, 0, 15, 31), fill=key)
    full = assert_clean_webp(process_portrait(encode(image, "PNG", transparency=key)).full)
    assert full.mode == "RGBA"
    assert full.getpixel((4, 4))[3] == 0
    assert full.getpixel((24, 4))[3] == 255


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    image = Image.new("I;16", (64, 64), 0x8000)  # mid-grey in 16 bits
    data = encode(image, "PNG")
    assert decode(data).mode == "I;16"

    full = assert_clean_webp(process_portrait(data).full)

    assert near(full.getpixel((32, 32)), (128, 128, 128), 3)


def test_sixteen_bit_png_with_transparent_colour_key_becomes_rgba() -> None:
    image = Image.new("I;16", (32, 32), 0xFFFF)
    ImageDraw.Draw(image).rectangle((0, 0, 15, 31), fill=0x1234)
    full = assert_clean_webp(process_portrait(encode(image, "PNG", transparency=0x1234)).full)
    assert full.mode == "RGBA"
    assert full.getpixel((4, 4))[3] == 0
    assert full.getpixel((24, 4)) == (255, 255, 255, 255)


def test_one_bit_png_is_accepted() -> None:
    image = Image.new("1", (40, 40), 0)
    ImageDraw.Draw(image).rectangle((0, 0, 19, 39), fill=1)
    full = assert_clean_webp(process_portrait(encode(image, "PNG")).full)
    assert full.mode == "RGB"
    assert full.getpixel((5, 20))[0] > 200
    assert full.getpixel((35, 20))[0] < 60


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_animated_input_keeps_only_the_first_frame(image_format: str) -> None:
    frames = [Image.new("RGB", (48, 48), colour) for colour in ("red", "blue", "lime")]
    data = encode(frames[0], image_format, save_all=True, append_images=frames[1:], duration=100)
    assert decode(data).n_frames == 3

    result = process_portrait(data)

    for rendition in (result.full, result.thumb):
        assert near(assert_clean_webp(rendition).getpixel((10, 10)), (255, 0, 0), 50)


def test_icc_profile_is_applied_then_dropped() -> None:
    image = Image.new("RGB", (32, 32), (128, 128, 128))
    tagged_linear = process_portrait(encode(image, "PNG", icc_profile=linear_rgb_profile()))
    tagged_srgb = process_portrait(encode(image, "JPEG", quality=95, icc_profile=srgb_profile()))

    # 128 in a linear-light space is ~188 in sRGB; an sRGB tag leaves the value alone.
    linear_value = assert_clean_webp(tagged_linear.full).getpixel((16, 16))[0]
    srgb_value = assert_clean_webp(tagged_srgb.full).getpixel((16, 16))[0]
    assert abs(linear_value - 188) <= 4
    assert abs(srgb_value - 128) <= 4
    assert b"ICCP" not in tagged_linear.full.data


def test_rgba_with_icc_profile_keeps_alpha() -> None:
    image = Image.new("RGBA", (32, 32), (128, 128, 128, 255))
    ImageDraw.Draw(image).rectangle((0, 0, 15, 31), fill=(0, 0, 0, 0))
    full = assert_clean_webp(
        process_portrait(encode(image, "PNG", icc_profile=linear_rgb_profile())).full
    )
    assert full.mode == "RGBA"
    assert full.getpixel((4, 4))[3] == 0
    assert abs(full.getpixel((24, 4))[0] - 188) <= 4


@pytest.mark.parametrize("icc_profile", [b"not an icc profile", srgb_profile()[:60]])
def test_unusable_icc_profile_is_ignored(icc_profile: bytes) -> None:
    image = Image.new("RGB", (32, 32), (128, 128, 128))
    full = assert_clean_webp(process_portrait(encode(image, "PNG", icc_profile=icc_profile)).full)
    assert abs(full.getpixel((16, 16))[0] - 128) <= 4


# --------------------------------------------------------------------------------------------
# rejected inputs


def _gif() -> bytes:
    return encode(photo().convert("P"), "GIF")


def _bmp() -> bytes:
    return encode(photo(), "BMP")


def _tiff() -> bytes:
    return encode(photo(), "TIFF")


def _ico() -> bytes:
    return encode(photo((32, 32)), "ICO")


def _pdf() -> bytes:
    return encode(photo(), "PDF")


UNSUPPORTED = {
    "gif": _gif,
    "bmp": _bmp,
    "tiff": _tiff,
    "ico": _ico,
    "pdf": _pdf,
    "plain text": lambda: b"hello, I am definitely a portrait\n",
    "empty": lambda: b"",
    "svg": lambda: (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<script>alert(1)</script><rect width="10" height="10"/></svg>'
    ),
    "html": lambda: b"<!doctype html><script>alert(document.cookie)</script>",
    "png after a prefix": lambda: b"\0" + encode(photo(), "PNG"),
    "riff but not webp": lambda: b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 28,
}


@pytest.mark.parametrize("make", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_unsupported_inputs_are_rejected_with_415(make) -> None:  # type: ignore[no-untyped-def]
    error = rejected(make())
    assert error.kind == "unsupported"
    assert error.http_status == 415
    assert "PNG, JPEG or WebP" in error.message
    assert str(error) == error.message


def test_declared_file_name_is_ignored() -> None:
    gif_named_png = io.BytesIO(_gif())
    gif_named_png.name = "portrait.png"
    assert rejected(gif_named_png).kind == "unsupported"

    png_named_jpg = io.BytesIO(encode(photo(), "PNG"))
    png_named_jpg.name = "portrait.jpg"
    assert process_portrait(png_named_jpg).full.width == 64


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("keep", [0.02, 0.3, 0.6, 0.95])
def test_truncated_images_are_invalid(image_format: str, keep: float) -> None:
    data = encode(Image.effect_noise((200, 150), 64).convert("RGB"), image_format)
    error = rejected(data[: max(int(len(data) * keep), 13)])
    assert error.kind == "invalid"
    assert error.http_status == 422
    assert "corrupt" in error.message


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\0\0\0\0WEBP"])
def test_bare_signature_is_invalid_not_unsupported(data: bytes) -> None:
    assert rejected(data).kind == "invalid"


class LoadSpy:
    """Records whether any image pixel data gets decoded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = ImageFile.ImageFile.load

        def load(image: ImageFile.ImageFile) -> object:
            self.calls += 1
            return original(image)

        monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_png_over_40_megapixels_is_invalid_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode(Image.new("1", (8000, 6000), 1), "PNG")  # 48 MP, a few kB on disk
    assert len(data) < 100_000
    spy = LoadSpy(monkeypatch)

    error = rejected(data)

    assert error.kind == "invalid"
    assert "40 megapixels" in error.message
    assert spy.calls == 0


def test_jpeg_header_over_limit_is_invalid_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = set_jpeg_size(encode(photo((64, 48)), "JPEG"), 8000, 6000)
    spy = LoadSpy(monkeypatch)
    assert rejected(data).kind == "invalid"
    assert spy.calls == 0


def test_webp_canvas_over_limit_is_rejected_before_pillow_opens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A VP8X (extended) WebP whose canvas claims 16384x16384 = 268 MP. Pillow's WebP plugin would
    # allocate the canvas inside Image.open, so the check has to happen before that.
    image = photo((64, 48), "RGBA")
    image.putalpha(128)
    data = bytearray(encode(image, "WEBP"))
    assert data[12:16] == b"VP8X"
    data[24:27] = (16384 - 1).to_bytes(3, "little")
    data[27:30] = (16384 - 1).to_bytes(3, "little")
    opened = []
    original_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or original_open(*a, **k))

    assert rejected(bytes(data)).kind == "invalid"
    assert opened == []


def test_exactly_at_the_limit_is_accepted_and_custom_limit_applies() -> None:
    data = encode(photo((100, 100)), "PNG")
    assert process_portrait(data, max_pixels=10_000).full.width == 100
    error = rejected(data, max_pixels=9_999)
    assert error.kind == "invalid"
    assert "0.009999 megapixels" in error.message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_decompression_bomb_protection_still_applies() -> None:
    # Even with a huge per-call limit, Pillow's own bomb check (MAX_IMAGE_PIXELS) rejects it.
    assert Image.MAX_IMAGE_PIXELS is not None
    side = int((Image.MAX_IMAGE_PIXELS * 2) ** 0.5) + 10  # > 2x the limit: DecompressionBombError
    bomb = set_png_size(encode(photo(), "PNG"), side, side)
    assert rejected(bomb, max_pixels=10**12).kind == "invalid"

    side = int((Image.MAX_IMAGE_PIXELS * 1.5) ** 0.5)  # between 1x and 2x: Pillow only warns
    warned = set_png_size(encode(photo(), "PNG"), side, side)
    assert rejected(warned, max_pixels=10**12).kind == "invalid"


def test_invalid_max_pixels_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        process_portrait(encode(photo(), "PNG"), max_pixels=0)


# --------------------------------------------------------------------------------------------
# metadata and orientation


def test_jpeg_exif_gps_xmp_icc_and_comment_are_removed() -> None:
    data = encode(
        photo((120, 90)),
        "JPEG",
        exif=gps_exif(),
        xmp=XMP,
        icc_profile=srgb_profile(),
        comment=b"shot at 221B Baker Street",
    )
    source = decode(data)
    assert ExifTags.IFD.GPSInfo in source.getexif()
    assert {"exif", "xmp", "icc_profile", "comment"} <= source.info.keys()

    result = process_portrait(data)

    for rendition in (result.full, result.thumb):
        output = assert_clean_webp(rendition)
        assert output.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
        for marker in (*LEAK_MARKERS, b"Baker Street", b"ICCP", b"XMP "):
            assert marker not in rendition.data


def test_png_text_chunks_exif_and_icc_are_removed() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Secret Author")
    info.add_text("Comment", "SpyCam", zip=True)
    info.add_itxt("Description", "Tracker 3000", lang="en")
    data = encode(photo((60, 40)), "PNG", pnginfo=info, exif=gps_exif(), icc_profile=srgb_profile())
    assert "Author" in decode(data).info

    result = process_portrait(data)

    for rendition in (result.full, result.thumb):
        output = assert_clean_webp(rendition)
        assert not {"Author", "Comment", "Description"} & output.info.keys()
        for marker in LEAK_MARKERS:
            assert marker not in rendition.data


def test_webp_exif_xmp_and_icc_are_removed() -> None:
    data = encode(photo((60, 40)), "WEBP", exif=gps_exif(), xmp=XMP, icc_profile=srgb_profile())
    assert {"exif", "xmp", "icc_profile"} <= decode(data).info.keys()

    result = process_portrait(data)

    for rendition in (result.full, result.thumb):
        assert_clean_webp(rendition)
        for marker in LEAK_MARKERS:
            assert marker not in rendition.data


def _marked_landscape(size: tuple[int, int] = (200, 100)) -> Image.Image:
    """Grey landscape image with a red block in the stored top-left corner."""
    image = Image.new("RGB", size, (128, 128, 128))
    ImageDraw.Draw(image).rectangle((0, 0, size[0] // 5, size[1] // 5), fill=(255, 0, 0))
    return image


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(image_format: str) -> None:
    # Orientation 6: the viewer rotates 90 degrees clockwise, so the stored top-left corner
    # ends up top-right and the 200x100 landscape becomes a 100x200 portrait.
    data = encode(_marked_landscape(), image_format, exif=gps_exif(orientation=6))

    result = process_portrait(data)

    full = assert_clean_webp(result.full)
    assert full.size == (100, 200)
    assert (result.thumb.width, result.thumb.height) == (100, 200)
    assert near(full.getpixel((95, 5)), (255, 0, 0), 50)  # top-right: the red marker
    assert near(full.getpixel((5, 5)), (128, 128, 128), 20)


def test_orientation_is_applied_on_large_jpeg_with_reduced_decoding() -> None:
    data = encode(_marked_landscape((3000, 1500)), "JPEG", exif=gps_exif(orientation=6))
    result = process_portrait(data)
    assert (result.full.width, result.full.height) == (512, 1024)
    assert (result.thumb.width, result.thumb.height) == (128, 256)
    assert near(decode(result.full.data).getpixel((500, 10)), (255, 0, 0), 50)


@pytest.mark.parametrize(
    ("orientation", "size"), [(1, (200, 100)), (3, (200, 100)), (5, (100, 200)), (8, (100, 200))]
)
def test_other_orientations(orientation: int, size: tuple[int, int]) -> None:
    data = encode(_marked_landscape(), "PNG", exif=gps_exif(orientation=orientation))
    result = process_portrait(data)
    assert (result.full.width, result.full.height) == size


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_corrupt_exif_block_does_not_reject_a_good_image() -> None:
    data = encode(photo((50, 40)), "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7fgarbage")
    result = process_portrait(data)
    assert (result.full.width, result.full.height) == (50, 40)
    assert b"garbage" not in result.full.data


# --------------------------------------------------------------------------------------------
# polyglots


def _zip_payload() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("evil.js", "<script>alert('polyglot-zip-payload')</script>")
        archive.writestr("README.txt", "nothing to see here " * 20)
    return buffer.getvalue()


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_polyglot_payload_does_not_survive(image_format: str) -> None:
    clean = encode(photo((90, 60)), image_format)
    script = b"<script>alert('polyglot-script-payload')</script><?php system($_GET['c']); ?>"
    payload = _zip_payload() + script
    polyglot = clean + payload
    assert zipfile.is_zipfile(io.BytesIO(polyglot))

    result = process_portrait(polyglot)

    for rendition in (result.full, result.thumb):
        assert_clean_webp(rendition)  # also proves there is nothing after the RIFF chunk
        for marker in (b"PK\x03\x04", b"evil.js", b"polyglot", b"<script", b"<?php"):
            assert marker not in rendition.data
    # The output only depends on the pixels: identical to processing the clean image.
    assert result.digest == process_portrait(clean).digest


def test_payload_hidden_in_metadata_does_not_survive() -> None:
    payload = b"<script>alert('polyglot-comment-payload')</script>"
    data = encode(photo((90, 60)), "JPEG", comment=payload, exif=gps_exif())
    result = process_portrait(data)
    assert b"polyglot" not in result.full.data
    assert b"polyglot" not in result.thumb.data


# --------------------------------------------------------------------------------------------
# sizes


@pytest.mark.parametrize(
    ("size", "full_size", "thumb_size"),
    [
        ((3000, 1500), (1024, 512), (256, 128)),
        ((100, 50), (100, 50), (100, 50)),
        ((600, 2400), (256, 1024), (64, 256)),
        ((1024, 1024), (1024, 1024), (256, 256)),
        ((2048, 2048), (1024, 1024), (256, 256)),
        ((200, 300), (200, 300), (171, 256)),
        ((5000, 10), (1024, 2), (256, 1)),
        ((1, 1), (1, 1), (1, 1)),
    ],
)
@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_output_sizes(
    image_format: str,
    size: tuple[int, int],
    full_size: tuple[int, int],
    thumb_size: tuple[int, int],
) -> None:
    result = process_portrait(encode(photo(size), image_format))

    assert (result.full.width, result.full.height) == full_size
    assert (result.thumb.width, result.thumb.height) == thumb_size
    assert_clean_webp(result.full)
    assert_clean_webp(result.thumb)
    assert max(full_size) <= FULL_MAX_SIDE
    assert max(thumb_size) <= THUMB_MAX_SIDE


def test_large_jpeg_is_downscaled_with_good_quality() -> None:
    # Exercises the reduced-scale JPEG decode: a smooth gradient must stay smooth and accurate.
    image = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    full = decode(process_portrait(encode(image, "JPEG", quality=95)).full.data)
    assert full.size == (1024, 768)
    expected = image.resize((1024, 768), Image.Resampling.LANCZOS)
    for y in (10, 384, 760):
        assert abs(full.getpixel((512, y))[0] - expected.getpixel((512, y))[0]) <= 4


def test_large_jpeg_is_decoded_at_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    requests = []
    original = JpegImagePlugin.JpegImageFile.draft

    def draft(image: JpegImagePlugin.JpegImageFile, mode: str | None, size: object) -> object:
        requests.append(size)
        return original(image, mode, size)  # type: ignore[arg-type]

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)
    process_portrait(encode(photo((3000, 1500)), "JPEG"))
    process_portrait(encode(photo((1500, 1000)), "JPEG"))  # < 2x the target: decoded in full

    assert requests == [(1024, 512)]


def test_module_constants() -> None:
    assert MAX_PIXELS == 40_000_000
    assert FULL_MAX_SIDE == 1024
    assert THUMB_MAX_SIDE == 256
    assert OUTPUT_CONTENT_TYPE == "image/webp"


# --------------------------------------------------------------------------------------------
# result object and inputs


def test_digest_is_sha256_of_full_data_and_deterministic() -> None:
    data = encode(photo((300, 200)), "PNG")
    first = process_portrait(data)
    second = process_portrait(data)
    assert first.digest == hashlib.sha256(first.full.data).hexdigest()
    assert len(first.digest) == 64
    assert first == second


def test_results_are_immutable() -> None:
    result = process_portrait(encode(photo(), "PNG"))
    with pytest.raises(AttributeError):
        result.digest = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        result.full.width = 1  # type: ignore[misc]


def test_accepts_bytes_like_and_binary_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = encode(photo(), "JPEG")
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    expected = process_portrait(data).digest

    assert process_portrait(bytearray(data)).digest == expected
    assert process_portrait(memoryview(data)).digest == expected
    assert process_portrait(io.BytesIO(data)).digest == expected
    with path.open("rb") as upload:
        assert process_portrait(upload).digest == expected


def test_error_messages_do_not_leak_internals() -> None:
    errors = [
        rejected(b"GIF89a" + b"\0" * 20),
        rejected(encode(photo(), "PNG")[:100]),
        rejected(set_png_size(encode(photo(), "PNG"), 9000, 9000)),
    ]
    for error in errors:
        assert error.message.endswith(".")
        for internal in ("PIL", "Pillow", "Traceback", "truncated (", "Errno", "decoder"):
            assert internal not in error.message
        assert repr(error).startswith("PortraitProcessingError(kind=")


# --------------------------------------------------------------------------------------------
# fuzzing


def _mutations(rng: random.Random, seeds: list[bytes], count: int) -> list[bytes]:
    cases = []
    for index in range(count):
        kind = index % 5
        if kind == 0:
            cases.append(rng.randbytes(rng.randrange(0, 512)))
        elif kind == 1:
            prefix = rng.choice([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\0\0\0\0WEBPVP8 "])
            cases.append(prefix + rng.randbytes(rng.randrange(0, 512)))
        elif kind == 2:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cases.append(bytes(data))
        elif kind == 3:
            data = rng.choice(seeds)
            cases.append(data[: rng.randrange(len(data))])
        else:
            data = bytearray(rng.choice(seeds))
            start = rng.randrange(len(data))
            data[start : start + rng.randrange(1, 64)] = rng.randbytes(rng.randrange(0, 64))
            cases.append(bytes(data))
    return cases


# Pillow warns about the broken EXIF blocks the mutations create; that is expected noise.
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_fuzzed_inputs_only_ever_raise_portrait_processing_error() -> None:
    rng = random.Random(20240601)
    rgba = photo((40, 30), "RGBA")
    seeds = [
        encode(photo((40, 30)), "PNG"),
        encode(rgba, "PNG"),
        encode(photo((40, 30)), "JPEG", exif=gps_exif(orientation=6)),
        encode(photo((40, 30)), "JPEG", progressive=True),
        encode(Image.new("CMYK", (24, 24), (1, 2, 3, 4)), "JPEG"),
        encode(photo((40, 30)), "WEBP", quality=80),
        encode(rgba, "WEBP", lossless=True),
        encode(photo((40, 30)).convert("P"), "PNG", transparency=3, icc_profile=srgb_profile()),
    ]
    outcomes = {"ok": 0, "unsupported": 0, "invalid": 0}

    for data in _mutations(rng, seeds, 400):
        try:
            result = process_portrait(data)
        except PortraitProcessingError as error:
            outcomes[error.kind] += 1  # KeyError for any other kind
            continue
        assert_clean_webp(result.full)
        outcomes["ok"] += 1

    assert all(outcomes.values()), outcomes  # the fuzzer reached every outcome


def test_processing_module_is_framework_free() -> None:
    # Load the module file on its own, with Flask made unimportable, and check that neither
    # Flask nor anything from the ``app`` package was imported.
    code = (
        "import importlib.util, sys\n"
        "sys.modules['flask'] = None\n"
        f"spec = importlib.util.spec_from_file_location('standalone', {processing.__file__!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['standalone'] = module\n"
        "spec.loader.exec_module(module)\n"
        "loaded = [n for n, m in sys.modules.items() if m is not None]\n"
        "assert not [n for n in loaded if n.split('.')[0] in ('app', 'flask', 'werkzeug')]\n"
        "assert module.process_portrait is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
