"""TeX accents and arXiv author strings.

arXiv metadata is what submitters typed, so names arrive as ``Andr\\'e``, ``G{\\"o}del`` or
``\\v{C}ech``, and the listing feeds put every author in one comma-joined ``dc:creator`` string
with affiliations in parentheses.
"""

from __future__ import annotations

import re
import unicodedata

from digest.parsers.common import plain_text

# Accent command → combining character (composed afterwards by NFC).
_COMBINING = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "c": "\u0327",
    "v": "\u030c",
    "u": "\u0306",
    "H": "\u030b",
    "k": "\u0328",
    "r": "\u030a",
}
_LETTERS = {
    "ss": "ß",
    "o": "ø",
    "O": "Ø",
    "aa": "å",
    "AA": "Å",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
}
# \'e  \'{e}  \' e  \'\i  — symbol accents take the next letter directly.
_SYMBOL_ACCENT = re.compile(
    r"""\\(['`^"~=.])\s*(?:\{\s*(\\[ij]|[^\W\d_])\s*\}|(\\[ij]|[^\W\d_]))"""
)
# \c{c}  \v s  — letter accents need braces or a space before their letter.
_LETTER_ACCENT = re.compile(r"\\([cvuHkr])(?:\s*\{\s*(\\[ij]|[^\W\d_])\s*\}|\s+([^\W\d_]))")
_LETTER_MACRO = re.compile(r"\\(ss|aa|AA|ae|AE|oe|OE|o|O|l|L|i|j)(?![A-Za-z])(?:\{\}|\s(?=\S))?")
# Braces left around a letter that an accent produced: F{\"o}rster → F{ö}rster → Förster.
_SINGLE_BRACED = re.compile(r"\{([^\x00-\x7f])\}")
_ESCAPED = re.compile(r"\\([&%$#_])")
_PARENS = re.compile(r"\([^()]*\)")
_AUTHOR_SEP = re.compile(r"\s*(?:,|;|\band\b)\s*(?:and\s+)?")


def _accent(match: re.Match[str]) -> str:
    letter = match.group(2) or match.group(3)
    base = {"\\i": "i", "\\j": "j"}.get(letter, letter)  # í is i + acute, not dotless ı + acute
    return unicodedata.normalize("NFC", base + _COMBINING[match.group(1)])


def decode_tex(text: str) -> str:
    """Turn common TeX accents and letters into Unicode: ``Andr\\'e`` → ``André``.

    Braces around an accented letter (``{\\"o}`` → ``ö``) go; other braces stay, since
    titles and abstracts use them in math (``$\\mathbb{R}$``).
    """
    if "\\" not in text:
        return text
    text = _SYMBOL_ACCENT.sub(_accent, text)
    text = _LETTER_ACCENT.sub(_accent, text)
    text = _LETTER_MACRO.sub(lambda m: _LETTERS[m.group(1)], text)
    text = _ESCAPED.sub(r"\1", text)
    return _SINGLE_BRACED.sub(r"\1", text)


def author_name(raw: str) -> str:
    """One author name: TeX decoded, braces dropped, one line."""
    return plain_text(decode_tex(raw).replace("{", "").replace("}", ""))


def split_creators(text: str) -> list[str]:
    """Split a ``dc:creator`` string into names, dropping parenthesized affiliations.

    >>> split_creators("Ana Gómez (MIT, CSAIL), Bo Li and Chen Wu (Tsinghua)")
    ['Ana Gómez', 'Bo Li', 'Chen Wu']
    """
    flat = decode_tex(text)
    previous = None
    while previous != flat:  # innermost first, so nested parentheses go too
        previous, flat = flat, _PARENS.sub(" ", flat)
    names = (author_name(part) for part in _AUTHOR_SEP.split(flat))
    return [name for name in names if name]
