import sys

from pipeline.cli import main

if __name__ == "__main__":  # vLLM and the process pool spawn workers that re-import this module
    sys.exit(main())
