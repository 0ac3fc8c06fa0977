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

# A fresh docker-registry on a kernel-chosen port: sets $port and $registry_pid.
registry_pid=""
start_registry() {
    local dir="$work/registry-$1"
    rm -rf "$dir"; mkdir -p "$dir/storage"
    cat > "$dir/config.yml" <<YML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/storage
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: bench-secret
YML
    docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 &
    registry_pid=$!
    port=""
    for _ in $(seq 1 200); do
        port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$dir/registry.log" | head -1 | sed 's/.*://') || true
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { cat "$dir/registry.log"; exit 1; }
}
stop_registry() { [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null || true; registry_pid=""; }
