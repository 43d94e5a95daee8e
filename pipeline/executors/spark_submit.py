"""The `curate` CLI as a script for `spark-submit`, which wants a `.py` file to run:

    spark-submit --master yarn "$(python -c 'import pipeline.executors.spark_submit as m; print(m.__file__)')" \
        run pipeline.yaml --executor spark

(Running `pipeline/cli.py` directly would put `pipeline/` first on `sys.path`, where `io.py` shadows
the standard library; this file's directory holds no such names, and is dropped from the path anyway.)
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    from pipeline.cli import main

    sys.exit(main())
