#!/usr/bin/env python3
"""Checks that the repository stands alone, which CI cannot see for itself (its clone always
has the workplace's shared folder beside it):

  - no file refers to the shared folder outside the repository (`..` + `/shared`);
  - no file points at an issue tracker ("issue 12", "#12" after "issue", "the sync issue");
  - the design document is cited by its path (`docs/DESIGN.md`), never as a bare `DESIGN.md`
    that only resolves outside the repository;
  - every relative link in a Markdown file resolves to a file or folder inside the repository.

Files are those git knows (tracked, plus untracked ones it does not ignore). Prints each
problem as file:line and exits 1 if there is any; 0 and a one-line count otherwise.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTSIDE = ".." + "/shared"  # written in two parts so this file does not match itself
TRACKER = re.compile(r"\b(?:issues?\s*#?\d+|the\s+\w+\s+issue\b(?!\s+time)|issue\s+tracker)", re.IGNORECASE)
BARE_DESIGN = re.compile(r"(?<![\w/.-])DESIGN\.md")
MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MD_REF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
TEXT_SUFFIXES = {
    ".md", ".rs", ".py", ".kt", ".kts", ".swift", ".sh", ".toml", ".yaml", ".yml", ".json",
    ".xml", ".txt", ".h", ".modulemap", ".gradle", ".properties", ".cfg", ".ini",
}


def repo_files() -> list[pathlib.Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode("utf-8")
    files = [ROOT / name for name in out.split("\0") if name]
    return [f for f in files if f.is_file()]


def is_text(path: pathlib.Path) -> bool:
    return path.suffix in TEXT_SUFFIXES or path.name in {"run", "LICENSE", ".gitignore"}


def link_problem(source: pathlib.Path, target: str) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
        return None  # a URL (http:, mailto:) or an anchor in the same file
    path = target.split("#", 1)[0].split("?", 1)[0]
    if not path:
        return None
    resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (source.parent / path)
    resolved = resolved.resolve()
    if ROOT != resolved and ROOT not in resolved.parents:
        return f"link leaves the repository: {target}"
    if not resolved.exists():
        return f"broken link: {target}"
    return None


def main() -> int:
    problems: list[str] = []
    files = repo_files()
    links = 0
    for path in files:
        if not is_text(path):
            continue
        rel = path.relative_to(ROOT)
        if path == pathlib.Path(__file__).resolve():
            continue  # it names what it looks for
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue
        in_code = False
        for n, line in enumerate(lines, 1):
            if OUTSIDE in line:
                problems.append(f"{rel}:{n}: refers to the shared folder outside the repository")
            if rel.name != "LICENSE" and TRACKER.search(line):
                problems.append(f"{rel}:{n}: points at an issue tracker: {TRACKER.search(line).group(0)!r}")
            if BARE_DESIGN.search(line) and not (rel.parts[0] == "docs" and "](DESIGN.md" in line):
                problems.append(f"{rel}:{n}: cites a bare DESIGN.md; write docs/DESIGN.md")
            if path.suffix != ".md":
                continue
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            targets = MD_LINK.findall(line) + MD_REF.findall(line)
            for target in targets:
                links += 1
                problem = link_problem(path, target)
                if problem:
                    problems.append(f"{rel}:{n}: {problem}")
    for p in problems:
        print(p)
    if problems:
        print(f"stands-alone: {len(problems)} problem(s) in {len(files)} files", file=sys.stderr)
        return 1
    print(f"stands-alone: {len(files)} files, {links} relative links checked, no reference outside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
