"""WCAG AA contrast of the dashboard's stylesheet, computed from the CSS itself: every text
colour on every background it can appear on at least 4.5:1 (WCAG 2.1, 1.4.3), and the focus
ring at least 3:1 against what it surrounds (1.4.11).

Which background a text colour sits on is read from the rules: its own ``background`` when
the rule declares one; else that of the rule its selector descends from (``.top a`` sits on
``.top``); else every surface of the page (the page itself and each rule that paints a
background without setting a text colour: cards, code blocks, alerts). A rule that paints a
background for an element whose text colour another rule sets (``button.reject``) pairs with
that colour. The stylesheet has one scheme (no ``prefers-color-scheme``); a dark one would
need its own pass here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

import pytest

BODY_TEXT = 4.5
NON_TEXT = 3.0
# Rules whose elements sit inside another rule's box though their selector does not say so.
INSIDE = {".signout": ".top", ".who": ".top"}


@dataclass(frozen=True)
class Rule:
    selector: str
    declarations: dict[str, str]


def stylesheet() -> str:
    return files("ctxdb.web").joinpath("static/dashboard.css").read_text("utf-8")


def rules_of(css: str) -> list[Rule]:
    """Each innermost ``selector { declarations }`` (rules inside @media included), once per
    selector of a selector list."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    found = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = {}
        for declaration in body.split(";"):
            name, colon, value = declaration.partition(":")
            if colon:
                declarations[name.strip()] = value.strip()
        for selector in selectors.split(","):
            found.append(Rule(" ".join(selector.split()), declarations))
    return found


def variables(rules: list[Rule]) -> dict[str, str]:
    return {name: value for rule in rules if rule.selector == ":root"
            for name, value in rule.declarations.items() if name.startswith("--")}


def colour(value: str | None, names: dict[str, str]) -> str | None:
    """The hex colour a declaration's value names (through ``var()``), or None for none or
    ``transparent``."""
    if value is None:
        return None
    var = re.search(r"var\((--[\w-]+)\)", value)
    if var:
        return colour(names[var[1]], names)
    hexa = re.search(r"#[0-9a-fA-F]{3,6}\b", value)
    if hexa:
        return hexa[0].lower()
    assert value.split()[-1] in ("transparent", "none", "inherit"), f"unread colour {value!r}"
    return None


def luminance(hex_colour: str) -> float:
    digits = hex_colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


class Sheet:
    def __init__(self, css: str) -> None:
        self.rules = rules_of(css)
        self.names = variables(self.rules)

    def text(self, rule: Rule) -> str | None:
        return colour(rule.declarations.get("color"), self.names)

    def background(self, rule: Rule) -> str | None:
        value = rule.declarations.get("background",
                                      rule.declarations.get("background-color"))
        return colour(value, self.names)

    def of(self, selector: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.selector == selector]

    def surfaces(self) -> set[str]:
        """The page's background and every background painted without a text colour (and
        not for an element another rule colours: those are paired with that colour)."""
        found = {colour(self.of(":root")[0].declarations["background"], self.names)}
        for rule in self.rules:
            paint = self.background(rule)
            if paint and self.text(rule) is None and not self.element_text(rule):
                found.add(paint)
        return {paint for paint in found if paint}

    def element_text(self, rule: Rule) -> str | None:
        """The text colour of ``tag`` for a rule ``tag.class`` (``button.reject``)."""
        tag = re.fullmatch(r"([a-z]+)[.#\[:].*", rule.selector)
        colours = [self.text(other) for other in self.of(tag[1])] if tag else []
        return next((c for c in colours if c), None)

    def behind(self, rule: Rule) -> set[str]:
        """The backgrounds text of ``rule`` can sit on."""
        own = self.background(rule)
        if own:
            return {own}
        container = rule.selector.split(" ")[0] if " " in rule.selector else None
        container = container or INSIDE.get(rule.selector)
        while container:
            paints = {self.background(r) for r in self.of(container)} - {None}
            if paints:
                return {p for p in paints if p}
            container = INSIDE.get(container)
        return self.surfaces()


def text_pairs(sheet: Sheet) -> list[tuple[str, str, str]]:
    pairs = []
    for rule in sheet.rules:
        ink = sheet.text(rule) or (sheet.element_text(rule) if sheet.background(rule) else None)
        if ink:
            pairs += [(rule.selector, ink, paint) for paint in sorted(sheet.behind(rule))]
    return pairs


def test_the_formula_matches_wcags_reference_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)


def test_every_text_colour_passes_aa_on_every_background_it_sits_on() -> None:
    sheet = Sheet(stylesheet())
    pairs = text_pairs(sheet)
    selectors = {selector for selector, _, _ in pairs}
    # The reading of the sheet found what it must: body text, links, muted text on the
    # page and on cards, the header, badges, buttons in every colour.
    assert {":root", "a", ".sub", ".top a", ".who", ".signout button", ".s-active",
            "button", "button.reject", "button.approve", ".error"} <= selectors
    assert len(sheet.surfaces()) >= 4
    failing = [f"{selector}: {ink} on {paint} is {contrast(ink, paint):.2f}:1"
               for selector, ink, paint in pairs if contrast(ink, paint) < BODY_TEXT]
    assert failing == []


def test_the_focus_ring_stands_out_from_what_it_surrounds() -> None:
    """Against every surface, and inside every box whose descendants the sheet styles (the
    header's links and buttons are focused on the header's colour)."""
    sheet = Sheet(stylesheet())
    ringed = [rule for rule in sheet.rules
              if "outline" in rule.declarations or "outline-color" in rule.declarations]
    # A box with a ring rule of its own (``.top a:focus-visible``) is checked by that rule.
    own_ring = {rule.selector.split(" ")[0] for rule in ringed if " " in rule.selector}
    boxes = {rule.selector.split(" ")[0] for rule in sheet.rules
             if " " in rule.selector} - own_ring
    around = sheet.surfaces() | {paint for box in boxes for rule in sheet.of(box)
                                 if (paint := sheet.background(rule))}
    failing, rings = [], 0
    for rule in ringed:
        outline = rule.declarations.get("outline") or rule.declarations.get("outline-color")
        ring = colour(outline, sheet.names)
        if ring is None:
            continue
        rings += 1
        for paint in sorted(sheet.behind(rule) if " " in rule.selector else around):
            if contrast(ring, paint) < NON_TEXT:
                failing.append(f"{rule.selector}: {ring} on {paint} is "
                               f"{contrast(ring, paint):.2f}:1")
    assert rings > 0 and failing == []
