"""Errors worded for the user, with the same status codes as the C++ core (status.h) and Java.

Callers branch on the class or on `.code`, never on the message text. The CLI prints the message
as one line and exits 2.
"""
from __future__ import annotations

# Mirrors android_demo/core/include/edgepose/status.h.
OK = 0
ERR_NOT_FOUND = 1
ERR_BAD_MODEL = 2
ERR_BAD_IMAGE = 3
ERR_BAD_ARGUMENT = 4
ERR_INFERENCE = 5


class EdgeposeError(Exception):
    """A problem with the user's input or environment.

    The message names what is wrong (file, layer, shape) and, where possible, what to do about it.
    Subclasses carry the status code; a plain EdgeposeError is a bad argument.
    """
    code: int = ERR_BAD_ARGUMENT


class ModelNotFoundError(EdgeposeError):
    """A model file or folder (or a checkpoint to download) is missing."""
    code = ERR_NOT_FOUND


class BadModelError(EdgeposeError):
    """A model is unreadable, damaged, or does not match its metadata."""
    code = ERR_BAD_MODEL


class WrongTaskError(BadModelError):
    """A valid model of another kind (a pose model given where a detector is expected)."""


class BadImageError(EdgeposeError):
    """An image or video is missing, unreadable, empty or of an unusable size."""
    code = ERR_BAD_IMAGE


class BadArgumentError(EdgeposeError):
    """A caller mistake: an unknown option value, an impossible combination."""
    code = ERR_BAD_ARGUMENT


class InferenceError(EdgeposeError):
    """ncnn failed to run or returned a tensor of the wrong shape or with non-finite values."""
    code = ERR_INFERENCE


class NoGpuError(EdgeposeError):
    """A GPU device was asked for and the machine has no usable Vulkan device."""
    code = ERR_NOT_FOUND


class NoVulkanLoaderError(NoGpuError):
    """A GPU device was asked for and the Vulkan loader library (libvulkan) is not installed."""


class BadDeviceError(BadArgumentError):
    """A device string that is not cpu / gpu / gpu:N, or a Vulkan device index that does not exist."""


class GpuOutOfMemoryError(InferenceError):
    """The model or its activations do not fit the GPU's memory."""


class MissingExtraError(EdgeposeError):
    """A host command was called on an install without the host toolchain."""
    code = ERR_BAD_ARGUMENT

    def __init__(self, command: str, missing: str, extra: str = "convert"):
        super().__init__(f"this command needs the host toolchain ({missing} is not installed): "
                         f'pip install "edgepose[{extra}]"')
        self.missing = missing
        self.extra = extra


class OfflineError(ModelNotFoundError):
    """A download could not reach its server; `.hint` says which file to place where."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(f"{message} {hint}".strip())
        self.reason = message
        self.hint = hint


def with_context(error: EdgeposeError, prefix: str) -> EdgeposeError:
    """The same error (class, code, attributes) with `prefix` put before its message."""
    new = error.__class__.__new__(error.__class__)
    new.__dict__.update(error.__dict__)
    new.args = (f"{prefix}{error}",)
    return new


CODE_NAMES = {OK: "OK", ERR_NOT_FOUND: "ERR_NOT_FOUND", ERR_BAD_MODEL: "ERR_BAD_MODEL",
              ERR_BAD_IMAGE: "ERR_BAD_IMAGE", ERR_BAD_ARGUMENT: "ERR_BAD_ARGUMENT",
              ERR_INFERENCE: "ERR_INFERENCE"}
