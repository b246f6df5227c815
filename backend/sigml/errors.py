"""Domain errors of the ML core; the API maps each to one HTTP status and error code."""

from __future__ import annotations


class SigmlError(Exception):
    """Base class for every error the ML core raises on purpose."""

    code = "sigml_error"


class ImageError(SigmlError, ValueError):
    """The input could not be turned into a signature tensor; `details` names the limit it broke (e.g.
    `max_pixels`), so that a caller can report it without parsing the message."""

    code = "invalid_image"

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = dict(details or {})


class UnreadableImageError(ImageError):
    """Not an image, truncated, zero bytes or an unsupported format."""

    code = "invalid_image"


class ImageTooLargeError(ImageError):
    """Pixel dimensions beyond the configured limit (decompression-bomb guard)."""

    code = "image_too_large"


class BlankImageError(ImageError):
    """No ink could be found: a blank or nearly blank page."""

    code = "blank_image"


class CropError(ImageError):
    """A crop box that does not select any part of the image."""

    code = "invalid_crop"


class NotASignatureError(ImageError):
    """The image is not a signature crop the model can judge (`sigml.quality`): a page, a photo, a frame."""

    code = "not_a_signature"

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message, {"problems": problems or []})
        self.problems = problems or []


class TooSmallError(NotASignatureError):
    """The signature's ink is smaller than any the model was trained on (`sigml.quality.MIN_INK_WIDTH` x
    `MIN_INK_HEIGHT` pixels): `details` gives the minimum and what was sent."""

    code = "too_small"

    def __init__(self, message: str, problems: list | None = None, *, minimum: dict | None = None,
                 ink_box: dict | None = None) -> None:
        super().__init__(message, problems)
        self.details.update({"minimum": minimum or {}, "ink_box": ink_box or {}})


class DatasetError(SigmlError, ValueError):
    """A dataset folder is missing, empty or of an unknown layout."""

    code = "dataset_error"


class ModelLoadError(SigmlError):
    """Weights or model card missing, corrupt or inconsistent."""

    code = "model_unavailable"

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"cannot load model from {path}: {reason}")
        self.path = path
        self.reason = reason
