#!/usr/bin/env bash
# The position study on a lent GPU machine, in one `device` call.
#
# Here, first (packs what the machine's image lacks into .device_carry/):
#   python tools/device_bundle.py
# Then the device tool's run, with carry [".device_carry", "possec/.mim"]:
#   BUDGET=330 bash tools/device_study.sh --converged --device cuda \
#       --contrasts help --primary --workers auto
#
# Arguments go to tools/analysis/position_study.py; the study folder is
# $STUDY_DIR (default /tmp/possec_study; do not pass --out-dir). After
# BUDGET seconds (default 330) the study is stopped (its workers end with
# it; finished cells are kept), every finished cell is collected, and $OUT
# (default work_dirs/device_study) receives study_results.json, study.md,
# study.log, bundle.json and cells.tar.gz (the study folder without its
# data trees and saved states). Exit status: the study's, or 124 when the
# budget stopped it.
set -u -o pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 2
carry=$here/.device_carry
out=${OUT:-$here/work_dirs/device_study}
budget=${BUDGET:-330}
py=${PYTHON:-python3}
study=${STUDY_DIR:-/tmp/possec_study}
if [ ! -d "$carry/site" ]; then
  echo "device_study: expected the bundle in $carry/site, found none: run" \
       "python tools/device_bundle.py here and carry .device_carry" >&2
  exit 2
fi
for arg in "$@"; do
  case $arg in --out-dir|--out|--out-dir=*|--out=*)
    echo "device_study: the study folder is \$STUDY_DIR ($study); drop" \
         "$arg" >&2; exit 2;;
  esac
done
export PYTHONPATH="$carry/site:$here${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# The records name the commit they ran: git reads the bundle's clone of
# HEAD against this copy of the working tree (changed tracked files make
# the records say "uncommitted changes").
if [ -d "$carry/git" ] && command -v git >/dev/null; then
  export GIT_DIR=$carry/git GIT_WORK_TREE=$here
  git config core.bare false
  git read-tree HEAD && git update-index -q --refresh >/dev/null
fi
mkdir -p "$out"
cp "$carry/bundle.json" "$out/" 2>/dev/null
log=$out/study.log
"$py" -c "import torch, mmcv, mmengine, mmseg, possec
from possec.analysis.study.provenance import code_version, describe
print('torch', torch.__version__, '| cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '',
      '| mmcv', mmcv.__version__, '| mmengine', mmengine.__version__,
      '| mmseg', mmseg.__version__, '|', describe(code_version()))" \
  2>&1 | tee "$log" || exit 1
echo "load: $(cat /proc/loadavg)" | tee -a "$log"
start=$(date +%s)
timeout -k 60 "$budget" "$py" tools/analysis/position_study.py "$@" \
  --out-dir "$study" >>"$log" 2>&1
status=$?
echo "device_study: study exit $status after $(( $(date +%s) - start )) s" \
  | tee -a "$log"
grep -E '^\[[0-9]+/[0-9]+\]|^study:' "$log" | tail -40
[ "$status" -eq 0 ] || tail -n 5 "$log" | grep -v '^device_study:'
"$py" tools/analysis/position_study.py --collect "$study" \
  --out-dir "$study.collected" >>"$log" 2>&1 \
  && cp "$study.collected/study_results.json" \
        "$study.collected/study.md" "$out/"
# without data trees and saved states (--keep-checkpoints: ~140 MB a cell)
[ -d "$study" ] && tar czf "$out/cells.tar.gz" --exclude=./data \
  --exclude='*.pth' -C "$study" .
ls -l "$out"
exit $status
