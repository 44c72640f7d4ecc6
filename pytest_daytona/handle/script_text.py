"""The shell text of the command wrapper that `executor.build_script` fills in.

One shell process runs it: the sandbox's bash, or ``sh`` where there is none. Per command it
forks three times (the stderr capture, the process that runs the command, the timer) and
starts no program: stderr is captured in memory, not in a temp file, and the timer is
``read -t`` on a pipe the command's side closes when done (bash), or a ``sleep`` in the
background (sh). Markers it prints start with @MARK@, a name derived from the delimiter:
``P<status> <file>`` (a login profile ended the shell), ``T<seconds>`` (the deadline killed
the command) and ``E`` (the end of the captured stderr, which keeps its trailing newlines).
"""

from __future__ import annotations

#: The command the toolbox's shell runs: the script (from the environment variable @VAR@)
#: in that very shell if it is bash, else in bash, else in sh.
TOOLBOX_LINE = (
    'if [ -n "${BASH_VERSION-}" ]; then eval "$@VAR@"; '
    'elif command -v bash >/dev/null 2>&1; then exec bash -c "$@VAR@"; '
    'else exec sh -c "$@VAR@"; fi'
)

#: Before the command's own text: where it starts, the deadline (empty: none), fd 3 = stdout.
HEAD = """\
unset @VAR@
__pd_pwd=$PWD __pd_M=@MARK@ __pd_T=@SECONDS@ __pd_pre= __pd_where= __pd_note=
exec 3>&1"""

#: Made before anything else with `make_dir`; its error (if any) opens the stderr part.
MAKE_DIR = """\
if __pd_pre=$(mkdir -p -m 755 -- @DIR@ 2>&1); then __pd_where=@TOKEN@"$__pd_pwd"
else __pd_pre="$__pd_pre
"; fi"""

#: `id -u`, which a login profile runs, without starting `id` (any other use runs it).
_ID = """\
id() {
if [ "$*" != -u ]; then command id "$@"; return; fi
if [ -n "${BASH_VERSION-}" ]; then printf '%s\\n' "$EUID"; return; fi
while read -r __pd_k __pd_x __pd_e __pd_x; do
if [ "$__pd_k" = Uid: ]; then printf '%s\\n' "$__pd_e"; return; fi
done </proc/self/status
command id -u
}"""

#: The process that runs the command: profiles ($1 = 1), then options reset, then the
#: command with fds 3 and 4 closed. A profile ending the shell leaves a P marker on fd 4.
CHILD = (
    """\
__pd_child() {
if [ "$1" = 1 ]; then
trap 'printf "%sP%s %s\\n" "$__pd_M" "$?" "$__pd_step" >&4' EXIT
"""
    + _ID
    + """
@PROFILES@
{ set +a +C +e +f +u +v +x; } 2>/dev/null
unset -f id; trap - EXIT
fi
{ set +a +C +e +f +u +v +x; } 2>/dev/null
__pd_cmd 3>&- 4>&-
}"""
)

#: The stderr capture: the command's side writes its pid, then its status, to the timer.
CAPTURE = """\
__pd_capture() {
{ __pd_o=$(exec 4>&1
{ if [ -n "${BASH_VERSION-}" ]; then printf '%s\\n' "$BASHPID"
else read -r __pd_p __pd_x </proc/self/stat; printf '%s\\n' "$__pd_p"; fi
( __pd_child "$1" ) 2>&4 <@STDIN@ 1>&3
printf '%s\\n' "$?"; } | __pd_timer); } 2>/dev/null
}"""

#: Waits for the command's status; at the deadline kills what it started (see KILL), says
#: so with a T marker and still waits for the status. Returns the status, ends with E.
#: Under sh the sleeps close fds 3 and 4: one the TERM trap misses (TERM came before
#: ``__pd_s`` was set) must not keep the capture pipes, and so the wrapper, open.
TIMER = """\
__pd_timer() {
read -r __pd_l
if [ -z "$__pd_T" ]; then read -r __pd_rc
elif [ -n "${BASH_VERSION-}" ]; then
read -r -t "$__pd_T" __pd_rc
if [ "$?" -gt 128 ]; then __pd_kill "$__pd_l"; printf '%sT%s\\n' "$__pd_M" "$__pd_T"
read -r __pd_rc; fi
else
( trap 'kill "$__pd_s" 2>/dev/null; exit' TERM
sleep "$__pd_T" >/dev/null 2>&1 3>&- 4>&- & __pd_s=$!
wait "$__pd_s" || { sleep @WHOLE@ >/dev/null 2>&1 3>&- 4>&- & __pd_s=$!; wait "$__pd_s"; } || exit
trap '' TERM; __pd_kill "$__pd_l"; printf '%sT%s\\n' "$__pd_M" "$__pd_T" ) </dev/null &
__pd_k=$!
read -r __pd_rc
kill "$__pd_k" 2>/dev/null; wait "$__pd_k"
fi
printf '%sE' "$__pd_M"
return "${__pd_rc:-255}"
}"""

# `__pd_scan KEY LIST` prints the live pids whose KEY (pid, ppid or pgid) is in LIST, from
# /proc. `__pd_kill L` freezes the tree below L (the command's side) and the strays of this
# shell's process group (members whose parent is not a member: what the command left behind
# and init adopted), TERMs them, and KILLs what is left once none is alive or after the grace.
KILL = """\
__pd_scan() {
for __pd_f in /proc/[0-9]*/stat; do
{ read -r __pd_v <"$__pd_f"; } 2>/dev/null || continue
__pd_v=${__pd_v##*") "}
case $__pd_v in Z* | X*) continue ;; esac
__pd_f=${__pd_f%/stat} __pd_v=${__pd_v#* }
case $1 in pid) __pd_v=${__pd_f#/proc/} ;; ppid) __pd_v=${__pd_v%% *} ;; *)
__pd_v=${__pd_v#* } __pd_v=${__pd_v%% *} ;; esac
case " $2 " in *" $__pd_v "*) printf '%s ' "${__pd_f#/proc/}" ;; esac
done
}
__pd_kill() {
__pd_all= __pd_new=$(__pd_scan ppid "$1")
while [ -n "$__pd_new" ]; do
kill -s STOP $__pd_new 2>/dev/null
__pd_all="$__pd_all $__pd_new"
__pd_new=$(__pd_scan ppid "$__pd_new")
done
__pd_g=$(__pd_scan pgid "$$") __pd_c=
[ -z "$__pd_g" ] || __pd_c=" $(__pd_scan ppid "$__pd_g") $$ "
for __pd_p in $__pd_g; do
case $__pd_c in *" $__pd_p "*) ;; *) kill -s STOP "$__pd_p"; __pd_all="$__pd_all $__pd_p" ;; esac
done 2>/dev/null
kill -s TERM $__pd_all 2>/dev/null
kill -s CONT $__pd_all 2>/dev/null
__pd_n=0
while [ "$__pd_n" -lt @TENTHS@ ] && [ -n "$(__pd_scan pid "$__pd_all")" ]; do
sleep 0.1 2>/dev/null || { sleep @GRACE@; break; }
__pd_n=$((__pd_n + 1))
done
kill -s KILL $__pd_all 2>/dev/null
}"""

#: With profiles; again without them when one ended the shell; then the output's tail.
TAIL = """\
__pd_capture 1
__pd_rc=$?
case $__pd_o in "$__pd_M"P*) __pd_note=$__pd_o; __pd_capture 0; __pd_rc=$? ;; esac
printf '\\n%s%s%s\\n%s%s%s' @HALF1@ @HALF2@ "$__pd_where" "$__pd_pre" "$__pd_note" "$__pd_o"
exit "$__pd_rc"
"""
