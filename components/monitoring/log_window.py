"""The requests a monitoring check judges: those the endpoint logged since the last check ended."""

from __future__ import annotations

import json
import time
from pathlib import Path


class LogWindow:
    """The requests logged since the last check: what a check reads, and when it is used up."""

    def __init__(self, state_file: Path):
        self.state_file = state_file
        self.state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        self.now = time.time()
        self.scraped: dict | None = None
        self.read = False

    def use_up(self) -> None:
        """The next check starts where this one ended."""
        if self.read:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps({"last_check": self.now, "server": self.scraped}))
