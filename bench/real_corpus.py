"""Assemble the real-text corpus the end-to-end benchmark runs on (nothing of it goes in the repo).

Two public sources of real, human-written English text:

* the textfiles.com archive of BBS-era text files (essays, FAQs, stories, guides, newsletters, logs,
  ASCII art, phone lists: the mix of prose and junk that heuristic filters exist for), as mirrored
  under `misc/textfiles/` of a public GitHub repository (pass its git directory, e.g. a `fetch` of
  `Pconst167/sol-1`); each file of 200 B-200 kB that is text becomes one document, cut at the last
  paragraph (or line) break before `--max-chars` so documents have web-page sizes;
* the shared article set's human-made article bodies (`../shared/data/article-extraction`, MIT).

Writes one JSONL (`id`, `text`) in a fixed order, so two runs build the same file.

    python bench/real_corpus.py --textfiles-git /work/.mirror/Pconst167+sol-1/repo --out /work/data-real/real.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTICLES = REPO.parent / "shared" / "data" / "article-extraction" / "ground-truth.json"
SKIP_ENDINGS = (".html", ".htm", ".gif", ".jpg", ".png", ".zip", ".exe", ".com", ".gz", ".pdf", ".arc", ".lzh")


def cut(text: str, max_chars: int) -> str:
    """The text up to the last paragraph break (else line break) before `max_chars`."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    for sep in ("\n\n", "\n"):
        i = head.rfind(sep)
        if i > max_chars // 4:
            return head[:i]
    return head


def textfiles(git_dir: Path, max_chars: int) -> Iterator[dict[str, str]]:
    listing = subprocess.run(["git", "-C", str(git_dir), "ls-tree", "-r", "-l", "HEAD", "misc/textfiles"],
                             capture_output=True, text=True, check=True).stdout
    blobs = []
    for line in listing.splitlines():
        meta, path = line.split("\t", 1)
        _mode, kind, sha, size = meta.split()
        if kind != "blob" or not size.isdigit() or not 200 <= int(size) <= 200_000:
            continue  # files the snapshot lacks show no size
        if path.lower().endswith(SKIP_ENDINGS) or "/." in path:
            continue
        blobs.append((path, sha))
    with subprocess.Popen(["git", "-C", str(git_dir), "cat-file", "--batch"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        for path, sha in blobs:
            proc.stdin.write((sha + "\n").encode())
            proc.stdin.flush()
            size = int(proc.stdout.readline().split()[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)
            if b"\x00" in data:
                continue  # binary
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("cp437", errors="replace")  # DOS-era files
            text = cut(text.replace("\r\n", "\n").replace("\x1a", ""), max_chars)
            if text.strip():
                yield {"id": "textfiles/" + path.removeprefix("misc/textfiles/"), "text": text}
        proc.stdin.close()


def articles(path: Path) -> Iterator[dict[str, str]]:
    for key, page in sorted(json.loads(path.read_text(encoding="utf-8")).items()):
        if page.get("articleBody", "").strip():
            yield {"id": f"article/{key}", "text": page["articleBody"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--textfiles-git", required=True, type=Path)
    ap.add_argument("--articles", type=Path, default=ARTICLES)
    ap.add_argument("--max-chars", type=int, default=4000)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    n = chars = 0
    tmp = args.out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for doc in [*articles(args.articles), *textfiles(args.textfiles_git, args.max_chars)]:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
            n, chars = n + 1, chars + len(doc["text"])
    tmp.replace(args.out)
    print(json.dumps({"docs": n, "chars": chars, "out": str(args.out)}))


if __name__ == "__main__":
    main()
