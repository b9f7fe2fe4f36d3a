"""The sentence splitter: offsets point back into the text, whatever the text."""

from __future__ import annotations

import pytest

from graph.splitter import PysbdSplitter


@pytest.fixture(scope="module")
def splitter() -> PysbdSplitter:
    return PysbdSplitter()


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith said CO2 rose by 3.5% in 2020.  It was hot!\n\nThe U.S. is big. Really?   \tNo.",
        "  leading space. trailing space.   ",
        "No final stop here",
        "مرحبا بالعالم. هذا اختبار.",
        "Emoji 🌍 warms. Émile a dit « oui ». 東京は大きい。",
    ],
)
def test_offsets_point_back_into_the_text(splitter: PysbdSplitter, text: str) -> None:
    sentences = splitter.split(text)
    assert sentences
    assert [s.index for s in sentences] == list(range(len(sentences)))
    for s in sentences:
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text
    ends = [s.end for s in sentences]
    assert ends == sorted(ends)


def test_abbreviations_and_decimals_do_not_split(splitter: PysbdSplitter) -> None:
    text = "Dr. Smith said CO2 rose by 3.5% in the U.S. last year. Then he left."
    assert [s.text for s in splitter.split(text)] == [
        "Dr. Smith said CO2 rose by 3.5% in the U.S. last year.",
        "Then he left.",
    ]


def test_repeated_sentences_get_their_own_offsets(splitter: PysbdSplitter) -> None:
    text = "It was hot. It was hot. It was hot."
    starts = [s.start for s in splitter.split(text)]
    assert starts == [0, 12, 24]


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n"])
def test_blank_text_has_no_sentences(splitter: PysbdSplitter, text: str) -> None:
    assert splitter.split(text) == []


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError):
        PysbdSplitter(language="xx-unknown")
