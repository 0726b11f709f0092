#!/usr/bin/env bash
# Packs the `crate` CLI with the .NET runtime for a machine that has no .NET SDK (the borrowed GPU machine: driver,
# CUDA and Python only). Run it here, on the machine with the SDK:
#   benchmarks/gpu/pack.sh [PACK_DIR]        (default: artifacts/gpu-pack, ignored by git, outside every project)
# It writes into PACK_DIR:
#   crate-app.tar.xz      `dotnet publish` of cli/ (Release, framework-dependent, linux-x64 natives only)
#   dotnet-runtime.tar.xz the installed runtime the app needs: the `dotnet` host, host/fxr and
#                         shared/Microsoft.NETCore.App/<version> (about 26 MB compressed)
#   manifest.txt          versions, sizes, the commit packed
# and fails if the folder exceeds 64 MiB (the most one command may send to the GPU machine).
# Environment: PACK_NO_BUILD=1 publishes the existing build (after `dotnet build -c $PACK_CONFIGURATION`, e.g. by
#   test.sh); PACK_CONFIGURATION (default Release); PACK_XZ_LEVEL (default 6: the runtime is 26 MB, about 2 minutes
#   on 2 cores; 1: 29 MB in 20 s). The runtime archive is reused while the installed version is the same (delete
#   dotnet-runtime.* in the pack folder to recompress).
# benchmarks/gpu/run.sh unpacks both and runs there with only `bash`, `tar`, `xz` and `python3`.
# Exit: 0 packed; 1 a step failed; 3 nothing to pack from (no SDK or no linux-x64 runtime here).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
repo=$(pwd)
pack=${1:-artifacts/gpu-pack}
limit_bytes=$((64 * 1024 * 1024))
configuration=${PACK_CONFIGURATION:-Release}
level=${PACK_XZ_LEVEL:-6}
case "$level" in [0-9]) ;; *) echo "pack.sh: PACK_XZ_LEVEL must be 0-9, not '$level'" >&2; exit 1 ;; esac
no_build=(); [ "${PACK_NO_BUILD:-0}" = 1 ] && no_build=(--no-build)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

say() { echo "pack.sh: $*"; }

if ! command -v dotnet >/dev/null 2>&1; then say "no dotnet SDK on the PATH: nothing to pack from"; exit 3; fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then say "packs for linux-x64 and must run on it (this is $(uname -s)-$(uname -m))"; exit 3; fi
for tool in tar xz; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is missing"; exit 3; }
done

# The runtime the app targets: the highest installed Microsoft.NETCore.App of the SDK's major version.
sdk_major=$(dotnet --version 2>/dev/null | cut -d. -f1)
runtime_line=$(dotnet --list-runtimes 2>/dev/null | grep -E "^Microsoft\.NETCore\.App ${sdk_major}\." | sort -V | tail -1)
if [ -z "$runtime_line" ]; then say "no Microsoft.NETCore.App ${sdk_major}.x runtime installed"; exit 3; fi
runtime_version=$(echo "$runtime_line" | awk '{print $2}')
shared_dir=$(echo "$runtime_line" | sed -E 's/^[^[]*\[(.*)\]$/\1/')
dotnet_root=$(dirname "$(dirname "$shared_dir")")
fxr_dir=$(ls -d "$dotnet_root"/host/fxr/* 2>/dev/null | sort -V | tail -1)
if [ ! -x "$dotnet_root/dotnet" ] || [ -z "$fxr_dir" ] || [ ! -d "$shared_dir/$runtime_version" ]; then
  say "incomplete runtime under $dotnet_root (need dotnet, host/fxr/*, shared/Microsoft.NETCore.App/$runtime_version)"; exit 3
fi

mkdir -p "$pack" || exit 1
pack=$(cd "$pack" && pwd)
work=$(mktemp -d -t crateil-pack-XXXXXX)
trap 'rm -rf "$work"' EXIT

say "publishing cli ($configuration, framework-dependent${no_build:+, from the existing build}) ..."
# No -r: a RID-specific publish would restore and rebuild every project for linux-x64 beside the normal build.
# The framework-dependent build is portable already, and Directory.Build.targets keeps only this machine's
# (linux-x64) native libraries.
if ! dotnet publish cli/CrateIL.Cli.csproj -c "$configuration" "${no_build[@]}" -o "$work/app" -nologo -v q >"$work/publish.log" 2>&1; then
  tail -20 "$work/publish.log"; say "publish failed"; exit 1
fi
grep -q '"name": "Microsoft.NETCore.App"' "$work/app/crate.runtimeconfig.json" || { say "crate.runtimeconfig.json names no Microsoft.NETCore.App"; exit 1; }
# Natives of other platforms would only add weight.
find "$work/app/runtimes" -mindepth 1 -maxdepth 1 -type d ! -name 'linux-x64' -exec rm -rf {} + 2>/dev/null
rm -f "$work/app"/*.pdb

say "compressing the app ..."
tar -C "$work/app" -cf - . | xz "-$level" -T2 >"$pack/crate-app.tar.xz" || { say "compressing the app failed"; exit 1; }

# The runtime is large and changes only with the installed version: reuse an archive of the same version.
stamp="$runtime_version $(basename "$fxr_dir") $dotnet_root"
if [ -f "$pack/dotnet-runtime.tar.xz" ] && [ "$(cat "$pack/dotnet-runtime.stamp" 2>/dev/null)" = "$stamp" ]; then
  say "runtime $runtime_version already packed"
else
  say "compressing the .NET runtime $runtime_version from $dotnet_root (about a minute) ..."
  rm -f "$pack/dotnet-runtime.stamp"
  if ! tar -C "$dotnet_root" -cf - dotnet LICENSE.txt ThirdPartyNotices.txt "host/fxr/$(basename "$fxr_dir")" \
        "shared/Microsoft.NETCore.App/$runtime_version" 2>"$work/tar.err" | xz "-$level" -T2 >"$pack/dotnet-runtime.tar.xz"; then
    cat "$work/tar.err"; say "compressing the runtime failed"; exit 1
  fi
  echo "$stamp" >"$pack/dotnet-runtime.stamp"
fi

commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
{
  echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $commit$dirty"
  echo "runtime: Microsoft.NETCore.App $runtime_version, hostfxr $(basename "$fxr_dir")"
  echo "app: crate (cli/, $configuration), framework-dependent, linux-x64"
  echo "run there: benchmarks/gpu/run.sh [--device cuda] [OUT_DIR]"
} >"$pack/manifest.txt"

total=$(du -sb "$pack" | cut -f1)
printf 'pack.sh: %s: app %s, runtime %s, %.1f MiB in all (limit 64 MiB)\n' "$pack" \
  "$(du -h "$pack/crate-app.tar.xz" | cut -f1)" "$(du -h "$pack/dotnet-runtime.tar.xz" | cut -f1)" \
  "$(echo "$total" | awk '{print $1 / 1048576}')"
if [ "$total" -gt "$limit_bytes" ]; then say "the pack exceeds 64 MiB"; exit 1; fi
exit 0
