"""Python's error codes are the C++ core's (status.h) and the Java binding's, class by class."""
import re

import pytest

from edgepose import errors
from helpers import REPO

STATUS_H = REPO / "android_demo/core/include/edgepose/status.h"


def _cpp_codes():
    text = STATUS_H.read_text()
    return {name: int(value) for name, value in re.findall(r"^\s*(OK|ERR_[A-Z_]+)\s*=\s*(\d+)", text, re.M)}


def test_codes_are_the_cores():
    cpp = _cpp_codes()
    assert len(cpp) == 6
    assert cpp == {name: getattr(errors, name) for name in cpp}
    assert set(errors.CODE_NAMES.values()) == set(cpp)


@pytest.mark.parametrize("cls, name", [
    (errors.ModelNotFoundError, "ERR_NOT_FOUND"), (errors.BadModelError, "ERR_BAD_MODEL"),
    (errors.WrongTaskError, "ERR_BAD_MODEL"), (errors.BadImageError, "ERR_BAD_IMAGE"),
    (errors.BadArgumentError, "ERR_BAD_ARGUMENT"), (errors.InferenceError, "ERR_INFERENCE"),
    (errors.EdgeposeError, "ERR_BAD_ARGUMENT")])
def test_each_class_carries_its_code(cls, name):
    assert cls("x").code == _cpp_codes()[name]
    assert issubclass(cls, errors.EdgeposeError)


def test_context_keeps_class_code_and_attributes():
    e = errors.OfflineError("cannot download u (timed out).", "Place the file at /c/f.")
    wrapped = errors.with_context(e, "--pose: ")
    assert type(wrapped) is errors.OfflineError and wrapped.code == errors.ERR_NOT_FOUND
    assert str(wrapped) == "--pose: cannot download u (timed out). Place the file at /c/f."
    assert wrapped.reason == e.reason and wrapped.hint == e.hint
    extra = errors.with_context(errors.MissingExtraError("convert", "torch"), "x: ")
    assert extra.missing == "torch" and str(extra).startswith("x: this command needs") and \
        'pip install "edgepose[convert]"' in str(extra)


def test_java_exception_codes_are_the_same():
    java = (REPO / "android_demo/app/src/main/java/org/edgepose/core/EdgeposeException.java").read_text()
    codes = {f"ERR_{name}": int(v) for name, v in re.findall(r"static final int ([A-Z_]+) = (\d+);", java)}
    assert len(codes) == 5 and codes == {k: v for k, v in _cpp_codes().items() if k != "OK"}
