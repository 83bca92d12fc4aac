"""docs/host-integration.md's logging table lists every logger of the plugin."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "omni_dashboard_plugin"
ROW = re.compile(r"^\| `(omni_dashboard_plugin[a-z_.]*)` \|", re.M)


def _loggers() -> set[str]:
    """The modules that make a logger, as ``logging.getLogger(__name__)`` names them."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "getLogger(" not in text.replace("getLogger(__name__)", ""), path
        if "getLogger(__name__)" in text:
            module = path.relative_to(ROOT).with_suffix("")
            found.add(".".join(module.parts))
    return found


def test_the_logging_table_lists_every_logger():
    docs = (ROOT / "docs" / "host-integration.md").read_text()
    section = docs.split("## Logging", 1)[1].split("\n## ", 1)[0]
    assert set(ROW.findall(section)) == _loggers()
