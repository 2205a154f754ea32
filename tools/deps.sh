#!/usr/bin/env bash
# Installs the Debian packages agentd needs that are not installed yet.
#
#   tools/deps.sh               the default set: build, run and test (Debian bookworm)
#   tools/deps.sh PACKAGE...    exactly these (perf uses: tools/deps.sh nginx-light)
#
# Instant when everything is present: it asks dpkg first and runs `apt-get update` and
# `apt-get install` only for what is missing. Needs root or sudo for that.
set -euo pipefail

die() {
    echo "deps.sh: $*" >&2
    exit 1
}

default_packages() {
    local pkgs=(
        build-essential clang cmake pkg-config curl
        liburing-dev libpq-dev libmimalloc-dev libjansson-dev node-llhttp
        libclang-rt-14-dev # clang 14's ASan/UBSan/TSan/libFuzzer runtimes
        postgresql         # server 15 under /usr/lib/postgresql/15/bin
        tzdata             # /usr/share/zoneinfo: the time zones of cron schedules
    )
    # Node may come from elsewhere (nodesource ships npm inside its nodejs); only fill the gaps.
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
    printf '%s\n' "${pkgs[@]}"
}

# Prints the packages among the arguments that are not installed, with one dpkg-query call.
not_installed() {
    local -A ok=()
    local name status p
    while read -r name status; do
        [[ $status == installed ]] && ok[${name%%:*}]=1
    done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true)
    for p in "$@"; do
        [[ -n ${ok[$p]:-} ]] || echo "$p"
    done
}

case ${1:-} in
-h | --help)
    sed -n '2,8s/^# \{0,1\}//p' "$0"
    exit 0
    ;;
esac

if (($# > 0)); then
    wanted=("$@")
else
    mapfile -t wanted < <(default_packages)
fi

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script expects Debian (bookworm)"

mapfile -t missing < <(not_installed "${wanted[@]}")
((${#missing[@]} == 0)) && exit 0

if [[ $EUID -eq 0 ]]; then
    as_root=(env)
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo env)
    # Without a terminal sudo cannot ask for a password; fail at once instead of hanging.
    if [[ ! -t 0 ]] && ! sudo -n true 2>/dev/null; then
        die "missing packages: ${missing[*]}; sudo needs a password and there is no terminal (run as root)"
    fi
else
    die "missing packages: ${missing[*]}; run as root or install sudo (or install them yourself)"
fi

echo "deps.sh: installing ${missing[*]}" >&2
apt_opts=(-o Acquire::Retries=3 -o DPkg::Lock::Timeout=300)
"${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -q ||
    die "apt-get update failed"
"${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q "${missing[@]}" ||
    die "apt-get install ${missing[*]} failed"

mapfile -t still < <(not_installed "${missing[@]}")
((${#still[@]} == 0)) || die "still not installed: ${still[*]}"
