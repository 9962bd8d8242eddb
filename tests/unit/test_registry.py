"""A registered kind names itself in its class statement, which registers it: a name taken by
another class is refused naming both, a class that names a type under a base with no registry
is refused, and a test's own kinds last as long as its block."""

from __future__ import annotations

import pytest

from lab.runtime.fields import FieldError
from lab.runtime.registry import Described, Registry
from lab.runtime.shapes import SHAPES, Shape


def test_naming_a_type_registers_the_class_and_a_base_without_one_is_not() -> None:
    nouns: Registry[Described] = Registry("noun", FieldError)

    class Noun(Described):
        registry = nouns

    class Plain(Noun, type="plain", short="plain:{n}"):
        help = "one of them"

    assert nouns.kinds == {"plain": Plain} and Plain.short == "plain:{n}"
    assert Noun.type == "" and Noun.short == ""  # the base keeps its defaults


def test_a_taken_name_is_refused_naming_both_classes() -> None:
    with SHAPES.restored(), pytest.raises(ValueError) as refused:

        class Again(Shape, type="ramp"):
            help = "a second ramp"

    said = str(refused.value)
    assert "shape 'ramp'" in said and "Again" in said and "kinds.Ramp" in said
    assert SHAPES.kinds["ramp"].__name__ == "Ramp"


def test_a_type_under_a_base_with_no_registry_is_refused() -> None:
    with pytest.raises(TypeError, match="no base of it says which registry"):

        class Lost(Described, type="lost"):
            pass


def test_restored_forgets_what_the_block_registered() -> None:
    before = SHAPES.names
    with SHAPES.restored():

        class Flat(Shape, type="flatForATest"):
            help = "registered for this block only"

        assert "flatForATest" in SHAPES.names
    assert SHAPES.names == before
