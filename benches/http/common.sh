# What the HTTP benchmark scripts share (sourced, not run): reading wrk's output and
# taking medians.

# p99_ms FILE: wrk's 99th percentile latency in FILE (--latency output), in ms.
p99_ms() {
  awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}' "$1"
}

# rps FILE: wrk's requests per second in FILE.
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }

# median: the median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# with_cleanup: a scratch directory in $work, and on exit the server $server_pid (if
# any) stopped, the PostgreSQL database $pg_db (if any) dropped through $PG_ADMIN, and
# $work removed.
with_cleanup() {
  work=$(mktemp -d)
  server_pid=
  pg_db=
  trap 'cleanup_bench' EXIT
}

cleanup_bench() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [ -n "$pg_db" ] && psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" || true
  rm -rf "$work"
}
