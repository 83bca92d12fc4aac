"""Write a bench's Markdown into its marked section of docs/performance.md."""

import re
from pathlib import Path

PERFORMANCE = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def write_section(name: str, markdown: str, path: Path = PERFORMANCE) -> None:
    """Replace the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``."""
    text = path.read_text()
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    block = f"{start}\n{markdown.strip()}\n{end}"
    if not pattern.search(text):
        raise SystemExit(f"{path} has no {start} ... {end} section")
    path.write_text(pattern.sub(lambda _: block, text))


def cell(result: dict) -> str:
    """A table cell "p50 / p95" in milliseconds."""
    return f"{result['p50']:.1f} / {result['p95']:.1f}"


def publish(name: str, lines: list[str], write: bool) -> None:
    """Print a bench's Markdown, and write it into its section when ``write``."""
    markdown = "\n".join(lines)
    print(markdown)
    if write:
        write_section(name, markdown)
