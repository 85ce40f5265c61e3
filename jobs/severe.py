"""`ray job submit --working-dir . -- python jobs/severe.py checkpoint=URI [overrides]`: the same as `tubelab severe`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))  # the uploaded working dir

from tubelab.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["severe", *sys.argv[1:]]))
