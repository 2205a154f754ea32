#!/usr/bin/env bash
# The layering check (style rule 20), run by every build (cmake/checks.cmake) and by hand:
#
#   bash cmake/check_layers.sh [SOURCE_DIR]
#
# Folders are layers and dependencies point one way. For every .c, .h and .def under a layer folder, each
# #include that resolves to a file of the source tree must lie in a folder the layer may use (the table
# below); an x_internal.h may be included only from its own folder x; <llhttp.h> only from protocol/.
# Prints one `file:line: ...` per violation and exits 1 if there is any; tests/, perf/ and examples/ are
# not checked.
set -euo pipefail

# layer: the folders it may include from ("*": any). A file belongs to the longest layer that prefixes its
# path; a folder that does not exist yet is skipped.
declare -A MAY_USE=(
    [core]="core"
    [net]="net core"
    [persist]="persist core"
    [graph]="graph core"
    [runtime]="runtime graph persist core"
    [protocol]="protocol runtime net persist graph core"
    [server]="server runtime protocol net persist graph core"
)
# The only layers that may include the HTTP parser.
LLHTTP_LAYERS="protocol"
# Includes against the table that are on their way out, one "file included-file" each (none today). They
# print a note instead of failing; one that no longer occurs says so, and its line goes.
PENDING=()

ROOT=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd -P)
cd "$ROOT"

# Sets LAYER to the layer of a source-relative path, or to empty when it is in none.
layer_of() {
    local l
    LAYER=""
    for l in "${!MAY_USE[@]}"; do
        if [[ $1 == "$l"/* && ${#l} -gt ${#LAYER} ]]; then
            LAYER=$l
        fi
    done
}

# Sets TARGET to the normalised source-relative form of a path ("a/./b/../c" is "a/c"), or to empty when
# it leaves the tree. Plain bash: a check run by every build should not fork per include.
normalise() {
    local part out=()
    local IFS=/
    for part in $1; do
        case $part in
            '' | .) ;;
            ..)
                ((${#out[@]})) || { TARGET=""; return; }
                unset 'out[${#out[@]}-1]'
                ;;
            *) out+=("$part") ;;
        esac
    done
    TARGET="${out[*]}"
}

# Where the compiler finds a quoted include: beside the including file, then from the source root (the
# include directory every layer shares). Sets TARGET to the source-relative path, or to empty when the
# file is not in the tree (a system or generated header).
resolve() {
    TARGET=""
    if [[ -f $1/$2 ]]; then
        normalise "$1/$2"
    elif [[ -f $2 ]]; then
        normalise "$2"
    fi
}

bad=0
report() {
    printf '%s\n' "$*" >&2
    bad=1
}

declare -A pending_seen=()
for p in "${PENDING[@]}"; do
    pending_seen[$p]=0
done

dirs=()
for layer in "${!MAY_USE[@]}"; do
    [[ -d $layer ]] && dirs+=("$layer")
done
((${#dirs[@]})) || exit 0
while IFS=: read -r file line text; do
    # A file under a nested layer is checked as that layer's.
    layer_of "$file"
    layer=$LAYER
    dir=${file%/*}
    if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
        inc=${BASH_REMATCH[1]}
        if [[ $inc == llhttp.h && " $LLHTTP_LAYERS " != *" $layer "* ]]; then
            report "$file:$line: $layer may not include <llhttp.h> (only $LLHTTP_LAYERS/ may)"
        fi
        TARGET=""
        [[ -f $inc ]] && normalise "$inc"
    elif [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
        resolve "$dir" "${BASH_REMATCH[1]}"
    else
        continue
    fi
    [[ -n $TARGET ]] || continue
    allowed=" ${MAY_USE[$layer]} "
    layer_of "$TARGET"
    if [[ $allowed != *" * "* && ( -z $LAYER || $allowed != *" $LAYER "* ) ]]; then
        if [[ -n ${pending_seen["$file $TARGET"]+set} ]]; then
            pending_seen["$file $TARGET"]=1
            printf '%s\n' "$file:$line: note: $layer includes $TARGET (pending, listed in check_layers.sh)" >&2
        else
            report "$file:$line: $layer may not include $TARGET"
        fi
    fi
    if [[ $TARGET == *_internal.h && ${TARGET%/*} != "$dir" ]]; then
        report "$file:$line: $TARGET is internal to ${TARGET%/*}/"
    fi
done < <(grep -rnE --include='*.c' --include='*.h' --include='*.def' '^[[:space:]]*#[[:space:]]*include' \
    "${dirs[@]}" | LC_ALL=C sort -u -t: -k1,1 -k2,2n)

for p in "${PENDING[@]}"; do
    if ((pending_seen[$p] == 0)); then
        printf '%s\n' "check_layers.sh: note: pending \"$p\" no longer occurs; delete it from PENDING" >&2
    fi
done

if ((bad)); then
    echo "check_layers: includes against the layering (table in cmake/check_layers.sh)" >&2
    exit 1
fi
