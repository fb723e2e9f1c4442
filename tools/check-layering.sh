#!/usr/bin/env bash
# check-layering.sh [ROOT] — fails, naming file and line, when an #include goes against the
# layering of the code (README, "Development"), or when code cites a document outside the
# repository. The rules:
#   - src/model and src/train include nothing of src/cuda: the model runs on whatever backend
#     its tensors name (through alexnet/ops.h), and the trainer reaches devices through ops too;
#   - src/data includes nothing of src/train: the data code sits below training;
#   - src/cuda and kernels do not include alexnet/cpu_ops.h (the CPU backend): what the backends
#     share is in alexnet/op_params.h;
#   - no #include of a path outside the repository (absolute, or climbing out with ..);
#   - no code cites DESIGN.md or ../shared/: what a reader needs is said in place, in the README
#     or under docs/.
# ROOT defaults to the checkout this script is in. Exit status 0 clean, 1 a rule broken.
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$root"
code=(src include kernels tests tools cmake)

# "file<TAB>line<TAB>included path" for every #include in the code.
includes=$(grep -rnE --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cu' \
             --include='*.cuh' '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]+[">]' \
             "${code[@]}" 2>/dev/null |
           sed -E 's/^([^:]+):([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]+)[">].*/\1\t\2\t\3/' || true)

bad=0
rule() {  # rule FILE_REGEX INCLUDE_REGEX WHY
  local hits
  hits=$(printf '%s\n' "$includes" | awk -F'\t' -v f="$1" -v i="$2" '$1 ~ f && $3 ~ i' || true)
  [ -n "$hits" ] || return 0
  printf '%s\n' "$hits" | awk -F'\t' -v why="$3" '{print "check-layering: " $1 ":" $2 ": includes " $3 ": " why}' >&2
  bad=1
}
rule '^src/(model|train)/' '^src/cuda/' \
  "the model and the trainer reach the GPU through alexnet/ops.h, never src/cuda"
rule '^src/data/' '^src/train/' "src/data sits below src/train"
rule '^(src/cuda|kernels)/' '^alexnet/cpu_ops\.h$' \
  "the CUDA code takes the shared structs from alexnet/op_params.h, not the CPU backend's header"
rule '.' '^/' "an absolute path: the repository must build on its own"

# Relative includes that climb out of the repository.
while IFS=$'\t' read -r file line path; do
  case $path in *..*) ;; *) continue ;; esac
  resolved=$(realpath -m "$(dirname "$file")/$path")
  case $resolved in
    "$root"/*) ;;
    *) echo "check-layering: $file:$line: includes $path, outside the repository" >&2; bad=1 ;;
  esac
done <<<"$includes"

# Citations of documents that are not in the repository.
if cites=$(grep -rnE 'DESIGN(\.md)?[[:space:]]*§|DESIGN\.md|\.\./shared/' "${code[@]}" configs \
             CMakeLists.txt README.md 2>/dev/null | grep -v '^tools/check-layering\.sh:'); then
  printf '%s\n' "$cites" | sed -E 's/^([^:]+:[0-9]+):.*/check-layering: \1: cites a document outside the repository (say it in place, or in docs\/)/' >&2
  bad=1
fi

[ $bad -eq 0 ] || exit 1
echo "check-layering: clean ($(printf '%s\n' "$includes" | wc -l) includes checked)"
