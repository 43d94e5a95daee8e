#!/usr/bin/env bash
# Nightly incremental curation, e.g. from crontab:
#   15 2 * * *  /srv/ling-curate/examples/cron.sh >> /var/log/ling-curate.log 2>&1
# New input files since the last run become a new generation under OUT; nothing new = exit 0.
# Exit 3 means the previous run still holds the lock: cron simply tries again next time.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/curate --log-format json run pipeline.yaml --incremental
status=$?
case $status in
  0) .venv/bin/curate status "$(.venv/bin/python -c 'import yaml;print(yaml.safe_load(open("pipeline.yaml"))["output"])')" ;;
  3) echo "previous run still in progress; skipping" >&2; exit 0 ;;
  *) echo "curate failed with exit code $status" >&2 ;;
esac
exit $status
