"""The one writer of generated sections: a docs/ file holds each generated table between two
markers, `<!-- NAME:start -->` and `<!-- NAME:end -->`, and its generator replaces what lies
between them (the rest of the file is never touched)."""

import re
from dataclasses import dataclass
from pathlib import Path

from tooling import ROOT

DOCS = ROOT / "docs"


@dataclass(frozen=True)
class DocSection:
    """A generated section: `name` in its markers, in the docs file `doc`."""

    doc: str
    name: str
    docs: Path = DOCS

    @property
    def path(self) -> Path:
        return self.docs / self.doc

    @property
    def markers(self) -> tuple[str, str]:
        return f"<!-- {self.name}:start -->", f"<!-- {self.name}:end -->"

    def write(self, body: str) -> Path:
        """Replace the section's text with `body`; fail, writing nothing, without markers."""
        start, end = self.markers
        text = self.path.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
        if len(pattern.findall(text)) != 1:
            raise SystemExit(f"{self.path} needs exactly one {start} ... {end} section")
        block = f"{start}\n{body.strip(chr(10))}\n{end}"
        self.path.write_text(pattern.sub(lambda _: block, text), encoding="utf-8")
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        print(f"wrote the {self.name} section of {shown}")
        return self.path
