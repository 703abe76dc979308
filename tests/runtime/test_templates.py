"""References and the substitution modes of spec §2.4."""

import pytest

from taskcanvas.runtime.refs import find_refs, split_text, strip_ref
from taskcanvas.runtime.templates import has_jinja, render, string_format, substitute


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("{sys.query}", ["sys.query"]),
        ("{{sys.query}}", ["sys.query"]),
        ("{{{x@y}}}", ["x@y"]),
        ("{ {env.a} }", ["env.a"]),
        ("{{ sys.query }}", []),  # no whitespace inside the inner braces
        ("{ sys.query }", []),
        ("{a-b@c}", []),  # hyphen is not an id character
        ("{sys.query!}", []),
        ("{Agent:Bold_Cats@content.a.0}", ["Agent:Bold_Cats@content.a.0"]),
        ("{begin@x}{env.y}", ["begin@x", "env.y"]),
    ],
)
def test_reference_pattern_matches_ragflow(text: str, refs: list[str]) -> None:
    assert find_refs(text) == refs


def test_spaces_next_to_a_reference_are_kept() -> None:
    # ragflow's match swallows them ("Hello {sys.query}!" → "HelloBob!"); deliberate difference.
    assert list(split_text("Hello {sys.query}!")) == [(False, "Hello "), (True, "sys.query"), (False, "!")]
    assert list(split_text("a  { {env.x} }  b")) == [(False, "a  "), (True, "env.x"), (False, "  b")]


def test_strip_ref() -> None:
    assert strip_ref("{{ sys.query }}") == "sys.query"
    assert strip_ref("{begin@x}") == "begin@x"


def test_string_format_is_exact_single_brace_replacement() -> None:
    assert string_format("Q: {sys.query} {{sys.query}}", {"sys.query": "life?"}) == "Q: life? {life?}"
    assert string_format("{x}", {"x": None}) == ""


def test_substitute_mode_c() -> None:
    values = {"env.x": 1, "env.s": "str", "env.l": ["a", 1], "env.n": None}
    out = substitute("A {env.x} B {env.s} {env.l} [{env.n}]", values.__getitem__)
    assert out == 'A 1 B str ["a", 1] []'


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("Hi {{sys.query}}", {"sys.query": "Bob"}, "Hi {Bob}"),  # spec case 3
        ("{% if sys_query %}yes{% endif %} {sys.query}", {"sys.query": "Bob"}, "yes Bob"),  # case 4
        ("{% if {sys.query} == 'Bob' %}hello{% endif %}", {"sys.query": "Bob"}, "hello"),
        # ragflow replaces env_n inside env_n2 and reads backslashes as regex escapes; not here.
        ("{env.n}/{env.n2}", {"env.n": "1", "env.n2": "2"}, "1/2"),
        ("path {env.p}", {"env.p": r"C:\new\table"}, r"path C:\new\table"),
        ("literal sys_query stays {sys.query}", {"sys.query": "Bob"}, "literal sys_query stays Bob"),
        ("{{ 1 / 0 }} {x}", {"x": "X"}, "{{ 1 / 0 }} X"),  # a render failure leaves the text unrendered
    ],
)
def test_render_mode_e(text: str, values: dict[str, str], expected: str) -> None:
    assert render(text, values) == expected


def test_a_template_that_does_not_compile_is_an_error() -> None:
    from jinja2 import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError):
        render("{% if %} {env.x}", {"env.x": "hi"})


def test_jinja_is_sandboxed() -> None:
    out = render("{{ ''.__class__.__mro__ }}", {})
    assert "object" not in out


def test_has_jinja() -> None:
    assert has_jinja("{{x}}") and has_jinja("{% if %}") and not has_jinja("{x} and {y}")
