"""The bank's YAML files (products, rules, tags, templates, menus, content)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# libyaml's parser when PyYAML was built with it (its wheels are): the same documents, parsed
# about ten times faster than PyYAML's pure-Python parser, for files read each time an app starts.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """The document in the UTF-8 file `path`, loaded safely (plain data only); raises OSError
    when it cannot be read and yaml.YAMLError when it is not valid YAML."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506  a safe loader
