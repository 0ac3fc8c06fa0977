# Shared by the bench scripts: `measure NAME CMD...` runs CMD with GNU time, logs its output to
# $work/NAME.log, and appends "NAME seconds MB" to $results; `secs NAME` reads the seconds back.
# The caller sets $work and $results.

measure() {
    local name=$1; shift
    if /usr/bin/time -f "%e %M" -o "$work/time.$name" "$@" > "$work/$name.log" 2>&1; then
        read -r secs kb < "$work/time.$name"
        printf '%-28s %8.2f s %8.0f MB\n' "$name" "$secs" "$((kb / 1024))" | tee -a "$results"
    else
        echo "$name FAILED (see $work/$name.log)" | tee -a "$results"
        tail -5 "$work/$name.log"
    fi
}

secs() { awk -v n="$1" '$1 == n { print $2 }' "$results"; }
