# shellcheck shell=bash
# Small TAP helper for the deploy checks: collect results, then print the
# plan first and the numbered lines, and fail if any check failed.
#   tap_ok "what"; tap_not_ok "what" [details]; tap_skip "what" "reason"
#   tap_result CONDITION_EXIT_STATUS "what"
#   tap_lines < file   (lines "ok - x", "not ok - x", "skip - x # reason")
#   tap_finish        (prints and exits)

TAP_LINES=()
TAP_FAILED=0

tap_ok() { TAP_LINES+=("ok|$1"); }

tap_not_ok() {
  TAP_LINES+=("not ok|$1")
  TAP_FAILED=$((TAP_FAILED + 1))
  if [[ $# -gt 1 && -n $2 ]]; then
    TAP_LINES+=("diag|$2")
  fi
}

tap_skip() { TAP_LINES+=("ok|$1 # SKIP $2"); }

tap_result() {
  if [[ $1 -eq 0 ]]; then tap_ok "$2"; else tap_not_ok "$2" "${3:-}"; fi
}

tap_lines() {
  local line
  while IFS= read -r line; do
    case $line in
      "ok - "*) tap_ok "${line#ok - }" ;;
      "not ok - "*) tap_not_ok "${line#not ok - }" ;;
      "skip - "*)
        local rest=${line#skip - }
        tap_skip "${rest%% # *}" "${rest#* # }"
        ;;
      "# "*) TAP_LINES+=("diag|${line#\# }") ;;
      *) [[ -n $line ]] && TAP_LINES+=("diag|$line") ;;
    esac
  done
}

tap_finish() {
  local n=0 entry kind text count=0
  for entry in "${TAP_LINES[@]}"; do
    [[ ${entry%%|*} == diag ]] || count=$((count + 1))
  done
  echo "1..$count"
  for entry in "${TAP_LINES[@]}"; do
    kind=${entry%%|*}
    text=${entry#*|}
    if [[ $kind == diag ]]; then
      while IFS= read -r line; do echo "# $line"; done <<<"$text"
    else
      n=$((n + 1))
      echo "$kind $n - $text"
    fi
  done
  [[ $TAP_FAILED -eq 0 ]]
}

# npm packages for the checks (hcl2json, the azurerm schema), installed from
# the committed lock file the first time. Prints nothing on success.
tap_npm_ready() {
  local dir=$1
  if [[ ! -d $dir/node_modules/@cdktf/hcl2json ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}
