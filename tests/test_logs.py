import json
import logging

import pytest

from digest.config.logs import configure_logging


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="INFO", json_lines=True)
    configure_logging(level="INFO", json_lines=True)  # idempotent: one handler
    logging.getLogger("digest.runner").info("sent %d digests", 3)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["message"] == "sent 3 digests"
    assert record["level"] == "info" and record["logger"] == "digest.runner"


def test_plain_lines_and_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="WARNING", json_lines=False)
    log = logging.getLogger("digest.x")
    log.info("hidden")
    log.warning("shown")
    err = capsys.readouterr().err
    assert "hidden" not in err and "WARNING digest.x: shown" in err
