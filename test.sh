#!/usr/bin/env bash
# CrateIL test command: installs what the tests need (when it can), builds in Release, runs every test
# project, and ends with the line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")"

need=()
dpkg -s pocl-opencl-icd >/dev/null 2>&1 || need+=(pocl-opencl-icd)
dpkg -s ocl-icd-opencl-dev >/dev/null 2>&1 || need+=(ocl-icd-opencl-dev)
dpkg -s labelme-examples >/dev/null 2>&1 || need+=(labelme-examples)
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
dpkg -s openmpi-bin >/dev/null 2>&1 || need+=(openmpi-bin)
dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${need[*]} (OpenCL on CPU for the OpenCL tests; labelme-examples: real VOC/COCO fixtures; dataset-fashion-mnist: idx reader on real data; Open MPI: data-parallel jobs under mpirun -np 2)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/tmp/crateil-apt.log 2>&1 \
      || echo "test.sh: apt-get failed (see /tmp/crateil-apt.log); OpenCL, labelme and MPI tests will skip or fail"
  else
    echo "test.sh: ${need[*]} missing and not root: OpenCL, labelme-data and MPI tests will skip (CRATEIL_REQUIRE_OPENCL=1 / CRATEIL_REQUIRE_MPI=1 make them fail)"
  fi
fi

# PoCL runs the OpenCL tests on this CPU; it is a test facility only.
export CRATEIL_OPENCL_ALLOW_POCL=1
# The data-parallel tests launch mpirun -np 2 on loopback; CI runs as root, which Open MPI refuses unless told.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if ! dotnet build CrateIL.sln -c Release -warnaserror -nologo -v q; then
  echo "build failed"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi

passed=0; failed=0; skipped=0; status=0

# The README's library example (samples/QuickStart) must build (above) and run.
if sample=$(dotnet samples/QuickStart/bin/Release/net10.0/QuickStart.dll 2>&1); then
  echo "samples/QuickStart: $sample"; passed=$((passed + 1))
else
  echo "samples/QuickStart FAILED: $sample"; failed=$((failed + 1)); status=1
fi
for proj in tests/*.Tests/*.Tests.csproj; do
  name=$(basename "$proj" .csproj)
  log=$(mktemp)
  dotnet test "$proj" -c Release --no-build --nologo --logger "console;verbosity=normal" 2>&1 | tee "$log" \
    | grep -E '^\s+(Failed|Skipped) |Error Message|^\s+at |Total tests|Test Run' | head -300
  rc=${PIPESTATUS[0]}
  if grep -q "Test Run \(Successful\|Failed\|Aborted\)" "$log"; then
    count() { grep -E "^\s+$1:\s+[0-9]+" "$log" | tail -1 | grep -oE '[0-9]+' || echo 0; }
    p=$(count Passed); f=$(count Failed); s=$(count Skipped)
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [ "$rc" -ne 0 ]; then status=1; [ "$f" -eq 0 ] && failed=$((failed + 1)); fi
  elif grep -q "No test is available" "$log" && [ "$rc" -eq 0 ]; then
    echo "$name: no tests yet"
  else
    echo "$name: test run did not complete (exit $rc)"; failed=$((failed + 1)); status=1
  fi
  rm -f "$log"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
