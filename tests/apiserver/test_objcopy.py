"""apiserver.objcopy.deep_copy: the same result as copy.deepcopy, nothing shared."""

from __future__ import annotations

import copy
import datetime

import pytest

from apiserver.objcopy import deep_copy


class Tagged(dict):
    pass


@pytest.mark.parametrize("value", [
    pytest.param({"a": [1, 2.5, True, None, "s", {"b": []}]}, id="json"),
    pytest.param({"when": datetime.date(2024, 5, 1), "t": (1, [2])}, id="yaml-date-and-tuple"),
    pytest.param({"tagged": Tagged(x=[1])}, id="dict-subclass"),
])
def test_deep_copy_equals_deepcopy_and_shares_no_container(value):
    copied = deep_copy(value)
    assert copied == copy.deepcopy(value)
    assert type(copied) is type(value)

    def containers(v, out):
        if isinstance(v, dict | list):
            out.append(id(v))
            for item in (v.values() if isinstance(v, dict) else v):
                containers(item, out)
        return out

    assert not set(containers(copied, [])) & set(containers(value, []))


def test_deep_copy_keeps_dict_subclasses():
    copied = deep_copy({"tagged": Tagged(x=1)})
    assert type(copied["tagged"]) is Tagged
