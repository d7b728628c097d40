#!/usr/bin/env bash
# Recreates the third-party Delta test tables that test/integration/variant-kernel.test.ts
# reads, outside this repository (they are not committed here), from the public repositories
# at pinned commits:
#
#   unshredded-variant                        delta-io/delta-kernel-rs @ KERNEL_RS_COMMIT
#     kernel/tests/data/unshredded-variant.tar.zst (extracted)
#     kernel/tests/data/unshredded-variant.expected.in (the kernel's expected scan output,
#       compared against by kernel/tests/integration/read/mod.rs unshredded_variant_table)
#   spark-shredded-variant-preview-delta      delta-io/delta @ DELTA_COMMIT
#     kernel/kernel-defaults/src/test/resources/spark-shredded-variant-preview-delta
#   parquet-testing-variant/                  apache/parquet-testing @ PARQUET_TESTING_COMMIT
#     variant/ (Spark- and Iceberg-encoded variant metadata/value binaries, regen.py,
#       data_dictionary.json; not a Delta table)
#
# All three repositories are Apache License 2.0. Writes PROVENANCE.md next to the tables.
#
# Usage: scripts/fetch-kernel-tables.sh [DEST]   (DEST defaults to $DELTA_KERNEL_TABLES,
# else /work/kernel-tables). Needs git, tar with zstd. Set KERNEL_TABLES_MIRROR to a folder
# holding <owner>+<name>/repo bare clones to read from them instead of the network.
set -euo pipefail
shopt -s inherit_errexit

KERNEL_RS_COMMIT=b14c3fb84003346db99e4bcc6b473d87b43e034b
DELTA_COMMIT=bb1057f4367f555b01e299fd1690d85aafc0ac4c
PARQUET_TESTING_COMMIT=1a2a75127be06fc0123f03ebd36c966f7beda27d

DEST="${1:-${DELTA_KERNEL_TABLES:-/work/kernel-tables}}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# git_dir OWNER/NAME COMMIT: a git directory that holds COMMIT (a local mirror, or a shallow fetch).
git_dir() {
  local repo="$1" commit="$2"
  local mirror="${KERNEL_TABLES_MIRROR:-}/${repo/\//+}/repo"
  if [ -n "${KERNEL_TABLES_MIRROR:-}" ] && git --git-dir="$mirror" cat-file -e "$commit^{commit}" 2>/dev/null; then
    echo "$mirror"
    return
  fi
  local dir="$WORK/${repo/\//+}.git"
  git init --quiet --bare "$dir"
  if ! git --git-dir="$dir" fetch --quiet --depth 1 "https://github.com/$repo.git" "$commit"; then
    echo "fetch-kernel-tables: cannot fetch $commit of https://github.com/$repo.git (set KERNEL_TABLES_MIRROR to read a local clone)" >&2
    return 1
  fi
  echo "$dir"
}

mkdir -p "$DEST"

KRS="$(git_dir delta-io/delta-kernel-rs "$KERNEL_RS_COMMIT")"
rm -rf "$DEST/unshredded-variant"
git --git-dir="$KRS" show "$KERNEL_RS_COMMIT:kernel/tests/data/unshredded-variant.tar.zst" | tar --zstd -x -C "$DEST"
git --git-dir="$KRS" show "$KERNEL_RS_COMMIT:kernel/tests/data/unshredded-variant.expected.in" > "$DEST/unshredded-variant.expected.in"

DELTA="$(git_dir delta-io/delta "$DELTA_COMMIT")"
SHREDDED=kernel/kernel-defaults/src/test/resources/spark-shredded-variant-preview-delta
rm -rf "$DEST/spark-shredded-variant-preview-delta"
git --git-dir="$DELTA" ls-tree -r --name-only "$DELTA_COMMIT" "$SHREDDED" | while IFS= read -r f; do
  out="$DEST/spark-shredded-variant-preview-delta/${f#"$SHREDDED"/}"
  mkdir -p "$(dirname "$out")"
  git --git-dir="$DELTA" show "$DELTA_COMMIT:$f" > "$out"
done

PT="$(git_dir apache/parquet-testing "$PARQUET_TESTING_COMMIT")"
rm -rf "$DEST/parquet-testing-variant"
mkdir -p "$DEST/parquet-testing-variant"
git --git-dir="$PT" ls-tree -r --name-only "$PARQUET_TESTING_COMMIT" variant | while IFS= read -r f; do
  git --git-dir="$PT" show "$PARQUET_TESTING_COMMIT:$f" > "$DEST/parquet-testing-variant/${f#variant/}"
done

cat > "$DEST/PROVENANCE.md" <<EOF
# Third-party Delta test tables (not part of delta-neon-sync)

Fetched by scripts/fetch-kernel-tables.sh of delta-neon-sync on $(date -u +%Y-%m-%dT%H:%MZ).
All are Apache License 2.0 (http://www.apache.org/licenses/LICENSE-2.0), copyright their authors.

| folder | repository | commit | path |
|---|---|---|---|
| unshredded-variant/ | https://github.com/delta-io/delta-kernel-rs | $KERNEL_RS_COMMIT | kernel/tests/data/unshredded-variant.tar.zst (extracted) |
| unshredded-variant.expected.in | https://github.com/delta-io/delta-kernel-rs | $KERNEL_RS_COMMIT | kernel/tests/data/unshredded-variant.expected.in |
| spark-shredded-variant-preview-delta/ | https://github.com/delta-io/delta | $DELTA_COMMIT | kernel/kernel-defaults/src/test/resources/spark-shredded-variant-preview-delta |
| parquet-testing-variant/ | https://github.com/apache/parquet-testing | $PARQUET_TESTING_COMMIT | variant/ |

- unshredded-variant: written by delta-spark 4.0 (Delta 3.3.0-SNAPSHOT) with the query in
  unshredded-variant/info.txt (variants {"key": id} for id 0..99, nested in arrays, structs,
  maps and arrays of structs with nulls at each level; then ids 0 and 1 appended again, a
  checkpoint at version 2; reader feature variantType-preview). delta-kernel-rs compares its
  scan against unshredded-variant.expected.in in kernel/tests/integration/read/mod.rs
  (unshredded_variant_table).
- spark-shredded-variant-preview-delta: the same query with delta.enableVariantShredding,
  reader feature variantShredding-preview (shredded variant files); delta-io/delta's Kernel
  ScanSuite ("read scan files with variant") reads its log.
- parquet-testing-variant: raw variant encodings (not a Delta table) of one value of each
  primitive type, objects and arrays, made with Spark SQL (regen.py lists each value) and
  Iceberg's test code (time, nanosecond timestamps, uuid); data_dictionary.json gives each
  as JSON.
- Not fetched: delta-io/delta's spark-variant-stable-feature-checkpoint (its log names data
  files test%file%prefix-part-... that the repository does not hold, so it cannot be read).
EOF
echo "kernel tables in $DEST"
